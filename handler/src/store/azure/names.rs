//! Where things live in the container, and how index values are written so that string order is
//! time order. Pure functions, no I/O.
//!
//! ```text
//! deployments/{id}/checkpoint                        the record's bytes, its index fields as tags and metadata
//! deployments/{id}/logs/{group}/{instance}/{container}   captured logs, one block blob each
//! index/all/{inverted created}-{id}                  empty, metadata `status`: a deployment that ended
//! index/status/{Status}/{inverted created}-{id}      empty: written by earlier Berths, only purged
//! run-times/{digest}                                 a group spec's learned run time (JSON)
//! templates/{name}/v/{inverted version}, template-names/{name}   templates (see [`super::templates`])
//! schedules/{name}                                   a schedule (JSON)
//! ```
//!
//! A deployment has one listing entry, written when it ends (see [`indexed`]), its status in the
//! entry's metadata ([`ENTRY_STATUS`]). Live statuses (`Pending`, `Running`) have no entries: they
//! are found by the checkpoints' own `status` tag, and the unfiltered listing merges them with the
//! entries (see [`super::index`]). Earlier Berths wrote an `index/all/` entry without metadata at
//! every create and an `index/status/` entry at the end: the first is read as an entry whose status
//! is told by its checkpoint, the second is only purged.
//!
//! A checkpoint's index fields ([`index_fields`], read back by [`parse_record`]) are written twice in its Put Blob: as tags, which
//! Find Blobs by Tags searches, and as metadata, which Get Blob returns with the bytes (tags need a
//! request of their own). Checkpoints written before the metadata have only the tags.
//!
//! Times are Unix milliseconds written as 15 zero-padded digits (good until the year 33658); an
//! inverted time is `999999999999999 - t`, so ascending names list the newest first.

use bytes::Bytes;

use crate::spec::validate;
use crate::store::{Millis, Record, Status, Wake};

/// Digits of a written time.
const WIDTH: usize = 15;
/// The largest time that can be written.
const LAST: Millis = 999_999_999_999_999;

/// Tag keys on a checkpoint blob.
pub const TAG_STATUS: &str = "status";
/// When the checkpoint was created.
pub const TAG_CREATED: &str = "created";
/// `{at}/{seq}` of the next step, only while one is due.
pub const TAG_WAKE: &str = "wake";
/// When the checkpoint ended ([`Record::ended`]), only once it has.
pub const TAG_ENDED: &str = "ended";

/// A time as 15 digits (negative times are written as 0).
pub fn time(t: Millis) -> String {
    format!("{:0WIDTH$}", t.clamp(0, LAST))
}

/// Whether `id` can be a deployment id. Anything else (from a URL, say) names no blob, so it is
/// answered as "no such deployment" instead of reaching the service.
pub fn valid_id(id: &str) -> bool {
    validate::deployment_id(id).is_ok()
}

/// The checkpoint blob of `id`.
pub fn checkpoint(id: &str) -> String {
    format!("deployments/{id}/checkpoint")
}

/// The prefix of everything stored under `id` (checkpoint and logs).
pub fn deployment_prefix(id: &str) -> String {
    format!("deployments/{id}/")
}

/// The blob of the learned run time of the group spec with `digest`.
pub fn run_time(digest: &str) -> String {
    format!("run-times/{digest}")
}

/// The prefix of every schedule.
pub const SCHEDULES: &str = "schedules/";

/// The blob of schedule `name`.
pub fn schedule(name: &str) -> String {
    format!("{SCHEDULES}{name}")
}

/// Page `page` of `id`'s archived history.
pub fn history(id: &str, page: u32) -> String {
    format!("deployments/{id}/history/{page:06}")
}

/// The prefix of `id`'s logs.
pub fn logs_prefix(id: &str) -> String {
    format!("deployments/{id}/logs/")
}

/// The log blob of one container of one instance.
pub fn logs(id: &str, group: &str, instance: &str, container: &str) -> String {
    format!("deployments/{id}/logs/{group}/{instance}/{container}")
}

/// One log blob's parts below [`logs_prefix`]: `(group, instance, container)`.
pub fn parse_logs<'a>(id: &str, name: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
    let rest = name.strip_prefix(&logs_prefix(id))?;
    let mut parts = rest.split('/');
    let (group, instance, container) = (parts.next()?, parts.next()?, parts.next()?);
    parts
        .next()
        .is_none()
        .then_some((group, instance, container))
}

