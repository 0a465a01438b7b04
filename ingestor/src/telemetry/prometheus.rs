//! `/metrics`: the same instruments the OTLP export reads, in the Prometheus text format
//! (version 0.0.4).
//!
//! A [`ManualReader`] sits beside the OTLP exporter in the meter provider; each scrape
//! collects from it (cumulative temporality) and writes the text. Names follow the
//! translation Prometheus' OTLP receiver applies by default, so a dashboard reads the same
//! names from either path: `.` becomes `_`, the unit is a suffix (`s` → `_seconds`, `By` →
//! `_bytes`, `{…}` adds nothing), counters end in `_total`, histograms add `_bucket`,
//! `_sum` and `_count`.

use std::fmt::Write as _;
use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Histogram, Metric, MetricData, ResourceMetrics,
};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};

use super::metrics::{CHAIN_HISTOGRAMS, ChainHistogram, chain_label};
use super::rpc_metrics::{RPC_DURATION, RpcMetrics};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A scrape could not collect the instruments (the provider was shut down).
#[derive(Debug, thiserror::Error)]
#[error("metrics cannot be collected: {0}")]
pub struct ScrapeError(String);

/// A handle that renders the current metrics; cheap to clone.
#[derive(Debug, Clone)]
pub struct Scrape {
    reader: Arc<ManualReader>,
    /// The per-endpoint node metrics, whose histogram is written at zero per endpoint.
    rpc: Option<Arc<RpcMetrics>>,
}

impl Scrape {
    /// A reader to install in a meter provider, and the handle that scrapes it.
    pub fn new() -> (Self, SharedReader) {
        let reader = Arc::new(ManualReader::builder().build());
        (
            Self {
                reader: reader.clone(),
                rpc: None,
            },
            SharedReader(reader),
        )
    }

    /// The same handle, writing `rpc`'s endpoints' histograms at zero until observed.
    pub fn with_rpc(self, rpc: Arc<RpcMetrics>) -> Self {
        Self {
            rpc: Some(rpc),
            ..self
        }
    }

    /// Collects every instrument and writes the text exposition.
    pub fn render(&self) -> Result<String, ScrapeError> {
        let mut rm = ResourceMetrics::default();
        self.reader
            .collect(&mut rm)
            .map_err(|e| ScrapeError(e.to_string()))?;
        let series = self.rpc.as_ref().map(|r| r.series()).unwrap_or_default();
        Ok(render(
            &rm,
            &zeros(&super::metrics::metrics().chains(), &series),
        ))
    }
}

/// The [`ManualReader`] of a [`Scrape`], as the meter provider holds it.
#[derive(Debug)]
pub struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// A histogram written with zero counts for each label set of `series` it has no data
/// point for, so that its series exist from the first scrape (an OpenTelemetry histogram
/// has no data point before its first observation).
pub(super) struct Zero<'a> {
    histogram: &'a ChainHistogram,
    series: Vec<Vec<KeyValue>>,
}

/// The histograms to write at zero: [`CHAIN_HISTOGRAMS`] for every registered chain, and
/// [`RPC_DURATION`] for every registered `[chain, endpoint]`.
pub(super) fn zeros<'a>(chains: &[String], endpoints: &[[KeyValue; 2]]) -> Vec<Zero<'a>> {
    let mut out: Vec<Zero<'a>> = CHAIN_HISTOGRAMS
        .iter()
        .map(|histogram| Zero {
            histogram,
            series: chains.iter().map(|c| chain_label(c).to_vec()).collect(),
        })
        .collect();
    out.push(Zero {
        histogram: &RPC_DURATION,
        series: endpoints.iter().map(|l| l.to_vec()).collect(),
    });
    out
}

/// A label set as comparable text, its keys restricted to `keys`.
fn key_of<'a>(labels: impl Iterator<Item = &'a KeyValue>, keys: &[&str]) -> Vec<(String, String)> {
    let mut k: Vec<(String, String)> = labels
        .filter(|kv| keys.contains(&kv.key.as_str()))
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.as_str().into_owned()))
        .collect();
    k.sort();
    k
}

