//! Typed blob operations on one container, each one request (except where noted).
//!
//! What the stores need and nothing more: read with ETag, conditional write (the checkpoint CAS),
//! delete, list by prefix, append blobs, index tags. Every request goes through the account's
//! pipeline, so it is authorized, retried on transient failures and counted.
//!
//! # Guarantees
//! - [`BlobContainer::put`] with [`WriteCondition::Create`] or [`WriteCondition::Replace`] is one
//!   Put Blob whose content and index tags change atomically, or not at all:
//!   a lost precondition is [`StorageError::Conflict`], decided from the HTTP status (412, or 409
//!   for an existing blob on create), never from a message. Blobs above 4 MiB are uploaded in
//!   blocks and committed with the same condition.
//! - The SDK retries transient failures. If a conditional write succeeded but its answer was lost,
//!   the retry reports `Conflict` although the write is in: the caller's reload-and-reapply sees its
//!   own write, which is why writes must be idempotent.
//! - Find Blobs by Tags reads a secondary index that Azure updates asynchronously (usually within a
//!   second at low rates; Microsoft's blob index docs). A listing can lag a write; the blob itself
//!   (and Get Blob Tags) is always current. Its cost is one request per page of up to 5,000 matches,
//!   whatever the number of blobs that do not match; on Azurite it scans the container.

use super::error::{StorageError, http_status};
use super::tags::{TagFilter, Tags};
use azure_core::credentials::TokenCredential;
use azure_core::http::pager::Page;
use azure_core::http::{ClientOptions, Etag, Pager, XmlFormat};
use azure_storage_blob::models::{
    AppendBlobClientAppendBlockOptions, AppendBlobClientAppendBlockResultHeaders,
    AppendBlobClientCreateOptions, BlobClientDeleteOptions, BlobClientSetTagsOptions,
    BlobContainerClientFindBlobsByTagsOptions, BlobContainerClientListBlobsOptions,
    BlockBlobClientUploadOptions, ListBlobsIncludeItem,
};
use azure_storage_blob::{
    BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions,
};
use bytes::Bytes;
use futures::TryStreamExt as _;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use time::OffsetDateTime;
use url::Url;

/// Largest page a list or find request may ask for (the service's maximum).
pub const MAX_PAGE: u32 = 5000;

/// A blob's entity tag, as the service returned it (quotes included). Compare, never parse.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// Wraps an ETag string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The ETag as sent in `If-Match`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn to_sdk(&self) -> Etag {
        Etag::from(self.0.clone())
    }
}

impl From<Etag> for ETag {
    fn from(e: Etag) -> Self {
        Self(e.to_string())
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({})", self.0)
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The precondition of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// Only if no blob of that name exists (`If-None-Match: *`).
    Create,
    /// Only if the blob still has this ETag (`If-Match`).
    Replace(ETag),
    /// Unconditionally.
    Overwrite,
}

/// A blob read with its ETag.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The content.
    pub bytes: Bytes,
    /// The ETag to write it back with.
    pub etag: ETag,
    /// Its metadata (the `x-ms-meta-*` headers, names without the prefix), which Get Blob
    /// returns with the content, unlike its tags.
    pub metadata: std::collections::HashMap<String, String>,
}

/// One entry of a listing.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    /// The blob name.
    pub name: String,
    /// Its ETag.
    pub etag: Option<ETag>,
    /// When it last changed.
    pub last_modified: Option<OffsetDateTime>,
    /// Its size in bytes.
    pub size: Option<u64>,
    /// Its metadata, when the listing asked for it ([`BlobContainer::list_with_metadata`]);
    /// empty otherwise.
    pub metadata: std::collections::HashMap<String, String>,
}

/// One page of a listing; pass `next_marker` back to get the next.
#[derive(Debug, Clone)]
pub struct BlobPage {
    /// The blobs of this page, in name order.
    pub blobs: Vec<BlobInfo>,
    /// The continuation, `None` on the last page.
    pub next_marker: Option<String>,
}

