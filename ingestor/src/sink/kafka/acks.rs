//! Counting acknowledgements: every record of one update (or one checkpoint) carries the
//! same [`Acks`] as its delivery opaque, and librdkafka's delivery report for it, on the
//! producer's polling thread, counts into it. The update is acknowledged when the count
//! reaches the number of records it enqueued, and has failed at its first refused record.
//! One shared counter per update, instead of a future and a channel per record.

use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use rdkafka::statistics::Statistics;
use tokio::sync::Notify;

use crate::telemetry::KafkaContext;

/// The producer's context: librdkafka's statistics feed the metrics as every client's do
/// ([`KafkaContext`]), and each delivery report counts into its record's [`Acks`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AckContext;

impl ClientContext for AckContext {
    fn stats(&self, stats: Statistics) {
        KafkaContext.stats(stats);
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Arc<Acks>;

    fn delivery(&self, result: &DeliveryResult<'_>, acks: Arc<Acks>) {
        acks.delivered(result);
    }
}

/// A record the broker refused, or did not acknowledge within `kafka.message_timeout_ms`.
#[derive(Debug)]
pub(in crate::sink) struct Refused {
    /// Its topic.
    pub(in crate::sink) topic: String,
    /// Its key.
    pub(in crate::sink) key: String,
    /// librdkafka's error.
    pub(in crate::sink) error: KafkaError,
}

/// Where the acknowledged records of one topic landed: per partition, the lowest and the
/// highest offset.
pub(in crate::sink) type Spans = Vec<(i32, i64, i64)>;

/// The acknowledgements of one update's records.
#[derive(Debug)]
pub struct Acks {
    /// The topic whose offsets are noted (the chain topic), if any.
    noted: Option<Arc<str>>,
    state: Mutex<State>,
    done: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// How many records were enqueued, once all were.
    expected: Option<usize>,
    delivered: usize,
    spans: Spans,
    refused: Option<Refused>,
}

impl State {
    fn complete(&self) -> bool {
        self.refused.is_some() || self.expected.is_some_and(|n| self.delivered >= n)
    }
}

impl Acks {
    /// Acknowledgements to count, noting the offsets of `noted`'s records.
    pub(in crate::sink) fn new(noted: Option<Arc<str>>) -> Arc<Self> {
        Arc::new(Self {
            noted,
            state: Mutex::new(State::default()),
            done: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Poisoned only by a panic in this module's own short critical sections.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every record is enqueued: `n` of them.
    pub(in crate::sink) fn expect(&self, n: usize) {
        let mut s = self.state();
        s.expected = Some(n);
        if s.complete() {
            self.done.notify_one();
        }
    }

    /// Waits until every record is acknowledged (where the noted topic's landed) or one
    /// was refused.
    pub(in crate::sink) async fn wait(&self) -> Result<Spans, Refused> {
        loop {
            {
                let mut s = self.state();
                if let Some(refused) = s.refused.take() {
                    return Err(refused);
                }
                if s.complete() {
                    return Ok(std::mem::take(&mut s.spans));
                }
            }
            // A notification sent since the check above is kept as a permit.
            self.done.notified().await;
        }
    }

    fn delivered(&self, result: &DeliveryResult<'_>) {
        let mut s = self.state();
        s.delivered += 1;
        match result {
            Ok(m) => {
                if self.noted.as_deref() == Some(m.topic()) {
                    let (p, o) = (m.partition(), m.offset());
                    match s.spans.iter_mut().find(|(q, _, _)| *q == p) {
                        Some((_, first, last)) => {
                            *first = (*first).min(o);
                            *last = (*last).max(o);
                        }
                        None => s.spans.push((p, o, o)),
                    }
                }
            }
            Err((error, m)) => {
                if s.refused.is_none() {
                    s.refused = Some(Refused {
                        topic: m.topic().to_owned(),
                        key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                        error: error.clone(),
                    });
                }
            }
        }
        if s.complete() {
            self.done.notify_one();
        }
    }
}
