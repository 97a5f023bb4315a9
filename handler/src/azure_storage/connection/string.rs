//! The connection-string form: `key=value;…` pairs (keys case-insensitive, values may hold `=`), or
//! `UseDevelopmentStorage=true` for Azurite.

use super::{
    AccountKey, ConnectionError, DEVSTORE_ACCOUNT, DEVSTORE_BLOB, DEVSTORE_KEY, DEVSTORE_QUEUE,
    SasToken, StorageAuth, StorageConnection, fixed_url, invalid, service_url,
    validate_account_name,
};
use std::collections::BTreeMap;
use url::Url;

impl StorageConnection {
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
                key: AccountKey::well_known(DEVSTORE_KEY),
            },
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::DEFAULT_SETTING;
    use super::super::tests::assert_endpoints;
    use super::*;

    const KEY: &str = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5";

    fn parse(value: &str) -> Result<StorageConnection, ConnectionError> {
        StorageConnection::parse(DEFAULT_SETTING, value)
    }

    #[test]
    fn development_storage_is_azurite_path_style() {
        let c = parse("UseDevelopmentStorage=true").unwrap();
        assert_endpoints(
            &c,
            "http://127.0.0.1:10000/devstoreaccount1",
            "http://127.0.0.1:10001/devstoreaccount1",
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
        assert_endpoints(
            &c,
            "https://berthdata.blob.core.chinacloudapi.cn/",
            "https://berthdata.queue.core.chinacloudapi.cn/",
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
        assert_endpoints(
            &c,
            "http://127.0.0.1:20000/devstoreaccount1",
            "http://127.0.0.1:20001/devstoreaccount1",
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
}
