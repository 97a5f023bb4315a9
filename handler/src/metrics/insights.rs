//! Functions mode: the metrics sent to Application Insights as custom metrics, every minute, from
//! a background task.
//!
//! `APPLICATIONINSIGHTS_CONNECTION_STRING` gives `InstrumentationKey` and `IngestionEndpoint`
//! (Azure's global endpoint when absent); each export is one `POST {IngestionEndpoint}/v2.1/track`
//! of `Microsoft.ApplicationInsights.Metric` envelopes (`MetricData`), one per series. A counter is
//! sent as its increase since the last export that was accepted, a histogram as the sum and count
//! of the values recorded since then, a gauge as it is.
//!
//! With `APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD[;ClientId=…]` each export
//! carries a Microsoft Entra token of the app's managed identity (that client id when given) for
//! `https://monitor.azure.com`.
//!
//! # Guarantees
//! - A step never waits for an export: exports run on their own task, one at a time.
//! - One export sends at most [`MAX_BATCH`] envelopes and waits at most [`SEND_TIMEOUT`]; a
//!   failed one is logged at debug and counted (`berth_metrics_exports_failed`), and not retried:
//!   the next export sends the increases since the last accepted one. Memory is one baseline per
//!   series, whatever the endpoint does.
//! - The connection string is never logged (only the ingestion endpoint's host).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use serde_json::{Map, Value, json};

use super::prometheus;

/// Envelopes sent at most per export; series past it wait for a later export.
pub const MAX_BATCH: usize = 500;
/// How long an export may take, connecting included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the metrics are sent.
pub const EVERY: Duration = Duration::from_secs(60);
/// Azure's ingestion endpoint when the connection string names none.
const DEFAULT_INGESTION: &str = "https://dc.services.visualstudio.com";
/// The Entra ID scope of Azure Monitor ingestion.
const SCOPE: &str = "https://monitor.azure.com//.default";

/// What a connection string says, as far as the exporter needs.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    pub instrumentation_key: String,
    /// Without a trailing slash.
    pub ingestion_endpoint: String,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("ingestion_endpoint", &self.ingestion_endpoint)
            .finish_non_exhaustive()
    }
}

/// Why a setting cannot be used (never quoting the connection string).
#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    #[error("APPLICATIONINSIGHTS_CONNECTION_STRING: {0}")]
    ConnectionString(String),
    #[error("APPLICATIONINSIGHTS_AUTHENTICATION_STRING: {0}")]
    Authentication(String),
    #[error("choosing the credential for Application Insights: {0}")]
    Credential(#[from] crate::azure_storage::credential::CredentialError),
}

impl ConnectionString {
    /// Parses `Key=Value;…` (keys in any case, blank parts ignored).
    pub fn parse(text: &str) -> Result<Self, InsightsError> {
        let bad = |reason: &str| InsightsError::ConnectionString(reason.to_owned());
        let mut key = None;
        let mut endpoint = None;
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(bad("every part must be Key=Value"));
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "instrumentationkey" => key = Some(value.trim().to_owned()),
                "ingestionendpoint" => endpoint = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        let key = key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| bad("it has no InstrumentationKey"))?;
        if !key.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(bad("InstrumentationKey must be a GUID"));
        }
        let endpoint = endpoint
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_INGESTION.to_owned());
        let parsed =
            url::Url::parse(&endpoint).map_err(|_| bad("IngestionEndpoint is not a URL"))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(bad("IngestionEndpoint must be an http(s) URL"));
        }
        Ok(ConnectionString {
            instrumentation_key: key,
            ingestion_endpoint: endpoint.trim_end_matches('/').to_owned(),
        })
    }
}

/// The client id of `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`: `None` when it is unset,
/// `Some(None)` for `Authorization=AAD` (the system-assigned identity), `Some(Some(id))` with a
/// `ClientId`.
pub fn parse_authentication(text: Option<&str>) -> Result<Option<Option<String>>, InsightsError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let (mut aad, mut client) = (false, None);
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| InsightsError::Authentication("every part must be Key=Value".into()))?;
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization" if value.trim().eq_ignore_ascii_case("aad") => aad = true,
            "authorization" => {
                return Err(InsightsError::Authentication(
                    "Authorization must be AAD".into(),
                ));
            }
            "clientid" => client = Some(value.trim().to_owned()).filter(|c| !c.is_empty()),
            _ => {}
        }
    }
    if !aad {
        return Err(InsightsError::Authentication(
            "it must say Authorization=AAD".into(),
        ));
    }
    Ok(Some(client))
}

/// Sends the process's metrics to one Application Insights resource.
pub struct Exporter {
    http: reqwest::Client,
    /// Bounds a whole export, a token request included.
    timeout: Duration,
    url: String,
    ikey: String,
    tags: Value,
    credential: Option<Arc<dyn TokenCredential>>,
    /// The cumulative value (and count, for histograms) of each series at the last accepted export.
    baseline: HashMap<String, (f64, u64)>,
}

