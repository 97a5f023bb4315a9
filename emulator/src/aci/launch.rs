//! Running a group's containers: resolving each image to a command, providing the volumes
//! (Azure Files shares as folders, `emptyDir`, secret files), starting each container under
//! bubblewrap and supervising it until it exits or is killed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use time::OffsetDateTime;
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Emulator, Entry};
use crate::cgroup::{Cgroup, Limits};
use crate::images::ImageMap;
use crate::lifecycle::{Input, Phase, Provisioning, Slot};
use crate::model::{ContainerGroup, Secret, Volume};
use crate::process::{self, LogSink, Owner, ProcessSpec, lock};
use crate::record::GroupKey;
use crate::sandbox::{self, Bind};
use crate::store::Layout;

/// The `PATH` a container gets when neither its image nor its spec sets one (Docker's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything needed to start one container, worked out under the group lock.
#[derive(Debug)]
struct Plan {
    name: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    layout: sandbox::Layout,
    limits: Option<Limits>,
    label: String,
    log_file: PathBuf,
}

/// A volume to provide before the containers start.
#[derive(Debug)]
enum VolumeWork {
    /// A folder that must exist.
    Folder(PathBuf),
    /// Secret files to write (name → decoded content).
    Secrets(PathBuf, Vec<(String, Vec<u8>)>),
}

impl Emulator {
    /// Resolves images and provides volumes for attempt `generation`, then lets the state machine
    /// start the init containers or the containers.
    pub(crate) async fn launch(self: Arc<Self>, key: GroupKey, generation: u64) {
        let prepared = {
            let groups = lock(&self.groups);
            let Some(entry) = groups.get(&key) else {
                return;
            };
            let runtime = &entry.record.runtime;
            if runtime.generation != generation || runtime.provisioning != Provisioning::Creating {
                return;
            }
            let spec = &entry.record.spec;
            let missing = runtime.slots().find_map(|(slot, _)| {
                let (name, image, command) = describe(spec, slot)?;
                resolve_image(&self.config.images, name, image, command)
                    .err()
                    .map(|message| (slot, message))
            });
            match missing {
                Some((slot, message)) => Err(Input::ImageUnavailable {
                    generation,
                    slot,
                    message,
                }),
                None => plan_volumes(&self.layout, &key, spec, &self.config.storage_keys).map_err(
                    |message| Input::MountFailed {
                        generation,
                        message,
                    },
                ),
            }
        };
        let work = match prepared {
            Ok(work) => work,
            Err(failure) => {
                self.input(&key, failure);
                return;
            }
        };
        self.input(&key, Input::Pulled { generation });
        let provided = tokio::task::spawn_blocking(move || provide_volumes(work))
            .await
            .unwrap_or_else(|error| Err(error.to_string()));
        match provided {
            Ok(()) => self.input(&key, Input::Provided { generation }),
            Err(message) => self.input(
                &key,
                Input::MountFailed {
                    generation,
                    message,
                },
            ),
        };
    }

