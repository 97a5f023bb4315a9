//! Typed configuration, built once from the environment (or from a map, in tests), area by area.
//! The names are the README's; [`SETTINGS`] lists every one `handler` reads.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::api::Prices;
use crate::arm::StaticToken;
use crate::azure_storage::connection::{DEFAULT_SETTING, StorageAuth, StorageConnection};
use crate::azure_storage::credential::CredentialSettings;
use crate::crypto::{Keyring, SecretsKey};
use crate::driver::LookMode;
use crate::driver::admit::MaxCores;
use crate::notify::{Allow, NotifyPolicy};
use crate::spec::SettingsPolicy;
use crate::spec::settings::Lookup;

/// Every app setting `handler` reads (the infrastructure sets exactly these, plus the host's own).
pub const SETTINGS: &[&str] = &[
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__tenantId",
    "AzureWebJobsStorage__clientSecret",
    "BERTH_SQLITE_PATH",
    "BERTH_ARM_ENDPOINT",
    "BERTH_ARM_TOKEN",
    "BERTH_SUBSCRIPTION_ID",
    "BERTH_RESOURCE_GROUP",
    "BERTH_LOCATION",
    "BERTH_ACI_API_VERSION",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "BERTH_PUBLIC_URL",
    "BERTH_QUEUE",
    "BERTH_SUBMIT_QUEUE",
    "BERTH_SUBMIT_EVENTS",
    "BERTH_API_KEY",
    "BERTH_SECRETS_KEY",
    "BERTH_SECRETS_KEY_PREVIOUS",
    "BERTH_DIAGNOSTICS_WORKSPACE",
    "BERTH_APP",
    "BERTH_ARM_READS_PER_SECOND",
    "BERTH_LOOKS",
    "BERTH_PRICE_VCPU_SECOND",
    "BERTH_PRICE_GB_SECOND",
    "BERTH_PRICES",
    "BERTH_RETENTION",
    "BERTH_WORKERS",
    "BERTH_STEP_LEASE",
    "BERTH_CREATE_CLAIM",
    "BERTH_INLINE_STEP",
    "BERTH_SWEEP_GRACE",
    "BERTH_SECURE_VALUE_FROM",
    "BERTH_MAX_CORES",
    "BERTH_NOTIFY_ALLOW_PRIVATE",
    "BERTH_EVENTGRID_TOPIC",
    "BERTH_NOTIFY_KEY",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
];

/// The settings a Function App in Azure must have for `handler` to start (storage by identity).
pub const REQUIRED_IN_AZURE: &[&str] = &[
    "AzureWebJobsStorage__accountName",
    "BERTH_SUBSCRIPTION_ID",
    "BERTH_RESOURCE_GROUP",
    "BERTH_LOCATION",
    "BERTH_SECRETS_KEY",
    "BERTH_QUEUE",
    "BERTH_SUBMIT_QUEUE",
];

/// A configuration problem, naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

