//! Blob index tags and the filters of Find Blobs by Tags.
//!
//! Tags are validated against the service's rules when built (at most 10 per blob; keys 1–128 and
//! values 0–256 characters of `a-z A-Z 0-9 space + - . : = _ /`), so a filter built from them can
//! never be broken by quoting: neither `'` nor `"` is a legal tag character. Tag values compare as
//! strings, so numbers and times must be written fixed-width to sort (RFC 3339 UTC with a fixed
//! number of fraction digits, zero-padded counters).

use super::error::StorageError;
use azure_storage_blob::models::{BlobTag, BlobTags};
use std::collections::BTreeMap;
use std::fmt;

/// At most this many tags per blob.
pub const MAX_TAGS: usize = 10;

/// A validated set of blob index tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(BTreeMap<String, String>);

impl Tags {
    /// No tags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a tag, checking the service's rules.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), StorageError> {
        let (key, value) = (key.into(), value.into());
        check_key(&key)?;
        check_value(&value)?;
        if !self.0.contains_key(&key) && self.0.len() == MAX_TAGS {
            return Err(StorageError::InvalidArgument {
                field: "tags",
                reason: format!("a blob has at most {MAX_TAGS} index tags"),
            });
        }
        self.0.insert(key, value);
        Ok(())
    }

    /// Builds tags from pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, StorageError> {
        let mut tags = Self::new();
        for (k, v) in pairs {
            tags.insert(k, v)?;
        }
        Ok(tags)
    }

    /// The value of one tag.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The number of tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tags, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The `x-ms-tags` header value: the tags URL-encoded as a query string.
    pub(crate) fn header_value(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.iter())
            .finish()
    }

    /// The body of Set Blob Tags.
    pub(crate) fn to_model(&self) -> BlobTags {
        BlobTags {
            blob_tag_set: Some(
                self.iter()
                    .map(|(k, v)| BlobTag {
                        key: Some(k.to_owned()),
                        value: Some(v.to_owned()),
                    })
                    .collect(),
            ),
        }
    }

    /// Tags as the service returned them (not re-validated: the service already accepted them).
    pub(crate) fn from_model(model: Option<BlobTags>) -> Self {
        Self(
            model
                .and_then(|t| t.blob_tag_set)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
                .collect(),
        )
    }
}

/// A comparison in a tag filter. Comparisons are lexicographic on strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOp {
    /// `=`
    Eq,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl TagOp {
    fn as_str(self) -> &'static str {
        match self {
            TagOp::Eq => "=",
            TagOp::Gt => ">",
            TagOp::Ge => ">=",
            TagOp::Lt => "<",
            TagOp::Le => "<=",
        }
    }
}

/// A Find Blobs by Tags expression: comparisons joined by `AND`, e.g.
/// `"status" = 'Running' AND "updated" >= '2025-01-01T00:00:00Z'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter(String);

impl TagFilter {
    /// A filter with one comparison.
    pub fn new(key: &str, op: TagOp, value: &str) -> Result<Self, StorageError> {
        Ok(Self(Self::clause(key, op, value)?))
    }

    /// Adds `AND key op 'value'`.
    pub fn and(mut self, key: &str, op: TagOp, value: &str) -> Result<Self, StorageError> {
        let clause = Self::clause(key, op, value)?;
        self.0.push_str(" AND ");
        self.0.push_str(&clause);
        Ok(self)
    }

    /// The expression as the service reads it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn clause(key: &str, op: TagOp, value: &str) -> Result<String, StorageError> {
        check_key(key)?;
        check_value(value)?;
        Ok(format!("\"{key}\" {} '{value}'", op.as_str()))
    }
}

impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn legal(c: char) -> bool {
    c.is_ascii_alphanumeric() || " +-.:=_/".contains(c)
}

fn check_key(key: &str) -> Result<(), StorageError> {
    if (1..=128).contains(&key.len()) && key.chars().all(legal) {
        Ok(())
    } else {
        Err(StorageError::InvalidArgument {
            field: "tag key",
            reason: format!(
                "`{key}` must be 1-128 characters of a-z A-Z 0-9 and space + - . : = _ /"
            ),
        })
    }
}

fn check_value(value: &str) -> Result<(), StorageError> {
    if value.len() <= 256 && value.chars().all(legal) {
        Ok(())
    } else {
        Err(StorageError::InvalidArgument {
            field: "tag value",
            reason: format!(
                "`{value}` must be at most 256 characters of a-z A-Z 0-9 and space + - . : = _ /"
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_service_rules() {
        let mut tags =
            Tags::from_pairs([("status", "Running"), ("updated", "2025-01-02T03:04:05Z")]).unwrap();
        assert_eq!(
            tags.header_value(),
            "status=Running&updated=2025-01-02T03%3A04%3A05Z"
        );
        assert!(tags.insert("bad'key", "x").is_err());
        assert!(tags.insert("k", "it's").is_err());
        assert!(tags.insert("", "x").is_err());
        assert!(tags.insert("k", "v".repeat(257)).is_err());
        for i in 0..8 {
            tags.insert(format!("k{i}"), "v").unwrap();
        }
        let err = tags.insert("one-too-many", "v").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid tags: a blob has at most 10 index tags"
        );
        tags.insert("status", "Done").unwrap();
        assert_eq!(tags.get("status"), Some("Done"));
    }

    #[test]
    fn filters_quote_keys_and_values() {
        let f = TagFilter::new("status", TagOp::Eq, "Running")
            .unwrap()
            .and("updated", TagOp::Ge, "2025-01-01T00:00:00Z")
            .unwrap();
        assert_eq!(
            f.as_str(),
            "\"status\" = 'Running' AND \"updated\" >= '2025-01-01T00:00:00Z'"
        );
        let err = TagFilter::new("status", TagOp::Eq, "x' OR 'a'='a").unwrap_err();
        assert!(err.to_string().starts_with("invalid tag value"), "{err}");
    }
}
