//! The bubblewrap command line for one container: a read-only view of the host root, writable
//! `/tmp`, the group's volumes bound at their mount paths, a private PID namespace that dies with
//! the emulator, and the host's network (containers reach 127.0.0.1 and share it, as the
//! containers of one ACI group share localhost).
//!
//! The container holds no capability (`--cap-drop ALL`): it cannot remount the read-only host
//! root, mount anything, or override file permissions. Where the machine allows it, it also runs
//! in a user namespace as `nobody` ([`SANDBOX_UID`]), mapped to the emulator's own user outside,
//! so it is not root inside either; `Confinement::detect` finds out once. Host secrets
//! ([`HOST_SECRETS`]), the emulator's home and its data folder are hidden: directories there are
//! empty, files are absent. A group's volumes inside the data folder are bound back at their
//! mount paths, and nothing else of it.
//!
//! A mount path that does not exist on the host (`/var/lib/postgresql/data`) cannot be created
//! under a read-only bind of `/`. So the root is built rather than bound: bwrap's root is a tmpfs,
//! every top-level host entry is bound back read-only, and each directory on the way to a missing
//! mount path is itself a tmpfs with its host entries bound back. The mount then hides whatever was
//! at its path, as in ACI.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

/// The user and group a container runs as inside its user namespace: `nobody`, which every
/// distribution's `/etc/passwd` names (programs such as `initdb` look their user up).
pub const SANDBOX_UID: u32 = 65534;

/// Host paths no container sees, whatever the machine: password hashes (and their backups), SSH
/// host keys, sudo rules, TLS private keys and root's home.
pub const HOST_SECRETS: [&str; 9] = [
    "/root",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/ssh",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssl/private",
];

/// How every container of an emulator is confined, beyond its own layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Confinement {
    /// Run in a user namespace as [`SANDBOX_UID`] (not root inside). Without it the container
    /// runs as the emulator's user, still without capabilities.
    pub user_namespace: bool,
    /// Host paths hidden from the container (absolute, canonical, none inside another): a
    /// directory is an empty one, a file is absent.
    pub hidden: BTreeSet<PathBuf>,
}

impl Confinement {
    /// Works out the confinement on this machine: whether `bwrap` can run a user namespace (one
    /// probe run; a logged note when it cannot), and which of [`HOST_SECRETS`], `home` and
    /// `private` (the data folders) exist to be hidden.
    pub fn detect(bwrap: &Path, home: Option<&Path>, private: &[PathBuf]) -> Self {
        let user_namespace = probe_user_namespace(bwrap);
        if !user_namespace {
            tracing::warn!(
                bwrap = %bwrap.display(),
                "bubblewrap cannot create a user namespace here: containers run as the emulator's user, without capabilities"
            );
        }
        let candidates = HOST_SECRETS
            .iter()
            .map(PathBuf::from)
            .chain(home.map(Path::to_path_buf))
            .chain(private.iter().cloned());
        Confinement {
            user_namespace,
            hidden: hidden_set(candidates),
        }
    }
}

/// Whether `bwrap` runs a command in a user namespace with the flags containers get.
fn probe_user_namespace(bwrap: &Path) -> bool {
    let mut args: Vec<OsString> = Vec::new();
    push_confinement(&mut args, true);
    Command::new(bwrap)
        .args(args)
        .args(["--ro-bind", "/", "/", "--", "/bin/true"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The canonical form of each existing path, without `/`, without paths under bwrap's own
/// directories (a data folder in `/tmp` is out of sight already) and without paths inside another
/// (hiding the outer one hides them already).
fn hidden_set(candidates: impl Iterator<Item = PathBuf>) -> BTreeSet<PathBuf> {
    prune(candidates.filter_map(|path| fs::canonicalize(path).ok()))
}

/// `hidden_set` on canonical paths.
fn prune(canonical: impl Iterator<Item = PathBuf>) -> BTreeSet<PathBuf> {
    let found: BTreeSet<PathBuf> = canonical
        .filter(|path| {
            let first = path.components().nth(1);
            first.is_some_and(|first| !OWN_DIRS.iter().any(|own| first.as_os_str() == *own))
        })
        .collect();
    found
        .iter()
        .filter(|path| {
            !path
                .ancestors()
                .skip(1)
                .any(|ancestor| found.contains(ancestor))
        })
        .cloned()
        .collect()
}

/// The namespace and capability flags every container gets.
fn push_confinement(args: &mut Vec<OsString>, user_namespace: bool) {
    if user_namespace {
        let id = SANDBOX_UID.to_string();
        push(
            args,
            &[
                "--unshare-user",
                "--disable-userns",
                "--uid",
                &id,
                "--gid",
                &id,
            ],
            &[],
        );
    }
    push(args, &["--cap-drop", "ALL"], &[]);
}

/// Why a sandbox could not be laid out.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SandboxError {
    /// A mount path is relative, has `..`, or points into `/proc`.
    #[error(
        "the mount path '{0}' is not usable: it must be absolute, without '..', and not under /proc"
    )]
    BadMountPath(String),
    /// A mount path's ancestor exists on the host but is not a directory.
    #[error("the mount path '{path}' cannot be created: '{blocker}' is not a directory")]
    NotADirectory {
        /// The mount path.
        path: String,
        /// The ancestor in the way.
        blocker: String,
    },
}

