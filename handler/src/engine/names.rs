//! Container-group names: derived from deployment id, group and generation, so that creating the
//! same group twice names the same ARM resource (the create is idempotent by name).

use sha2::{Digest, Sha256};

/// ARM's limit for a container-group name.
pub const MAX_NAME: usize = 63;

/// The ARM name of a group's instance: `{id}-{group}-{generation}`, or, when that is longer than
/// 63 characters, a truncated prefix with a hash of the full name so that names stay unique.
pub fn aci_name(deployment: &str, group: &str, generation: u32) -> String {
    let full = format!("{deployment}-{group}-{generation}");
    if full.len() <= MAX_NAME {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let suffix = format!("-{hash}-{generation}");
    let mut prefix: String = full.chars().take(MAX_NAME - suffix.len()).collect();
    while prefix.ends_with('-') {
        prefix.pop();
    }
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::validate;

    #[test]
    fn short_names_read_plainly() {
        assert_eq!(
            aci_name("transcode-42", "ffmpeg", 1),
            "transcode-42-ffmpeg-1"
        );
    }

    #[test]
    fn long_names_fit_and_stay_distinct() {
        let id = "a".repeat(40);
        let one = aci_name(&id, &"g".repeat(63), 1);
        let two = aci_name(&id, &format!("{}h", "g".repeat(62)), 1);
        assert!(one.len() <= MAX_NAME && two.len() <= MAX_NAME);
        assert_ne!(one, two);
        assert_eq!(aci_name(&id, &"g".repeat(63), 1), one, "deterministic");
        for name in [
            one,
            two,
            aci_name("b-".repeat(19).trim_end_matches('-'), "x-y", 10),
        ] {
            validate::group_name(&name).unwrap();
        }
    }
}
