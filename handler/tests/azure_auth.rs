//! Authorization against a real Azurite: Shared Key signing (right and wrong key, endpoints with
//! and without a trailing `/`) and SAS connection strings with an account SAS we sign ourselves.
#![allow(clippy::unwrap_used)]

mod azure_support;

use azure_core::credentials::Secret;
use azure_support::{connection, unique};
use berth::azure_storage::connection::{DEVSTORE_ACCOUNT, DEVSTORE_KEY};
use berth::azure_storage::{
    StorageAccount, StorageConnection, StorageError, TagFilter, TagOp, Tags, TimeToLive,
    WriteCondition,
};
use bytes::Bytes;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A connection string for the same Azurite endpoints with the given auth part.
fn with_auth(base: &StorageConnection, auth: &str, trailing_slash: bool) -> String {
    let slash = if trailing_slash { "/" } else { "" };
    format!(
        "BlobEndpoint={}{slash};QueueEndpoint={}{slash};{auth}",
        base.blob_endpoint.as_str().trim_end_matches('/'),
        base.queue_endpoint.as_str().trim_end_matches('/'),
    )
}

/// An account SAS per "Create an account SAS" (version 2020-12-06 and later string-to-sign:
/// account, permissions, services, resource types, start, expiry, IP, protocol, version,
/// encryption scope, each followed by `\n`), signed with HMAC-SHA256 of the account key.
fn account_sas(permissions: &str, key: &str) -> String {
    let version = "2021-08-06";
    let expiry = (OffsetDateTime::now_utc() + time::Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    let to_sign =
        format!("{DEVSTORE_ACCOUNT}\n{permissions}\nbq\nsco\n\n{expiry}\n\n\n{version}\n\n");
    let signature = azure_core::hmac::hmac_sha256(&to_sign, &Secret::new(key.to_owned())).unwrap();
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sv", version)
        .append_pair("ss", "bq")
        .append_pair("srt", "sco")
        .append_pair("sp", permissions)
        .append_pair("se", &expiry)
        .append_pair("sig", &signature)
        .finish()
}

#[tokio::test]
async fn shared_key_signs_every_operation_and_a_wrong_key_is_refused() {
    let Some(base) = connection() else {
        return;
    };
    // The endpoints as given with and without a trailing `/` sign the same way.
    for trailing_slash in [false, true] {
        let conn = StorageConnection::parse(
            "TEST",
            &with_auth(
                &base,
                &format!("AccountName={DEVSTORE_ACCOUNT};AccountKey={DEVSTORE_KEY}"),
                trailing_slash,
            ),
        )
        .unwrap();
        let account = StorageAccount::new(&conn, None).unwrap();
        let c = account.container(&unique("sk")).unwrap();
        c.create_if_missing().await.unwrap();
        // Names with spaces, unicode and reserved characters exercise the canonicalized resource.
        let name = "dir one/naïve+name=1&x";
        c.put(
            name,
            Bytes::from_static(b"signed"),
            &WriteCondition::Create,
            &Tags::new(),
        )
        .await
        .unwrap();
        assert_eq!(&c.get(name).await.unwrap().unwrap().bytes[..], b"signed");
        let listed = c.list("dir one/", None, 10).await.unwrap();
        assert_eq!(listed.blobs[0].name, name);
    }

    let wrong_key = "d3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmc=";
    let conn = StorageConnection::parse(
        "TEST",
        &with_auth(
            &base,
            &format!("AccountName={DEVSTORE_ACCOUNT};AccountKey={wrong_key}"),
            false,
        ),
    )
    .unwrap();
    let account = StorageAccount::new(&conn, None).unwrap();
    let err = account
        .container(&unique("sk"))
        .unwrap()
        .create_if_missing()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err:?}");
    assert!(!err.is_transient());
    let shown = format!("{err:?} {err}");
    assert!(!shown.contains(wrong_key) && !shown.contains(DEVSTORE_KEY));

    let err = account
        .queue(&unique("sk"))
        .unwrap()
        .create_if_missing()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err:?}");
}

#[tokio::test]
async fn sas_connection_strings_reach_blobs_tags_and_queues() {
    let Some(base) = connection() else {
        return;
    };
    let sas = account_sas("rwdlacuptf", DEVSTORE_KEY);
    let conn = StorageConnection::parse(
        "TEST",
        &with_auth(&base, &format!("SharedAccessSignature={sas}"), true),
    )
    .unwrap();
    let account = StorageAccount::new(&conn, None).unwrap();

    let c = account.container(&unique("sas")).unwrap();
    assert!(c.create_if_missing().await.unwrap());
    let tags = Tags::from_pairs([("status", "Running")]).unwrap();
    let etag = c
        .put(
            "d/checkpoint",
            Bytes::from_static(b"v1"),
            &WriteCondition::Create,
            &tags,
        )
        .await
        .unwrap();
    c.put(
        "d/checkpoint",
        Bytes::from_static(b"v2"),
        &WriteCondition::Replace(etag.clone()),
        &tags,
    )
    .await
    .unwrap();
    let stale = c
        .put(
            "d/checkpoint",
            Bytes::from_static(b"v3"),
            &WriteCondition::Replace(etag),
            &tags,
        )
        .await
        .unwrap_err();
    assert!(stale.is_conflict());
    assert_eq!(
        &c.get("d/checkpoint").await.unwrap().unwrap().bytes[..],
        b"v2"
    );
    let found = c
        .find_by_tags(
            &TagFilter::new("status", TagOp::Eq, "Running").unwrap(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(found.blobs.len(), 1);

    let q = account.queue(&unique("sas")).unwrap();
    assert!(q.create_if_missing().await.unwrap());
    q.send("via sas", Duration::ZERO, TimeToLive::Never)
        .await
        .unwrap();
    let got = q
        .receive(1, Duration::from_secs(30))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(got.text, "via sas");
    q.delete(&got.receipt).await.unwrap();

    // Same SAS fields, signed with another key: refused.
    let forged = account_sas(
        "rwdlacuptf",
        "Zm9yZ2VkIGZvcmdlZCBmb3JnZWQgZm9yZ2VkIGZvcmdlZA==",
    );
    let conn = StorageConnection::parse(
        "TEST",
        &with_auth(&base, &format!("SharedAccessSignature={forged}"), false),
    )
    .unwrap();
    let err = StorageAccount::new(&conn, None)
        .unwrap()
        .container(&unique("sas"))
        .unwrap()
        .create_if_missing()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err:?}");

    // A read-only SAS cannot write.
    let read_only = account_sas("rl", DEVSTORE_KEY);
    let conn = StorageConnection::parse(
        "TEST",
        &with_auth(&base, &format!("SharedAccessSignature={read_only}"), false),
    )
    .unwrap();
    let ro = StorageAccount::new(&conn, None).unwrap();
    let err = ro
        .container(c.name())
        .unwrap()
        .put(
            "d/other",
            Bytes::from_static(b"x"),
            &WriteCondition::Create,
            &Tags::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::PutBlob { .. }), "{err:?}");
    assert_eq!(err.status(), Some(403));
}
