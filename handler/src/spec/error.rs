//! Spec errors: every one names the field it is about, as a path into the submitted document.

use std::fmt;

use serde_json::{Map, Value};

/// One problem with a spec, at a field path such as
/// `groups[0].properties.containers[1].properties.volumeMounts[0].name`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a spec (at least one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut errors = self.0.iter();
        if let Some(first) = errors.next() {
            write!(f, "{first}")?;
        }
        let more = self.0.len().saturating_sub(1);
        if more > 0 {
            write!(f, " (and {more} more)")?;
        }
        Ok(())
    }
}

impl SpecErrors {
    /// A single error.
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecErrors(vec![SpecError {
            field: field.into(),
            message: message.into(),
        }])
    }
}

/// A field path being built while walking a document.
#[derive(Clone, Debug, Default)]
pub struct FieldPath(String);

impl FieldPath {
    /// The root of the document.
    pub fn root() -> Self {
        FieldPath(String::new())
    }

    /// The path of a named member.
    pub fn key(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_owned())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// The path of an array element.
    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{i}]", self.0))
    }

    /// The path as text; the document itself is `(spec)`.
    pub fn as_str(&self) -> &str {
        if self.0.is_empty() { "(spec)" } else { &self.0 }
    }
}

/// Collects errors while a document is walked.
#[derive(Default)]
pub struct Problems(pub Vec<SpecError>);

impl Problems {
    /// Records a problem at `path`.
    pub fn add(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.0.push(SpecError {
            field: path.as_str().to_owned(),
            message: message.into(),
        });
    }

    /// Records each key left in `map` (once the fields it may have were taken out) as an unknown
    /// field, the message going on with `known`, which says what fields it may have.
    pub fn unknown_fields(&mut self, map: &Map<String, Value>, path: &FieldPath, known: &str) {
        for key in map.keys() {
            self.add(&path.key(key), format!("unknown field; {known}"));
        }
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), SpecErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(self.0))
        }
    }
}