fn error(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

/// A queue name as Azure Storage takes it: 3-63 lowercase letters, digits, single hyphens.
fn queue_name(setting: &'static str, queue: String) -> Result<String, ConfigError> {
    let ok = (3..=63).contains(&queue.len())
        && queue
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !queue.starts_with('-')
        && !queue.ends_with('-')
        && !queue.contains("--");
    match ok {
        true => Ok(queue),
        false => Err(error(
            setting,
            format!(
                "'{queue}' is not a queue name (3-63 lowercase letters, digits, single hyphens)"
            ),
        )),
    }
}

/// Where checkpoints and steps live.
#[derive(Clone, Debug)]
pub enum Storage {
    Sqlite {
        path: PathBuf,
    },
    /// `AzureWebJobsStorage` (a connection string) or its identity-based `__` settings.
    Azure,
}

/// Where ARM is and where groups go.
#[derive(Clone, Debug)]
pub struct ArmSettings {
    pub endpoint: String,
    pub subscription: String,
    pub resource_group: String,
    pub location: String,
    pub api_version: String,
    pub reads_per_second: f64,
    /// Whether ARM calls carry an Entra ID token (`https://management.*` endpoints).
    pub use_identity: bool,
    /// The fixed bearer token of an endpoint without Entra ID (the ACI emulator's): dev and
    /// emulator only, never set in Azure.
    pub token: Option<StaticToken>,
    /// What chooses the Entra ID credential when `use_identity` (`AZURE_*`, identity endpoint).
    pub credentials: CredentialSettings,
}

/// The whole configuration.
pub struct Config {
    pub storage: Storage,
    pub arm: ArmSettings,
    pub queue: String,
    /// The submit queue (`BERTH_SUBMIT_QUEUE`): specs, template invocations and events.
    pub submit_queue: String,
    /// Which template an event of each type starts (`BERTH_SUBMIT_EVENTS`).
    pub submit_events: crate::submit::EventRoutes,
    /// The base URL of deployments started from the submit queue, which no request carries:
    /// `BERTH_PUBLIC_URL`, else `https://` and the Function App's `WEBSITE_HOSTNAME`.
    pub submit_base: Option<String>,
    pub api_key: Option<String>,
    pub public_url: Option<String>,
    pub keys: Keyring,
    pub prices: Prices,
    pub app: String,
    pub retention_ms: i64,
    pub workers: usize,
    /// How long a worker's step message stays hidden from other workers (dev and serve).
    pub step_lease_ms: i64,
    /// How long a worker owns a group's create before another may take it over.
    pub create_claim_ms: i64,
    /// How long an API call carries on the step it causes before it answers (`0`: never).
    pub inline_step_ms: i64,
    /// How old an unowned container group must be before the sweep deletes it.
    pub sweep_grace_ms: i64,
    pub diagnostics_workspace: Option<String>,
    /// Serve only loopback `Host`s and `Origin`s (`dev` sets it; no setting).
    pub loopback_only: bool,
    /// The app settings a spec's `secureValueFrom` may read (`BERTH_SECURE_VALUE_FROM`).
    pub secure_value_from: SettingsPolicy,
    /// `AzureWebJobsStorage` parsed as Functions reads it, when `storage` is `Azure`.
    pub storage_connection: Option<StorageConnection>,
    /// The credential settings of an identity-based `storage_connection` (its `__*` settings over
    /// the `AZURE_*` ones).
    pub storage_credentials: Option<CredentialSettings>,
    /// Most standard cores in use per location (`BERTH_MAX_CORES`).
    pub max_cores: MaxCores,
    /// How groups watched for their exit are looked at (`BERTH_LOOKS`: `backoff`, `learned`, `round-robin`).
    pub looks: LookMode,
    /// Where the spec's notifications may go: `dev` sets `dev` (no setting); loopback and private
    /// addresses allowed by `BERTH_NOTIFY_ALLOW_PRIVATE` (`true` or CIDRs).
    pub notify: NotifyPolicy,
    /// The Event Grid topic every deployment's outcomes are published to
    /// (`BERTH_EVENTGRID_TOPIC`), with the ARM identity.
    pub event_grid_topic: Option<url::Url>,
    /// The key notifications of submit-queue deployments are signed with (`BERTH_NOTIFY_KEY`,
    /// `whsec_…`).
    pub notify_key: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("storage", &self.storage)
            .field("arm", &self.arm)
            .field("queue", &self.queue)
            .field("submit_queue", &self.submit_queue)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("public_url", &self.public_url)
            .field("keys", &self.keys)
            .field("app", &self.app)
            .finish()
    }
}

/// Defaults that differ between `dev` and the configured modes.
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    pub sqlite_path: Option<PathBuf>,
    pub arm_endpoint: Option<String>,
    /// The bearer token of `arm_endpoint`, used only while `BERTH_ARM_ENDPOINT` does not replace
    /// it (so `dev`'s emulator token never goes anywhere else).
    pub arm_token: Option<StaticToken>,
    pub subscription: Option<String>,
    pub resource_group: Option<String>,
    pub location: Option<String>,
    pub secrets_key: Option<SecretsKey>,
}

fn number<T: std::str::FromStr>(
    get: &Lookup,
    setting: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(setting) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| error(setting, format!("'{text}' is not a number"))),
    }
}

