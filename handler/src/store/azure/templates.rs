//! [`Templates`] on Blob storage: every version of a template one blob, created with
//! `If-None-Match: *` (the compare-and-swap: two writers of one version cannot both win), named so
//! that the latest sorts first, and one empty marker blob per template for the listing.
//!
//! ```text
//! templates/{name}/v/{4294967295 - version, 10 digits}   a version's bytes, written once
//! template-names/{name}                                   empty: the template exists
//! ```
//!
//! # Guarantees
//! - A version is written once: its Put Blob is `If-None-Match: *`, and a second writer of the
//!   same version gets [`StoreError::Conflict`].
//! - A name is checked (the rules of a deployment id) before any blob name is built from it.
//! - A marker without a version (a put that failed after it, a delete under way) is not listed.
//!
//! # Costs (storage transactions)
//! - put: 1 Put Blob (the marker, unconditional) + 1 Put Blob (the version).
//! - get: the latest, 1 List Blobs (one name) + 1 Get Blob; a given version, 1 Get Blob.
//! - list: 1 List Blobs per page + 1 List Blobs per template listed (its latest version).
//! - delete: 1 List Blobs per 5,000 versions + 1 Delete Blob per version + 1 for the marker.

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobStore, backend};
use crate::azure_storage::{Tags, WriteCondition};
use crate::store::{
    StoreError, TemplatePage, Templates, check_template, parse_template_token, template_token,
};

/// Prefix of the template markers.
const MARKERS: &str = "template-names/";

fn versions_prefix(name: &str) -> String {
    format!("templates/{name}/v/")
}

fn version_blob(name: &str, version: u32) -> String {
    format!("{}{:010}", versions_prefix(name), u32::MAX - version)
}

/// The version a version blob's name holds.
fn parse_version(name: &str, blob: &str) -> Option<u32> {
    let digits = blob.strip_prefix(&versions_prefix(name))?;
    let inverted: u32 = digits.parse().ok().filter(|_| digits.len() == 10)?;
    Some(u32::MAX - inverted).filter(|v| *v > 0)
}

impl BlobStore {
    /// The latest version of `name` (one List Blobs).
    async fn latest_template(&self, name: &str) -> Result<Option<u32>, StoreError> {
        let page = self
            .container
            .list(&versions_prefix(name), None, 1)
            .await
            .map_err(backend("find a template's latest version", name))?;
        Ok(page
            .blobs
            .first()
            .and_then(|blob| parse_version(name, &blob.name)))
    }
}

#[async_trait]
impl Templates for BlobStore {
    async fn put_template(&self, name: &str, version: u32, body: &[u8]) -> Result<(), StoreError> {
        check_template(name, Some(version))?;
        let marker = format!("{MARKERS}{name}");
        self.container
            .put(
                &marker,
                Bytes::new(),
                &WriteCondition::Overwrite,
                &Tags::new(),
            )
            .await
            .map_err(backend("mark a template", name))?;
        self.container
            .put(
                &version_blob(name, version),
                Bytes::copy_from_slice(body),
                &WriteCondition::Create,
                &Tags::new(),
            )
            .await
            .map_err(backend("put a template", name))?;
        Ok(())
    }

    async fn get_template(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<(u32, Bytes)>, StoreError> {
        check_template(name, version)?;
        let version = match version {
            Some(v) => v,
            None => match self.latest_template(name).await? {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        let blob = self
            .container
            .get(&version_blob(name, version))
            .await
            .map_err(backend("read a template", name))?;
        Ok(blob.map(|b| (version, b.bytes)))
    }

    async fn list_templates(
        &self,
        top: usize,
        continuation: Option<&str>,
    ) -> Result<TemplatePage, StoreError> {
        let marker = continuation
            .map(|token| parse_template_token('m', token))
            .transpose()?;
        let top = u32::try_from(top.clamp(1, 1000)).unwrap_or(1000);
        let page = self
            .container
            .list(MARKERS, marker.as_deref(), top)
            .await
            .map_err(backend("list templates", MARKERS))?;
        let mut items = Vec::new();
        for blob in &page.blobs {
            let Some(name) = blob.name.strip_prefix(MARKERS) else {
                continue;
            };
            // A marker whose first version was never written (or whose versions were deleted).
            if let Some(version) = self.latest_template(name).await? {
                items.push((name.to_owned(), version));
            }
        }
        Ok(TemplatePage {
            items,
            continuation: page.next_marker.map(|m| template_token('m', &m)),
        })
    }

    async fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        check_template(name, None)?;
        let failed = backend("delete a template", name);
        let mut deleted = false;
        loop {
            let page = self
                .container
                .list(&versions_prefix(name), None, 5000)
                .await
                .map_err(&failed)?;
            if page.blobs.is_empty() {
                break;
            }
            for blob in &page.blobs {
                deleted |= self
                    .container
                    .delete(&blob.name, None)
                    .await
                    .map_err(&failed)?;
            }
        }
        self.container
            .delete(&format!("{MARKERS}{name}"), None)
            .await
            .map_err(&failed)?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_version_sorts_first_and_reads_back() {
        let (one, two) = (version_blob("t", 1), version_blob("t", 2));
        assert!(two < one);
        assert_eq!(parse_version("t", &one), Some(1));
        assert_eq!(
            parse_version("t", &version_blob("t", u32::MAX - 1)),
            Some(u32::MAX - 1)
        );
        assert_eq!(parse_version("t", "templates/t/v/x"), None);
        assert_eq!(parse_version("t", "templates/tt/v/4294967294"), None);
    }
}
