//! `GET /api/deployments/{id}/logs/{group}/{container}`: a container's log, live or saved.
//!
//! While the group's instance runs, the log is read from ARM (under the ARM read budget);
//! once its logs are saved, the saved copy is answered. `?tail=N` (1 to [`MAX_TAIL`]) keeps the
//! last `N` lines; `?timestamps=true` starts each line with its time as ACI gives it. A saved log
//! is the whole log, stitched from reads while the container ran ([`crate::saved_log`]); where
//! lines are missing it says so in a `[berth] ...` line. `?follow=true` streams a `text/plain` body: the log as it is, then only the
//! lines each later read adds, until the instance has ended (the rest of its final or saved log
//! is sent last) or for at most [`FOLLOW_FOR`]. A follow reads the log every [`FOLLOW_POLL`], or
//! less often when many follow at once: together they read at most [`FOLLOWS_READS_PER_SECOND`]
//! times a second, so that Berth's own looks keep most of the ARM read budget.
//!
//! # Guarantees
//! - A follow holds one of the driver's [`MAX_FOLLOWS`] slots from before its first read to its
//!   end; without a free slot it is refused with `429` before anything is read. A follow whose
//!   caller has gone (or stopped reading for [`FOLLOW_FOR`]) ends and frees its slot.
//! - The server's request timeout bounds the time to the response's headers, not a streamed body:
//!   a follow bounds itself with [`FOLLOW_FOR`], and its end is the body's end, never a `503`
//!   written into it.
//! - Where a response is buffered whole by the caller of the router (the Functions host,
//!   [`BufferedResponse`]), `follow` answers the log as it is now, once.
//! - A line is sent once: each read is matched against the last lines already sent (by position
//!   when the log only grew, else by content when ACI cut its start), and a line without its
//!   newline waits for the next read until the end.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;

use super::{Problem, Shared, valid_id};
use crate::arm::ArmError;
use crate::driver::{Driver, DriverError, LogSource, MAX_FOLLOWS};
use crate::spec;

/// The most lines `?tail` keeps.
pub const MAX_TAIL: u32 = 10_000;
/// How often a follow reads the log again.
pub const FOLLOW_POLL: Duration = Duration::from_secs(3);
/// The reads per second all follows together make at most (each every [`FOLLOW_POLL`] while
/// fewer than `FOLLOW_POLL × this` follow).
pub const FOLLOWS_READS_PER_SECOND: u32 = 10;
/// How long a follow lasts at most; the caller follows again to go on.
pub const FOLLOW_FOR: Duration = Duration::from_secs(30 * 60);
/// Lines of context a follow matches each new read against.
const CONTEXT: usize = 32;

/// Set on a request whose response its sender buffers whole (the Functions host): a streamed
/// answer would only arrive at its end, so none is given.
#[derive(Clone, Copy, Debug)]
pub struct BufferedResponse;

#[derive(Deserialize)]
pub(super) struct LogParams {
    tail: Option<String>,
    follow: Option<String>,
    timestamps: Option<String>,
}

fn tail_of(value: Option<&str>) -> Result<Option<u32>, Problem> {
    value
        .map(|t| {
            t.parse::<u32>()
                .ok()
                .filter(|t| (1..=MAX_TAIL).contains(t))
                .ok_or_else(|| {
                    Problem::bad_request("tail", format!("must be a number from 1 to {MAX_TAIL}"))
                })
        })
        .transpose()
}

/// A `true`/`false` query parameter, `false` when absent.
fn flag(name: &str, value: Option<&str>) -> Result<bool, Problem> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(Problem::bad_request(name, "must be true or false")),
    }
}

/// The problem for a failed ARM read of a log.
fn arm_problem(error: ArmError) -> Problem {
    if error.is_transient() {
        let wait = match &error {
            ArmError::Throttled {
                retry_after: Some(wait),
                ..
            } => wait.as_secs().max(1),
            _ => 1,
        };
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            "container: its log cannot be read from ARM now; try again",
        )
        .retry_after(wait)
        .caused_by(error)
    } else {
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "Bad gateway",
            "container: reading its log from ARM failed; see the handler's logs",
        )
        .caused_by(error)
    }
}

fn text(content: impl Into<Body>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        content.into(),
    )
        .into_response()
}