/// A blob found by its tags.
#[derive(Debug, Clone)]
pub struct TaggedBlob {
    /// The blob name.
    pub name: String,
    /// The tags the filter matched (the service returns only those).
    pub tags: Tags,
}

/// One page of Find Blobs by Tags.
#[derive(Debug, Clone)]
pub struct TagPage {
    /// The matches of this page, in name order.
    pub blobs: Vec<TaggedBlob>,
    /// The continuation, `None` on the last page.
    pub next_marker: Option<String>,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Where the block landed (the blob's length before it).
    pub offset: u64,
    /// The blob's ETag after the append.
    pub etag: ETag,
}

/// One container of the account.
pub struct BlobContainer {
    name: String,
    client: BlobContainerClient,
    url: Url,
    credential: Option<Arc<dyn TokenCredential>>,
    options: ClientOptions,
}

impl BlobContainer {
    pub(crate) fn new(
        name: &str,
        url: Url,
        credential: Option<Arc<dyn TokenCredential>>,
        options: ClientOptions,
    ) -> Result<Self, StorageError> {
        let client = BlobContainerClient::new(
            url.clone(),
            credential.clone(),
            Some(BlobContainerClientOptions {
                client_options: options.clone(),
                ..Default::default()
            }),
        )
        .map_err(|source| StorageError::Client {
            service: "blob",
            name: name.into(),
            source: source.into(),
        })?;
        Ok(Self {
            name: name.into(),
            client,
            url,
            credential,
            options,
        })
    }

    /// The container name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the container; `Ok(false)` if it already existed.
    pub async fn create_if_missing(&self) -> Result<bool, StorageError> {
        match self.client.create(None).await {
            Ok(_) => Ok(true),
            Err(e) if http_status(&e) == Some(409) => Ok(false),
            Err(source) => Err(StorageError::CreateContainer {
                container: self.name.clone(),
                source: source.into(),
            }),
        }
    }

