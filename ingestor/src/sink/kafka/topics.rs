//! Chain and checkpoint topics at start-up: created compacted when missing, and checked
//! when they exist, as a cluster operator may have created them otherwise.
//!
//! What an existing topic may differ in, and what it costs:
//! - `cleanup.policy` without `compact`: on a chain topic a **warning** (every record is
//!   still published, and consumers that do not compact are unaffected; but the compacted
//!   view, where tombstones delete retracted keys, is only what is left after retention); on
//!   the checkpoint topic an **error** (retention could delete a chain's only checkpoint,
//!   and a restart would begin again at `start_block`).
//! - another partition count than configured: a **warning** (records of a chain are
//!   ordered per key only, not across keys).
//! - `max.message.bytes` below the producer's limit: a **warning** (a larger record fails
//!   delivery and stops its chain: the one that matters is the broker's).
//!
//! The compaction settings a topic the service creates gets ([`COMPACTION`]); an existing
//! topic keeps its own:
//! - `delete.retention.ms` = 7 days: a tombstone stays readable for a week after the cleaner
//!   compacted its segment, so a sink that was down for up to a week still deletes the
//!   retracted row (Kafka's default is 1 day);
//! - `segment.ms` = 1 day: the cleaner compacts only closed segments, so a quiet chain's
//!   retracted keys leave the log within about a day, not the default week;
//! - `min.compaction.lag.ms` = 0 and `min.cleanable.dirty.ratio` = 0.5 (Kafka's defaults): a
//!   key's value never changes except to a tombstone, so nothing is gained by holding
//!   records back from the cleaner.
//!
//! The checkpoint topic rolls its segments hourly instead ([`CHECKPOINT_SEGMENT_MS`]): it
//! gets a record per chain per delivered block, all read at every start-up until the
//! cleaner keeps only the last.

use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication, TopicResult,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;
use crate::events;

use super::client::{MAX_MESSAGE_BYTES, base_config};
use crate::sink::SinkError;

/// Ensures each `(topic, partitions)` as `ensure_topic` below does, all at once through one
/// admin client.
pub async fn ensure_topics(
    k: &KafkaConfig,
    topics: &[(String, Option<i32>)],
) -> Result<(), SinkError> {
    let admin: AdminClient<DefaultClientContext> = base_config(k)
        .create()
        .map_err(|e| SinkError::Client(Box::new(e)))?;
    let result = futures_util::future::try_join_all(
        topics
            .iter()
            .map(|(topic, partitions)| ensure_topic(&admin, k, topic, *partitions)),
    )
    .await;
    // Dropping an admin client joins its polling thread, which wakes every 100 ms: not on
    // a runtime worker, and not before the service starts.
    tokio::task::spawn_blocking(move || drop(admin));
    result.map(drop)
}

/// The settings a created topic gets besides `cleanup.policy` and `max.message.bytes` (see
/// the module docs).
pub(crate) const COMPACTION: [(&str, &str); 4] = [
    ("delete.retention.ms", "604800000"),
    ("segment.ms", "86400000"),
    ("min.compaction.lag.ms", "0"),
    ("min.cleanable.dirty.ratio", "0.5"),
];

/// The checkpoint topic's `segment.ms`: one hour.
const CHECKPOINT_SEGMENT_MS: &str = "3600000";

/// Creates `topic` with `cleanup.policy=compact` (`partitions` of them, default
/// `kafka.topic_partitions`) if it does not exist, then checks that the broker lists it.
async fn ensure_topic(
    admin: &AdminClient<DefaultClientContext>,
    k: &KafkaConfig,
    topic: &str,
    partitions: Option<i32>,
) -> Result<(), SinkError> {
    let want_partitions = partitions.unwrap_or(k.topic_partitions);
    let checkpoints = topic == k.checkpoint_topic;
    let err = |reason: String| SinkError::Topic {
        topic: topic.to_owned(),
        brokers: k.brokers.clone(),
        reason: format!("{reason}; check `kafka.brokers` and that the broker is up"),
    };
    let timeout = Duration::from_millis(k.admin_timeout_ms);
    let max_bytes = MAX_MESSAGE_BYTES.to_string();
    let new = NewTopic::new(
        topic,
        want_partitions,
        TopicReplication::Fixed(k.topic_replication_factor),
    )
    .set("cleanup.policy", "compact")
    .set("max.message.bytes", &max_bytes);
    let new = COMPACTION.iter().fold(new, |new, &(key, value)| match key {
        "segment.ms" if checkpoints => new.set(key, CHECKPOINT_SEGMENT_MS),
        _ => new.set(key, value),
    });
    let opts = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    // A refused creation is not fatal by itself: the topic may exist already or be managed
    // by operators (or the broker may not implement CreateTopics); the metadata decides.
    let results = create(admin, &new, timeout).await;
    // Just created as wanted: nothing to check.
    let fresh = matches!(&results, Ok(r) if r.iter().all(Result::is_ok));
    let created = match results {
        Ok(results) => results.into_iter().find_map(|r| match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => None,
            Err((_, code)) => Some(format!("create failed: {code}")),
        }),
        Err(e) => Some(format!("create failed: {e}")),
    };
    let reason = |what: String| match &created {
        Some(c) => format!("{c}; {what}"),
        None => what,
    };
    // Created (or found existing) by this request: the broker lists it shortly.
    let settle = if created.is_none() {
        timeout
    } else {
        Duration::ZERO
    };
    match listed(admin, topic, timeout, settle).await {
        Listed::Ready(found) => {
            if found != want_partitions {
                events::TopicDiffers {
                    topic,
                    setting: "partitions",
                    found: &found.to_string(),
                    why: "a chain's records are ordered per key only, not across keys",
                }
                .emit();
            }
            if fresh {
                return Ok(());
            }
            check_configs(admin, k, topic, checkpoints, &opts).await
        }
        Listed::Failed(e) => Err(err(format!("metadata request failed: {e}"))),
        Listed::Unusable(e) => Err(err(reason(format!("broker reports it unusable: {e}")))),
        Listed::Missing => Err(err(reason("broker does not list it".into()))),
    }
}

