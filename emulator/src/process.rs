//! Container processes: starting bubblewrap with a clean environment (joining the run's cgroup
//! first), capturing stdout and stderr line by line into the log, and the table of live processes
//! that stop, delete, shutdown and `Drop` kill.
//!
//! Each container run is its own process group (bwrap, its namespace init, and whatever does not
//! leave the group), and the command runs in its own PID namespace (`--unshare-pid`). Killing the
//! group kills the namespace's init, and the kernel then kills every process left in the
//! namespace, however deeply they forked or daemonised. `--die-with-parent` is not enough on its
//! own: bwrap's init sets its parent-death signal only after it started, so a kill right after
//! the start can orphan it (seen in the tests); the group kill has no such window. Where cgroups
//! work, whatever is left in the run's cgroup is killed too.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot};

use crate::lifecycle::Slot;
use crate::logs::{LogBuffer, MAX_LINE_BYTES, format_timestamp};
use crate::record::GroupKey;

/// Locks a mutex, going on with the data if a panic poisoned it (the data stays consistent: every
/// critical section here is a few assignments).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Everything needed to start one container run.
#[derive(Debug)]
pub struct ProcessSpec {
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// bwrap's arguments, ending with `--`.
    pub sandbox: Vec<OsString>,
    /// The command in exec form.
    pub argv: Vec<String>,
    /// The whole environment of the command.
    pub env: Vec<(String, String)>,
    /// `cgroup.procs` files to join before bwrap starts.
    pub cgroup_procs: Vec<PathBuf>,
}

/// Builds the command: `bwrap <sandbox> -- <argv>` with exactly `env`, run through `/bin/sh` first
/// when it must join cgroups (so that bwrap and everything it forks start inside them).
pub fn command(spec: &ProcessSpec) -> Command {
    let mut command = if spec.cgroup_procs.is_empty() {
        Command::new(&spec.bwrap)
    } else {
        let mut sh = Command::new("/bin/sh");
        sh.arg("-c")
            .arg(r#"for f; do [ "$f" = -- ] && break; echo $$ 2>/dev/null >"$f"; shift; done; shift; exec "$@""#)
            .arg("sh")
            .args(&spec.cgroup_procs)
            .arg("--")
            .arg(&spec.bwrap);
        sh
    };
    command
        .args(&spec.sandbox)
        .args(&spec.argv)
        .env_clear()
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// Kills a container run's process group (its leader is the outer bwrap, `pid`).
pub fn kill_tree(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// The exit code as `docker run` reports it: the code, or 128 + the signal that killed it.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 128,
    }
}

/// Where captured lines go: the container's log and, outside instant mode, its log file.
#[derive(Debug)]
pub struct LogSink {
    buffer: Arc<Mutex<LogBuffer>>,
    file: Option<File>,
}

impl LogSink {
    /// A sink writing to `buffer` and, when given, appending `<timestamp> <line>` to `file`.
    pub fn new(buffer: Arc<Mutex<LogBuffer>>, file: Option<File>) -> Self {
        LogSink { buffer, file }
    }

    fn push(&mut self, text: String) {
        let at = OffsetDateTime::now_utc();
        if let Some(file) = &mut self.file {
            let line = format!("{} {text}\n", format_timestamp(at));
            if file.write_all(line.as_bytes()).is_err() {
                self.file = None;
            }
        }
        lock(&self.buffer).push(at, text);
    }
}

/// Reads `reader` line by line into `sink` until end of file.
pub async fn capture<R: AsyncRead + Unpin>(reader: R, sink: Arc<Mutex<LogSink>>) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let text = String::from_utf8_lossy(&line).into_owned();
                lock(&sink).push(text);
            }
        }
    }
}

/// Who a process belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    /// The group.
    pub key: GroupKey,
    /// The generation it was started in.
    pub generation: u64,
    /// The container.
    pub slot: Slot,
}

#[derive(Debug)]
struct Handle {
    owner: Owner,
    pid: Option<u32>,
    kill: Option<oneshot::Sender<()>>,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    handles: HashMap<u64, Handle>,
    closed: bool,
}

/// Every live container process.
#[derive(Debug, Default)]
pub struct ProcessTable {
    table: Mutex<Table>,
    changed: Notify,
}