/// The id of a checkpoint blob name.
pub fn checkpoint_id(name: &str) -> Option<&str> {
    name.strip_prefix("deployments/")?
        .strip_suffix("/checkpoint")
        .filter(|id| valid_id(id))
}

/// Whether `status` is live: one the listing finds by the checkpoints' `status` tag, in the range
/// [`LIVE_AFTER`] .. [`LIVE_BEFORE`].
pub fn live(status: Status) -> bool {
    matches!(status, Status::Pending | Status::Running)
}

/// Whether a deployment in `status` has a listing entry: every status the live tag range does not
/// find (the terminal ones, and `Unknown` as this Berth writes it), so that the unfiltered listing
/// finds it by the entry. Live deployments are found by tag, so a deployment's way from `Pending`
/// through `Running` writes no entries.
pub fn indexed(status: Status) -> bool {
    !live(status)
}

/// The status word just below the live ones: the tag query of live checkpoints asks for
/// `LIVE_AFTER < status < LIVE_BEFORE` (one Find; a filter has neither "or" nor "not").
pub const LIVE_AFTER: Status = Status::Failed;
/// The status word just above the live ones.
pub const LIVE_BEFORE: Status = Status::Succeeded;

/// The prefix of the listing entries.
pub const ENTRIES: &str = "index/all/";

/// The metadata key of an entry's status (metadata names must be C# identifiers).
pub const ENTRY_STATUS: &str = "status";

/// The prefix of the status index of `status` that earlier Berths wrote: only purged.
pub fn status_prefix(status: Status) -> String {
    format!("index/status/{}/", status.as_str())
}

/// The entry name below an index prefix: newest first, then by id.
fn entry(created: Millis, id: &str) -> String {
    format!("{}-{id}", time(LAST - created.clamp(0, LAST)))
}

/// `d`'s listing entry (the name earlier Berths gave the entry they wrote at create).
pub fn all_entry(created: Millis, id: &str) -> String {
    format!("{ENTRIES}{}", entry(created, id))
}

/// `d`'s entry in the index of `status` that earlier Berths wrote: only purged.
pub fn status_entry(status: Status, created: Millis, id: &str) -> String {
    format!("{}{}", status_prefix(status), entry(created, id))
}

/// An entry's `(created, id)`, from its name below `prefix`.
pub fn parse_entry<'a>(prefix: &str, name: &'a str) -> Option<(Millis, &'a str)> {
    let rest = name.strip_prefix(prefix)?;
    let (inverted, id) = rest.split_at_checked(WIDTH)?;
    let id = id.strip_prefix('-').filter(|id| valid_id(id))?;
    let inverted: Millis = inverted.parse().ok()?;
    Some((LAST - inverted, id))
}

/// The `wake` tag value: the due time, then the seq the step message carries. Compared with a
/// bare [`time`], it is smaller exactly when the due time is earlier.
pub fn wake(at: Millis, seq: u64) -> String {
    format!("{}/{seq}", time(at))
}

/// A `wake` tag value read back: `(at, seq)`.
pub fn parse_wake(value: &str) -> Option<(Millis, u64)> {
    let (at, seq) = value.split_once('/')?;
    Some((at.parse().ok()?, seq.parse().ok()?))
}

/// A record's index fields as `(key, value)` pairs, written as both its tags and its metadata:
/// fixed-width values, so that string order is time order.
pub fn index_fields(record: &Record) -> Vec<(&'static str, String)> {
    let mut pairs = vec![
        (TAG_STATUS, record.status.as_str().to_owned()),
        (TAG_CREATED, time(record.created)),
    ];
    if let Some(w) = record.wake {
        pairs.push((TAG_WAKE, wake(w.at, w.seq)));
    }
    if let Some(ended) = record.ended {
        pairs.push((TAG_ENDED, time(ended)));
    }
    pairs
}

