//! The image map: there is no registry here, so an image without a `command` runs whatever the map
//! file (`--images FILE`, TOML) says it stands for.
//!
//! ```toml
//! [images."postgres:15"]
//! command = ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/data"]
//! env = { PGDATA = "/var/lib/postgresql/data" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why an image map could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageMapError {
    /// The file could not be read.
    #[error("cannot read the image map {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("the image map {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// What an image stands for: the command and environment its entrypoint would have.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    /// The command in exec form (the image's entrypoint and arguments).
    pub command: Vec<String>,
    /// Environment variables the image sets (the container's own variables override them).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory (default `/`).
    #[serde(default)]
    pub workdir: Option<String>,
    /// Extra writable tmpfs directories inside the container (the host root is read-only), such
    /// as `/var/run/postgresql`.
    #[serde(default)]
    pub tmpfs: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageFile {
    #[serde(default)]
    images: BTreeMap<String, ImageEntry>,
}

/// Image reference → what it stands for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageMap {
    entries: BTreeMap<String, ImageEntry>,
}

impl ImageMap {
    /// Reads and checks a map file.
    pub fn load(path: &Path) -> Result<Self, ImageMapError> {
        let text = std::fs::read_to_string(path).map_err(|source| ImageMapError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ImageMapError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses map text; the error names the offending key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: ImageFile = toml::from_str(text).map_err(|error| error.to_string())?;
        let mut map = ImageMap::default();
        for (image, entry) in file.images {
            map.insert(&image, entry)?;
        }
        Ok(map)
    }

    /// Adds or replaces an entry; the command must not be empty and paths must be absolute.
    pub fn insert(&mut self, image: &str, entry: ImageEntry) -> Result<(), String> {
        if entry.command.is_empty() || entry.command[0].is_empty() {
            return Err(format!("images.\"{image}\".command must not be empty"));
        }
        for dir in entry.tmpfs.iter().chain(entry.workdir.iter()) {
            if !dir.starts_with('/') {
                return Err(format!(
                    "images.\"{image}\": '{dir}' must be an absolute path"
                ));
            }
        }
        self.entries.insert(normalize(image), entry);
        Ok(())
    }

    /// Finds an image, ignoring Docker Hub's implicit parts (`docker.io/library/…`, `:latest`).
    pub fn lookup(&self, image: &str) -> Option<&ImageEntry> {
        self.entries.get(&normalize(image))
    }

    /// How many images are mapped.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `nginx` → `nginx:latest`; `docker.io/library/nginx:1` → `nginx:1`; case-insensitive.
fn normalize(image: &str) -> String {
    let mut name = image.trim().to_ascii_lowercase();
    for prefix in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.to_string();
        }
    }
    if let Some(rest) = name.strip_prefix("library/") {
        name = rest.to_string();
    }
    let last = name.rsplit('/').next().unwrap_or(&name);
    if !last.contains(':') && !last.contains('@') {
        name.push_str(":latest");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let map = ImageMap::parse(
            r#"
            [images."postgres:15"]
            command = ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/data"]
            env = { PGDATA = "/var/lib/postgresql/data" }
            tmpfs = ["/var/run/postgresql"]

            [images.nginx]
            command = ["/usr/sbin/nginx", "-g", "daemon off;"]
            "#,
        )
        .unwrap();
        let postgres = map.lookup("docker.io/library/postgres:15").unwrap();
        assert_eq!(postgres.env["PGDATA"], "/var/lib/postgresql/data");
        assert!(map.lookup("nginx:latest").is_some());
        assert!(map.lookup("NGINX").is_some());
        assert!(map.lookup("nginx:alpine").is_none());
        assert!(map.lookup("myregistry.azurecr.io/postgres:15").is_none());
    }

    #[test]
    fn errors_name_the_image() {
        let error = ImageMap::parse("[images.\"job:1\"]\ncommand = []\n").unwrap_err();
        assert!(error.contains("images.\"job:1\".command"), "{error}");
        let error = ImageMap::parse("[images.x]\ncommand = [\"a\"]\nentrypoint = 1\n").unwrap_err();
        assert!(error.contains("entrypoint"), "{error}");
    }
}