/// One bind mount into the container.
#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    /// The host directory.
    pub source: PathBuf,
    /// The absolute path inside the container.
    pub target: String,
    /// Bind it read-only.
    pub read_only: bool,
}

/// What the container's filesystem looks like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// Volume binds.
    pub binds: Vec<Bind>,
    /// Extra writable tmpfs directories.
    pub tmpfs: Vec<String>,
    /// The working directory (default `/`).
    pub workdir: Option<String>,
}

/// Directories bwrap provides itself, never bound from the host.
const OWN_DIRS: [&str; 3] = ["proc", "dev", "tmp"];

/// The bwrap arguments (everything before the command) for `layout` under `confinement`, with
/// `host_root` as the host root (`/` except in tests).
pub fn bwrap_args(
    host_root: &Path,
    layout: &Layout,
    confinement: &Confinement,
) -> Result<Vec<OsString>, SandboxError> {
    let hidden = &confinement.hidden;
    let mut targets: Vec<(PathBuf, Option<&Bind>)> = Vec::new();
    for bind in &layout.binds {
        targets.push((container_path(&bind.target)?, Some(bind)));
    }
    for dir in &layout.tmpfs {
        targets.push((container_path(dir)?, None));
    }
    let mut overlays: BTreeSet<PathBuf> = BTreeSet::new();
    overlays.insert(PathBuf::from("/"));
    // A hidden path's directory is rebuilt without it.
    overlays.extend(
        hidden
            .iter()
            .filter_map(|path| path.parent().map(Path::to_path_buf)),
    );
    for (target, _) in &targets {
        if let Some(overlay) = overlay_for(host_root, target, hidden)? {
            overlays.insert(overlay);
        }
    }

    // No `--new-session`: it would move bwrap's init out of the run's process group, which is
    // how the emulator kills a container (see `process`). The group is not the terminal's
    // foreground group either, so a terminal's Ctrl-C does not reach containers.
    let mut args: Vec<OsString> = ["--unshare-pid", "--die-with-parent"]
        .iter()
        .map(OsString::from)
        .collect();
    push_confinement(&mut args, confinement.user_namespace);
    let mut ordered: Vec<&PathBuf> = overlays.iter().collect();
    ordered.sort_by_key(|path| path.components().count());
    for overlay in ordered {
        let parent_is_overlay = overlay
            .parent()
            .is_some_and(|parent| overlays.contains(parent));
        if overlay != Path::new("/") && !parent_is_overlay {
            push(&mut args, &["--tmpfs"], &[overlay.as_os_str()]);
        }
        bind_back_entries(host_root, overlay, &overlays, hidden, &mut args);
    }
    push(
        &mut args,
        &["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"],
        &[],
    );

    targets.sort_by_key(|(target, _)| target.components().count());
    for (target, bind) in &targets {
        match bind {
            Some(bind) => {
                let flag = if bind.read_only {
                    "--ro-bind"
                } else {
                    "--bind"
                };
                push(
                    &mut args,
                    &[flag],
                    &[bind.source.as_os_str(), target.as_os_str()],
                );
            }
            None => push(&mut args, &["--tmpfs"], &[target.as_os_str()]),
        }
    }
    let workdir = layout.workdir.as_deref().unwrap_or("/");
    push(&mut args, &["--chdir", workdir, "--"], &[]);
    Ok(args)
}

fn push(args: &mut Vec<OsString>, flags: &[&str], paths: &[&std::ffi::OsStr]) {
    args.extend(flags.iter().map(OsString::from));
    args.extend(paths.iter().map(|path| path.to_os_string()));
}