/// The record of checkpoint `id` with bytes `body`, its index fields read back from its tags or
/// metadata (`field` looks one up); the name of the first field missing or unreadable otherwise.
pub fn parse_record<'a>(
    id: &str,
    body: Bytes,
    field: impl Fn(&str) -> Option<&'a str>,
) -> Result<Record, &'static str> {
    let status = field(TAG_STATUS).map(Status::read).ok_or(TAG_STATUS)?;
    let created = field(TAG_CREATED)
        .and_then(|v| v.parse().ok())
        .ok_or(TAG_CREATED)?;
    let wake = match field(TAG_WAKE) {
        Some(v) => {
            let (at, seq) = parse_wake(v).ok_or(TAG_WAKE)?;
            Some(Wake { at, seq })
        }
        None => None,
    };
    let ended = match field(TAG_ENDED) {
        Some(v) => Some(v.parse().map_err(|_| TAG_ENDED)?),
        None => None,
    };
    Ok(Record {
        id: id.to_owned(),
        status,
        created,
        wake,
        ended,
        body,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entries_sort_newest_first_and_read_back() {
        let prefix = status_prefix(Status::Succeeded);
        let older = status_entry(Status::Succeeded, 1_700_000_000_000, "b");
        let newer = status_entry(Status::Succeeded, 1_700_000_000_001, "a");
        assert!(newer < older);
        assert_eq!(newer, "index/status/Succeeded/998299999999998-a");
        assert_eq!(parse_entry(&prefix, &newer), Some((1_700_000_000_001, "a")));
        assert_eq!(
            all_entry(1_700_000_000_001, "a"),
            "index/all/998299999999998-a",
            "as earlier Berths wrote it"
        );
        let running = status_entry(Status::Running, 5, "job-1");
        assert_eq!(
            parse_entry(&status_prefix(Status::Running), &running),
            Some((5, "job-1"))
        );
        assert_eq!(parse_entry(&prefix, &format!("{prefix}12-x")), None);
        assert_eq!(
            parse_entry(&prefix, &format!("{prefix}999999999999999-Bad")),
            None
        );
    }

    #[test]
    fn wake_values_compare_with_times_as_their_due_times_do() {
        let due = wake(1_000, 7);
        assert_eq!(due, "000000000001000/7");
        assert!(due.as_str() < time(1_001).as_str());
        assert!(
            due.as_str() >= time(1_000).as_str(),
            "not before its own time"
        );
        assert!(due.as_str() > time(999).as_str());
        assert_eq!(parse_wake(&due), Some((1_000, 7)));
        assert_eq!(time(-5), "000000000000000");
    }

    #[test]
    fn index_fields_read_back_as_the_record() {
        let record = Record {
            id: "job-1".into(),
            status: Status::TimedOut,
            created: 1_700_000_000_000,
            wake: Some(Wake { at: 1_000, seq: 7 }),
            ended: Some(1_700_000_000_500),
            body: Bytes::from_static(b"opaque"),
        };
        let fields = index_fields(&record);
        let field = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            parse_record("job-1", record.body.clone(), field),
            Ok(record)
        );
        // A status word of a newer Berth reads as Unknown; a missing one is an error.
        let newer = parse_record("job-1", Bytes::new(), |k| match k {
            TAG_STATUS => Some("Sleeping"),
            TAG_CREATED => Some("000000000000005"),
            _ => None,
        });
        assert_eq!(newer.map(|r| r.status), Ok(Status::Unknown));
        assert_eq!(
            parse_record("job-1", Bytes::new(), |k| (k == TAG_CREATED)
                .then_some("000000000000005")),
            Err(TAG_STATUS)
        );
        assert_eq!(
            parse_record("job-1", Bytes::new(), |k| match k {
                TAG_STATUS => Some("Running"),
                TAG_CREATED => Some("000000000000005"),
                TAG_WAKE => Some("soon"),
                _ => None,
            }),
            Err(TAG_WAKE)
        );
    }

    #[test]
    fn names_read_back() {
        assert_eq!(checkpoint_id(&checkpoint("job-1")), Some("job-1"));
        assert_eq!(checkpoint_id("deployments/job-1/logs/x"), None);
        let name = logs("job-1", "work", "job-1-work-2", "main");
        assert_eq!(
            parse_logs("job-1", &name),
            Some(("work", "job-1-work-2", "main"))
        );
        assert_eq!(parse_logs("job-1", "deployments/job-1/logs/a/b"), None);
        assert!(!valid_id("../x") && !valid_id("a/b") && !valid_id(""));
    }

    #[test]
    fn the_live_range_holds_exactly_the_live_statuses() {
        for s in Status::ALL {
            let word = s.as_str();
            let in_range = LIVE_AFTER.as_str() < word && word < LIVE_BEFORE.as_str();
            assert_eq!(in_range, live(s), "{word}");
            assert_eq!(indexed(s), !live(s), "{word}");
        }
    }
}