/// The text exposition of one collection, with the [`Zero`] histograms' missing series.
fn render(rm: &ResourceMetrics, zeros: &[Zero<'_>]) -> String {
    let mut out = String::new();
    let mut seen = Vec::new();
    for scope in rm.scope_metrics() {
        for metric in scope.metrics() {
            let observed = match metric.data() {
                AggregatedMetrics::U64(data) => family(&mut out, metric, data),
                AggregatedMetrics::I64(data) => family(&mut out, metric, data),
                AggregatedMetrics::F64(data) => family(&mut out, metric, data),
            };
            if let Some(z) = zeros.iter().find(|z| z.histogram.name == metric.name()) {
                seen.push(z.histogram.name);
                zero_series(&mut out, z, &observed);
            }
        }
    }
    for z in zeros.iter().filter(|z| !seen.contains(&z.histogram.name)) {
        if z.series.is_empty() {
            continue;
        }
        let h = z.histogram;
        header(
            &mut out,
            &base_name(h.name, h.unit),
            h.description,
            "histogram",
        );
        zero_series(&mut out, z, &[]);
    }
    out
}

/// Writes `z`'s series that `observed` (the data points' label sets) lacks, each with
/// every bucket, the sum and the count at 0.
fn zero_series(out: &mut String, z: &Zero<'_>, observed: &[Vec<KeyValue>]) {
    let h = z.histogram;
    let base = base_name(h.name, h.unit);
    for labels in &z.series {
        let keys: Vec<&str> = labels.iter().map(|kv| kv.key.as_str()).collect();
        let key = key_of(labels.iter(), &keys);
        if observed.iter().any(|o| key_of(o.iter(), &keys) == key) {
            continue;
        }
        let bucket = format!("{base}_bucket");
        for le in h.bounds.iter().copied().map(float).chain(["+Inf".into()]) {
            line(out, &bucket, labels.iter(), Some(&le), "0");
        }
        line(out, &format!("{base}_sum"), labels.iter(), None, "0");
        line(out, &format!("{base}_count"), labels.iter(), None, "0");
    }
}

/// The label sets of a histogram's data points.
fn label_sets<T>(h: &Histogram<T>) -> Vec<Vec<KeyValue>> {
    h.data_points()
        .map(|p| p.attributes().cloned().collect())
        .collect()
}

/// A value as the text format writes it.
trait Sample: Copy {
    fn text(self) -> String;
}

impl Sample for u64 {
    fn text(self) -> String {
        self.to_string()
    }
}

impl Sample for i64 {
    fn text(self) -> String {
        self.to_string()
    }
}

impl Sample for f64 {
    fn text(self) -> String {
        float(self)
    }
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

/// Writes one metric; returns the label sets of its data points if it is a histogram.
fn family<T: Sample>(
    out: &mut String,
    metric: &Metric,
    data: &MetricData<T>,
) -> Vec<Vec<KeyValue>> {
    let base = base_name(metric.name(), metric.unit());
    match data {
        MetricData::Gauge(g) => {
            header(out, &base, metric.description(), "gauge");
            for p in g.data_points() {
                line(out, &base, p.attributes(), None, &p.value().text());
            }
        }
        MetricData::Sum(s) if s.is_monotonic() => {
            let name = format!("{base}_total");
            header(out, &name, metric.description(), "counter");
            for p in s.data_points() {
                line(out, &name, p.attributes(), None, &p.value().text());
            }
        }
        MetricData::Sum(s) => {
            header(out, &base, metric.description(), "gauge");
            for p in s.data_points() {
                line(out, &base, p.attributes(), None, &p.value().text());
            }
        }
        MetricData::Histogram(h) => {
            histogram(out, &base, metric.description(), h);
            return label_sets(h);
        }
        // Not used by the service; Prometheus' classic format has no equivalent.
        MetricData::ExponentialHistogram(_) => {}
    }
    Vec::new()
}

fn histogram<T: Sample>(out: &mut String, base: &str, help: &str, h: &Histogram<T>) {
    header(out, base, help, "histogram");
    let bucket = format!("{base}_bucket");
    for p in h.data_points() {
        let mut cumulative = 0u64;
        let bounds = p.bounds().map(float).chain(std::iter::once("+Inf".into()));
        for (le, count) in bounds.zip(p.bucket_counts()) {
            cumulative += count;
            line(
                out,
                &bucket,
                p.attributes(),
                Some(&le),
                &cumulative.to_string(),
            );
        }
        line(
            out,
            &format!("{base}_sum"),
            p.attributes(),
            None,
            &p.sum().text(),
        );
        line(
            out,
            &format!("{base}_count"),
            p.attributes(),
            None,
            &p.count().to_string(),
        );
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn line<'a>(
    out: &mut String,
    name: &str,
    attributes: impl Iterator<Item = &'a KeyValue>,
    le: Option<&str>,
    value: &str,
) {
    let mut labels: Vec<String> = attributes
        .map(|kv| {
            format!(
                "{}=\"{}\"",
                sanitize(kv.key.as_str()),
                escape(&kv.value.as_str())
            )
        })
        .collect();
    if let Some(le) = le {
        labels.push(format!("le=\"{le}\""));
    }
    let _ = match labels.is_empty() {
        true => writeln!(out, "{name} {value}"),
        false => writeln!(out, "{name}{{{}}} {value}", labels.join(",")),
    };
}

/// The Prometheus name of an OpenTelemetry metric, before `_total` or histogram suffixes.
pub fn base_name(name: &str, unit: &str) -> String {
    let mut base = sanitize(name);
    let suffix = match unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        "1" | "" => "",
        u if u.starts_with('{') => "",
        u => u,
    };
    let suffix = sanitize(suffix);
    if !suffix.is_empty() && !base.ends_with(&format!("_{suffix}")) {
        base.push('_');
        base.push_str(&suffix);
    }
    base
}

/// `[a-zA-Z0-9_]` only (and no leading digit): other characters become `_`.
fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || c == '_' {
            true => c,
            false => '_',
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A label value: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
