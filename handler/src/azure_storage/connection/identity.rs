//! The identity-based form: the setting itself unset and `<setting>__accountName` (or
//! `__blobServiceUri` and `__queueServiceUri`) set, with `__credential`, `__clientId`, `__tenantId`
//! and `__clientSecret` choosing the identity, as Functions reads them.

use super::{
    ClientSecret, ConnectionError, IdentitySettings, StorageAuth, StorageConnection, invalid,
    service_url, validate_account_name,
};

impl StorageConnection {
    pub(super) fn identity_based(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{assert_endpoints, from_map};
    use super::*;

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
        assert_endpoints(
            &c,
            "https://berthdata.blob.core.windows.net/",
            "https://berthdata.queue.core.windows.net/",
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
}