impl ProcessTable {
    /// Registers a started process; its supervisor kills it when `kill` fires. Once the table is
    /// closed (shutdown), registration fails and the caller must kill the process itself.
    pub fn register(
        &self,
        owner: Owner,
        pid: Option<u32>,
        kill: oneshot::Sender<()>,
    ) -> Result<u64, oneshot::Sender<()>> {
        let mut table = lock(&self.table);
        if table.closed {
            return Err(kill);
        }
        table.next += 1;
        let id = table.next;
        table.handles.insert(
            id,
            Handle {
                owner,
                pid,
                kill: Some(kill),
            },
        );
        Ok(id)
    }

    /// Forgets a process that has exited and been reaped.
    pub fn unregister(&self, id: u64) {
        lock(&self.table).handles.remove(&id);
        self.changed.notify_waiters();
    }

    /// How many processes are alive.
    pub fn live(&self) -> usize {
        lock(&self.table).handles.len()
    }

    /// Whether the table is closed (the emulator is shutting down).
    pub fn is_closed(&self) -> bool {
        lock(&self.table).closed
    }

    /// Kills every process of a group and waits (at most `timeout`) until they are reaped.
    pub async fn kill_group(&self, key: &GroupKey, timeout: Duration) {
        {
            let mut table = lock(&self.table);
            for handle in table.handles.values_mut() {
                if handle.owner.key == *key
                    && let Some(kill) = handle.kill.take()
                {
                    let _ = kill.send(());
                }
            }
        }
        self.wait_until(timeout, |table| {
            table
                .handles
                .values()
                .all(|handle| handle.owner.key != *key)
        })
        .await;
    }

    /// Closes the table and sends SIGKILL to every process at once, without waiting (for `Drop`).
    pub fn close_and_kill_now(&self) {
        let mut table = lock(&self.table);
        table.closed = true;
        for handle in table.handles.values_mut() {
            if let Some(pid) = handle.pid {
                kill_tree(pid);
            }
            if let Some(kill) = handle.kill.take() {
                let _ = kill.send(());
            }
        }
    }

    /// Waits (at most `timeout`) until every process is reaped.
    pub async fn wait_all_gone(&self, timeout: Duration) {
        self.wait_until(timeout, |table| table.handles.is_empty())
            .await;
    }

    async fn wait_until(&self, timeout: Duration, done: impl Fn(&Table) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&lock(&self.table)) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }
}

/// A started process with its pipes taken.
#[derive(Debug)]
pub struct Started {
    /// The child (the outer bwrap).
    pub child: Child,
    pub pid: Option<u32>,
}

/// Starts a process and begins capturing its output into `sink`; returns the child and the
/// capture tasks, which end when every process holding the pipes has died.
pub fn spawn(
    spec: &ProcessSpec,
    sink: LogSink,
) -> std::io::Result<(Started, Vec<tokio::task::JoinHandle<()>>)> {
    let mut child = command(spec).spawn()?;
    let pid = child.id();
    let sink = Arc::new(Mutex::new(sink));
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(capture(stdout, sink.clone())));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(capture(stderr, sink)));
    }
    Ok((Started { child, pid }, readers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capture_splits_lines_and_keeps_a_last_partial_line() {
        let buffer = Arc::new(Mutex::new(LogBuffer::default()));
        let sink = Arc::new(Mutex::new(LogSink::new(buffer.clone(), None)));
        let input: &[u8] = b"one\r\ntwo\nthree";
        capture(input, sink).await;
        let text = lock(&buffer).render(crate::logs::LogQuery::default(), false);
        assert_eq!(text, "one\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn the_table_waits_for_a_groups_processes() {
        let table = Arc::new(ProcessTable::default());
        let key = GroupKey::new("s", "r", "g");
        let (kill_tx, kill_rx) = oneshot::channel();
        let owner = Owner {
            key: key.clone(),
            generation: 1,
            slot: Slot::Main(0),
        };
        let id = table.register(owner, None, kill_tx).unwrap();
        let supervisor = {
            let table = table.clone();
            tokio::spawn(async move {
                let _ = kill_rx.await;
                table.unregister(id);
            })
        };
        assert_eq!(table.live(), 1);
        table.kill_group(&key, Duration::from_secs(5)).await;
        assert_eq!(table.live(), 0);
        supervisor.await.unwrap();
        table.close_and_kill_now();
        let (kill_tx, _kill_rx) = oneshot::channel();
        let owner = Owner {
            key,
            generation: 2,
            slot: Slot::Main(0),
        };
        assert!(table.register(owner, None, kill_tx).is_err());
    }
}
