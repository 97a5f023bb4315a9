//! Child processes the harness owns: every one is registered here, so that a normal end, a panic,
//! Ctrl-C or SIGTERM all kill whatever is still running.

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

static CHILDREN: Mutex<BTreeMap<u64, (String, Child)>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

fn children() -> std::sync::MutexGuard<'static, BTreeMap<u64, (String, Child)>> {
    // A panic while the lock was held leaves the map intact; killing must still work.
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registered child process.
#[derive(Debug)]
pub struct Proc {
    key: u64,
    /// Its process id.
    pub pid: u32,
    /// What it is, for messages (`handler-a`, `azurite`, …).
    pub name: String,
}

impl Proc {
    /// Spawns `command` and registers it.
    pub fn spawn(name: &str, command: &mut Command) -> anyhow::Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({command:?})"))?;
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = child.id();
        children().insert(key, (name.to_owned(), child));
        Ok(Self {
            key,
            pid,
            name: name.to_owned(),
        })
    }

    /// Whether it has exited (an exited child is reaped and unregistered).
    pub fn exited(&self) -> bool {
        let mut map = children();
        let Some((_, child)) = map.get_mut(&self.key) else {
            return true;
        };
        match child.try_wait() {
            Ok(None) => false,
            _ => {
                map.remove(&self.key);
                true
            }
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(self) {
        let entry = children().remove(&self.key);
        if let Some((_, mut child)) = entry {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL.
    pub async fn terminate(self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if self.exited() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!(process = %self.name, "did not stop on SIGTERM; killing it");
        self.kill();
    }
}

/// Kills every registered child (at the end, on panic, on a signal).
pub fn kill_all() {
    kill_in(&mut children());
}

fn kill_in(map: &mut BTreeMap<u64, (String, Child)>) {
    for (_, (_, child)) in map.iter_mut() {
        let _ = child.kill();
    }
    for (_, (_, mut child)) in std::mem::take(map) {
        let _ = child.wait();
    }
}

/// Kills every child when dropped (also while unwinding).
pub struct KillOnDrop;

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_all();
    }
}

/// Makes a panic anywhere (also in a task) and Ctrl-C or SIGTERM kill every child first.
pub fn install_handlers() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // `try_lock`: the panicking thread may hold the lock itself.
        match CHILDREN.try_lock() {
            Ok(mut map) => kill_in(&mut map),
            Err(std::sync::TryLockError::Poisoned(e)) => kill_in(&mut e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
        previous(info);
    }));
    tokio::spawn(async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        kill_all();
        eprintln!("chaos: interrupted; every child process killed");
        std::process::exit(130);
    });
}

/// The process ids of every descendant of `pid` (from `/proc`), with their command names.
pub fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = stat[open + 1..close].to_owned();
            let ppid = stat[close + 1..]
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((child, ppid, comm));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, ppid, comm) in &parent_of {
            if *ppid == parent {
                found.push((*child, comm.clone()));
                frontier.push(*child);
            }
        }
    }
    found
}
