//! Records on disk, under the data folder: `groups/<sub>/<rg>/<name>.json`, each written whole to a
//! temporary file and renamed over the old one (no fsync: a crash may lose the last change, never
//! leave half a record). Writes happen on a background task that keeps only the newest version of
//! each record, so the request path never waits for the disk. Logs live beside them in
//! `logs/<sub>/<rg>/<name>/<container>.log` and per-group scratch (`emptyDir`, secret volumes) in
//! `run/<sub>/<rg>/<name>/`.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::record::{GroupKey, Record};

/// The folders of one data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }

    /// The data folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a group's record lives.
    pub fn record(&self, key: &GroupKey) -> PathBuf {
        self.root
            .join("groups")
            .join(&key.subscription)
            .join(&key.resource_group)
            .join(format!("{}.json", key.name))
    }

    /// Where a group's container logs live.
    pub fn logs(&self, key: &GroupKey) -> PathBuf {
        self.root
            .join("logs")
            .join(&key.subscription)
            .join(&key.resource_group)
            .join(&key.name)
    }

    /// Where a group's scratch volumes live.
    pub fn run(&self, key: &GroupKey) -> PathBuf {
        self.root
            .join("run")
            .join(&key.subscription)
            .join(&key.resource_group)
            .join(&key.name)
    }

    /// Where an Azure Files share lives: `shares/<account>/<share>/`.
    pub fn share(&self, account: &str, share: &str) -> PathBuf {
        self.root.join("shares").join(account).join(share)
    }
}

enum Pending {
    Save(GroupKey, Box<Record>),
    Remove(GroupKey),
    Flush(oneshot::Sender<()>),
}

/// The handle of the background writer.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::UnboundedSender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Save(key, _) => write!(f, "Save({key:?})"),
            Pending::Remove(key) => write!(f, "Remove({key:?})"),
            Pending::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Store {
    /// Starts the writer for `layout`.
    pub fn spawn(layout: Layout) -> (Store, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(layout, rx));
        (Store { tx }, task)
    }

    /// Queues a record to be written.
    pub fn save(&self, record: &Record) {
        let _ = self
            .tx
            .send(Pending::Save(record.key(), Box::new(record.clone())));
    }

    /// Queues a record's removal.
    pub fn remove(&self, key: &GroupKey) {
        let _ = self.tx.send(Pending::Remove(key.clone()));
    }

    /// Waits until everything queued so far is on disk.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Pending::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(layout: Layout, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        // Keep only the last write of each record; answer flushes after the batch is written.
        let mut latest: HashMap<GroupKey, Option<Box<Record>>> = HashMap::new();
        let mut order = Vec::new();
        let mut flushes = Vec::new();
        for write in batch.drain(..) {
            match write {
                Pending::Save(key, record) => {
                    if latest.insert(key.clone(), Some(record)).is_none() {
                        order.push(key);
                    }
                }
                Pending::Remove(key) => {
                    if latest.insert(key.clone(), None).is_none() {
                        order.push(key);
                    }
                }
                Pending::Flush(done) => flushes.push(done),
            }
        }
        let layout = layout.clone();
        let writes: Vec<(GroupKey, Option<Box<Record>>)> = order
            .into_iter()
            .filter_map(|key| latest.remove(&key).map(|record| (key, record)))
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for (key, record) in writes {
                let path = layout.record(&key);
                let result = match record {
                    Some(record) => write_record(&path, &record),
                    None => remove_file(&path),
                };
                if let Err(error) = result {
                    tracing::warn!(path = %path.display(), %error, "cannot write the container-group record");
                }
            }
        })
        .await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn write_record(path: &Path, record: &Record) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    let temporary = path.with_extension("json.tmp");
    let mut file = open_private(&temporary)?;
    file.write_all(&text)?;
    drop(file);
    fs::rename(&temporary, path)
}

/// Opens a file only its owner can read: records hold the groups' secrets.
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

fn remove_file(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Reads every record under the data folder. Unreadable ones are skipped with a warning naming
/// the file (an emulator should start even after someone edited its records by hand).
pub fn load_all(layout: &Layout) -> Vec<Record> {
    let mut records = Vec::new();
    let groups = layout.root().join("groups");
    let Ok(subscriptions) = fs::read_dir(&groups) else {
        return records;
    };
    for subscription in subscriptions.flatten() {
        let Ok(resource_groups) = fs::read_dir(subscription.path()) else {
            continue;
        };
        for resource_group in resource_groups.flatten() {
            let Ok(files) = fs::read_dir(resource_group.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().and_then(|ext| ext.to_str()) != Some("json") {
                    continue;
                }
                match fs::read(&path)
                    .map_err(|error| error.to_string())
                    .and_then(|bytes| {
                        serde_json::from_slice::<Record>(&bytes).map_err(|error| error.to_string())
                    }) {
                    Ok(record) => records.push(record),
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "skipping an unreadable container-group record");
                    }
                }
            }
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Runtime;
    use crate::model::{ContainerGroup, RestartPolicy};

    fn record(name: &str) -> Record {
        Record {
            subscription: "Sub".into(),
            resource_group: "RG".into(),
            name: name.into(),
            location: "westus".into(),
            created: time::OffsetDateTime::UNIX_EPOCH,
            spec: ContainerGroup::default(),
            runtime: Runtime::new(RestartPolicy::Never, &[], &[], 1),
        }
    }

    #[tokio::test]
    async fn records_are_written_privately_reloaded_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let (store, _task) = Store::spawn(layout.clone());
        let mut first = record("job");
        store.save(&first);
        first.location = "eastus".into();
        store.save(&first);
        store.save(&record("other"));
        store.flush().await;
        let path = layout.record(&first.key());
        assert!(
            path.ends_with("groups/sub/rg/job.json"),
            "{}",
            path.display()
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut loaded = load_all(&layout);
        loaded.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(loaded, vec![first.clone(), record("other")]);

        fs::write(path.with_file_name("broken.json"), "{").unwrap();
        store.remove(&first.key());
        store.flush().await;
        let loaded = load_all(&layout);
        assert_eq!(
            loaded,
            vec![record("other")],
            "removed and unreadable records are not loaded"
        );
        assert!(!path.exists());
    }
}