/// Checks a container path and makes it canonical (`/a//b/` → `/a/b`).
fn container_path(text: &str) -> Result<PathBuf, SandboxError> {
    let path = Path::new(text);
    let mut clean = PathBuf::from("/");
    if !path.is_absolute() {
        return Err(SandboxError::BadMountPath(text.to_string()));
    }
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => clean.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(SandboxError::BadMountPath(text.to_string()));
            }
        }
    }
    if clean == Path::new("/") || clean.starts_with("/proc") {
        return Err(SandboxError::BadMountPath(text.to_string()));
    }
    Ok(clean)
}

/// The directory that must become a tmpfs so that `target` can be created, if any: the deepest
/// existing host directory on the way to the first missing component. Paths under bwrap's own
/// writable directories (`/tmp`, `/dev`) need none, nor do paths under a hidden one: it is empty
/// in its parent's tmpfs, and rebuilding it would bring its host entries back.
fn overlay_for(
    host_root: &Path,
    target: &Path,
    hidden: &BTreeSet<PathBuf>,
) -> Result<Option<PathBuf>, SandboxError> {
    let mut current = PathBuf::from("/");
    let parts: Vec<_> = target.components().skip(1).collect();
    for (index, part) in parts.iter().enumerate() {
        if index == 0 && OWN_DIRS.iter().any(|own| part.as_os_str() == *own) {
            return Ok(None);
        }
        let next = current.join(part);
        if hidden.contains(&next) {
            return Ok(None);
        }
        let is_last = index + 1 == parts.len();
        let host = host_root.join(next.strip_prefix("/").unwrap_or(&next));
        match fs::metadata(&host) {
            Ok(metadata) if metadata.is_dir() => {
                if is_last {
                    return Ok(None);
                }
                current = next;
            }
            Ok(_) => {
                return Err(SandboxError::NotADirectory {
                    path: target.display().to_string(),
                    blocker: next.display().to_string(),
                });
            }
            Err(_) => return Ok(Some(current)),
        }
    }
    Ok(None)
}

