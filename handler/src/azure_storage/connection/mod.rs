//! `AzureWebJobsStorage`, parsed the way the Functions host reads it.
//!
//! Three shapes, as in Functions:
//! - `UseDevelopmentStorage=true`: Azurite's well-known account `devstoreaccount1` with its
//!   published key, blob on `http://127.0.0.1:10000/devstoreaccount1`, queue on port 10001
//!   (path-style URLs: the account is the first path segment).
//! - A connection string: `DefaultEndpointsProtocol`, `AccountName`, `AccountKey`, `EndpointSuffix`,
//!   `BlobEndpoint`, `QueueEndpoint`, or `SharedAccessSignature` instead of a key.
//! - Identity-based: the setting itself unset and `<setting>__accountName` (or
//!   `__blobServiceUri` and `__queueServiceUri`) set, with `__credential` (`managedidentity`),
//!   `__clientId`, `__tenantId`, `__clientSecret` choosing the identity.
//!
//! Settings are read through a lookup function the caller gives (config is built once from the
//! environment elsewhere; tests pass a map). Errors name the setting and the key, never a value that
//! could be secret. The account key and SAS token live in types whose `Debug` prints no secret.
//!
//! The parts: `string` reads connection strings, `identity` the identity-based settings, and
//! `secrets` holds the types that keep keys out of logs.

mod identity;
mod secrets;
mod string;

pub use secrets::{AccountKey, ClientSecret, SasToken};

use url::Url;

/// The conventional name of the Functions storage setting.
pub const DEFAULT_SETTING: &str = "AzureWebJobsStorage";
/// Azurite's well-known account name.
pub const DEVSTORE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known account key, published in Azurite's and Microsoft's docs; not a secret.
pub const DEVSTORE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEVSTORE_BLOB: &str = "http://127.0.0.1:10000/devstoreaccount1";
const DEVSTORE_QUEUE: &str = "http://127.0.0.1:10001/devstoreaccount1";

/// How requests to the account are authorized.
#[derive(Debug, Clone)]
pub enum StorageAuth {
    /// Shared Key: every request signed with the account key (see [`super::shared_key`]).
    SharedKey {
        /// The account name the signature names.
        account: String,
        key: AccountKey,
    },
    /// A SAS appended to every request URL.
    Sas(SasToken),
    /// An Entra ID token from the identity these settings choose (see [`super::credential`]).
    Identity(IdentitySettings),
}

/// The identity part of an identity-based connection (`<setting>__credential`, `__clientId`, …).
#[derive(Debug, Clone, Default)]
pub struct IdentitySettings {
    /// `__credential=managedidentity`: use the managed identity even if other variables are set.
    pub managed_identity: bool,
    /// `__clientId`: the user-assigned identity (or service principal) to use.
    pub client_id: Option<String>,
    /// `__tenantId`: the tenant of a service principal.
    pub tenant_id: Option<String>,
    /// `__clientSecret`: a service principal's secret (local development, as in Functions).
    pub client_secret: Option<ClientSecret>,
}

/// A parsed storage connection: where the blob and queue services are and how to authorize.
#[derive(Debug, Clone)]
pub struct StorageConnection {
    /// The setting it came from (for messages), e.g. `AzureWebJobsStorage`.
    pub setting: String,
    /// The account name, when known (always for Shared Key).
    pub account: Option<String>,
    /// The blob service URL, without a trailing `/` (path-style for Azurite:
    /// `http://127.0.0.1:10000/devstoreaccount1`).
    pub blob_endpoint: Url,
    /// The queue service URL, without a trailing `/`.
    pub queue_endpoint: Url,
    /// How requests are authorized.
    pub auth: StorageAuth,
}