/// `BERTH_PUBLIC_URL` checked: an absolute `http` or `https` URL with a host, no user, query or
/// fragment (containers get callback URLs under it, with their tokens).
fn public_url(text: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| error("BERTH_PUBLIC_URL", format!("'{text}' {why}"));
    let url = url::Url::parse(text.trim()).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl Config {
    /// Reads the configuration through `get` (the environment in production).
    pub fn from_lookup(get: &Lookup, defaults: Defaults) -> Result<Self, ConfigError> {
        let nonempty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let storage = if nonempty("AzureWebJobsStorage").is_some()
            || nonempty("AzureWebJobsStorage__accountName").is_some()
            || nonempty("AzureWebJobsStorage__blobServiceUri").is_some()
        {
            Storage::Azure
        } else {
            let path = nonempty("BERTH_SQLITE_PATH")
                .map(PathBuf::from)
                .or(defaults.sqlite_path)
                .unwrap_or_else(|| PathBuf::from(".berth/berth.db"));
            Storage::Sqlite { path }
        };
        let (endpoint, default_token) = match nonempty("BERTH_ARM_ENDPOINT") {
            Some(endpoint) => (endpoint, None),
            None => match defaults.arm_endpoint {
                Some(endpoint) => (endpoint, defaults.arm_token),
                None => ("https://management.azure.com".into(), None),
            },
        };
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        if url::Url::parse(&endpoint).is_err() {
            return Err(error(
                "BERTH_ARM_ENDPOINT",
                format!("'{endpoint}' is not a URL"),
            ));
        }
        let required = |name: &'static str, default: Option<String>| {
            nonempty(name)
                .or(default)
                .ok_or_else(|| error(name, "required (where container groups are created)"))
        };
        let subscription = required("BERTH_SUBSCRIPTION_ID", defaults.subscription)?;
        let resource_group = required("BERTH_RESOURCE_GROUP", defaults.resource_group)?;
        let location = required("BERTH_LOCATION", defaults.location)?;
        for (setting, value, ok) in [
            (
                "BERTH_SUBSCRIPTION_ID",
                &subscription,
                subscription
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == '-'),
            ),
            (
                "BERTH_RESOURCE_GROUP",
                &resource_group,
                resource_group.len() <= 90
                    && resource_group
                        .chars()
                        .all(|c| c.is_alphanumeric() || "-_.()".contains(c)),
            ),
            (
                "BERTH_LOCATION",
                &location,
                location
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' '),
            ),
        ] {
            if !ok {
                return Err(error(setting, format!("'{value}' is not valid here")));
            }
        }
        let use_identity = endpoint.starts_with("https://management.");
        let token = match nonempty("BERTH_ARM_TOKEN") {
            Some(_) if use_identity => {
                return Err(error(
                    "BERTH_ARM_TOKEN",
                    "is for the ACI emulator only; Azure Resource Manager takes an Entra ID token",
                ));
            }
            Some(text) => StaticToken::new(&text),
            None => default_token,
        };
        let arm = ArmSettings {
            endpoint,
            subscription,
            resource_group,
            location,
            api_version: nonempty("BERTH_ACI_API_VERSION").unwrap_or_else(|| "2025-09-01".into()),
            reads_per_second: number(get, "BERTH_ARM_READS_PER_SECOND", 20.0)?,
            use_identity,
            token,
            credentials: CredentialSettings::from_lookup(get, None),
        };
        let storage_connection = match &storage {
            Storage::Azure => StorageConnection::from_settings(DEFAULT_SETTING, get)
                .map_err(|e| error("AzureWebJobsStorage", e.to_string()))?,
            Storage::Sqlite { .. } => None,
        };
        let storage_credentials = match storage_connection.as_ref().map(|c| &c.auth) {
            Some(StorageAuth::Identity(identity)) => {
                Some(CredentialSettings::from_lookup(get, Some(identity)))
            }
            _ => None,
        };

        let queue = queue_name(
            "BERTH_QUEUE",
            nonempty("BERTH_QUEUE").unwrap_or_else(|| "berth-steps".into()),
        )?;
        let submit_queue = queue_name(
            "BERTH_SUBMIT_QUEUE",
            nonempty("BERTH_SUBMIT_QUEUE").unwrap_or_else(|| "berth-submit".into()),
        )?;
        if submit_queue == queue {
            return Err(error(
                "BERTH_SUBMIT_QUEUE",
                "must differ from BERTH_QUEUE: steps and submissions are different messages",
            ));
        }
        let submit_events =
            crate::submit::EventRoutes::parse(&get("BERTH_SUBMIT_EVENTS").unwrap_or_default())
                .map_err(|e| error("BERTH_SUBMIT_EVENTS", e))?;

        let current = match nonempty("BERTH_SECRETS_KEY") {
            Some(text) => SecretsKey::from_base64(&text)
                .map_err(|e| error("BERTH_SECRETS_KEY", e.to_string()))?,
            None => defaults.secrets_key.ok_or_else(|| {
                error(
                    "BERTH_SECRETS_KEY",
                    "required: 32 bytes in base64 (it encrypts stored secrets)",
                )
            })?,
        };
        let previous = match nonempty("BERTH_SECRETS_KEY_PREVIOUS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(|k| {
                    SecretsKey::from_base64(k)
                        .map_err(|e| error("BERTH_SECRETS_KEY_PREVIOUS", e.to_string()))
                })
                .collect::<Result<_, _>>()?,
        };

        // The per-second settings set the Linux Standard rate; `BERTH_PRICES` (the whole table)
        // comes after them.
        let mut prices = Prices::default();
        if get("BERTH_PRICE_VCPU_SECOND").is_some() {
            prices.standard.vcpu_hour = number(get, "BERTH_PRICE_VCPU_SECOND", 0.0)? * 3600.0;
        }
        if get("BERTH_PRICE_GB_SECOND").is_some() {
            prices.standard.gb_hour = number(get, "BERTH_PRICE_GB_SECOND", 0.0)? * 3600.0;
        }
        if let Some(table) = nonempty("BERTH_PRICES") {
            prices = Prices::parse_over(prices, &table).map_err(|e| error("BERTH_PRICES", e))?;
        }
        let retention = nonempty("BERTH_RETENTION").unwrap_or_else(|| "P30D".into());
        let retention_ms = crate::spec::IsoDuration::parse(&retention)
            .map_err(|e| error("BERTH_RETENTION", e))?
            .millis() as i64;
        let lease = nonempty("BERTH_STEP_LEASE").unwrap_or_else(|| "PT30S".into());
        let step_lease_ms = crate::spec::IsoDuration::parse(&lease)
            .map_err(|e| error("BERTH_STEP_LEASE", e))?
            .millis() as i64;
        if step_lease_ms < 1000 {
            return Err(error("BERTH_STEP_LEASE", "at least one second"));
        }
        let claim = nonempty("BERTH_CREATE_CLAIM").unwrap_or_else(|| "PT60S".into());
        let create_claim_ms = crate::spec::IsoDuration::parse(&claim)
            .map_err(|e| error("BERTH_CREATE_CLAIM", e))?
            .millis() as i64;
        if create_claim_ms < 1000 {
            return Err(error("BERTH_CREATE_CLAIM", "at least one second"));
        }
        let inline_step = nonempty("BERTH_INLINE_STEP").unwrap_or_else(|| "PT10S".into());
        let inline_step_ms = crate::spec::IsoDuration::parse(&inline_step)
            .map_err(|e| error("BERTH_INLINE_STEP", e))?
            .millis() as i64;
        if inline_step_ms > 60_000 {
            return Err(error(
                "BERTH_INLINE_STEP",
                "at most a minute (PT60S): the caller waits for it",
            ));
        }
        let grace = nonempty("BERTH_SWEEP_GRACE").unwrap_or_else(|| "PT5M".into());
        let sweep_grace_ms = crate::spec::IsoDuration::parse(&grace)
            .map_err(|e| error("BERTH_SWEEP_GRACE", e))?
            .millis() as i64;
        let public_url = nonempty("BERTH_PUBLIC_URL")
            .map(|u| public_url(&u))
            .transpose()?;
        let secure_value_from =
            SettingsPolicy::parse(&get("BERTH_SECURE_VALUE_FROM").unwrap_or_default())
                .map_err(|e| error("BERTH_SECURE_VALUE_FROM", e))?;
        let looks = match nonempty("BERTH_LOOKS") {
            None => LookMode::default(),
            Some(text) => LookMode::parse(&text).ok_or_else(|| {
                error(
                    "BERTH_LOOKS",
                    format!("'{text}' is not 'backoff', 'learned' or 'round-robin'"),
                )
            })?,
        };
        let app = nonempty("BERTH_APP")
            .or_else(|| nonempty("WEBSITE_SITE_NAME"))
            .unwrap_or_else(|| "berth".into());

        let submit_base = public_url
            .clone()
            .or_else(|| nonempty("WEBSITE_HOSTNAME").map(|host| format!("https://{host}")));
        Ok(Config {
            storage,
            arm,
            queue,
            submit_queue,
            submit_events,
            submit_base,
            api_key: nonempty("BERTH_API_KEY"),
            public_url,
            loopback_only: false,
            keys: Keyring::new(current, previous),
            prices,
            app,
            retention_ms,
            workers: number(get, "BERTH_WORKERS", 64)?,
            step_lease_ms,
            create_claim_ms,
            inline_step_ms,
            sweep_grace_ms,
            diagnostics_workspace: nonempty("BERTH_DIAGNOSTICS_WORKSPACE"),
            secure_value_from,
            storage_connection,
            storage_credentials,
            max_cores: MaxCores::parse(&get("BERTH_MAX_CORES").unwrap_or_default())
                .map_err(|message| error("BERTH_MAX_CORES", message))?,
            looks,
            notify: NotifyPolicy {
                dev: false,
                allow: Allow::parse(&get("BERTH_NOTIFY_ALLOW_PRIVATE").unwrap_or_default())
                    .map_err(|message| error("BERTH_NOTIFY_ALLOW_PRIVATE", message))?,
            },
            event_grid_topic: nonempty("BERTH_EVENTGRID_TOPIC")
                .map(|t| crate::notify::event_grid::topic_url(&t))
                .transpose()
                .map_err(|message| error("BERTH_EVENTGRID_TOPIC", message))?,
            notify_key: nonempty("BERTH_NOTIFY_KEY")
                .map(|k| crate::notify::checked_key(&k))
                .transpose()
                .map_err(|message| error("BERTH_NOTIFY_KEY", message))?,
        })
    }

    /// Reads the configuration from the process environment.
    pub fn from_env(defaults: Defaults) -> Result<Self, ConfigError> {
        Self::from_lookup(&|name: &str| std::env::var(name).ok(), defaults)
    }

    /// A lookup over a fixed map (tests).
    pub fn map_lookup(
        map: HashMap<String, String>,
    ) -> impl Fn(&str) -> Option<String> + Send + Sync {
        move |name: &str| map.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(&Config::map_lookup(map), Defaults::default())
    }

    const BASE: [(&str, &str); 4] = [
        (
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000",
        ),
        ("BERTH_RESOURCE_GROUP", "rg"),
        ("BERTH_LOCATION", "westeurope"),
        (
            "BERTH_SECRETS_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
    ];

    #[test]
    fn defaults_follow_the_contract() {
        let c = config(&BASE).unwrap();
        assert!(
            matches!(c.storage, Storage::Sqlite { ref path } if path == &PathBuf::from(".berth/berth.db"))
        );
        assert_eq!(c.arm.endpoint, "https://management.azure.com");
        assert_eq!(c.arm.api_version, "2025-09-01");
        assert_eq!(c.queue, "berth-steps");
        assert!(c.arm.use_identity);
        assert_eq!(c.sweep_grace_ms, 5 * 60_000);
    }

    #[test]
    fn the_event_grid_topic_and_notify_key_are_checked_and_never_echoed() {
        let c = config(&BASE).unwrap();
        assert!(c.event_grid_topic.is_none() && c.notify_key.is_none());
        let mut pairs = BASE.to_vec();
        pairs.push((
            "BERTH_EVENTGRID_TOPIC",
            "https://orders.westeurope-1.eventgrid.azure.net",
        ));
        let key = crate::notify::new_key();
        pairs.push(("BERTH_NOTIFY_KEY", &key));
        let c = config(&pairs).unwrap();
        assert_eq!(
            c.event_grid_topic.unwrap().as_str(),
            "https://orders.westeurope-1.eventgrid.azure.net/api/events"
        );
        assert_eq!(c.notify_key.as_deref(), Some(key.as_str()));
        for (setting, bad) in [
            (
                "BERTH_EVENTGRID_TOPIC",
                "http://orders.eventgrid.azure.net/?sig=hunter2",
            ),
            ("BERTH_EVENTGRID_TOPIC", "hunter2"),
            ("BERTH_NOTIFY_KEY", "hunter2"),
            ("BERTH_NOTIFY_KEY", "whsec_aHVudGVyMg=="),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((setting, bad));
            let error = config(&pairs).unwrap_err();
            assert_eq!(error.setting, setting);
            assert!(
                !error.message.contains("hunter2") && !error.message.contains("aHVu"),
                "{error:?}"
            );
        }
    }

    #[test]
    fn the_sweep_grace_is_an_iso_duration() {
        let mut pairs = BASE.to_vec();
        pairs.push(("BERTH_SWEEP_GRACE", "PT0S"));
        assert_eq!(config(&pairs).unwrap().sweep_grace_ms, 0);
        let mut bad = BASE.to_vec();
        bad.push(("BERTH_SWEEP_GRACE", "5 minutes"));
        assert_eq!(config(&bad).unwrap_err().setting, "BERTH_SWEEP_GRACE");
    }

    #[test]
    fn errors_name_the_setting() {
        let missing = config(&BASE[..3]).unwrap_err();
        assert_eq!(missing.setting, "BERTH_SECRETS_KEY");
        let mut bad = BASE.to_vec();
        bad.push(("BERTH_QUEUE", "Bad_Queue"));
        assert_eq!(config(&bad).unwrap_err().setting, "BERTH_QUEUE");
        let mut bad = BASE.to_vec();
        bad.push(("BERTH_ARM_READS_PER_SECOND", "fast"));
        assert_eq!(
            config(&bad).unwrap_err().setting,
            "BERTH_ARM_READS_PER_SECOND"
        );
        assert_eq!(
            config(&BASE[1..]).unwrap_err().setting,
            "BERTH_SUBSCRIPTION_ID"
        );
        let mut bad = BASE.to_vec();
        bad.push(("BERTH_LOOKS", "fast"));
        let error = config(&bad).unwrap_err();
        assert_eq!(error.setting, "BERTH_LOOKS");
        assert!(error.message.contains("'fast'"), "{error}");
        assert_eq!(config(&BASE).unwrap().looks, LookMode::Backoff);
        let mut pairs = BASE.to_vec();
        pairs.push(("BERTH_LOOKS", "round-robin"));
        assert_eq!(config(&pairs).unwrap().looks, LookMode::RoundRobin);
    }

    #[test]
    fn the_price_table_is_the_list_prices_unless_a_setting_says_otherwise() {
        assert_eq!(config(&BASE).unwrap().prices, Prices::default());
        let mut pairs = BASE.to_vec();
        pairs.push(("BERTH_PRICE_VCPU_SECOND", "0.00001"));
        pairs.push((
            "BERTH_PRICES",
            r#"{"spot": {"vcpuHour": 0.01, "gbHour": 0.001}, "windowsVcpuHour": 0}"#,
        ));
        let prices = config(&pairs).unwrap().prices;
        assert!((prices.standard.vcpu_hour - 0.036).abs() < 1e-12);
        assert_eq!(prices.standard.gb_hour, Prices::default().standard.gb_hour);
        assert_eq!(prices.spot.vcpu_hour, 0.01);
        assert_eq!(prices.windows_vcpu_hour, 0.0);
        for bad in [
            r#"{"spot": {"vcpuHour": "cheap", "gbHour": 0}}"#,
            r#"{"windowsVcpuHour": -1}"#,
            "{not json",
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push(("BERTH_PRICES", bad));
            let err = config(&pairs).unwrap_err();
            assert_eq!(err.setting, "BERTH_PRICES", "{bad}");
        }
        let mut pairs = BASE.to_vec();
        pairs.push(("BERTH_PRICES", r#"{"windowsVcpuHour": -1}"#));
        let message = config(&pairs).unwrap_err().to_string();
        assert!(message.contains("windowsVcpuHour"), "{message}");
    }

    #[test]
    fn secure_value_from_allows_nothing_unless_listed() {
        let c = config(&BASE).unwrap();
        assert!(c.secure_value_from.check("SEED_DB_PASSWORD").is_err());
        let mut pairs = BASE.to_vec();
        pairs.push(("BERTH_SECURE_VALUE_FROM", "SEED_DB_PASSWORD,REGISTRY_*"));
        let c = config(&pairs).unwrap();
        assert_eq!(c.secure_value_from.check("REGISTRY_TOKEN"), Ok(()));
        let mut bad = BASE.to_vec();
        bad.push(("BERTH_SECURE_VALUE_FROM", "*"));
        assert_eq!(config(&bad).unwrap_err().setting, "BERTH_SECURE_VALUE_FROM");
    }

    #[test]
    fn a_connection_string_selects_azure_storage() {
        let mut pairs = BASE.to_vec();
        pairs.push(("AzureWebJobsStorage", "UseDevelopmentStorage=true"));
        assert!(matches!(config(&pairs).unwrap().storage, Storage::Azure));
    }

    #[test]
    fn the_public_url_is_an_http_url_with_a_host_and_nothing_else() {
        let with = |url: &str| {
            let mut pairs = BASE.to_vec();
            pairs.push(("BERTH_PUBLIC_URL", url));
            config(&pairs)
        };
        assert_eq!(
            with("https://app.example.com/")
                .unwrap()
                .public_url
                .as_deref(),
            Some("https://app.example.com")
        );
        for bad in [
            "app.example.com",
            "ftp://app.example.com",
            "javascript:alert(1)",
            "https://user:pw@app.example.com",
            "https://app.example.com/?x=1",
            "https://app.example.com/#x",
            "file:///etc/passwd",
        ] {
            let e = with(bad).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(e.setting, "BERTH_PUBLIC_URL", "{bad}");
        }
    }

    #[test]
    fn the_arm_token_is_for_the_emulator_only_and_not_printed() {
        let mut pairs = BASE.to_vec();
        pairs.push(("BERTH_ARM_ENDPOINT", "http://127.0.0.1:7080"));
        pairs.push(("BERTH_ARM_TOKEN", "emulator-token"));
        let c = config(&pairs).unwrap();
        assert!(c.arm.token.is_some());
        assert!(!format!("{c:?}").contains("emulator-token"));
        assert!(format!("{:?}", c.arm).contains("token: Some(<set>)"));
        let mut azure = BASE.to_vec();
        azure.push(("BERTH_ARM_TOKEN", "emulator-token"));
        assert_eq!(config(&azure).unwrap_err().setting, "BERTH_ARM_TOKEN");
    }

    #[test]
    fn a_default_arm_token_goes_only_to_the_default_endpoint() {
        let map = |pairs: &[(&str, &str)]| {
            Config::map_lookup(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let defaults = Defaults {
            arm_endpoint: Some("http://127.0.0.1:7080".into()),
            arm_token: StaticToken::new("per-run"),
            ..Defaults::default()
        };
        let c = Config::from_lookup(&map(&BASE), defaults.clone()).unwrap();
        assert!(c.arm.token.is_some());
        let mut elsewhere = BASE.to_vec();
        elsewhere.push(("BERTH_ARM_ENDPOINT", "http://127.0.0.1:9999"));
        let c = Config::from_lookup(&map(&elsewhere), defaults).unwrap();
        assert!(c.arm.token.is_none());
    }

    #[test]
    fn max_cores_is_per_location_and_errors_name_it() {
        let mut pairs = BASE.to_vec();
        pairs.push(("BERTH_MAX_CORES", "westeurope=8,northeurope=4"));
        let c = config(&pairs).unwrap();
        assert_eq!(c.max_cores.of("northeurope"), Some(4.0));
        assert_eq!(c.max_cores.of("eastus"), None);
        assert_eq!(config(&BASE).unwrap().max_cores.of("westeurope"), None);
        let mut bad = BASE.to_vec();
        bad.push(("BERTH_MAX_CORES", "westeurope=lots"));
        let e = config(&bad).unwrap_err();
        assert_eq!(e.setting, "BERTH_MAX_CORES");
        assert!(e.message.contains("westeurope=lots"), "{e}");
    }

    #[test]
    fn the_api_key_is_not_printed() {
        let mut pairs = BASE.to_vec();
        pairs.push(("BERTH_API_KEY", "sekrit-key"));
        let c = config(&pairs).unwrap();
        assert!(!format!("{c:?}").contains("sekrit-key"));
    }
}