/// Binds every host entry of `dir` back into the sandbox read-only (symlinks as symlinks),
/// except bwrap's own directories at the root, entries that are overlays themselves (created as
/// empty directories, to be filled in turn) and hidden entries (an empty directory for a
/// directory, nothing for anything else).
fn bind_back_entries(
    host_root: &Path,
    dir: &Path,
    overlays: &BTreeSet<PathBuf>,
    hidden: &BTreeSet<PathBuf>,
    args: &mut Vec<OsString>,
) {
    let host_dir = host_root.join(dir.strip_prefix("/").unwrap_or(dir));
    let Ok(entries) = fs::read_dir(&host_dir) else {
        return;
    };
    let mut names: Vec<OsString> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
        .collect();
    names.sort();
    for name in names {
        if dir == Path::new("/") && OWN_DIRS.iter().any(|own| name == *own) {
            continue;
        }
        let inside = dir.join(&name);
        let host = host_dir.join(&name);
        let metadata = fs::symlink_metadata(&host);
        if hidden.contains(&inside) {
            if metadata.is_ok_and(|metadata| metadata.is_dir()) {
                push(args, &["--dir"], &[inside.as_os_str()]);
            }
            continue;
        }
        if overlays.contains(&inside) {
            push(args, &["--dir"], &[inside.as_os_str()]);
            continue;
        }
        match metadata {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                if let Ok(link) = fs::read_link(&host) {
                    push(
                        args,
                        &["--symlink"],
                        &[link.as_os_str(), inside.as_os_str()],
                    );
                }
            }
            // `-try`: an entry removed since it was listed is skipped rather than failing the start.
            Ok(metadata) if metadata.is_dir() || metadata.is_file() => {
                push(
                    args,
                    &["--ro-bind-try"],
                    &[host.as_os_str(), inside.as_os_str()],
                );
            }
            // Sockets, fifos and devices outside /dev are not bound.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    fn fake_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for dir in [
            "usr/bin",
            "var/lib/dpkg",
            "var/cache",
            "etc",
            "mnt",
            "tmp",
            "proc",
        ] {
            fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        fs::write(root.path().join("etc/hostname"), "host").unwrap();
        std::os::unix::fs::symlink("usr/bin", root.path().join("bin")).unwrap();
        root
    }

    fn has(args: &[String], flag: &str, value: &str) -> bool {
        args.windows(2).any(|w| w[0] == flag && w[1] == value)
    }

    /// Whether the host entry `rel` of the fake root is bound back at `/rel`.
    fn binds_back(args: &[String], root: &Path, rel: &str) -> bool {
        let host = root.join(rel).display().to_string();
        has_pair(args, "--ro-bind-try", &host, &format!("/{rel}"))
    }

    fn has_pair(args: &[String], flag: &str, a: &str, b: &str) -> bool {
        args.windows(3)
            .any(|w| w[0] == flag && w[1] == a && w[2] == b)
    }

    #[test]
    fn the_root_is_the_host_read_only_with_own_proc_dev_tmp() {
        let root = fake_root();
        let args =
            text(&bwrap_args(root.path(), &Layout::default(), &Confinement::default()).unwrap());
        let host = |rel: &str| root.path().join(rel).display().to_string();
        assert!(binds_back(&args, root.path(), "usr"));
        assert!(binds_back(&args, root.path(), "var"));
        assert!(has_pair(&args, "--symlink", "usr/bin", "/bin"));
        assert!(
            !args
                .iter()
                .any(|arg| arg == &host("proc") || arg == &host("tmp"))
        );
        assert!(args.windows(2).any(|w| w[0] == "--tmpfs" && w[1] == "/tmp"));
        assert!(args.starts_with(&["--unshare-pid".to_string(), "--die-with-parent".to_string(),]));
        assert_eq!(args.last().unwrap(), "--");
        assert!(!args.iter().any(|arg| arg == "--unshare-net"));
    }

    #[test]
    fn a_missing_mount_path_turns_its_existing_ancestor_into_a_tmpfs() {
        let root = fake_root();
        let layout = Layout {
            binds: vec![Bind {
                source: PathBuf::from("/data/share"),
                target: "/var/lib/postgresql/data".into(),
                read_only: false,
            }],
            ..Layout::default()
        };
        let args = text(&bwrap_args(root.path(), &layout, &Confinement::default()).unwrap());
        let tmpfs = args
            .windows(2)
            .position(|w| w[0] == "--tmpfs" && w[1] == "/var/lib")
            .expect("tmpfs on /var/lib");
        let var = args.iter().position(|arg| arg == "/var").unwrap();
        assert!(var < tmpfs, "/var is bound before /var/lib becomes a tmpfs");
        assert!(binds_back(&args, root.path(), "var/lib/dpkg"));
        assert!(has_pair(
            &args,
            "--bind",
            "/data/share",
            "/var/lib/postgresql/data"
        ));
    }

    #[test]
    fn nested_overlays_are_created_as_directories() {
        let root = fake_root();
        let layout = Layout {
            binds: vec![
                Bind {
                    source: PathBuf::from("/s1"),
                    target: "/srv/a".into(),
                    read_only: true,
                },
                Bind {
                    source: PathBuf::from("/s2"),
                    target: "/mnt/x".into(),
                    read_only: false,
                },
            ],
            tmpfs: vec!["/var/run/postgresql".into()],
            workdir: Some("/srv/a".into()),
        };
        let args = text(&bwrap_args(root.path(), &layout, &Confinement::default()).unwrap());
        // /srv does not exist: the root tmpfs is its overlay, so /srv/a is created there.
        assert!(has_pair(&args, "--ro-bind", "/s1", "/srv/a"));
        // /mnt exists and /mnt/x does not: /mnt is rebuilt; as a child of the root (itself a
        // tmpfs) it is a plain directory there, with the host's entries bound back.
        assert!(args.windows(2).any(|w| w[0] == "--dir" && w[1] == "/mnt"));
        assert!(args.windows(2).any(|w| w[0] == "--dir" && w[1] == "/var"));
        assert!(binds_back(&args, root.path(), "var/lib"));
        assert!(
            !args
                .windows(2)
                .any(|w| w[0] == "--tmpfs" && (w[1] == "/mnt" || w[1] == "/var"))
        );
        assert!(
            args.windows(2)
                .any(|w| w[0] == "--tmpfs" && w[1] == "/var/run/postgresql")
        );
        assert!(
            args.windows(2)
                .any(|w| w[0] == "--chdir" && w[1] == "/srv/a")
        );
    }

    #[test]
    fn existing_directories_and_tmp_need_no_overlay() {
        let root = fake_root();
        let layout = Layout {
            binds: vec![
                Bind {
                    source: PathBuf::from("/s"),
                    target: "/mnt".into(),
                    read_only: false,
                },
                Bind {
                    source: PathBuf::from("/t"),
                    target: "/tmp/work/area".into(),
                    read_only: false,
                },
            ],
            ..Layout::default()
        };
        let args = text(&bwrap_args(root.path(), &layout, &Confinement::default()).unwrap());
        assert_eq!(
            args.iter().filter(|arg| arg.as_str() == "--tmpfs").count(),
            1,
            "only /tmp: {args:?}"
        );
    }

    #[test]
    fn bad_mount_paths_are_refused() {
        let root = fake_root();
        for path in ["relative/x", "/a/../b", "/proc/x", "/"] {
            let layout = Layout {
                tmpfs: vec![path.into()],
                ..Layout::default()
            };
            assert_eq!(
                bwrap_args(root.path(), &layout, &Confinement::default()),
                Err(SandboxError::BadMountPath(path.into())),
                "{path}"
            );
        }
        let layout = Layout {
            tmpfs: vec!["/etc/hostname/x".into()],
            ..Layout::default()
        };
        assert!(matches!(
            bwrap_args(root.path(), &layout, &Confinement::default()),
            Err(SandboxError::NotADirectory { .. })
        ));
    }

    fn hiding(paths: &[&str]) -> Confinement {
        Confinement {
            user_namespace: false,
            hidden: paths.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn every_container_drops_all_capabilities_and_runs_as_nobody_in_a_user_namespace() {
        let root = fake_root();
        let without = text(&bwrap_args(root.path(), &Layout::default(), &hiding(&[])).unwrap());
        assert!(
            without
                .windows(2)
                .any(|w| w[0] == "--cap-drop" && w[1] == "ALL")
        );
        assert!(!without.iter().any(|arg| arg == "--unshare-user"));
        let confinement = Confinement {
            user_namespace: true,
            ..Confinement::default()
        };
        let with = text(&bwrap_args(root.path(), &Layout::default(), &confinement).unwrap());
        assert!(has(&with, "--cap-drop", "ALL"));
        assert!(with.iter().any(|arg| arg == "--unshare-user"));
        assert!(with.iter().any(|arg| arg == "--disable-userns"));
        assert!(has(&with, "--uid", "65534"));
        assert!(has(&with, "--gid", "65534"));
    }

    #[test]
    fn hidden_files_are_absent_and_hidden_directories_empty() {
        let root = fake_root();
        fs::write(root.path().join("etc/shadow"), "root:$6$hash").unwrap();
        fs::create_dir_all(root.path().join("var/cache/secret")).unwrap();
        let args = text(
            &bwrap_args(
                root.path(),
                &Layout::default(),
                &hiding(&["/etc/shadow", "/var/cache"]),
            )
            .unwrap(),
        );
        let host = |rel: &str| root.path().join(rel).display().to_string();
        // /etc and /var are rebuilt: everything but the hidden entries is bound back.
        assert!(has(&args, "--dir", "/etc"));
        assert!(binds_back(&args, root.path(), "etc/hostname"));
        assert!(!args.iter().any(|arg| arg.contains("shadow")), "{args:?}");
        assert!(has(&args, "--dir", "/var/cache"));
        assert!(binds_back(&args, root.path(), "var/lib"));
        assert!(
            !args.iter().any(|arg| arg.starts_with(&host("var/cache"))),
            "{args:?}"
        );
    }

    #[test]
    fn a_volume_under_a_hidden_directory_does_not_bring_its_host_entries_back() {
        let root = fake_root();
        fs::create_dir_all(root.path().join("var/cache/secret")).unwrap();
        let layout = Layout {
            binds: vec![Bind {
                source: root.path().join("var/cache/volumes/own"),
                target: "/var/cache/own".into(),
                read_only: false,
            }],
            ..Layout::default()
        };
        let args = text(&bwrap_args(root.path(), &layout, &hiding(&["/var/cache"])).unwrap());
        let host = |rel: &str| root.path().join(rel).display().to_string();
        assert!(!has(&args, "--tmpfs", "/var/cache"));
        assert!(
            !args.iter().any(|arg| arg == &host("var/cache/secret")),
            "{args:?}"
        );
        assert!(has_pair(
            &args,
            "--bind",
            &host("var/cache/volumes/own"),
            "/var/cache/own"
        ));
    }

    #[test]
    fn the_hidden_set_is_canonical_existing_and_without_nested_or_own_paths() {
        let set = hidden_set(
            ["/etc/../etc", "/aci-emulator-no-such-path"]
                .into_iter()
                .map(PathBuf::from),
        );
        assert_eq!(set, BTreeSet::from([PathBuf::from("/etc")]));
        let pruned = prune(
            [
                "/srv/data",
                "/srv/data/shares",
                "/root",
                "/",
                "/tmp/x",
                "/dev/shm",
                "/proc/1",
            ]
            .into_iter()
            .map(PathBuf::from),
        );
        assert_eq!(
            pruned,
            BTreeSet::from([PathBuf::from("/root"), PathBuf::from("/srv/data")])
        );
    }
}
