//! One storage account: the shared HTTP transport, the pipeline policies for its kind of
//! authorization, and the transaction counters, from which container and queue wrappers are made.

use super::blob::BlobContainer;
use super::connection::{SasToken, StorageAuth, StorageConnection};
use super::error::StorageError;
use super::queue::StorageQueue;
use super::shared_key::SharedKeyPolicy;
use super::transactions::{CountingPolicy, Service, Transactions};
use azure_core::credentials::TokenCredential;
use azure_core::http::{
    ClientOptions, HttpClientOptions, RetryOptions, Transport, new_http_client, policies::Policy,
};
use std::fmt;
use std::sync::Arc;
use url::Url;

/// A storage account Berth talks to. Cheap to share behind an `Arc`; every wrapper made from it
/// shares one HTTP connection pool and one set of [`Transactions`] counters.
pub struct StorageAccount {
    blob_endpoint: Url,
    queue_endpoint: Url,
    sas: Option<SasToken>,
    credential: Option<Arc<dyn TokenCredential>>,
    shared_key: Option<Arc<SharedKeyPolicy>>,
    transactions: Transactions,
    transport: Transport,
    retry: RetryOptions,
}

impl StorageAccount {
    /// Prepares clients for `connection`. Identity-based connections need the token credential
    /// (from [`super::credential::choose`]); the other kinds ignore it.
    pub fn new(
        connection: &StorageConnection,
        credential: Option<Arc<dyn TokenCredential>>,
    ) -> Result<Self, StorageError> {
        let (sas, credential, shared_key) = match &connection.auth {
            StorageAuth::SharedKey { account, key } => (
                None,
                None,
                Some(Arc::new(SharedKeyPolicy::new(account.clone(), key.clone()))),
            ),
            StorageAuth::Sas(token) => (Some(token.clone()), None, None),
            StorageAuth::Identity(_) => match credential {
                Some(c) => (None, Some(c), None),
                None => {
                    return Err(StorageError::InvalidArgument {
                        field: "credential",
                        reason: format!(
                            "{} is identity-based: a token credential is required",
                            connection.setting
                        ),
                    });
                }
            },
        };
        // The storage crates disable automatic decompression on the transports they create (ranged
        // downloads need the raw bytes); one transport shared by every client keeps one pool.
        let transport = Transport::new(new_http_client(Some(HttpClientOptions {
            automatic_decompression: false,
        })));
        Ok(Self {
            blob_endpoint: connection.blob_endpoint.clone(),
            queue_endpoint: connection.queue_endpoint.clone(),
            sas,
            credential,
            shared_key,
            transactions: Transactions::new(),
            transport,
            retry: RetryOptions::default(),
        })
    }

    /// Replaces the SDK's retry policy (exponential, 8 retries within 60 s by default) for clients
    /// made after this call.
    pub fn with_retry(mut self, retry: RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// The transaction counters shared by every client of this account.
    pub fn transactions(&self) -> &Transactions {
        &self.transactions
    }

    /// A wrapper for the blob container `name` (not created; see
    /// [`BlobContainer::create_if_missing`]).
    pub fn container(&self, name: &str) -> Result<BlobContainer, StorageError> {
        validate_resource_name("container", name)?;
        let url = self.resource_url(&self.blob_endpoint, name);
        BlobContainer::new(
            name,
            url,
            self.credential.clone(),
            self.client_options(Service::Blob),
        )
    }

    /// A wrapper for the queue `name` (not created; see [`StorageQueue::create_if_missing`]).
    pub fn queue(&self, name: &str) -> Result<StorageQueue, StorageError> {
        validate_resource_name("queue", name)?;
        let url = self.resource_url(&self.queue_endpoint, name);
        StorageQueue::new(
            name,
            url,
            self.credential.clone(),
            self.client_options(Service::Queue),
        )
    }

    /// `endpoint/name`, with the SAS query when there is one. Pushing a segment (rather than
    /// string concatenation) keeps exactly one `/` whether or not the endpoint had a path.
    fn resource_url(&self, endpoint: &Url, name: &str) -> Url {
        let mut url = endpoint.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(name);
        }
        if let Some(sas) = &self.sas {
            url.set_query(Some(sas.query()));
        }
        url
    }

