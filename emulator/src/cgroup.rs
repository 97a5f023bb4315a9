//! CPU and memory limits through cgroups, v1 (`/sys/fs/cgroup/{cpu,memory}`) or v2 (unified), when
//! the machine allows it. Each container run gets its own cgroup under the emulator's; the process
//! joins it before it execs bubblewrap (see `process`), so every descendant is limited. When limits
//! cannot be applied, the emulator says so once in its log and runs containers without them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The CPU period written for CFS quotas, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// What a container may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Cores (fractions allowed).
    pub cpu: f64,
    /// Memory in GB (GiB, as ACI counts them).
    pub memory_gb: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Hierarchy {
    /// Separate `cpu` and `memory` hierarchies: the emulator's directories in each.
    V1 { cpu: PathBuf, memory: PathBuf },
    /// The unified hierarchy: the emulator's directory.
    V2 { base: PathBuf },
}

/// The cgroups the emulator can use, found once at start.
#[derive(Debug)]
pub struct Cgroups {
    hierarchy: Option<Hierarchy>,
    reason: String,
    warned: AtomicBool,
    next: AtomicU64,
}

/// One container run's cgroup; removed when the run ends.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
}

impl Cgroups {
    /// Finds where this process may create cgroups (under its own, in each hierarchy).
    pub fn detect() -> Self {
        Self::detect_at(Path::new("/sys/fs/cgroup"), Path::new("/proc/self/cgroup"))
    }

    /// No limits at all (instant mode, or when disabled).
    pub fn disabled(reason: &str) -> Self {
        Cgroups {
            hierarchy: None,
            reason: reason.to_string(),
            warned: AtomicBool::new(true),
            next: AtomicU64::new(0),
        }
    }

    fn detect_at(root: &Path, self_cgroup: &Path) -> Self {
        let own = fs::read_to_string(self_cgroup).unwrap_or_default();
        let tag = format!("aci-emulator-{}", std::process::id());
        let found = if root.join("cpu/cgroup.procs").exists()
            && root.join("memory/cgroup.procs").exists()
        {
            let cpu = own_path(&own, "cpu").map(|path| join(&root.join("cpu"), &path).join(&tag));
            let memory =
                own_path(&own, "memory").map(|path| join(&root.join("memory"), &path).join(&tag));
            match (cpu, memory) {
                (Some(cpu), Some(memory)) => Ok(Hierarchy::V1 { cpu, memory }),
                _ => Err("this process's cpu and memory cgroups are unknown".to_string()),
            }
        } else if root.join("cgroup.controllers").exists() {
            match own_path(&own, "") {
                Some(path) => Ok(Hierarchy::V2 {
                    base: join(root, &path).join(&tag),
                }),
                None => Err("this process's cgroup is unknown".to_string()),
            }
        } else {
            Err(format!("no cgroup hierarchy at {}", root.display()))
        };
        if let Ok(hierarchy) = &found {
            sweep_stale(hierarchy);
        }
        match found {
            Ok(hierarchy) => Cgroups {
                hierarchy: Some(hierarchy),
                reason: String::new(),
                warned: AtomicBool::new(false),
                next: AtomicU64::new(0),
            },
            Err(reason) => Cgroups {
                hierarchy: None,
                reason,
                warned: AtomicBool::new(false),
                next: AtomicU64::new(0),
            },
        }
    }

    /// Creates a cgroup with `limits` for one run; `None` (after one warning in the log) when the
    /// machine does not allow it.
    pub fn create(&self, label: &str, limits: Limits) -> Option<Cgroup> {
        let Some(hierarchy) = &self.hierarchy else {
            self.warn_once(&self.reason);
            return None;
        };
        let name = format!(
            "{}-{}",
            sanitize(label),
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        match create_in(hierarchy, &name, limits) {
            Ok(cgroup) => Some(cgroup),
            Err(reason) => {
                self.warn_once(&reason);
                None
            }
        }
    }

    /// Removes the emulator's own cgroup directories (at shutdown; they must be empty).
    pub fn remove_base(&self) {
        match &self.hierarchy {
            Some(Hierarchy::V1 { cpu, memory }) => {
                let _ = fs::remove_dir(cpu);
                let _ = fs::remove_dir(memory);
            }
            Some(Hierarchy::V2 { base }) => {
                let _ = fs::remove_dir(base);
            }
            None => {}
        }
    }

    fn warn_once(&self, reason: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                reason,
                "CPU and memory limits cannot be applied through cgroups; containers run without them"
            );
        }
    }
}

