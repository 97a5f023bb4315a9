//! W3C trace context for deployments: every container gets a `TRACEPARENT` whose trace id is its
//! deployment's, and the handler's records of a step carry the same `trace.id`, so the containers'
//! own telemetry joins the deployment's in Application Insights (or any W3C-aware backend).
//!
//! The ids are derived, not stored: the trace id from the deployment id, the parent id from the
//! container group's name, both through SHA-256, so every process computes the same ones.

use sha2::{Digest, Sha256};

fn digest_hex(parts: &[&str], bytes: usize) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut hex: String = digest[..bytes].iter().map(|b| format!("{b:02x}")).collect();
    // All zeros is invalid in W3C trace context; 2^-128 (or 2^-64) away, but stated.
    if hex.bytes().all(|b| b == b'0') {
        hex.replace_range(hex.len() - 1.., "1");
    }
    hex
}

/// The trace id of a deployment: 32 lowercase hex digits.
pub fn trace_id(deployment: &str) -> String {
    digest_hex(&["berth-trace", deployment], 16)
}

/// The `traceparent` a container of container group `instance` gets: version 00, the
/// deployment's trace id, a parent id of the group, sampled.
pub fn traceparent(deployment: &str, instance: &str) -> String {
    format!(
        "00-{}-{}-01",
        trace_id(deployment),
        digest_hex(&["berth-span", deployment, instance], 8)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_w3c_shaped_and_name_their_deployment() {
        let parent = traceparent("job-1", "job-1-work-1-abcd1234");
        let parts: Vec<&str> = parent.split('-').collect();
        assert_eq!(parts.len(), 4, "{parent}");
        assert_eq!((parts[0], parts[3]), ("00", "01"));
        assert_eq!((parts[1].len(), parts[2].len()), (32, 16));
        assert!(
            parent
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(parts[1], trace_id("job-1"));
        // One trace per deployment, one parent per group; ids differ across deployments.
        let sibling = traceparent("job-1", "job-1-work-2-abcd1234");
        assert_eq!(sibling[3..35], parent[3..35]);
        assert_ne!(sibling, parent);
        assert_ne!(trace_id("job-2"), trace_id("job-1"));
        // Parts are length-prefixed: "a"+"bc" is not "ab"+"c".
        assert_ne!(traceparent("a", "bc"), traceparent("ab", "c"));
    }
}