    /// Reads a blob and its ETag; `Ok(None)` if it does not exist. One request (two for an empty
    /// blob: the ranged read of an empty blob is refused and repeated without a range).
    pub async fn get(&self, name: &str) -> Result<Option<Blob>, StorageError> {
        let client = self.blob(name)?;
        let failed = |source: azure_core::Error| StorageError::GetBlob {
            name: name.into(),
            source: source.into(),
        };
        let result = match client.download(None).await {
            Ok(r) => r,
            Err(e) if http_status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        let etag = result
            .properties
            .etag
            .clone()
            .ok_or(StorageError::MissingInResponse {
                operation: "Get Blob",
                field: "ETag",
            })?;
        let metadata = result.properties.metadata.clone();
        let bytes = result.body.collect().await.map_err(failed)?;
        Ok(Some(Blob {
            bytes,
            etag: etag.into(),
            metadata,
        }))
    }

    /// Writes a block blob under `condition`, setting its index tags in the same request, and
    /// returns the new ETag. See the module's guarantees.
    pub async fn put(
        &self,
        name: &str,
        bytes: Bytes,
        condition: &WriteCondition,
        tags: &Tags,
    ) -> Result<ETag, StorageError> {
        self.put_with_metadata(name, bytes, condition, tags, &[])
            .await
    }

    /// [`Self::put`], replacing the blob's metadata with `metadata` in the same request. Names
    /// must be C# identifiers and values header-safe ASCII, as the service requires.
    pub async fn put_with_metadata(
        &self,
        name: &str,
        bytes: Bytes,
        condition: &WriteCondition,
        tags: &Tags,
        metadata: &[(&str, String)],
    ) -> Result<ETag, StorageError> {
        let client = self.blob(name)?;
        let mut options = BlockBlobClientUploadOptions::default();
        if !metadata.is_empty() {
            options.metadata = Some(
                metadata
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            );
        }
        match condition {
            WriteCondition::Create => options.if_none_match = Some(Etag::from("*")),
            WriteCondition::Replace(etag) => options.if_match = Some(etag.to_sdk()),
            WriteCondition::Overwrite => {}
        }
        if !tags.is_empty() {
            options.blob_tags_string = Some(tags.header_value());
        }
        match client
            .block_blob_client()
            .upload(bytes.into(), Some(options))
            .await
        {
            Ok(result) => result
                .etag
                .map(ETag::from)
                .ok_or(StorageError::MissingInResponse {
                    operation: "Put Blob",
                    field: "ETag",
                }),
            Err(e) => Err(
                self.conflict_or(name, condition, e, |source| StorageError::PutBlob {
                    name: name.into(),
                    source: source.into(),
                }),
            ),
        }
    }

    /// Deletes a blob (and its snapshots), only if it still has `if_match` when given.
    /// `Ok(false)` if it did not exist.
    pub async fn delete(&self, name: &str, if_match: Option<&ETag>) -> Result<bool, StorageError> {
        let client = self.blob(name)?;
        let options = BlobClientDeleteOptions {
            if_match: if_match.map(ETag::to_sdk),
            ..Default::default()
        };
        match client.delete(Some(options)).await {
            Ok(_) => Ok(true),
            Err(e) if http_status(&e) == Some(404) => Ok(false),
            Err(e) if http_status(&e) == Some(412) => Err(StorageError::Conflict {
                name: name.into(),
                status: 412,
            }),
            Err(source) => Err(StorageError::DeleteBlob {
                name: name.into(),
                source: source.into(),
            }),
        }
    }

    /// One page (at most `max`, up to [`MAX_PAGE`]) of the blobs whose names start with `prefix`,
    /// continuing after `marker` when given. One request.
    pub async fn list(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max: u32,
    ) -> Result<BlobPage, StorageError> {
        self.list_page(prefix, marker, max, false).await
    }

    /// [`Self::list`] with each blob's metadata (`include=metadata`), in the same one request.
    pub async fn list_with_metadata(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max: u32,
    ) -> Result<BlobPage, StorageError> {
        self.list_page(prefix, marker, max, true).await
    }

    async fn list_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
        max: u32,
        metadata: bool,
    ) -> Result<BlobPage, StorageError> {
        let failed = |source: azure_core::Error| StorageError::ListBlobs {
            container: self.name.clone(),
            prefix: prefix.into(),
            source: source.into(),
        };
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            marker: marker.map(str::to_owned),
            maxresults: Some(page_size(max)?),
            include: metadata.then(|| vec![ListBlobsIncludeItem::Metadata]),
            ..Default::default()
        };
        let Some(page) = first_page(self.client.list_blobs(Some(options)), failed).await? else {
            return Ok(BlobPage {
                blobs: Vec::new(),
                next_marker: None,
            });
        };
        let blobs = page
            .blob_items
            .into_iter()
            .filter_map(|item| {
                let props = item.properties;
                Some(BlobInfo {
                    name: item.name?,
                    etag: props.as_ref().and_then(|p| p.etag.clone()).map(ETag::from),
                    last_modified: props.as_ref().and_then(|p| p.last_modified),
                    size: props.as_ref().and_then(|p| p.content_length),
                    metadata: item.metadata.and_then(|m| m.values).unwrap_or_default(),
                })
            })
            .collect();
        Ok(BlobPage {
            blobs,
            next_marker: page.next_marker.filter(|m| !m.is_empty()),
        })
    }

    /// Creates an empty append blob with `tags`; `Conflict` if it exists and `condition` is
    /// [`WriteCondition::Create`].
    pub async fn create_append(
        &self,
        name: &str,
        condition: &WriteCondition,
        tags: &Tags,
    ) -> Result<ETag, StorageError> {
        let client = self.blob(name)?.append_blob_client();
        let mut options = AppendBlobClientCreateOptions::default();
        match condition {
            WriteCondition::Create => options.if_none_match = Some(Etag::from("*")),
            WriteCondition::Replace(etag) => options.if_match = Some(etag.to_sdk()),
            WriteCondition::Overwrite => {}
        }
        if !tags.is_empty() {
            options.blob_tags_string = Some(tags.header_value());
        }
        match client.create(Some(options)).await {
            Ok(rsp) => header_etag(rsp.headers(), "Put Blob (append)"),
            Err(e) => Err(self.conflict_or(name, condition, e, |source| {
                StorageError::CreateAppendBlob {
                    name: name.into(),
                    source: source.into(),
                }
            })),
        }
    }