/// Why a storage setting was refused. Messages name the setting and the key, never a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// A part of the connection string is not `key=value`.
    #[error("{setting}: part {position} is not of the form key=value")]
    Malformed {
        /// The app setting the connection string was read from.
        setting: String,
        /// 1-based position of the `;`-separated part.
        position: usize,
    },
    /// A key this parser does not know.
    #[error("{setting}: unknown key `{key}`")]
    UnknownKey {
        /// The app setting the connection string was read from.
        setting: String,
        /// The connection string's key (`AccountName`, `BlobEndpoint`, ...).
        key: String,
    },
    /// A key given twice.
    #[error("{setting}: key `{key}` is given more than once")]
    DuplicateKey {
        /// The app setting the connection string was read from.
        setting: String,
        /// The connection string's key (`AccountName`, `BlobEndpoint`, ...).
        key: String,
    },
    /// A required key is missing.
    #[error("{setting}: `{key}` is required {because}")]
    MissingKey {
        /// The app setting the connection string was read from.
        setting: String,
        /// The missing key or setting.
        key: String,
        /// Why it is required.
        because: &'static str,
    },
    /// A key has a value this parser refuses.
    #[error("{setting}: `{key}` {problem}")]
    InvalidValue {
        /// The app setting the connection string was read from.
        setting: String,
        /// The connection string's key (`AccountName`, `BlobEndpoint`, ...).
        key: String,
        /// What is wrong, without the value when it may be secret.
        problem: String,
    },
    /// Two keys that exclude each other.
    #[error("{setting}: `{first}` and `{second}` cannot both be given")]
    Conflicting {
        /// The app setting the connection string was read from.
        setting: String,
        /// One key.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
}

impl StorageConnection {
    /// Reads `setting` (e.g. `AzureWebJobsStorage`) as Functions does: the connection string when
    /// the setting is set and not empty, else the identity-based `setting__*` settings, else
    /// `Ok(None)` (no Azure Storage configured).
    pub fn from_settings(
        setting: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConnectionError> {
        if let Some(value) = lookup(setting).filter(|v| !v.trim().is_empty()) {
            return Self::parse(setting, &value).map(Some);
        }
        Self::identity_based(setting, lookup)
    }
}

/// A service URL without query or fragment, with any trailing `/` removed: the SDK builds container
/// and queue URLs by appending a segment, and a trailing `/` would make an empty segment.
fn service_url(setting: &str, key: &str, value: &str) -> Result<Url, ConnectionError> {
    let mut url = Url::parse(value.trim())
        .map_err(|e| invalid(setting, key, &format!("is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(setting, key, "must be an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            setting,
            key,
            "must not carry a query or fragment (give a SAS as `SharedAccessSignature`)",
        ));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

fn fixed_url(s: &str) -> Url {
    match Url::parse(s) {
        Ok(url) => url,
        Err(e) => unreachable!("constant URL {s} does not parse: {e}"),
    }
}

fn validate_account_name(setting: &str, key: &str, name: &str) -> Result<(), ConnectionError> {
    let ok = (3..=24).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            setting,
            key,
            &format!("`{name}` is not a storage account name (3-24 lower-case letters and digits)"),
        ))
    }
}

fn invalid(setting: &str, key: &str, problem: &str) -> ConnectionError {
    ConnectionError::InvalidValue {
        setting: setting.into(),
        key: key.into(),
        problem: problem.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The connection that `pairs`, as the app settings, configure; the submodules' tests use it too.
    pub(super) fn from_map(
        pairs: &[(&str, &str)],
    ) -> Result<Option<StorageConnection>, ConnectionError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StorageConnection::from_settings(DEFAULT_SETTING, &|k| map.get(k).cloned())
    }

    /// Asserts that `c` sends blob requests to `blob` and queue requests to `queue` (the URLs as
    /// text); the submodules' tests use it too.
    #[track_caller]
    pub(super) fn assert_endpoints(c: &StorageConnection, blob: &str, queue: &str) {
        assert_eq!(c.blob_endpoint.as_str(), blob);
        assert_eq!(c.queue_endpoint.as_str(), queue);
    }

    #[test]
    fn the_connection_string_takes_precedence_and_nothing_set_is_none() {
        let c = from_map(&[
            ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
            ("AzureWebJobsStorage__accountName", "berthdata"),
        ])
        .unwrap()
        .unwrap();
        assert!(matches!(c.auth, StorageAuth::SharedKey { .. }));
        assert!(from_map(&[]).unwrap().is_none());
        assert!(
            from_map(&[("AzureWebJobsStorage", "  ")])
                .unwrap()
                .is_none()
        );
    }
}