/// What one export did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub envelopes: usize,
    /// Series left for a later export ([`MAX_BATCH`]).
    pub left: usize,
}

impl Exporter {
    /// An exporter for `connection`, authenticating with `credential` when given.
    pub fn new(
        connection: &ConnectionString,
        credential: Option<Arc<dyn TokenCredential>>,
    ) -> Self {
        let http = client(SEND_TIMEOUT);
        let role = std::env::var("WEBSITE_SITE_NAME").unwrap_or_else(|_| "berth".into());
        let instance = std::env::var("WEBSITE_INSTANCE_ID")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_default();
        Exporter {
            http,
            timeout: SEND_TIMEOUT,
            url: format!("{}/v2.1/track", connection.ingestion_endpoint),
            ikey: connection.instrumentation_key.clone(),
            tags: json!({
                "ai.cloud.role": role,
                "ai.cloud.roleInstance": instance,
                "ai.internal.sdkVersion": concat!("berth:", env!("CARGO_PKG_VERSION")),
            }),
            credential,
            baseline: HashMap::new(),
        }
    }

    /// Waits at most `timeout` per export instead of [`SEND_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = client(timeout);
        self.timeout = timeout;
        self
    }

    /// Series whose last accepted value is kept (the exporter's only state that grows).
    pub fn series(&self) -> usize {
        self.baseline.len()
    }

    /// Builds the exporter the environment asks for: `None` without a connection string.
    pub fn from_env() -> Result<Option<Self>, InsightsError> {
        let Some(text) = std::env::var("APPLICATIONINSIGHTS_CONNECTION_STRING")
            .ok()
            .filter(|t| !t.trim().is_empty())
        else {
            return Ok(None);
        };
        let connection = ConnectionString::parse(&text)?;
        let auth = std::env::var("APPLICATIONINSIGHTS_AUTHENTICATION_STRING").ok();
        let credential = match parse_authentication(auth.as_deref())? {
            None => None,
            Some(client_id) => {
                use crate::azure_storage::credential::{CredentialSettings, choose};
                let mut settings =
                    CredentialSettings::from_lookup(&|name: &str| std::env::var(name).ok(), None);
                // As the Application Insights SDKs read it: a managed identity, the user-assigned
                // one of `ClientId`, else the system-assigned one (not AZURE_CLIENT_ID's).
                settings.managed_identity = true;
                settings.client_id = client_id;
                Some(choose(&settings)?.0)
            }
        };
        Ok(Some(Exporter::new(&connection, credential)))
    }

    /// Sends the metrics every [`EVERY`] for ever, on a task of its own.
    pub fn spawn(mut self) -> tokio::task::JoinHandle<()> {
        let host = url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        tracing::info!(
            insights.host = %host,
            aad = self.credential.is_some(),
            "metrics go to Application Insights every {} s",
            EVERY.as_secs()
        );
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                self.export().await;
            }
        })
    }

    /// Collects and sends once; a failure is logged at debug and counted.
    pub async fn export(&mut self) -> Option<Sent> {
        let rm = super::collect().await;
        let limit = self.timeout * 2;
        let sent = tokio::time::timeout(limit, self.send(&rm))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", limit.as_secs())));
        match sent {
            Ok(sent) => Some(sent),
            Err(reason) => {
                super::export_failed();
                tracing::debug!(error = %reason, "sending metrics to Application Insights failed");
                None
            }
        }
    }

    /// Sends `rm` as envelopes; the baselines move on only when the endpoint accepted them.
    pub async fn send(&mut self, rm: &ResourceMetrics) -> Result<Sent, String> {
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let envelopes = self.envelopes(rm, &time);
        let left = envelopes.len().saturating_sub(MAX_BATCH);
        let batch: Vec<(String, (f64, u64), Value)> =
            envelopes.into_iter().take(MAX_BATCH).collect();
        if batch.is_empty() {
            return Ok(Sent {
                envelopes: 0,
                left: 0,
            });
        }
        let body: Vec<&Value> = batch.iter().map(|(_, _, e)| e).collect();
        let mut request = self.http.post(&self.url).json(&body);
        if let Some(credential) = &self.credential {
            let token = credential
                .get_token(&[SCOPE], None)
                .await
                .map_err(|e| format!("getting a token: {e}"))?;
            request = request.bearer_auth(token.token.secret());
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} ms", self.timeout.as_millis())
            } else {
                format!("sending: {e}")
            }
        })?;
        let status = response.status();
        // 206: some envelopes were refused (their errors name them); the rest are in.
        if !status.is_success() {
            return Err(format!("the endpoint answered {status}"));
        }
        let sent = batch.len();
        for (key, value, _) in batch {
            self.baseline.insert(key, value);
        }
        Ok(Sent {
            envelopes: sent,
            left,
        })
    }

    /// One envelope per series that has something to say, with the series' key and its new
    /// cumulative value (the baseline once sent).
    fn envelopes(&self, rm: &ResourceMetrics, time: &str) -> Vec<(String, (f64, u64), Value)> {
        let mut out = Vec::new();
        for metric in rm.scope_metrics().flat_map(|s| s.metrics()) {
            let name = prometheus::name(metric.name());
            let mut points = Vec::new();
            match metric.data() {
                AggregatedMetrics::U64(data) => series(&name, data, &mut points),
                AggregatedMetrics::I64(data) => series(&name, data, &mut points),
                AggregatedMetrics::F64(data) => series(&name, data, &mut points),
            }
            for point in points {
                let key = point.key();
                let (last_value, last_count) = self.baseline.get(&key).copied().unwrap_or((0.0, 0));
                let data_point = match point.kind {
                    Kind::Gauge => json!({"name": name, "value": point.value, "count": 1}),
                    Kind::Counter => {
                        let delta = (point.value - last_value).max(0.0);
                        json!({"name": name, "value": delta, "count": 1})
                    }
                    Kind::Histogram => {
                        let count = point.count.saturating_sub(last_count);
                        if count == 0 {
                            continue;
                        }
                        let sum = (point.value - last_value).max(0.0);
                        json!({"name": name, "value": sum, "count": count})
                    }
                };
                let properties: Map<String, Value> = point
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                let envelope = json!({
                    "name": "Microsoft.ApplicationInsights.Metric",
                    "time": time,
                    "iKey": self.ikey,
                    "tags": self.tags,
                    "data": {
                        "baseType": "MetricData",
                        "baseData": {
                            "ver": 2,
                            "metrics": [data_point],
                            "properties": properties,
                        }
                    }
                });
                out.push((key, (point.value, point.count), envelope));
            }
        }
        out
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .expect("a reqwest client builds with a rustls backend")
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

struct Point {
    name: String,
    kind: Kind,
    labels: Vec<(String, String)>,
    /// The value; a histogram's sum.
    value: f64,
    /// A histogram's count.
    count: u64,
}

impl Point {
    fn key(&self) -> String {
        let mut key = self.name.clone();
        for (k, v) in &self.labels {
            key.push('\u{1}');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        key
    }
}

fn labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = attributes
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.as_str().into_owned()))
        .collect();
    labels.sort();
    labels
}

