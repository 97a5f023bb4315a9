//! Container-group names: derived from the deployment (its id and random uid), group and
//! generation, so that creating the same instance twice names the same ARM resource (the create
//! is idempotent by name) and no two deployments ever name the same one.

use sha2::{Digest, Sha256};

/// ARM's limit for a container-group name.
pub const MAX_NAME: usize = 63;

/// The ARM name of a group's instance: `{id}-{group}-{generation}-{hash}`, the hash (8 hex
/// digits) taken over the deployment's uid, id, group and generation, each length-prefixed. Ids
/// and group names may both hold `-`, so `{id}-{group}` alone is ambiguous (`col-p` + `b-c` and
/// `col-p-b` + `c`); the hash tells them apart, and the uid tells apart deployments submitted
/// under one id one after the other. A name over 63 characters keeps a prefix of the readable
/// part. Without a uid (checkpoints from before it), the name is `{id}-{group}-{generation}`, as
/// their groups were named then.
pub fn aci_name(deployment: &str, uid: Option<&str>, group: &str, generation: u32) -> String {
    let Some(uid) = uid else {
        return legacy_name(deployment, group, generation);
    };
    let hash = hash(&[uid, deployment, group], &[generation]);
    readable(deployment, group, &format!("-{generation}-{hash}"))
}

/// The ARM name of instance `index` of a fanned-out group: `{id}-{group}-{index}-{generation}-{hash}`,
/// the hash over the deployment's uid, id, group, index and generation (the index behind a
/// marker no plain group name's hash has, so that group `a-1` and index 1 of group `a` differ).
pub fn instance_name(
    deployment: &str,
    uid: Option<&str>,
    group: &str,
    index: u32,
    generation: u32,
) -> String {
    let hash = hash(
        &[uid.unwrap_or(""), deployment, group, "#index"],
        &[index, generation],
    );
    readable(deployment, group, &format!("-{index}-{generation}-{hash}"))
}

/// 8 hex digits of SHA-256 over `parts` (each length-prefixed) and `numbers`.
fn hash(parts: &[&str], numbers: &[u32]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    for number in numbers {
        hasher.update(number.to_le_bytes());
    }
    hasher.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `{deployment}-{group}`, cut to leave room for `suffix` within 63 characters, then `suffix`.
fn readable(deployment: &str, group: &str, suffix: &str) -> String {
    let mut readable: String = format!("{deployment}-{group}")
        .chars()
        .take(MAX_NAME - suffix.len())
        .collect();
    while readable.ends_with('-') {
        readable.pop();
    }
    format!("{readable}{suffix}")
}

/// The name before deployments had a uid: `{id}-{group}-{generation}`, or a truncated prefix
/// with a hash of the full name past 63 characters.
fn legacy_name(deployment: &str, group: &str, generation: u32) -> String {
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
    fn names_read_plainly_and_carry_the_generation() {
        let name = aci_name("transcode-42", Some("u1"), "ffmpeg", 1);
        assert!(name.starts_with("transcode-42-ffmpeg-1-"), "{name}");
        assert_eq!(name.len(), "transcode-42-ffmpeg-1-".len() + 8);
        assert_eq!(
            aci_name("transcode-42", Some("u1"), "ffmpeg", 1),
            name,
            "deterministic"
        );
        assert_eq!(
            aci_name("transcode-42", None, "ffmpeg", 1),
            "transcode-42-ffmpeg-1"
        );
    }

    #[test]
    fn ids_and_groups_that_read_alike_get_different_names() {
        // Hole 5 of SECURITY.md: both were `col-p-b-c-1`, and the second PUT took over the first's group.
        let one = aci_name("col-p", Some("u"), "b-c", 1);
        let two = aci_name("col-p-b", Some("u"), "c", 1);
        assert_ne!(one, two);
        // The same id and group under another deployment (purged, submitted again).
        assert_ne!(
            aci_name("col-p", Some("u"), "b-c", 1),
            aci_name("col-p", Some("v"), "b-c", 1)
        );
        assert_ne!(one, aci_name("col-p", Some("u"), "b-c", 2));
    }

    #[test]
    fn long_names_fit_and_stay_distinct() {
        let id = "a".repeat(40);
        for uid in [Some("u"), None] {
            let one = aci_name(&id, uid, &"g".repeat(63), 1);
            let two = aci_name(&id, uid, &format!("{}h", "g".repeat(62)), 1);
            assert!(one.len() <= MAX_NAME && two.len() <= MAX_NAME);
            assert_ne!(one, two);
            assert_eq!(aci_name(&id, uid, &"g".repeat(63), 1), one, "deterministic");
            for name in [
                one,
                two,
                aci_name("b-".repeat(19).trim_end_matches('-'), uid, "x-y", 10),
                aci_name("b", uid, "x", 1),
            ] {
                validate::group_name(&name).unwrap();
            }
        }
    }
}
