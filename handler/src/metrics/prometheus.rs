//! Prometheus' text exposition format, version 0.0.4, over the SDK's collected metrics.
//!
//! A monotonic sum is a `counter` named `…_total`; a gauge or a non-monotonic sum a `gauge`; a
//! histogram `…_bucket{le=…}` (cumulative, ending with `+Inf`), `…_sum` and `…_count`.
//! Exponential histograms are not written (Berth records none). Metric and label names are
//! reduced to `[a-zA-Z0-9_:]`; label values escape `\`, `"` and newlines, and `# HELP` text
//! escapes `\` and newlines, whatever they hold.

use std::fmt::Write as _;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Histogram, Metric, MetricData, ResourceMetrics,
};

/// The `Content-Type` of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A value as Prometheus writes it (`+Inf`, `-Inf`, `NaN` included).
pub trait Value: Copy {
    fn text(self) -> String;
    fn as_f64(self) -> f64;
}

impl Value for u64 {
    fn text(self) -> String {
        self.to_string()
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Value for i64 {
    fn text(self) -> String {
        self.to_string()
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Value for f64 {
    fn text(self) -> String {
        float(self)
    }
    fn as_f64(self) -> f64 {
        self
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

/// Every metric of `rm`, sorted by name.
pub fn encode(rm: &ResourceMetrics) -> String {
    let mut metrics: Vec<&Metric> = rm.scope_metrics().flat_map(|s| s.metrics()).collect();
    metrics.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = String::new();
    for metric in metrics {
        match metric.data() {
            AggregatedMetrics::U64(data) => write_metric(&mut out, metric, data),
            AggregatedMetrics::I64(data) => write_metric(&mut out, metric, data),
            AggregatedMetrics::F64(data) => write_metric(&mut out, metric, data),
        }
    }
    out
}

fn write_metric<T: Value>(out: &mut String, metric: &Metric, data: &MetricData<T>) {
    let base = name(metric.name());
    match data {
        MetricData::Sum(sum) if sum.is_monotonic() => {
            let name = if base.ends_with("_total") {
                base
            } else {
                format!("{base}_total")
            };
            header(out, &name, metric.description(), "counter");
            for point in sum.data_points() {
                sample(out, &name, point.attributes(), None, &point.value().text());
            }
        }
        MetricData::Sum(sum) => {
            header(out, &base, metric.description(), "gauge");
            for point in sum.data_points() {
                sample(out, &base, point.attributes(), None, &point.value().text());
            }
        }
        MetricData::Gauge(gauge) => {
            header(out, &base, metric.description(), "gauge");
            for point in gauge.data_points() {
                sample(out, &base, point.attributes(), None, &point.value().text());
            }
        }
        MetricData::Histogram(histogram) => write_histogram(out, &base, metric, histogram),
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn write_histogram<T: Value>(out: &mut String, base: &str, metric: &Metric, h: &Histogram<T>) {
    header(out, base, metric.description(), "histogram");
    let bucket = format!("{base}_bucket");
    for point in h.data_points() {
        let mut cumulative = 0u64;
        // `bucket_counts` has one more entry than `bounds`: the one past the last bound.
        for (bound, count) in point.bounds().zip(point.bucket_counts()) {
            cumulative = cumulative.saturating_add(count);
            let le = float(bound);
            sample(
                out,
                &bucket,
                point.attributes(),
                Some(&le),
                &cumulative.to_string(),
            );
        }
        sample(
            out,
            &bucket,
            point.attributes(),
            Some("+Inf"),
            &point.count().to_string(),
        );
        sample(
            out,
            &format!("{base}_sum"),
            point.attributes(),
            None,
            &point.sum().text(),
        );
        sample(
            out,
            &format!("{base}_count"),
            point.attributes(),
            None,
            &point.count().to_string(),
        );
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    if !help.is_empty() {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample<'a>(
    out: &mut String,
    name: &str,
    labels: impl Iterator<Item = &'a KeyValue>,
    le: Option<&str>,
    value: &str,
) {
    let mut pairs: Vec<(String, String)> = labels
        .map(|kv| (label_name(kv.key.as_str()), kv.value.as_str().into_owned()))
        .filter(|(key, _)| key != "le")
        .collect();
    pairs.sort();
    if let Some(le) = le {
        pairs.push(("le".into(), le.into()));
    }
    out.push_str(name);
    if !pairs.is_empty() {
        out.push('{');
        for (i, (key, value)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, anything else an underscore.
pub fn name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`, anything else an underscore.
fn label_name(raw: &str) -> String {
    name(raw).replace(':', "_")
}

/// A label value inside double quotes.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `# HELP` text: only `\` and newlines are escaped there.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};

    use super::super::SharedReader;
    use super::*;

    /// A provider of its own (not the process's), read by a real manual reader.
    fn provider() -> (SdkMeterProvider, Arc<ManualReader>) {
        let reader = Arc::new(ManualReader::builder().build());
        let provider = SdkMeterProvider::builder()
            .with_reader(SharedReader(reader.clone()))
            .build();
        (provider, reader)
    }

    fn collect(reader: &ManualReader) -> String {
        use opentelemetry_sdk::metrics::reader::MetricReader as _;
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).unwrap();
        encode(&rm)
    }

    #[test]
    fn a_counter_is_total_with_help_and_type() {
        let (provider, reader) = provider();
        let meter = provider.meter("t");
        let c = meter
            .u64_counter("berth_things")
            .with_description("Things.\nWith a \\ backslash.")
            .build();
        c.add(2, &[KeyValue::new("status", "Succeeded")]);
        c.add(1, &[KeyValue::new("status", "Failed")]);
        let text = collect(&reader);
        assert!(
            text.starts_with(
                "# HELP berth_things_total Things.\\nWith a \\\\ backslash.\n\
                 # TYPE berth_things_total counter\n"
            ),
            "{text}"
        );
        assert!(text.contains("berth_things_total{status=\"Failed\"} 1\n"));
        assert!(text.contains("berth_things_total{status=\"Succeeded\"} 2\n"));
        assert_eq!(text.lines().count(), 4);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let (provider, reader) = provider();
        let meter = provider.meter("t");
        let h = meter
            .f64_histogram("berth_latency_seconds")
            .with_boundaries(vec![0.1, 1.0, 10.0])
            .build();
        for v in [0.05, 0.05, 0.5, 5.0, 50.0] {
            h.record(v, &[]);
        }
        let text = collect(&reader);
        let expected = "# TYPE berth_latency_seconds histogram\n\
             berth_latency_seconds_bucket{le=\"0.1\"} 2\n\
             berth_latency_seconds_bucket{le=\"1\"} 3\n\
             berth_latency_seconds_bucket{le=\"10\"} 4\n\
             berth_latency_seconds_bucket{le=\"+Inf\"} 5\n\
             berth_latency_seconds_sum 55.6\n\
             berth_latency_seconds_count 5\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn hostile_label_values_and_names_are_escaped() {
        let (provider, reader) = provider();
        let meter = provider.meter("t");
        let c = meter.u64_counter("berth.odd-name").build();
        c.add(
            1,
            &[
                KeyValue::new("value", "a\\b\"c\nd} x=\"y"),
                KeyValue::new("bad key", "v"),
                KeyValue::new("le", "spoofed"),
            ],
        );
        let h = meter
            .f64_histogram("berth_h")
            .with_boundaries(vec![1.0])
            .build();
        h.record(0.5, &[KeyValue::new("le", "9")]);
        let text = collect(&reader);
        assert!(
            text.contains(
                "berth_odd_name_total{bad_key=\"v\",value=\"a\\\\b\\\"c\\nd} x=\\\"y\"} 1\n"
            ),
            "{text}"
        );
        // A label named `le` cannot fake a bucket.
        assert!(text.contains("berth_h_bucket{le=\"1\"} 1\n"), "{text}");
        assert!(
            !text.contains("spoofed") && !text.contains("le=\"9\""),
            "{text}"
        );
        // Every sample line is one line: `name{…} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                line.rsplit_once(' ').unwrap().1.parse::<f64>().is_ok(),
                "{line}"
            );
        }
    }

    #[test]
    fn gauges_and_special_floats() {
        let (provider, reader) = provider();
        let meter = provider.meter("t");
        meter.f64_gauge("berth_g").build().record(2.5, &[]);
        let text = collect(&reader);
        assert_eq!(text, "# TYPE berth_g gauge\nberth_g 2.5\n");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(name("9lives"), "_9lives");
        assert_eq!(name("a.b-c/d"), "a_b_c_d");
        assert_eq!(label_name("a:b"), "a_b");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
    }
}
