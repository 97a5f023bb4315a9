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

use azure_core::credentials::Secret;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt;
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

/// A storage account key (base64), validated at construction. Neither `Debug` nor anything else
/// prints it.
#[derive(Clone)]
pub struct AccountKey(Secret);

impl AccountKey {
    /// Checks that `base64` is a base64 key; the error says why without repeating the value.
    pub fn new(base64: impl Into<String>) -> Result<Self, &'static str> {
        let text: String = base64.into();
        match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
            Ok(bytes) if !bytes.is_empty() => Ok(Self(Secret::new(text.trim().to_owned()))),
            Ok(_) => Err("is empty"),
            Err(_) => Err("is not valid base64"),
        }
    }

    /// The key, for signing only.
    pub(crate) fn secret(&self) -> &Secret {
        &self.0
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

/// A shared access signature (the query string, without a leading `?`). `Debug` hides it.
#[derive(Clone)]
pub struct SasToken(Secret);

impl SasToken {
    /// Wraps a SAS query string, dropping a leading `?`.
    pub fn new(token: impl Into<String>) -> Self {
        let token: String = token.into();
        Self(Secret::new(token.trim().trim_start_matches('?').to_owned()))
    }

    /// The query string, to append to request URLs.
    pub(crate) fn query(&self) -> &str {
        self.0.secret()
    }
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SasToken(<redacted>)")
    }
}