impl Cgroup {
    /// The `cgroup.procs` files the process must write its pid to.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|dir| dir.join("cgroup.procs"))
            .collect()
    }

    /// Kills every process still in the cgroup.
    pub fn kill_all(&self) {
        for dir in &self.dirs {
            if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                continue;
            }
            for _ in 0..10 {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                let pids: Vec<i32> = procs
                    .lines()
                    .filter_map(|line| line.trim().parse().ok())
                    .collect();
                if pids.is_empty() {
                    break;
                }
                for pid in pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }

    /// Removes the cgroup (its processes are gone by now).
    pub fn remove(self) {
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Removes the cgroups that emulators which are gone left behind (`aci-emulator-<pid>` beside
/// ours, with no such process any more). Cgroups that still hold processes cannot be removed and
/// stay.
fn sweep_stale(hierarchy: &Hierarchy) {
    let ours: Vec<&Path> = match hierarchy {
        Hierarchy::V1 { cpu, memory } => vec![cpu, memory],
        Hierarchy::V2 { base } => vec![base],
    };
    for base in ours {
        let Some(parent) = base.parent() else {
            continue;
        };
        let Ok(entries) = fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|name| name.strip_prefix("aci-emulator-"))
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if let Ok(runs) = fs::read_dir(entry.path()) {
                for run in runs.flatten().filter(|run| run.path().is_dir()) {
                    let _ = fs::remove_dir(run.path());
                }
            }
            let _ = fs::remove_dir(entry.path());
        }
    }
}

fn create_in(hierarchy: &Hierarchy, name: &str, limits: Limits) -> Result<Cgroup, String> {
    let quota = ((limits.cpu * CPU_PERIOD_US as f64) as u64).max(1000);
    let memory = (limits.memory_gb * 1024.0 * 1024.0 * 1024.0) as u64;
    match hierarchy {
        Hierarchy::V1 { cpu, memory: mem } => {
            let cpu_dir = cpu.join(name);
            let mem_dir = mem.join(name);
            make_dir(&cpu_dir)?;
            make_dir(&mem_dir)?;
            let cgroup = Cgroup {
                dirs: vec![cpu_dir.clone(), mem_dir.clone()],
            };
            let written = write(
                &cpu_dir.join("cpu.cfs_period_us"),
                &CPU_PERIOD_US.to_string(),
            )
            .and_then(|()| write(&cpu_dir.join("cpu.cfs_quota_us"), &quota.to_string()))
            .and_then(|()| write(&mem_dir.join("memory.limit_in_bytes"), &memory.to_string()));
            match written {
                Ok(()) => Ok(cgroup),
                Err(error) => {
                    cgroup.remove();
                    Err(error)
                }
            }
        }
        Hierarchy::V2 { base } => {
            make_dir(base)?;
            // Controllers must be enabled in the parent for its children to have them.
            write(&base.join("cgroup.subtree_control"), "+cpu +memory")?;
            let dir = base.join(name);
            make_dir(&dir)?;
            let cgroup = Cgroup {
                dirs: vec![dir.clone()],
            };
            let written = write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))
                .and_then(|()| write(&dir.join("memory.max"), &memory.to_string()));
            match written {
                Ok(()) => Ok(cgroup),
                Err(error) => {
                    cgroup.remove();
                    Err(error)
                }
            }
        }
    }
}

fn make_dir(dir: &Path) -> Result<(), String> {
    match fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) => Err(format!("cannot create {}: {error}", dir.display())),
    }
}

fn write(file: &Path, value: &str) -> Result<(), String> {
    fs::write(file, value).map_err(|error| format!("cannot write {}: {error}", file.display()))
}

/// This process's path in a v1 hierarchy (`controller` = `cpu`, matched inside `cpu,cpuacct`) or,
/// with an empty controller, in the unified one (`0::/path`).
fn own_path(proc_cgroup: &str, controller: &str) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        let matches = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|name| name == controller)
        };
        matches.then(|| path.to_string())
    })
}

fn join(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_paths_in_proc_self_cgroup() {
        let text = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/unified\n";
        assert_eq!(
            own_path(text, "memory").as_deref(),
            Some("/process_api/abc")
        );
        assert_eq!(own_path(text, "cpu").as_deref(), Some("/x"));
        assert_eq!(own_path(text, "").as_deref(), Some("/unified"));
        assert_eq!(own_path(text, "pids"), None);
    }

    #[test]
    fn v1_limits_are_written_under_the_emulators_own_cgroup() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["cpu", "memory"] {
            fs::create_dir_all(root.path().join(dir).join("parent")).unwrap();
            fs::write(root.path().join(dir).join("cgroup.procs"), "").unwrap();
        }
        let own = root.path().join("self");
        fs::write(&own, "4:memory:/parent\n1:cpu:/parent\n").unwrap();
        let cgroups = Cgroups::detect_at(root.path(), &own);
        let cgroup = cgroups
            .create(
                "g/c",
                Limits {
                    cpu: 0.5,
                    memory_gb: 1.5,
                },
            )
            .unwrap();
        let files = cgroup.procs_files();
        assert_eq!(files.len(), 2);
        let cpu_dir = files[0].parent().unwrap();
        assert!(cpu_dir.starts_with(root.path().join("cpu/parent")));
        assert_eq!(
            fs::read_to_string(cpu_dir.join("cpu.cfs_quota_us")).unwrap(),
            "50000"
        );
        let mem_dir = files[1].parent().unwrap();
        assert_eq!(
            fs::read_to_string(mem_dir.join("memory.limit_in_bytes")).unwrap(),
            (3u64 * 512 * 1024 * 1024).to_string()
        );
    }

    #[test]
    fn without_a_hierarchy_there_are_no_limits() {
        let root = tempfile::tempdir().unwrap();
        let own = root.path().join("self");
        fs::write(&own, "0::/\n").unwrap();
        let cgroups = Cgroups::detect_at(root.path(), &own);
        assert!(
            cgroups
                .create(
                    "x",
                    Limits {
                        cpu: 1.0,
                        memory_gb: 1.0
                    }
                )
                .is_none()
        );
    }
}
