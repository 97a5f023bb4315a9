//! `handler dev`, the real binary, as a test starts it: on loopback ports of its own (or given
//! ones, to start it again on the same data), its banner read up to its `data:` line, stopped
//! with `SIGINT` when dropped.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::free_port;

/// A running `handler dev`.
pub struct Dev {
    pub child: Child,
    pub port: u16,
    pub emulator_port: u16,
    /// Its first stdout lines, up to the `data:` line.
    pub banner: Vec<String>,
    data: PathBuf,
}

impl Dev {
    /// `binary dev` on fresh ports with its data in `data`, `args` after the rest, `envs` set.
    pub fn start(binary: &Path, data: &Path, args: &[&str], envs: &[(&str, String)]) -> Dev {
        Dev::start_on(binary, data, (free_port(), free_port()), args, envs)
    }

    /// The same on `ports` (the API's and the emulator's), as a restart on the same data needs.
    pub fn start_on(
        binary: &Path,
        data: &Path,
        (port, emulator_port): (u16, u16),
        args: &[&str],
        envs: &[(&str, String)],
    ) -> Dev {
        let mut child = Command::new(binary)
            .args(["dev", "--port", &port.to_string()])
            .args(["--emulator-port", &emulator_port.to_string(), "--data-dir"])
            .arg(data)
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("BERTH_API_KEY")
            .envs(envs.iter().map(|(k, v)| (*k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} cannot start: {e}", binary.display()));
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            let last = line.trim_start().starts_with("data:");
            banner.push(line);
            if last {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Dev {
            child,
            port,
            emulator_port,
            banner,
            data: data.to_owned(),
        }
    }

    /// `path` on its API's origin.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The banner line that starts with `label`.
    pub fn line(&self, label: &str) -> &str {
        self.banner
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in {:?}", self.banner))
    }

    /// The API key `dev` made in its data folder.
    pub fn key(&self) -> String {
        let key = std::fs::read_to_string(self.data.join("api.key"))
            .unwrap_or_else(|e| panic!("dev made no api.key in {}: {e}", self.data.display()));
        key.trim().to_owned()
    }

    /// A client of its API (`/api`) with its key.
    pub fn api(&self) -> crate::api::Client {
        crate::api::Client::new(self.url("/api")).with_key(self.key())
    }

    /// A client that sends the API key `dev` made in its data folder.
    pub fn client(&self) -> reqwest::Client {
        let key = self.key();
        let headers = reqwest::header::HeaderMap::from_iter([(
            reqwest::header::HeaderName::from_static("x-functions-key"),
            reqwest::header::HeaderValue::from_str(&key).expect("a header value"),
        )]);
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("a client")
    }

    /// `SIGKILL`: gone at once, nothing shut down in order.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // After `kill` the process is reaped and its pid may be another's: signal only a live one.
        if matches!(self.child.try_wait(), Ok(None)) {
            crate::interrupt(&mut self.child, "INT");
        }
    }
}
