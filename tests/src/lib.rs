//! # End-to-end test support
//!
//! Harnesses shared by the end-to-end tests in `tests/tests/`.