    /// Starts one container of attempt `generation` (first start or restart) and supervises it.
    pub(crate) async fn spawn_container(
        self: Arc<Self>,
        key: GroupKey,
        generation: u64,
        slot: Slot,
    ) {
        let (plan, buffer) = {
            let groups = lock(&self.groups);
            let Some(entry) = groups.get(&key) else {
                return;
            };
            let runtime = &entry.record.runtime;
            let startable = runtime.generation == generation
                && !runtime.stopped
                && runtime
                    .run(slot)
                    .is_some_and(|run| matches!(run.phase, Phase::NotStarted | Phase::BackOff));
            let Some(buffer) = entry.log(slot).filter(|_| startable) else {
                return;
            };
            (self.plan_container(entry, &key, slot), buffer.clone())
        };
        let fail = |message: String| Input::StartFailed {
            generation,
            slot,
            message,
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(message) => {
                self.input(&key, fail(message));
                return;
            }
        };
        let sandbox_args =
            match sandbox::bwrap_args(Path::new("/"), &plan.layout, &self.confinement) {
                Ok(args) => args,
                Err(error) => {
                    self.input(
                        &key,
                        fail(format!("Error: failed to start container: {error}")),
                    );
                    return;
                }
            };
        lock(&buffer).clear();
        let file = open_log(&plan.log_file);
        let cgroup = plan
            .limits
            .and_then(|limits| self.cgroups.create(&plan.label, limits));
        let spec = ProcessSpec {
            bwrap: self.config.bwrap.clone(),
            sandbox: sandbox_args,
            argv: plan.argv,
            env: plan.env,
            cgroup_procs: cgroup.as_ref().map(Cgroup::procs_files).unwrap_or_default(),
        };
        let (started, readers) = match process::spawn(&spec, LogSink::new(buffer, file)) {
            Ok(started) => started,
            Err(error) => {
                if let Some(cgroup) = cgroup {
                    cgroup.remove();
                }
                let message = format!(
                    "Error: failed to start container: cannot run {}: {error}",
                    self.config.bwrap.display()
                );
                self.input(&key, fail(message));
                return;
            }
        };
        let owner = Owner {
            key: key.clone(),
            generation,
            slot,
        };
        let (kill, killed) = oneshot::channel();
        let id = self
            .processes
            .register(owner.clone(), started.pid, kill)
            .ok();
        let accepted = id.is_some() && self.mark_started(&key, generation, slot);
        if accepted {
            tracing::info!(aci.group = %key.name, aci.container = %plan.name, pid = ?started.pid, "container started");
        }
        tokio::spawn(self.clone().supervise(Supervised {
            owner,
            name: plan.name,
            pid: started.pid,
            id,
            child: started.child,
            killed,
            readers,
            cgroup,
            kill_now: !accepted,
        }));
    }

    /// Records that a container started; false when its attempt is over (stopped, replaced,
    /// deleted) and the process must go.
    fn mark_started(&self, key: &GroupKey, generation: u64, slot: Slot) -> bool {
        let mut groups = lock(&self.groups);
        let Some(entry) = groups.get_mut(key) else {
            return false;
        };
        let now = OffsetDateTime::now_utc();
        entry.record.runtime.apply(
            Input::Started {
                generation,
                slot,
                at: now,
            },
            now,
            self.config.timings.backoff(),
        );
        let runtime = &entry.record.runtime;
        let running = runtime.generation == generation
            && runtime
                .run(slot)
                .is_some_and(|run| run.phase == Phase::Running);
        self.persist(&entry.record);
        running
    }

