//! What must hold for every input of Berth's parsers, beyond "no panic". The fuzz targets in
//! `fuzz_targets/` feed bytes to these checks; a failed assertion is a finding, as a panic is.
//!
//! # Layout
//! - [`spec`]: the spec parser (JSON and ACI YAML) and the secrets taken out of a spec.
//! - [`payload`]: the Functions host's invocation payloads.

pub mod payload;
pub mod spec;