    fn client_options(&self, service: Service) -> ClientOptions {
        let mut per_try: Vec<Arc<dyn Policy>> = vec![Arc::new(CountingPolicy::new(
            service,
            self.transactions.clone(),
        ))];
        if let Some(signer) = &self.shared_key {
            // Last before the transport, so it signs the request exactly as sent.
            per_try.push(signer.clone());
        }
        ClientOptions {
            per_try_policies: per_try,
            retry: self.retry.clone(),
            transport: Some(self.transport.clone()),
            ..Default::default()
        }
    }
}

impl fmt::Debug for StorageAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match (&self.shared_key, &self.sas, &self.credential) {
            (Some(_), _, _) => "shared-key",
            (_, Some(_), _) => "sas",
            (_, _, Some(_)) => "token",
            _ => "none",
        };
        f.debug_struct("StorageAccount")
            .field("blob_endpoint", &self.blob_endpoint.as_str())
            .field("queue_endpoint", &self.queue_endpoint.as_str())
            .field("auth", &auth)
            .field("transactions", &self.transactions)
            .finish()
    }
}

/// Container and queue names: 3–63 characters, lower-case letters, digits and single dashes, not
/// starting or ending with a dash (the rules both services share).
pub fn validate_resource_name(what: &'static str, name: &str) -> Result<(), StorageError> {
    let bytes = name.as_bytes();
    let valid_chars = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let ok = (3..=63).contains(&bytes.len())
        && valid_chars
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidArgument {
            field: what,
            reason: format!(
                "`{name}` is not a valid {what} name (3-63 lower-case letters, digits and single \
                 dashes, starting and ending with a letter or digit)"
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resource_urls_have_single_slashes_for_both_url_styles() {
        for (conn, expected) in [
            (
                "UseDevelopmentStorage=true",
                "http://127.0.0.1:10000/devstoreaccount1/steps",
            ),
            (
                "AccountName=berthdata;AccountKey=a2V5",
                "https://berthdata.blob.core.windows.net/steps",
            ),
            (
                "AccountName=berthdata;AccountKey=a2V5;BlobEndpoint=https://x.example/acct/",
                "https://x.example/acct/steps",
            ),
        ] {
            let c = StorageConnection::parse("S", conn).unwrap();
            let account = StorageAccount::new(&c, None).unwrap();
            assert_eq!(
                account.resource_url(&c.blob_endpoint, "steps").as_str(),
                expected
            );
        }
    }

    #[test]
    fn sas_goes_into_the_query_and_not_into_debug() {
        let c = StorageConnection::parse(
            "S",
            "BlobEndpoint=https://a.blob.core.windows.net;QueueEndpoint=https://a.queue.core.windows.net;SharedAccessSignature=sv=2024-11-04&sig=c2VjcmV0",
        )
        .unwrap();
        let account = StorageAccount::new(&c, None).unwrap();
        let url = account.resource_url(&c.queue_endpoint, "q");
        assert_eq!(
            url.as_str(),
            "https://a.queue.core.windows.net/q?sv=2024-11-04&sig=c2VjcmV0"
        );
        assert!(!format!("{account:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn identity_connections_need_a_credential() {
        let lookup = |k: &str| (k == "S__accountName").then(|| "berthdata".to_string());
        let c = StorageConnection::from_settings("S", &lookup)
            .unwrap()
            .unwrap();
        let err = StorageAccount::new(&c, None).unwrap_err();
        assert!(
            err.to_string().contains("a token credential is required"),
            "{err}"
        );
    }

    #[test]
    fn resource_names_follow_the_service_rules() {
        for good in ["abc", "berth-steps", "a1-b2-c3", &"a".repeat(63)] {
            assert!(validate_resource_name("queue", good).is_ok(), "{good}");
        }
        for bad in ["ab", "-abc", "abc-", "a--b", "Abc", "a_b", &"a".repeat(64)] {
            let err = validate_resource_name("queue", bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid queue: "), "{err}");
        }
    }
}