    /// Appends one block (at most 4 MiB) to an append blob. With `expected_offset`, the append
    /// happens only if the blob is exactly that long (`x-ms-blob-condition-appendpos`), otherwise it
    /// is a `Conflict`: a retried append that already landed cannot land twice.
    pub async fn append(
        &self,
        name: &str,
        bytes: Bytes,
        expected_offset: Option<u64>,
    ) -> Result<Appended, StorageError> {
        let client = self.blob(name)?.append_blob_client();
        let position = match expected_offset.map(i64::try_from).transpose() {
            Ok(p) => p,
            Err(_) => {
                return Err(StorageError::InvalidArgument {
                    field: "expected_offset",
                    reason: "exceeds the largest blob size".into(),
                });
            }
        };
        let options = AppendBlobClientAppendBlockOptions {
            append_position: position,
            ..Default::default()
        };
        let len = bytes.len() as u64;
        match client.append_block(bytes.into(), len, Some(options)).await {
            Ok(rsp) => {
                let offset = rsp
                    .blob_append_offset()
                    .ok()
                    .flatten()
                    .and_then(|o| o.parse::<u64>().ok())
                    .ok_or(StorageError::MissingInResponse {
                        operation: "Append Block",
                        field: "x-ms-blob-append-offset",
                    })?;
                let etag = header_etag(rsp.headers(), "Append Block")?;
                Ok(Appended { offset, etag })
            }
            Err(e) if http_status(&e) == Some(412) => Err(StorageError::Conflict {
                name: name.into(),
                status: 412,
            }),
            Err(source) => Err(StorageError::AppendBlock {
                name: name.into(),
                source: source.into(),
            }),
        }
    }

    /// Replaces a blob's index tags (without changing its content or ETag).
    pub async fn set_tags(&self, name: &str, tags: &Tags) -> Result<(), StorageError> {
        let client = self.blob(name)?;
        let failed = |source: azure_core::Error| StorageError::SetTags {
            name: name.into(),
            source: source.into(),
        };
        let body = tags.to_model().try_into().map_err(failed)?;
        client
            .set_tags(body, Some(BlobClientSetTagsOptions::default()))
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// A blob's index tags, as of now (not the possibly lagging index).
    pub async fn get_tags(&self, name: &str) -> Result<Tags, StorageError> {
        let client = self.blob(name)?;
        let failed = |source: azure_core::Error| StorageError::GetTags {
            name: name.into(),
            source: source.into(),
        };
        let model = client
            .get_tags(None)
            .await
            .map_err(failed)?
            .into_model()
            .map_err(failed)?;
        Ok(Tags::from_model(Some(model)))
    }

    /// One page of the blobs of this container whose index tags match `filter`. One request.
    pub async fn find_by_tags(
        &self,
        filter: &TagFilter,
        marker: Option<&str>,
        max: u32,
    ) -> Result<TagPage, StorageError> {
        let failed = |source: azure_core::Error| StorageError::FindByTags {
            container: self.name.clone(),
            source: source.into(),
        };
        let options = BlobContainerClientFindBlobsByTagsOptions {
            marker: marker.map(str::to_owned),
            maxresults: Some(page_size(max)?),
            ..Default::default()
        };
        let pager = self
            .client
            .find_blobs_by_tags(filter.as_str(), Some(options));
        let Some(page) = first_page(pager, failed).await? else {
            return Ok(TagPage {
                blobs: Vec::new(),
                next_marker: None,
            });
        };
        let blobs = page
            .blob_items
            .into_iter()
            .filter_map(|item| {
                Some(TaggedBlob {
                    name: item.name?,
                    tags: Tags::from_model(item.tags),
                })
            })
            .collect();
        Ok(TagPage {
            blobs,
            next_marker: page.next_marker.filter(|m| !m.is_empty()),
        })
    }

    /// A client for one blob. The URL keeps `/` in names as path separators (as the other SDKs
    /// do) and percent-encodes everything else a path segment cannot hold.
    fn blob(&self, name: &str) -> Result<BlobClient, StorageError> {
        validate_blob_name(name)?;
        let mut url = self.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(name.split('/'));
        }
        BlobClient::new(
            url,
            self.credential.clone(),
            Some(BlobClientOptions {
                client_options: self.options.clone(),
                ..Default::default()
            }),
        )
        .map_err(|source| StorageError::Client {
            service: "blob",
            name: name.into(),
            source: source.into(),
        })
    }

