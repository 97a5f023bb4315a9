//! Shared Key authorization, as an `azure_core` pipeline policy.
//!
//! The 1.x storage crates only take Entra ID tokens (azure-sdk-for-rust issue #2975), but
//! `AzureWebJobsStorage` is usually an account-key string and Azurite only speaks Shared Key, so
//! Berth signs requests itself. [`SharedKeyPolicy`] goes into `ClientOptions::per_try_policies`,
//! which run after the retry policy, so every try gets a fresh `x-ms-date` and signature.
//!
//! The string to sign follows Microsoft's "Authorize with Shared Key" (Blob, Queue and File
//! services, version 2009-09-19 and later):
//!
//! ```text
//! VERB \n Content-Encoding \n Content-Language \n Content-Length (empty when 0) \n Content-MD5 \n
//! Content-Type \n Date \n If-Modified-Since \n If-Match \n If-None-Match \n If-Unmodified-Since \n
//! Range \n CanonicalizedHeaders CanonicalizedResource
//! ```
//!
//! - CanonicalizedHeaders: every `x-ms-*` header, name lower-cased, sorted, `name:value\n`, value
//!   trimmed.
//! - CanonicalizedResource: `/` + account + the URL's (still encoded) path, then for each query
//!   parameter, sorted by lower-cased name, `\nname:value` with the value URL-decoded and repeated
//!   values sorted and joined by `,`. For path-style URLs (Azurite) the path already starts with the
//!   account, so it appears twice, as the docs say it must for the emulator.
//!
//! The service URL must not end in `/` (see [`super::connection`]): a doubled slash in the request
//! path changes the canonicalized resource and the service refuses the signature.