    /// Waits for a container's process to exit or to be killed, then reports the exit.
    async fn supervise(self: Arc<Self>, mut run: Supervised) {
        let status = if run.kill_now {
            kill(&run);
            run.child.wait().await
        } else {
            tokio::select! {
                status = run.child.wait() => status,
                _ = &mut run.killed => {
                    kill(&run);
                    run.child.wait().await
                }
            }
        };
        // Nothing of the container may outlive it: the group and cgroup are emptied again.
        kill(&run);
        for reader in run.readers {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        if !run.kill_now && !self.processes.is_closed() {
            let code = status.map(process::exit_code).unwrap_or(128);
            tracing::info!(aci.group = %run.owner.key.name, aci.container = %run.name, exit_code = code, "container exited");
            self.input(
                &run.owner.key,
                Input::Exited {
                    generation: run.owner.generation,
                    slot: run.owner.slot,
                    code,
                    at: OffsetDateTime::now_utc(),
                },
            );
        }
        if let Some(cgroup) = run.cgroup {
            cgroup.remove();
        }
        if let Some(id) = run.id {
            self.processes.unregister(id);
        }
    }

    /// Works out the command, environment, mounts and limits of one container.
    fn plan_container(&self, entry: &Entry, key: &GroupKey, slot: Slot) -> Result<Plan, String> {
        let spec = &entry.record.spec;
        let (name, image, command) =
            describe(spec, slot).ok_or_else(|| format!("no container {slot:?}"))?;
        let image = resolve_image(&self.config.images, name, image, command)?;
        let (variables, mounts, resources) = match slot {
            Slot::Init(index) => {
                let props = &spec
                    .properties
                    .init_containers
                    .as_deref()
                    .unwrap_or_default()[index]
                    .properties;
                (&props.environment_variables, &props.volume_mounts, None)
            }
            Slot::Main(index) => {
                let props = &spec.properties.containers[index].properties;
                (
                    &props.environment_variables,
                    &props.volume_mounts,
                    props.resources.as_ref(),
                )
            }
        };
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("PATH".into(), DEFAULT_PATH.into());
        env.insert("HOME".into(), "/root".into());
        env.extend(image.env);
        for variable in variables.iter().flatten() {
            if variable.secure_value_reference.is_some() && variable.secure_value.is_none() {
                return Err(format!(
                    "Error: the emulator cannot resolve the secret reference of environment variable '{}'",
                    variable.name
                ));
            }
            let value = match (&variable.value, &variable.secure_value) {
                (_, Some(secret)) => secret.expose().clone(),
                (Some(value), None) => value.clone(),
                (None, None) => String::new(),
            };
            env.insert(variable.name.clone(), value);
        }
        let volumes: BTreeMap<&str, &Volume> = spec
            .properties
            .volumes
            .iter()
            .flatten()
            .map(|volume| (volume.name.as_str(), volume))
            .collect();
        let mut binds = Vec::new();
        for mount in mounts.iter().flatten() {
            let Some(volume) = volumes.get(mount.name.as_str()) else {
                return Err(format!("the volume '{}' is not defined", mount.name));
            };
            let (source, volume_read_only) = volume_source(&self.layout, key, volume);
            binds.push(Bind {
                source,
                target: mount.mount_path.clone(),
                read_only: mount.read_only.unwrap_or(false) || volume_read_only,
            });
        }
        // Init containers have no resources of their own; they run within the group's.
        let limits = resources.map(|resources| {
            let limits = resources.limits.as_ref();
            Limits {
                cpu: limits.and_then(|l| l.cpu).unwrap_or(resources.requests.cpu),
                memory_gb: limits
                    .and_then(|l| l.memory_in_gb)
                    .unwrap_or(resources.requests.memory_in_gb),
            }
        });
        Ok(Plan {
            name: name.to_string(),
            argv: image.argv,
            env: env.into_iter().collect(),
            layout: sandbox::Layout {
                binds,
                tmpfs: image.tmpfs,
                workdir: image.workdir,
            },
            limits,
            label: format!("{}-{name}", entry.record.name),
            log_file: self.layout.logs(key).join(format!("{name}.log")),
        })
    }
}

/// Kills everything of a container run: its process group and, where there is one, its cgroup.
fn kill(run: &Supervised) {
    if let Some(pid) = run.pid {
        process::kill_tree(pid);
    }
    if let Some(cgroup) = &run.cgroup {
        cgroup.kill_all();
    }
}

/// A process under supervision.
struct Supervised {
    owner: Owner,
    name: String,
    pid: Option<u32>,
    id: Option<u64>,
    child: Child,
    killed: oneshot::Receiver<()>,
    readers: Vec<JoinHandle<()>>,
    cgroup: Option<Cgroup>,
    kill_now: bool,
}

/// What an image stands for.
#[derive(Debug)]
struct Resolved {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    workdir: Option<String>,
    tmpfs: Vec<String>,
}

/// A container's name, image and command, whichever kind it is.
fn describe(spec: &ContainerGroup, slot: Slot) -> Option<(&str, &str, Option<&Vec<String>>)> {
    let (name, props_image, props_command) = match slot {
        Slot::Init(index) => {
            let init = spec.properties.init_containers.as_ref()?.get(index)?;
            (&init.name, &init.properties.image, &init.properties.command)
        }
        Slot::Main(index) => {
            let container = spec.properties.containers.get(index)?;
            (
                &container.name,
                &container.properties.image,
                &container.properties.command,
            )
        }
    };
    Some((
        name.as_str(),
        props_image.as_deref().unwrap_or_default(),
        props_command.as_ref(),
    ))
}

/// The command a container runs: its own `command`, else its image's entry in the image map.
fn resolve_image(
    images: &ImageMap,
    name: &str,
    image: &str,
    command: Option<&Vec<String>>,
) -> Result<Resolved, String> {
    let entry = images.lookup(image);
    let command = command.filter(|command| !command.is_empty());
    let argv = match (command, entry) {
        (Some(command), _) => command.clone(),
        (None, Some(entry)) => entry.command.clone(),
        (None, None) => {
            return Err(format!(
                "Failed to pull image \"{image}\": the ACI emulator has no image registry; give container '{name}' a command, or map the image to a local command in the emulator's image map (--images)"
            ));
        }
    };
    Ok(Resolved {
        argv,
        env: entry.map(|entry| entry.env.clone()).unwrap_or_default(),
        workdir: entry.and_then(|entry| entry.workdir.clone()),
        tmpfs: entry.map(|entry| entry.tmpfs.clone()).unwrap_or_default(),
    })
}

/// The host folder behind a volume, and whether the volume itself is read-only.
fn volume_source(layout: &Layout, key: &GroupKey, volume: &Volume) -> (PathBuf, bool) {
    if let Some(file) = &volume.azure_file {
        let folder = layout.share(&file.storage_account_name, &file.share_name);
        return (folder, file.read_only.unwrap_or(false));
    }
    if volume.secret.is_some() {
        return (layout.run(key).join("secrets").join(&volume.name), true);
    }
    (layout.run(key).join("emptydir").join(&volume.name), false)
}

/// What must exist before the containers start; errors read like ACI's `FailedMount` events.
fn plan_volumes(
    layout: &Layout,
    key: &GroupKey,
    spec: &ContainerGroup,
    storage_keys: &BTreeMap<String, Secret>,
) -> Result<Vec<VolumeWork>, String> {
    let mut work = Vec::new();
    for volume in spec.properties.volumes.iter().flatten() {
        let (folder, _) = volume_source(layout, key, volume);
        if let Some(file) = &volume.azure_file {
            if let Some(expected) = storage_keys.get(&file.storage_account_name) {
                let given = file.storage_account_key.as_ref().map(|key| key.expose());
                if given != Some(expected.expose()) {
                    return Err(format!(
                        "MountVolume.SetUp failed for volume \"{}\": mount of Azure Files share '{}' of storage account '{}' failed. Output: mount error(13): Permission denied",
                        volume.name, file.share_name, file.storage_account_name
                    ));
                }
            }
            work.push(VolumeWork::Folder(folder));
        } else if volume.secret_reference.is_some() {
            return Err(format!(
                "MountVolume.SetUp failed for volume \"{}\": the emulator cannot resolve Key Vault secret references",
                volume.name
            ));
        } else if let Some(secret) = &volume.secret {
            let mut files = Vec::new();
            for (name, content) in secret {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(content.expose().trim())
                    .map_err(|_| {
                        format!(
                            "the secret '{name}' of volume '{}' is not base64",
                            volume.name
                        )
                    })?;
                files.push((name.clone(), bytes));
            }
            work.push(VolumeWork::Secrets(folder, files));
        } else if volume.empty_dir.is_some() {
            work.push(VolumeWork::Folder(folder));
        } else {
            return Err(format!(
                "MountVolume.SetUp failed for volume \"{}\": gitRepo volumes are not emulated",
                volume.name
            ));
        }
    }
    Ok(work)
}

fn provide_volumes(work: Vec<VolumeWork>) -> Result<(), String> {
    for item in work {
        match item {
            VolumeWork::Folder(folder) => fs::create_dir_all(&folder)
                .map_err(|error| format!("cannot create {}: {error}", folder.display()))?,
            VolumeWork::Secrets(folder, files) => {
                let _ = fs::remove_dir_all(&folder);
                fs::create_dir_all(&folder)
                    .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
                for (name, bytes) in files {
                    fs::write(folder.join(&name), bytes)
                        .map_err(|error| format!("cannot write secret '{name}': {error}"))?;
                }
            }
        }
    }
    Ok(())
}

/// Opens (truncating) a container run's log file; logging to the file is skipped if it fails.
fn open_log(path: &Path) -> Option<fs::File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).ok()?;
    }
    fs::File::create(path).ok()
}