/// How requests to the account are authorized.
#[derive(Debug, Clone)]
pub enum StorageAuth {
    /// Shared Key: every request signed with the account key (see [`super::shared_key`]).
    SharedKey {
        /// The account name the signature names.
        account: String,
        /// The key.
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

/// A service principal's client secret. `Debug` hides it.
#[derive(Clone)]
pub struct ClientSecret(pub(crate) Secret);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Secret::new(secret.into()))
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
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
        /// The setting.
        setting: String,
        /// 1-based position of the `;`-separated part.
        position: usize,
    },
    /// A key this parser does not know.
    #[error("{setting}: unknown key `{key}`")]
    UnknownKey {
        /// The setting.
        setting: String,
        /// The key.
        key: String,
    },
    /// A key given twice.
    #[error("{setting}: key `{key}` is given more than once")]
    DuplicateKey {
        /// The setting.
        setting: String,
        /// The key.
        key: String,
    },
    /// A required key is missing.
    #[error("{setting}: `{key}` is required {because}")]
    MissingKey {
        /// The setting.
        setting: String,
        /// The missing key or setting.
        key: String,
        /// Why it is required.
        because: &'static str,
    },
    /// A key has a value this parser refuses.
    #[error("{setting}: `{key}` {problem}")]
    InvalidValue {
        /// The setting.
        setting: String,
        /// The key.
        key: String,
        /// What is wrong, without the value when it may be secret.
        problem: String,
    },
    /// Two keys that exclude each other.
    #[error("{setting}: `{first}` and `{second}` cannot both be given")]
    Conflicting {
        /// The setting.
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

    /// Parses a connection string value of `setting`.
    pub fn parse(setting: &str, value: &str) -> Result<Self, ConnectionError> {
        let pairs = split_pairs(setting, value)?;
        let get = |key: &str| {
            pairs
                .get(&key.to_ascii_lowercase())
                .map(|(_, v)| v.as_str())
        };

        if let Some(dev) = get("UseDevelopmentStorage") {
            if !dev.eq_ignore_ascii_case("true") {
                return Err(invalid(
                    setting,
                    "UseDevelopmentStorage",
                    "must be `true` when given",
                ));
            }
            if let Some((key, _)) = pairs
                .iter()
                .find(|(k, _)| k.as_str() != "usedevelopmentstorage")
                .map(|(_, kv)| kv)
            {
                return Err(ConnectionError::UnknownKey {
                    setting: setting.into(),
                    key: format!("{key} (not supported with UseDevelopmentStorage=true)"),
                });
            }
            return Ok(Self::development_storage(setting));
        }

        let protocol = match get("DefaultEndpointsProtocol") {
            None => "https",
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            Some(p) => {
                return Err(invalid(
                    setting,
                    "DefaultEndpointsProtocol",
                    &format!("must be `https` or `http`, not `{p}`"),
                ));
            }
        };
        let account = get("AccountName").map(str::to_owned);
        if let Some(name) = &account {
            validate_account_name(setting, "AccountName", name)?;
        }
        let suffix = get("EndpointSuffix").unwrap_or("core.windows.net");
        let endpoint = |key: &'static str, service: &str| -> Result<Url, ConnectionError> {
            match get(key) {
                Some(explicit) => service_url(setting, key, explicit),
                None => match &account {
                    Some(name) => service_url(
                        setting,
                        "EndpointSuffix",
                        &format!("{protocol}://{name}.{service}.{suffix}"),
                    ),
                    None => Err(ConnectionError::MissingKey {
                        setting: setting.into(),
                        key: key.into(),
                        because: "when `AccountName` is not given",
                    }),
                },
            }
        };
        let blob_endpoint = endpoint("BlobEndpoint", "blob")?;
        let queue_endpoint = endpoint("QueueEndpoint", "queue")?;

        let auth = match (get("AccountKey"), get("SharedAccessSignature")) {
            (Some(_), Some(_)) => {
                return Err(ConnectionError::Conflicting {
                    setting: setting.into(),
                    first: "AccountKey",
                    second: "SharedAccessSignature",
                });
            }
            (Some(key), None) => {
                let account = account.clone().ok_or_else(|| ConnectionError::MissingKey {
                    setting: setting.into(),
                    key: "AccountName".into(),
                    because: "with `AccountKey` (Shared Key signs with the account name)",
                })?;
                let key = AccountKey::new(key).map_err(|p| invalid(setting, "AccountKey", p))?;
                StorageAuth::SharedKey { account, key }
            }
            (None, Some(sas)) => {
                if sas.trim().trim_start_matches('?').is_empty() {
                    return Err(invalid(setting, "SharedAccessSignature", "is empty"));
                }
                StorageAuth::Sas(SasToken::new(sas))
            }
            (None, None) => {
                return Err(ConnectionError::MissingKey {
                    setting: setting.into(),
                    key: "AccountKey".into(),
                    because: "(or `SharedAccessSignature`, or use identity-based settings with \
                              the connection string unset)",
                });
            }
        };
        Ok(Self {
            setting: setting.into(),
            account,
            blob_endpoint,
            queue_endpoint,
            auth,
        })
    }

    /// Azurite's well-known account on its default loopback ports.
    pub fn development_storage(setting: &str) -> Self {
        Self {
            setting: setting.into(),
            account: Some(DEVSTORE_ACCOUNT.into()),
            blob_endpoint: fixed_url(DEVSTORE_BLOB),
            queue_endpoint: fixed_url(DEVSTORE_QUEUE),
            auth: StorageAuth::SharedKey {
                account: DEVSTORE_ACCOUNT.into(),
                key: AccountKey(Secret::new(DEVSTORE_KEY)),
            },
        }
    }

    fn identity_based(
        setting: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConnectionError> {
        let sub = |name: &str| {
            lookup(&format!("{setting}__{name}"))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let account = sub("accountName");
        let blob_uri = sub("blobServiceUri");
        let queue_uri = sub("queueServiceUri");
        let credential = sub("credential");
        let client_id = sub("clientId");
        let tenant_id = sub("tenantId");
        let client_secret = sub("clientSecret");
        let any = [
            &account,
            &blob_uri,
            &queue_uri,
            &credential,
            &client_id,
            &tenant_id,
            &client_secret,
        ]
        .iter()
        .any(|v| v.is_some());
        if !any {
            return Ok(None);
        }
        let key = |name: &str| format!("{setting}__{name}");
        if let Some(name) = &account {
            validate_account_name(setting, &key("accountName"), name)?;
        }
        let endpoint = |uri: &Option<String>, name: &str, service: &str| match (uri, &account) {
            (Some(uri), _) => service_url(setting, &key(name), uri),
            (None, Some(acct)) => service_url(
                setting,
                &key("accountName"),
                &format!("https://{acct}.{service}.core.windows.net"),
            ),
            (None, None) => Err(ConnectionError::MissingKey {
                setting: setting.into(),
                key: key(name),
                because: "when `__accountName` is not given",
            }),
        };
        let blob_endpoint = endpoint(&blob_uri, "blobServiceUri", "blob")?;
        let queue_endpoint = endpoint(&queue_uri, "queueServiceUri", "queue")?;
        for (name, url) in [
            ("blobServiceUri", &blob_endpoint),
            ("queueServiceUri", &queue_endpoint),
        ] {
            if url.scheme() != "https" {
                return Err(invalid(
                    setting,
                    &key(name),
                    "must be https: Entra ID tokens are only sent over TLS",
                ));
            }
        }
        let managed_identity = match credential.as_deref() {
            None => false,
            Some(c) if c.eq_ignore_ascii_case("managedidentity") => true,
            Some(c) => {
                return Err(invalid(
                    setting,
                    &key("credential"),
                    &format!(
                        "must be `managedidentity` (the only value Functions knows), not `{c}`"
                    ),
                ));
            }
        };
        Ok(Some(Self {
            setting: setting.into(),
            account,
            blob_endpoint,
            queue_endpoint,
            auth: StorageAuth::Identity(IdentitySettings {
                managed_identity,
                client_id,
                tenant_id,
                client_secret: client_secret.map(ClientSecret::new),
            }),
        }))
    }
}

/// Keys accepted and used.
const KNOWN_KEYS: [&str; 8] = [
    "usedevelopmentstorage",
    "defaultendpointsprotocol",
    "accountname",
    "accountkey",
    "endpointsuffix",
    "blobendpoint",
    "queueendpoint",
    "sharedaccesssignature",
];
/// Keys accepted in a Functions connection string but irrelevant to Berth.
const IGNORED_KEYS: [&str; 5] = [
    "tableendpoint",
    "fileendpoint",
    "blobsecondaryendpoint",
    "queuesecondaryendpoint",
    "tablesecondaryendpoint",
];

/// Splits `k=v;k=v` (values may contain `=`, as keys and SAS tokens do) into lower-cased keys →
/// (key as written, value). Empty parts (a trailing `;`) are skipped.
fn split_pairs(
    setting: &str,
    value: &str,
) -> Result<BTreeMap<String, (String, String)>, ConnectionError> {
    let mut pairs = BTreeMap::new();
    for (i, part) in value.split(';').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, val) = part
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| ConnectionError::Malformed {
                setting: setting.into(),
                position: i + 1,
            })?;
        let key = key.trim();
        let lower = key.to_ascii_lowercase();
        if IGNORED_KEYS.contains(&lower.as_str()) {
            continue;
        }
        if !KNOWN_KEYS.contains(&lower.as_str()) {
            return Err(ConnectionError::UnknownKey {
                setting: setting.into(),
                key: key.into(),
            });
        }
        if pairs
            .insert(lower, (key.to_owned(), val.trim().to_owned()))
            .is_some()
        {
            return Err(ConnectionError::DuplicateKey {
                setting: setting.into(),
                key: key.into(),
            });
        }
    }
    Ok(pairs)
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

    const KEY: &str = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5";

    fn parse(value: &str) -> Result<StorageConnection, ConnectionError> {
        StorageConnection::parse(DEFAULT_SETTING, value)
    }

    fn from_map(pairs: &[(&str, &str)]) -> Result<Option<StorageConnection>, ConnectionError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StorageConnection::from_settings(DEFAULT_SETTING, &|k| map.get(k).cloned())
    }

    #[test]
    fn development_storage_is_azurite_path_style() {
        let c = parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(
            c.blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            c.queue_endpoint.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert_eq!(c.account.as_deref(), Some("devstoreaccount1"));
        assert!(
            matches!(c.auth, StorageAuth::SharedKey { ref account, .. } if account == "devstoreaccount1")
        );
        assert!(parse("usedevelopmentstorage=TRUE;").is_ok());
        assert_eq!(
            parse("UseDevelopmentStorage=false").unwrap_err(),
            ConnectionError::InvalidValue {
                setting: "AzureWebJobsStorage".into(),
                key: "UseDevelopmentStorage".into(),
                problem: "must be `true` when given".into(),
            }
        );
        assert!(matches!(
            parse("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://x").unwrap_err(),
            ConnectionError::UnknownKey { .. }
        ));
    }

    #[test]
    fn account_key_string_derives_endpoints_from_suffix() {
        let c = parse(&format!(
            "DefaultEndpointsProtocol=https;AccountName=berthdata;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"
        ))
        .unwrap();
        assert_eq!(
            c.blob_endpoint.as_str(),
            "https://berthdata.blob.core.chinacloudapi.cn/"
        );
        assert_eq!(
            c.queue_endpoint.as_str(),
            "https://berthdata.queue.core.chinacloudapi.cn/"
        );
        let c = parse(&format!("AccountName=berthdata;AccountKey={KEY}")).unwrap();
        assert_eq!(
            c.blob_endpoint.host_str(),
            Some("berthdata.blob.core.windows.net")
        );
    }

    #[test]
    fn explicit_endpoints_win_and_lose_their_trailing_slash() {
        let c = parse(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};\
             BlobEndpoint=http://127.0.0.1:20000/devstoreaccount1/;\
             QueueEndpoint=http://127.0.0.1:20001/devstoreaccount1;TableEndpoint=http://x/"
        ))
        .unwrap();
        assert_eq!(
            c.blob_endpoint.as_str(),
            "http://127.0.0.1:20000/devstoreaccount1"
        );
        assert_eq!(
            c.queue_endpoint.as_str(),
            "http://127.0.0.1:20001/devstoreaccount1"
        );
    }

    #[test]
    fn sas_strings_need_endpoints_or_account_and_hide_the_token() {
        let c = parse(
            "BlobEndpoint=https://acct.blob.core.windows.net/;QueueEndpoint=https://acct.queue.core.windows.net/;\
             SharedAccessSignature=?sv=2022-11-02&ss=bq&srt=sco&sp=rwdlacup&se=2030-01-01T00:00:00Z&sig=c2VjcmV0",
        )
        .unwrap();
        let StorageAuth::Sas(token) = &c.auth else {
            panic!("not SAS: {c:?}")
        };
        assert!(token.query().starts_with("sv=2022-11-02&"));
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
        assert_eq!(c.account, None);
        let err = parse("SharedAccessSignature=sv=1&sig=x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "AzureWebJobsStorage: `BlobEndpoint` is required when `AccountName` is not given"
        );
    }

    #[test]
    fn errors_name_the_key_and_never_echo_secrets() {
        let err = parse("AccountName=berthdata;AccountKey=not*base64").unwrap_err();
        assert_eq!(
            err.to_string(),
            "AzureWebJobsStorage: `AccountKey` is not valid base64"
        );
        let err = parse(&format!(
            "AccountName=berthdata;AccountKey={KEY};Acountkey=x"
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "AzureWebJobsStorage: unknown key `Acountkey`"
        );
        let err = parse(&format!("AccountName=a;AccountKey={KEY}")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`AccountName` `a` is not a storage account name")
        );
        let err = parse(&format!("AccountKey={KEY}")).unwrap_err();
        assert!(
            err.to_string().contains("`BlobEndpoint` is required"),
            "{err}"
        );
        let err = parse(&format!(
            "BlobEndpoint=http://h/a;QueueEndpoint=http://h/q;AccountKey={KEY}"
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`AccountName` is required with `AccountKey`"),
            "{err}"
        );
        let err = parse(&format!("AccountName=berthdata;{KEY}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AzureWebJobsStorage: part 2 is not of the form key=value"
        );
        assert!(!err.to_string().contains(KEY));
        let err = parse(&format!(
            "AccountName=berthdata;AccountKey={KEY};AccountKey={KEY}"
        ))
        .unwrap_err();
        assert!(matches!(err, ConnectionError::DuplicateKey { .. }));
        let err = parse(&format!(
            "AccountName=berthdata;AccountKey={KEY};SharedAccessSignature=sv=1"
        ))
        .unwrap_err();
        assert!(matches!(err, ConnectionError::Conflicting { .. }));
        let err = parse("AccountName=berthdata;DefaultEndpointsProtocol=ftp;AccountKey=eA==")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("`DefaultEndpointsProtocol` must be `https` or `http`")
        );
        let err = parse(&format!(
            "AccountName=berthdata;AccountKey={KEY};BlobEndpoint=https://x/?sv=1"
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`BlobEndpoint` must not carry a query")
        );
    }

    #[test]
    fn account_key_debug_prints_no_secret() {
        let c = parse(&format!("AccountName=berthdata;AccountKey={KEY}")).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("AccountKey(<redacted>)"));
    }

    #[test]
    fn identity_based_settings_when_the_string_is_unset() {
        let c = from_map(&[
            ("AzureWebJobsStorage__accountName", "berthdata"),
            ("AzureWebJobsStorage__credential", "managedidentity"),
            (
                "AzureWebJobsStorage__clientId",
                "11111111-2222-3333-4444-555555555555",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            c.blob_endpoint.as_str(),
            "https://berthdata.blob.core.windows.net/"
        );
        assert_eq!(
            c.queue_endpoint.as_str(),
            "https://berthdata.queue.core.windows.net/"
        );
        let StorageAuth::Identity(id) = &c.auth else {
            panic!("not identity: {c:?}")
        };
        assert!(id.managed_identity);
        assert_eq!(
            id.client_id.as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );

        let c = from_map(&[
            (
                "AzureWebJobsStorage__blobServiceUri",
                "https://b.example.net/",
            ),
            (
                "AzureWebJobsStorage__queueServiceUri",
                "https://q.example.net",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.blob_endpoint.as_str(), "https://b.example.net/");
        assert_eq!(c.queue_endpoint.host_str(), Some("q.example.net"));

        let err = from_map(&[(
            "AzureWebJobsStorage__blobServiceUri",
            "https://b.example.net",
        )])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "AzureWebJobsStorage: `AzureWebJobsStorage__queueServiceUri` is required when `__accountName` is not given"
        );
        let err = from_map(&[
            ("AzureWebJobsStorage__accountName", "berthdata"),
            ("AzureWebJobsStorage__credential", "azurecli"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`AzureWebJobsStorage__credential` must be `managedidentity`")
        );
        let err = from_map(&[
            ("AzureWebJobsStorage__accountName", "berthdata"),
            (
                "AzureWebJobsStorage__queueServiceUri",
                "http://q.example.net",
            ),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("must be https"));
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