pub(super) async fn logs(
    State(api): State<Shared>,
    Path((id, group, container)): Path<(String, String, String)>,
    Query(params): Query<LogParams>,
    buffered: Option<Extension<BufferedResponse>>,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    spec::validate::group_name(&group).map_err(|e| Problem::bad_request("group", e))?;
    spec::validate::container_name(&container).map_err(|e| Problem::bad_request("container", e))?;
    let tail = tail_of(params.tail.as_deref())?;
    let follow = flag("follow", params.follow.as_deref())? && buffered.is_none();
    let timestamps = flag("timestamps", params.timestamps.as_deref())?;
    // Taken before any read, so that a refused follow costs nothing.
    let slot = match follow {
        true => Some(api.driver.follow_slot().ok_or_else(|| {
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many follows",
                format!("follow: at most {MAX_FOLLOWS} log follows are served at once"),
            )
            .retry_after(FOLLOW_POLL.as_secs())
        })?),
        false => None,
    };
    let driver = &api.driver;
    match driver.log_source(&id, &group).await? {
        LogSource::Saved => {
            let saved = driver
                .logs(&id, &group, &container, timestamps)
                .await?
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::NOT_FOUND,
                        "Not found",
                        format!(
                            "container: no saved logs for {group}/{container} of deployment '{id}'"
                        ),
                    )
                })?;
            let mut sent = Sent::default();
            Ok(text(sent.first(&saved, tail, true)))
        }
        LogSource::Live { instance, ended } => {
            // A follow reads the whole log, to know which lines later reads add.
            let read_tail = if slot.is_some() { None } else { tail };
            let log = driver
                .live_logs(&instance, &container, read_tail, timestamps)
                .await
                .map_err(arm_problem)?
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::NOT_FOUND,
                        "Not found",
                        format!(
                            "container: no container '{container}' in group '{group}' of deployment '{id}'"
                        ),
                    )
                })?;
            let mut sent = Sent::default();
            let first = sent.first(&log, tail, ended || slot.is_none());
            match slot.filter(|_| !ended) {
                None => Ok(text(first)),
                Some(slot) => {
                    let (tx, rx) = mpsc::channel::<Bytes>(2);
                    let follow = Follow {
                        driver: driver.clone(),
                        id,
                        instance,
                        container,
                        timestamps,
                        sent,
                        tx,
                        _slot: slot,
                    };
                    tokio::spawn(follow.run(Bytes::from(first)));
                    let body = futures::stream::unfold(rx, |mut rx| async move {
                        rx.recv()
                            .await
                            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
                    });
                    Ok(text(Body::from_stream(body)))
                }
            }
        }
    }
}

/// How long each of `follows` waits between reads.
fn poll_every(follows: usize) -> Duration {
    let follows = u32::try_from(follows).unwrap_or(u32::MAX);
    FOLLOW_POLL.max(Duration::from_secs(1) * follows / FOLLOWS_READS_PER_SECOND)
}

/// One follow's loop, holding its slot until it ends.
struct Follow {
    driver: Driver,
    id: String,
    instance: String,
    container: String,
    timestamps: bool,
    sent: Sent,
    tx: mpsc::Sender<Bytes>,
    _slot: OwnedSemaphorePermit,
}

impl Follow {
    async fn run(mut self, first: Bytes) {
        let until = Instant::now() + FOLLOW_FOR;
        if !self.send(first, until).await {
            return;
        }
        loop {
            tokio::select! {
                _ = self.tx.closed() => return,
                _ = tokio::time::sleep_until(until) => return,
                _ = tokio::time::sleep(poll_every(self.driver.follows())) => {}
            }
            let Some((log, done)) = self.read().await else {
                continue;
            };
            let fresh = self.sent.next(&log, done);
            if !self.send(Bytes::from(fresh), until).await || done {
                return;
            }
        }
    }

    /// Sends a chunk; `false` when the caller has gone or has not read it by `until`.
    async fn send(&self, chunk: Bytes, until: Instant) -> bool {
        if chunk.is_empty() {
            return true;
        }
        matches!(
            tokio::time::timeout_at(until, self.tx.send(chunk)).await,
            Ok(Ok(()))
        )
    }

    /// The log now and whether it is final; `None` when it cannot be read this time (the next
    /// poll tries again). A purged deployment's log is final and empty.
    async fn read(&self) -> Option<(String, bool)> {
        let (id, instance, container) = (&self.id, &self.instance, &self.container);
        let source = match self.driver.log_source(id, instance).await {
            Ok(source) => source,
            Err(DriverError::NotFound(_)) => return Some((String::new(), true)),
            Err(error) => {
                tracing::debug!(deployment.id = %id, %error, "log follow: checkpoint not read");
                return None;
            }
        };
        match source {
            LogSource::Saved => match self
                .driver
                .logs(id, instance, container, self.timestamps)
                .await
            {
                Ok(saved) => Some((saved.unwrap_or_default(), true)),
                Err(error) => {
                    tracing::debug!(deployment.id = %id, %error, "log follow: saved log not read");
                    None
                }
            },
            LogSource::Live { ended, .. } => {
                match self
                    .driver
                    .live_logs(instance, container, None, self.timestamps)
                    .await
                {
                    Ok(Some(log)) => Some((log, ended)),
                    // Deleted before the checkpoint says so: the next poll finds the saved log.
                    Ok(None) => None,
                    Err(error) => {
                        tracing::debug!(deployment.id = %id, %error, "log follow: ARM read failed");
                        None
                    }
                }
            }
        }
    }
}

/// What a follow has sent of a log, so that each new read sends only the lines it adds.
#[derive(Debug, Default)]
struct Sent {
    /// Complete lines of the last read, all sent.
    count: usize,
    /// Hashes of the last (up to [`CONTEXT`]) lines sent, oldest first.
    last: VecDeque<u64>,
}