/// Asks the broker to create `new` until it answers with something else than a timeout or
/// a lost connection, or `timeout` passes: a busy host, or a controller still starting,
/// may not answer the first request in time, and the next one is cheap (an existing topic
/// is `TopicAlreadyExists`).
async fn create(
    admin: &AdminClient<DefaultClientContext>,
    new: &NewTopic<'_>,
    timeout: Duration,
) -> KafkaResult<Vec<TopicResult>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let opts = AdminOptions::new()
            .request_timeout(Some(left.max(CREATE_RETRY)))
            .operation_timeout(Some(left.max(CREATE_RETRY)));
        let results = admin.create_topics([new], &opts).await;
        let again = match &results {
            Ok(results) => results
                .iter()
                .any(|r| matches!(r, Err((_, code)) if transient(*code))),
            Err(e) => e.rdkafka_error_code().is_some_and(transient),
        };
        if !again || tokio::time::Instant::now() + CREATE_RETRY >= deadline {
            return results;
        }
        tracing::debug!(
            topic = new.name,
            "creating the topic again after {results:?}"
        );
        tokio::time::sleep(CREATE_RETRY).await;
    }
}

/// How long [`create`] waits before asking again.
const CREATE_RETRY: Duration = Duration::from_millis(500);

/// An answer that says nothing about the topic: the request timed out, or its connection
/// or the controller went away.
fn transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::NotController
    )
}

/// What the broker's metadata says of a topic.
enum Listed {
    /// Usable, with this many partitions.
    Ready(i32),
    /// The metadata request itself failed.
    Failed(rdkafka::error::KafkaError),
    /// Listed with an error, or without partitions.
    Unusable(String),
    /// Not listed.
    Missing,
}

/// Asks for `topic`'s metadata (each request within `timeout`) until the broker lists it
/// usable, or `settle` passes. A topic just created is not listed at once: the broker
/// answers from its own copy of the cluster's metadata, which follows the controller's
/// (briefly `UNKNOWN_TOPIC_OR_PART` or `LEADER_NOT_AVAILABLE` on Apache Kafka).
async fn listed(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    timeout: Duration,
    settle: Duration,
) -> Listed {
    let deadline = tokio::time::Instant::now() + settle;
    loop {
        let state = match admin.inner().fetch_metadata(Some(topic), timeout) {
            Err(e) => return Listed::Failed(e),
            Ok(metadata) => match metadata.topics().iter().find(|t| t.name() == topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    return Listed::Ready(t.partitions().len() as i32);
                }
                Some(t) => Listed::Unusable(format!("{:?}", t.error())),
                None => Listed::Missing,
            },
        };
        if tokio::time::Instant::now() + LISTED_POLL >= deadline {
            return state;
        }
        tokio::time::sleep(LISTED_POLL).await;
    }
}

/// How often [`listed`] asks again.
const LISTED_POLL: Duration = Duration::from_millis(50);

/// `cleanup.policy` and `max.message.bytes` of an existing topic (see the module docs). A
/// broker that does not describe configs is not an error.
async fn check_configs(
    admin: &AdminClient<DefaultClientContext>,
    k: &KafkaConfig,
    topic: &str,
    checkpoints: bool,
    opts: &AdminOptions,
) -> Result<(), SinkError> {
    let Ok(results) = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], opts)
        .await
    else {
        return Ok(());
    };
    let Some(Ok(resource)) = results.into_iter().next() else {
        return Ok(());
    };
    let value = |name: &str| {
        resource
            .entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    if let Some(policy) = value("cleanup.policy")
        && !policy.split(',').any(|p| p.trim() == "compact")
    {
        if checkpoints {
            return Err(SinkError::Topic {
                topic: topic.to_owned(),
                brokers: k.brokers.clone(),
                reason: format!(
                    "cleanup.policy is `{policy}`: retention could delete a chain's only checkpoint; set cleanup.policy=compact (rpk topic alter-config {topic} --set cleanup.policy=compact) or name another `kafka.checkpoint_topic`"
                ),
            });
        }
        events::TopicDiffers {
            topic,
            setting: "cleanup.policy",
            found: &policy,
            why: "without compaction, tombstones do not delete retracted keys and records expire with retention; every record is still published",
        }
        .emit();
    }
    if let Some(max) = value("max.message.bytes").and_then(|v| v.parse::<usize>().ok())
        && max < MAX_MESSAGE_BYTES
    {
        events::TopicDiffers {
            topic,
            setting: "max.message.bytes",
            found: &max.to_string(),
            why: "a larger record fails delivery and stops its chain; raise it to 16777216",
        }
        .emit();
    }
    Ok(())
}
