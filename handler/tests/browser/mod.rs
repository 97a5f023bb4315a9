//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: JSON messages ended by NUL on file descriptors 3 and 4), so the
//! tests need no WebDriver and no websocket library. Name resolution is switched off for every
//! host but 127.0.0.1 and background networking is off: the browser talks to the test's server
//! only, and every request it makes is recorded ([`Browser::requests`]).

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// Where screenshots go: `target/test-artifacts/dashboard/`.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/dashboard");
    std::fs::create_dir_all(&dir).expect("creating the artefacts folder");
    dir
}

/// The `chromium` binary: `BERTH_CHROMIUM`, else `chromium` on `PATH`. Missing is a failure, never
/// a skip: `bin/test` installs it.
pub fn chromium() -> PathBuf {
    let found = match std::env::var_os("BERTH_CHROMIUM") {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("chromium"))
                .find(|p| p.is_file())
        }),
    };
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed: `bin/test` installs it (apt-get install chromium), \
             or set BERTH_CHROMIUM to a Chromium binary"
        )
    })
}

/// One headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    input: ChildStdin,
    messages: Receiver<Value>,
    /// Page loads seen while waiting for answers, not yet waited for.
    events: VecDeque<Value>,
    next_id: u64,
    session: String,
    /// Every URL the page requested.
    requests: Vec<String>,
    _profile: tempfile::TempDir,
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl Browser {
    /// Starts Chromium and opens a blank page.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().expect("a profile folder");
        let binary = chromium();
        // The shell moves the pipes to the descriptors Chromium reads (3) and writes (4) them on.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(&binary)
            .args([
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-domain-reliability",
                "--disable-sync",
                "--no-pings",
                "--disable-features=Translate,OptimizationHints,MediaRouter",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--window-size=1280,1000",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let input = child.stdin.take().expect("piped stdin");
        let output = child.stdout.take().expect("piped stdout");
        let (send, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(output);
            let mut buffer = Vec::new();
            while let Ok(n) = reader.read_until(0, &mut buffer) {
                if n == 0 {
                    break;
                }
                if buffer.last() == Some(&0) {
                    buffer.pop();
                }
                if let Ok(message) = serde_json::from_slice::<Value>(&buffer)
                    && send.send(message).is_err()
                {
                    break;
                }
                buffer.clear();
            }
        });
        let mut browser = Browser {
            child,
            input,
            messages,
            events: VecDeque::new(),
            next_id: 0,
            session: String::new(),
            requests: Vec::new(),
            _profile: profile,
        };
        let target = browser.call_browser("Target.createTarget", json!({ "url": "about:blank" }));
        let target = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = browser.call_browser(
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        for method in ["Page.enable", "Runtime.enable", "Network.enable"] {
            browser.call(method, json!({}));
        }
        browser
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.input
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("writing {method} to chromium: {e}"));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) if m["id"] == json!(id) => {
                    if let Some(error) = m.get("error") {
                        panic!("chromium refused {method}: {error}");
                    }
                    return m["result"].clone();
                }
                Ok(m) => self.record(m),
                Err(RecvTimeoutError::Timeout) => panic!("chromium did not answer {method}"),
                Err(RecvTimeoutError::Disconnected) => panic!("chromium exited during {method}"),
            }
        }
    }

    fn record(&mut self, event: Value) {
        if event["method"] == "Network.requestWillBeSent"
            && let Some(url) = event["params"]["request"]["url"].as_str()
        {
            self.requests.push(url.to_owned());
        }
        if event["method"] == "Page.loadEventFired" {
            self.events.push_back(event);
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// A DevTools command on the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    /// Waits for the page's next `load` event, reading past everything else.
    fn wait_load(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(at) = self
                .events
                .iter()
                .position(|e| e["method"] == "Page.loadEventFired")
            {
                self.events.drain(..=at);
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) => self.record(m),
                Err(_) => panic!("the page did not load within {TIMEOUT:?}"),
            }
        }
    }

    fn forget_loads(&mut self) {
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
    }

    /// Opens `url` and waits until it (and any redirect) has loaded.
    pub fn open(&mut self, url: &str) {
        self.forget_loads();
        let answer = self.call("Page.navigate", json!({ "url": url }));
        if let Some(error) = answer.get("errorText") {
            panic!("opening {url}: {error}");
        }
        self.wait_load();
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = answer.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        answer["result"]["value"].clone()
    }

    /// The page's visible text.
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until `expression` is true in the page.
    pub fn wait_for(&mut self, expression: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.eval(expression) != json!(true) {
            assert!(
                Instant::now() < deadline,
                "not true within {within:?}: {expression}\npage: {}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Clicks the element `selector` with the mouse, as a person would (scrolled into view,
    /// pressed and released at its centre), and waits for the page it leads to.
    pub fn click(&mut self, selector: &str) {
        let quoted = serde_json::to_string(selector).expect("JSON");
        let rect = self.eval(&format!(
            "(() => {{ const e = document.querySelector({quoted}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ));
        let (x, y) = match (rect[0].as_f64(), rect[1].as_f64()) {
            (Some(x), Some(y)) => (x, y),
            _ => panic!("no {selector} on the page: {}", self.text()),
        };
        self.forget_loads();
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
        self.wait_load();
    }

    /// Presses a key (`Tab`, `Enter`) as a keyboard would: down, the character it types, up.
    pub fn press(&mut self, key: &str) {
        let (code, text) = match key {
            "Tab" => (9, ""),
            "Enter" => (13, "\r"),
            other => panic!("no key code for {other}"),
        };
        let mut down = json!({ "type": "keyDown", "key": key, "code": key,
            "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code });
        if !text.is_empty() {
            down["text"] = json!(text);
        }
        self.call("Input.dispatchKeyEvent", down);
        self.call(
            "Input.dispatchKeyEvent",
            json!({ "type": "keyUp", "key": key, "code": key,
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code }),
        );
    }

    /// Tabs through the page until `selector` has the focus (at most `most` presses), then
    /// presses Enter on it and waits for the page it leads to.
    pub fn tab_to_and_enter(&mut self, selector: &str, most: usize) {
        let quoted = serde_json::to_string(selector).expect("JSON");
        let focused = format!("document.activeElement === document.querySelector({quoted})");
        for _ in 0..most {
            self.press("Tab");
            if self.eval(&focused) == json!(true) {
                self.forget_loads();
                self.press("Enter");
                self.wait_load();
                return;
            }
        }
        panic!("{selector} is not reached with {most} presses of Tab");
    }

    /// Types `text` into the field `selector` (focused first) through keyboard events.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        let quoted = serde_json::to_string(selector).expect("JSON");
        assert_eq!(
            self.eval(&format!(
                "(() => {{ const e = document.querySelector({quoted}); if (!e) return false; e.focus(); return true; }})()"
            )),
            json!(true),
            "no {selector} on the page"
        );
        self.call("Input.insertText", json!({ "text": text }));
    }

    /// A screenshot of the whole page, written to the artefacts folder as `name`.png.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let path = artifacts().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }

    /// Every URL the page has requested so far.
    pub fn requests(&self) -> &[String] {
        &self.requests
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing lets Chromium end its own helper processes; killing it would orphan them.
        self.next_id += 1;
        let close = json!({ "id": self.next_id, "method": "Browser.close" });
        let mut bytes = serde_json::to_vec(&close).unwrap_or_default();
        bytes.push(0);
        let _ = self.input.write_all(&bytes);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