fn line_hash(line: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    line.hash(&mut hasher);
    hasher.finish()
}

/// A log's complete lines (each with its `\n`) and what follows the last newline.
fn split(log: &str) -> (Vec<&str>, &str) {
    let mut lines: Vec<&str> = log.split_inclusive('\n').collect();
    let partial = match lines.last() {
        Some(last) if !last.ends_with('\n') => lines.pop().unwrap_or_default(),
        _ => "",
    };
    (lines, partial)
}

impl Sent {
    /// The first answer: the last `tail` complete lines of `log` (all of them without `tail`),
    /// and the line without its newline at its end when `last`.
    fn first(&mut self, log: &str, tail: Option<u32>, last: bool) -> String {
        let (lines, partial) = split(log);
        let tail = tail.map_or(lines.len(), |t| t as usize);
        let from = lines.len().saturating_sub(tail);
        self.note(&lines);
        join(&lines[from..], last.then_some(partial))
    }

    /// What a new read of the log adds to what was sent, and the line without its newline at its
    /// end when `last`.
    fn next(&mut self, log: &str, last: bool) -> String {
        let (lines, partial) = split(log);
        let hashes: Vec<u64> = lines.iter().map(|l| line_hash(l)).collect();
        let start = self.start_of_new(&hashes);
        self.note(&lines);
        join(&lines[start..], last.then_some(partial))
    }

    /// Where the unsent lines of a read begin: after the same number of lines when the log only
    /// grew, else after the latest place where the lines sent last end (ACI cut the log's start),
    /// else at its start (a new log: the container ran again).
    fn start_of_new(&self, hashes: &[u64]) -> usize {
        if self.last.is_empty() {
            return 0;
        }
        let sent_end_at = |p: usize| {
            let k = self.last.len().min(p);
            k > 0
                && hashes[p - k..p]
                    .iter()
                    .eq(self.last.iter().skip(self.last.len() - k))
        };
        if self.count <= hashes.len() && sent_end_at(self.count) {
            return self.count;
        }
        (1..=hashes.len())
            .rev()
            .find(|&p| sent_end_at(p))
            .unwrap_or(0)
    }

    fn note(&mut self, lines: &[&str]) {
        self.count = lines.len();
        let keep = &lines[lines.len().saturating_sub(CONTEXT)..];
        if keep.is_empty() {
            return;
        }
        self.last = keep.iter().map(|l| line_hash(l)).collect();
    }
}

fn join(lines: &[&str], partial: Option<&str>) -> String {
    let mut out = lines.concat();
    out.push_str(partial.unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_follows_read_less_often_each() {
        assert_eq!(poll_every(1), FOLLOW_POLL);
        assert_eq!(poll_every(30), FOLLOW_POLL);
        assert_eq!(poll_every(MAX_FOLLOWS), Duration::from_millis(6400));
    }

    fn log(range: std::ops::Range<u32>) -> String {
        range.map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn a_growing_log_sends_each_line_once() {
        let mut sent = Sent::default();
        assert_eq!(sent.first(&log(0..3), None, false), log(0..3));
        assert_eq!(sent.next(&log(0..3), false), "");
        assert_eq!(sent.next(&log(0..5), false), log(3..5));
        assert_eq!(sent.next(&log(0..6), true), log(5..6));
    }

    #[test]
    fn tail_keeps_the_last_lines_and_the_rest_still_counts_as_sent() {
        let mut sent = Sent::default();
        assert_eq!(sent.first(&log(0..10), Some(2), false), log(8..10));
        assert_eq!(sent.next(&log(0..11), false), log(10..11));
        assert_eq!(sent.first(&log(0..2), Some(5), false), log(0..2));
    }

    #[test]
    fn a_line_without_its_newline_waits_until_it_is_complete_or_the_end() {
        let mut sent = Sent::default();
        assert_eq!(sent.first("a\nhal", None, false), "a\n");
        assert_eq!(sent.next("a\nhalf done\nnext", false), "half done\n");
        assert_eq!(sent.next("a\nhalf done\nnext end", true), "next end");
        assert_eq!(Sent::default().first("only", None, true), "only");
    }

    #[test]
    fn a_log_cut_at_its_start_is_matched_by_its_last_lines() {
        let mut sent = Sent::default();
        sent.first(&log(0..100), None, false);
        // ACI keeps the newest lines: a stopped container's log shows its last ones only.
        assert_eq!(sent.next(&log(60..104), false), log(100..104));
        assert_eq!(sent.next(&log(90..104), true), "");
    }

    #[test]
    fn repeated_lines_after_the_sent_ones_are_not_lost_when_the_log_grew() {
        let mut sent = Sent::default();
        let ticks = |n: usize| "tick\n".repeat(n);
        sent.first(&ticks(3), None, false);
        assert_eq!(sent.next(&ticks(5), false), ticks(2));
    }

    #[test]
    fn a_new_log_is_sent_whole() {
        let mut sent = Sent::default();
        sent.first("old one\nold two\n", None, false);
        assert_eq!(sent.next("new\n", false), "new\n");
    }
}