fn series<T: prometheus::Value>(name: &str, data: &MetricData<T>, out: &mut Vec<Point>) {
    let point = |kind, labels, value: f64, count| Point {
        name: name.to_owned(),
        kind,
        labels,
        value,
        count,
    };
    match data {
        MetricData::Sum(sum) => {
            let kind = if sum.is_monotonic() {
                Kind::Counter
            } else {
                Kind::Gauge
            };
            for p in sum.data_points() {
                out.push(point(kind, labels(p.attributes()), p.value().as_f64(), 0));
            }
        }
        MetricData::Gauge(gauge) => {
            for p in gauge.data_points() {
                out.push(point(
                    Kind::Gauge,
                    labels(p.attributes()),
                    p.value().as_f64(),
                    0,
                ));
            }
        }
        MetricData::Histogram(h) => {
            for p in h.data_points() {
                out.push(point(
                    Kind::Histogram,
                    labels(p.attributes()),
                    p.sum().as_f64(),
                    p.count(),
                ));
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings() {
        let c = ConnectionString::parse(
            "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://x/",
        )
        .unwrap();
        assert_eq!(
            c.instrumentation_key,
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(
            c.ingestion_endpoint,
            "https://westeurope-5.in.applicationinsights.azure.com"
        );
        let c = ConnectionString::parse("instrumentationkey=abc-1").unwrap();
        assert_eq!(c.ingestion_endpoint, DEFAULT_INGESTION);
        for (bad, says) in [
            ("", "no InstrumentationKey"),
            ("IngestionEndpoint=https://x", "no InstrumentationKey"),
            (
                "InstrumentationKey=abc;IngestionEndpoint=ftp://x",
                "http(s)",
            ),
            ("InstrumentationKey=abc;IngestionEndpoint=nope", "not a URL"),
            ("InstrumentationKey=not a key", "GUID"),
            ("garbage", "Key=Value"),
        ] {
            let e = ConnectionString::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(
                e.starts_with("APPLICATIONINSIGHTS_CONNECTION_STRING: "),
                "{e}"
            );
        }
        // Debug never shows the key.
        let c = ConnectionString::parse("InstrumentationKey=abcd-ef").unwrap();
        assert!(!format!("{c:?}").contains("abcd"));
    }

    #[test]
    fn authentication_strings() {
        assert_eq!(parse_authentication(None).unwrap(), None);
        assert_eq!(
            parse_authentication(Some("Authorization=AAD")).unwrap(),
            Some(None)
        );
        assert_eq!(
            parse_authentication(Some("Authorization=AAD;ClientId=abc")).unwrap(),
            Some(Some("abc".into()))
        );
        assert!(parse_authentication(Some("Authorization=Basic")).is_err());
        assert!(parse_authentication(Some("ClientId=abc")).is_err());
    }
}