use super::connection::AccountKey;
use async_trait::async_trait;
use azure_core::http::{
    Context, Request,
    headers::{HeaderName, Headers},
    policies::{Policy, PolicyResult},
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use time::OffsetDateTime;
use url::Url;

/// The standard headers of the string to sign, in order, after the verb.
const SIGNED_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// Signs every try of a request with the account key.
pub struct SharedKeyPolicy {
    account: String,
    key: AccountKey,
}

impl SharedKeyPolicy {
    /// A policy signing as `account` with `key`.
    pub fn new(account: impl Into<String>, key: AccountKey) -> Self {
        Self {
            account: account.into(),
            key,
        }
    }

    /// Sets `x-ms-date` and `Authorization` on `request`.
    pub fn sign(&self, request: &mut Request) -> azure_core::Result<()> {
        let now = OffsetDateTime::now_utc();
        request.insert_header("x-ms-date", azure_core::time::to_rfc7231(&now));
        let length = request.body().len().unwrap_or(0);
        let to_sign = string_to_sign(
            &self.account,
            request.method().as_str(),
            request.url(),
            request.headers(),
            length,
        );
        let signature = azure_core::hmac::hmac_sha256(&to_sign, self.key.secret())?;
        request.insert_header(
            "authorization",
            format!("SharedKey {}:{}", self.account, signature),
        );
        Ok(())
    }
}

impl fmt::Debug for SharedKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKeyPolicy")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        self.sign(request)?;
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// The Shared Key string to sign for a request. `body_length` is the length of the body that will
/// be sent (it becomes `Content-Length`; 0 and none both sign as empty, as from version
/// 2015-02-21 on).
pub fn string_to_sign(
    account: &str,
    method: &str,
    url: &Url,
    headers: &Headers,
    body_length: u64,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(&method.to_ascii_uppercase());
    out.push('\n');
    for name in SIGNED_HEADERS {
        let value = if name == "content-length" {
            let explicit = headers
                .get_optional_str(&HeaderName::from_static(name))
                .and_then(|v| v.trim().parse::<u64>().ok());
            match explicit.unwrap_or(body_length) {
                0 => String::new(),
                n => n.to_string(),
            }
        } else {
            headers
                .get_optional_str(&HeaderName::from_static(name))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        out.push_str(&value);
        out.push('\n');
    }
    out.push_str(&canonicalized_headers(headers));
    out.push_str(&canonicalized_resource(account, url));
    out
}

/// The CanonicalizedHeaders part: `x-ms-*` headers, lower-cased and sorted, each `name:value\n`.
pub fn canonicalized_headers(headers: &Headers) -> String {
    let mut ms: Vec<(String, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_ascii_lowercase(), value.as_str()))
        .filter(|(name, _)| name.starts_with("x-ms-"))
        .collect();
    ms.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (name, value) in ms {
        out.push_str(&name);
        out.push(':');
        out.push_str(&unfold(value));
        out.push('\n');
    }
    out
}

/// The CanonicalizedResource part: `/account/path` then `\nname:v1,v2` per query parameter.
pub fn canonicalized_resource(account: &str, url: &Url) -> String {
    let mut out = format!("/{account}{}", url.path());
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in url.query_pairs() {
        params
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.into_owned());
    }
    for (name, mut values) in params {
        values.sort();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

/// Header values sign trimmed, with runs of whitespace (folding) reduced to one space.
fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The expected strings come from Microsoft's "Authorize with Shared Key" page
    //! (learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key), sections
    //! "Content-Length header in version 2015-02-21 and later" and "Shared Key format for
    //! 2009-09-19 and later" (canonicalized resource examples).
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.insert(*k, v.to_string());
        }
        h
    }

    /// The request of the documentation's example: Get Container Metadata, with its date and version.
    fn docs_example() -> (Url, Headers) {
        let url = Url::parse(
            "https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata&timeout=20",
        )
        .unwrap();
        let h = headers(&[
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ("x-ms-version", "2015-02-21"),
        ]);
        (url, h)
    }

    #[test]
    fn docs_example_get_container_metadata_with_empty_content_length() {
        // "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n
        //  /myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20"
        let (url, h) = docs_example();
        assert_eq!(
            string_to_sign("myaccount", "GET", &url, &h, 0),
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20"
        );
    }

    #[test]
    fn docs_canonicalized_resource_examples() {
        let cases = [
            (
                "http://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata",
                "/myaccount/mycontainer\ncomp:metadata\nrestype:container",
            ),
            (
                "http://myaccount.blob.core.windows.net/container?restype=container&comp=list&include=snapshots&include=metadata&include=uncommittedblobs",
                "/myaccount/container\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\nrestype:container",
            ),
            (
                "https://myaccount-secondary.blob.core.windows.net/mycontainer/myblob",
                "/myaccount/mycontainer/myblob",
            ),
        ];
        for (url, expected) in cases {
            let url = Url::parse(url).unwrap();
            assert_eq!(canonicalized_resource("myaccount", &url), expected);
        }
    }

    #[test]
    fn emulator_paths_name_the_account_twice_and_query_names_are_lowercased_and_decoded() {
        let url = Url::parse(
            "http://127.0.0.1:10001/devstoreaccount1/berth-steps/messages/abc?popreceipt=AgAAAA%2B%2FbQ%3D%3D&VisibilityTimeout=30",
        )
        .unwrap();
        assert_eq!(
            canonicalized_resource("devstoreaccount1", &url),
            "/devstoreaccount1/devstoreaccount1/berth-steps/messages/abc\npopreceipt:AgAAAA+/bQ==\nvisibilitytimeout:30"
        );
    }

    #[test]
    fn standard_headers_sign_in_their_slots_and_ms_headers_sort() {
        let url = Url::parse("https://acct.blob.core.windows.net/c/b").unwrap();
        let h = headers(&[
            ("x-ms-version", "2026-02-06"),
            ("content-type", "application/octet-stream"),
            ("if-match", "\"0x8D\""),
            ("x-ms-blob-type", "BlockBlob"),
            ("x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT"),
            ("x-ms-meta-a", "  spaced    out  "),
        ]);
        assert_eq!(
            string_to_sign("acct", "put", &url, &h, 11),
            "PUT\n\n\n11\n\napplication/octet-stream\n\n\n\"0x8D\"\n\n\n\n\
             x-ms-blob-type:BlockBlob\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\n\
             x-ms-meta-a:spaced out\nx-ms-version:2026-02-06\n/acct/c/b"
        );
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Signature of the docs example above with Azurite's published key, computed separately with
        // Python: base64(hmac.new(b64decode(key), s.encode(), sha256).digest()).
        let (url, h) = docs_example();
        let s = string_to_sign("myaccount", "GET", &url, &h, 0);
        let key = AccountKey::new(super::super::connection::DEVSTORE_KEY).unwrap();
        let sig = azure_core::hmac::hmac_sha256(&s, key.secret()).unwrap();
        assert_eq!(sig, PYTHON_SIGNATURE);
    }

    const PYTHON_SIGNATURE: &str = "1u9lui2jDxj0+fpbHjQ5m5NnastJRSYM+PSmfi8TXx4=";
}