    /// A failed conditional write: a conflict when the status says the condition lost, otherwise
    /// the operation's own error.
    fn conflict_or(
        &self,
        name: &str,
        condition: &WriteCondition,
        error: azure_core::Error,
        otherwise: impl FnOnce(azure_core::Error) -> StorageError,
    ) -> StorageError {
        match (http_status(&error), condition) {
            (Some(412), WriteCondition::Create | WriteCondition::Replace(_))
            | (Some(409), WriteCondition::Create) => StorageError::Conflict {
                name: name.into(),
                status: http_status(&error).unwrap_or(412),
            },
            _ => otherwise(error),
        }
    }
}

impl fmt::Debug for BlobContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobContainer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn header_etag(
    headers: &azure_core::http::headers::Headers,
    operation: &'static str,
) -> Result<ETag, StorageError> {
    headers
        .get_optional_str(&azure_core::http::headers::ETAG)
        .map(ETag::new)
        .ok_or(StorageError::MissingInResponse {
            operation,
            field: "ETag",
        })
}

/// The first page of a listing, read as its model: one request, whatever the pager would fetch
/// next is left to the caller's marker. `None` when the service answered no page at all.
async fn first_page<M>(
    pager: azure_core::Result<Pager<M, XmlFormat>>,
    failed: impl Fn(azure_core::Error) -> StorageError,
) -> Result<Option<M>, StorageError>
where
    M: Page + DeserializeOwned + Send,
{
    let mut pages = pager.map_err(&failed)?.into_pages();
    match pages.try_next().await.map_err(&failed)? {
        Some(page) => Ok(Some(page.into_model().map_err(&failed)?)),
        None => Ok(None),
    }
}

fn page_size(max: u32) -> Result<i32, StorageError> {
    if (1..=MAX_PAGE).contains(&max) {
        Ok(max as i32)
    } else {
        Err(StorageError::InvalidArgument {
            field: "max",
            reason: format!("a page holds 1 to {MAX_PAGE} entries, not {max}"),
        })
    }
}

/// Blob names: 1–1024 characters, `/`-separated parts that are neither empty nor `.`/`..` (such
/// parts would be rewritten by URL normalization and address another blob).
pub fn validate_blob_name(name: &str) -> Result<(), StorageError> {
    let parts_ok = name
        .split('/')
        .all(|p| !p.is_empty() && p != "." && p != "..");
    if (1..=1024).contains(&name.len()) && parts_ok {
        Ok(())
    } else {
        Err(StorageError::InvalidArgument {
            field: "blob name",
            reason: format!(
                "`{name}` must be 1-1024 characters of `/`-separated parts, none empty, `.` or `..`"
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blob_names_are_checked() {
        for good in ["a", "deployments/d-1/checkpoint", "x y/z%"] {
            assert!(validate_blob_name(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a", &"a".repeat(1025)] {
            assert!(validate_blob_name(bad).is_err(), "{bad}");
        }
    }
}
