//! The dashboard in a real browser: headless Chromium against a real `handler dev`. A job
//! submitted through the API appears in the list (and a second one without a reload), its page,
//! reached by keyboard, shows the timeline and the saved logs once it has ended, an event is raised and a running job
//! terminated by clicking the forms' buttons (after its live log shows its output), a finished
//! one purged after its confirmation, a workflow's graph drawn, and a fan-out summed up and
//! paged; a schedule and a template shown with their fields, the schedule's first run linked
//! from its row, and the schedule paused and resumed by clicking.
//! Screenshots of every page go to `target/test-artifacts/dashboard/`.
#![allow(clippy::unwrap_used)]

mod browser;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use browser::Browser;

/// `handler dev` on free ports, with the dashboard URL it printed.
struct Dev {
    dev: berth_test_support::dev::Dev,
    base: String,
    dashboard: String,
    key: String,
}

impl Dev {
    fn start(data: &std::path::Path) -> Dev {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_handler"));
        let dev = berth_test_support::dev::Dev::start(binary, data, &[], &[]);
        let dashboard = dev.line("Dashboard:").trim()["Dashboard:".len()..]
            .trim()
            .to_owned();
        Dev {
            base: dev.url(""),
            key: dev.key(),
            dashboard,
            dev,
        }
    }

    /// `method path` of the API with the key, and `body` as JSON: the status and the answer.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.dev.client().request(method, self.dev.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        berth_test_support::api::send(request).await.unwrap()
    }

    async fn submit(&self, spec: &Value) {
        let (code, answer) = self
            .call(reqwest::Method::POST, "/api/deployments", Some(spec))
            .await;
        assert_eq!(code, 202, "{answer}");
    }

    async fn status(&self, id: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::GET,
            &format!("/api/deployments/{id}"),
            None,
        )
        .await
    }

    /// Waits until the deployment's status document satisfies `done`.
    async fn wait(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, status) = self.status(id).await;
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "{id} not {what}: {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn job(id: &str, script: &str) -> Value {
    json!({
        "id": id,
        "tags": { "suite": "browser" },
        "groups": [{"name": "work", "properties": {"containers": [{"name": "main", "properties": {
            "image": "busybox", "command": ["sh", "-c", script],
            "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}]}}]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_is_followed_and_terminated_in_the_browser() {
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    assert!(
        dev.dashboard == format!("{}/?code={}", dev.base, dev.key),
        "dev prints the ready-to-open dashboard URL: {}",
        dev.dashboard
    );
    dev.submit(&job(
        "browser-job",
        "echo 'hello from the browser test'; echo '<b>not bold</b>'",
    ))
    .await;
    let mut browser = Browser::start();

    // The printed URL signs in and takes the key out of the address bar.
    browser.open(&dev.dashboard);
    let location = browser.eval("location.href");
    assert_eq!(location, json!(format!("{}/", dev.base)));
    browser.wait_for(
        "document.body.innerText.includes('browser-job')",
        Duration::from_secs(10),
    );
    browser.screenshot("list");

    // The list updates itself: a job submitted now appears without a reload.
    browser.eval("window.notReloaded = true");
    dev.submit(&job("browser-long", "echo started; sleep 300"))
        .await;
    browser.wait_for(
        "window.notReloaded === true && document.body.innerText.includes('browser-long')",
        Duration::from_secs(15),
    );

    // A finished job's page: timeline and saved logs.
    dev.wait("browser-job", "done", |s| s["phase"] == "Done")
        .await;
    // By keyboard alone: the skip link comes first, then the way to the job.
    browser.press("Tab");
    assert_eq!(
        browser.eval("document.activeElement.textContent"),
        json!("Skip to content")
    );
    browser.tab_to_and_enter("a[href='/d/browser-job']", 20);
    assert_eq!(browser.eval("location.pathname"), json!("/d/browser-job"));
    let text = browser.text();
    assert!(text.contains("Succeeded"), "{text}");
    assert!(text.contains("hello from the browser test"), "{text}");
    // Log lines are text, never markup.
    assert!(text.contains("<b>not bold</b>"), "{text}");
    assert_eq!(
        browser.eval("document.querySelectorAll('pre.log b').length"),
        json!(0)
    );
    for mark in ["created", "running", "exit", "logs", "deleted", "end"] {
        let count = browser.eval(&format!(
            "document.querySelectorAll('#timeline svg circle.mark.{mark}').length"
        ));
        assert!(
            count.as_u64().unwrap() >= 1,
            "no {mark} mark on the timeline"
        );
    }
    browser.screenshot("deployment-succeeded");

    // A running job: raise an event, then terminate it, by clicking.
    dev.wait("browser-long", "running", |s| {
        s["groups"][0]["containers"][0]["state"] == "Running"
    })
    .await;
    browser.open(&format!("{}/d/browser-long", dev.base));
    // Its logs are polled by the script from the dashboard's logs route, which passes `tail` on
    // to the API's.
    let live = browser.eval("document.querySelector('pre[data-live]').getAttribute('data-live')");
    let live = live.as_str().unwrap().to_owned();
    assert!(
        live.starts_with("/d/browser-long/logs/") && live.ends_with("/main?tail=200"),
        "{live}"
    );
    let polled = format!("{}{live}", dev.base);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !browser.requests().contains(&polled) {
        assert!(
            Instant::now() < deadline,
            "{polled} not polled: {:?}",
            browser.requests()
        );
        browser.eval("new Promise(done => setTimeout(done, 200))");
    }
    // The script fills the log in place: the running container's output appears on the page.
    browser.wait_for(
        "document.querySelector('pre[data-live]').textContent.includes('started')",
        Duration::from_secs(15),
    );
    let shown = browser.eval("document.querySelector('pre[data-live]').textContent");
    assert!(
        !shown.as_str().unwrap().contains("Waiting for logs"),
        "{shown}"
    );
    browser.screenshot("deployment-running");
    browser.type_into("#e-name", "hello");
    browser.type_into("#e-payload", r#"{"say": "<i>hi</i>"}"#);
    browser.click("#raise");
    assert!(
        browser.text().contains("EventReceived"),
        "{}",
        browser.text()
    );
    browser.type_into("#t-reason", "clicked in the browser test");
    browser.click("#terminate");
    assert_eq!(browser.eval("location.pathname"), json!("/d/browser-long"));
    let status = dev
        .wait("browser-long", "terminated", |s| s["phase"] == "Done")
        .await;
    assert_eq!(status["runtimeStatus"], "Terminated", "{status}");
    browser.wait_for(
        "document.querySelector('#summary').innerText.includes('Terminated')",
        Duration::from_secs(15),
    );
    assert!(browser.text().contains("clicked in the browser test"));
    browser.screenshot("deployment-terminated");

    // Purge, after its confirmation step.
    browser.click("#purge");
    browser.screenshot("purge-confirm");
    browser.type_into("#p-confirm", "browser-long");
    browser.click("#purge-confirm");
    assert_eq!(browser.eval("location.pathname"), json!("/"));
    assert_eq!(dev.status("browser-long").await.0, 404);
    browser.screenshot("list-after-purge");

    // A workflow's page draws its dependency graph.
    let group = |name: &str, depends: Value| {
        json!({ "name": name, "dependsOn": depends, "properties": { "containers": [{ "name": "main",
            "properties": { "image": "busybox", "command": ["sh", "-c", "echo ran"],
                "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } })
    };
    dev.submit(&json!({ "id": "browser-flow", "groups": [
        group("extract", json!([])),
        group("transform", json!(["extract"])),
        group("load", json!(["transform", "extract"])) ] }))
        .await;
    dev.wait("browser-flow", "done", |s| s["phase"] == "Done")
        .await;
    browser.open(&format!("{}/d/browser-flow", dev.base));
    assert_eq!(
        browser.eval("document.querySelectorAll('#workflow svg path.edge').length"),
        json!(3)
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#workflow svg text.when').length"),
        json!(3)
    );
    browser.screenshot("deployment-workflow");

    // A fan-out: its page sums the group up and folds it into one timeline row; its instances
    // are a page away, each labelled with its index. Index 3 fails with its exit code.
    dev.submit(
        &json!({ "id": "browser-fan", "groups": [{ "name": "shard", "count": 30,
        "tolerateFailures": 1, "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox",
            "command": ["sh", "-c", "echo shard $BERTH_INDEX; test $BERTH_INDEX != 3 || exit 4"],
            "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }] }),
    )
    .await;
    dev.wait("browser-fan", "done", |s| s["phase"] == "Done")
        .await;
    browser.open(&format!("{}/d/browser-fan", dev.base));
    let groups = browser.eval("document.querySelector('#groups').innerText");
    let groups = groups.as_str().unwrap();
    assert!(groups.contains("29 succeeded, 1 failed"), "{groups}");
    assert!(groups.contains("All 30 instances of shard"), "{groups}");
    assert_eq!(
        browser.eval("document.querySelectorAll('#timeline svg g.row').length"),
        json!(2),
        "the deployment's row and the folded group's"
    );
    browser.screenshot("deployment-fan-out");
    browser.click("a.instances");
    assert_eq!(
        browser.eval("location.pathname"),
        json!("/d/browser-fan/g/shard")
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('table.instances tbody tr').length"),
        json!(30)
    );
    let row =
        browser.eval("[...document.querySelectorAll('table.instances tbody tr')][3].innerText");
    assert!(row.as_str().unwrap().contains("Failed"), "{row}");
    assert!(row.as_str().unwrap().contains('4'), "{row}");
    assert!(browser.text().contains("shard[29] #1"));
    browser.screenshot("fan-out-instances");

    // Everything came from Berth: no other host, no CDN (`data:` URLs are Chromium's own
    // form-control icons, not requests).
    let requests: Vec<&String> = browser
        .requests()
        .iter()
        .filter(|url| !url.starts_with("data:"))
        .collect();
    assert!(requests.len() > 10, "{requests:?}");
    for url in requests {
        assert!(url.starts_with(&format!("{}/", dev.base)), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_and_templates_are_shown_and_a_schedule_paused_in_the_browser() {
    use reqwest::Method;
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    let mut template = job("unused", "echo {{ parameters.word }} {{ parameters.n }}");
    template.as_object_mut().unwrap().remove("id");
    template["parameters"] = json!({
        "word": { "type": "string", "default": "hi", "allowed": ["hi", "hello"] },
        "n": { "type": "number" },
    });
    let (code, answer) = dev
        .call(Method::PUT, "/api/templates/greet", Some(&template))
        .await;
    assert_eq!(code, 201, "{answer}");
    let schedule = json!({ "cron": "* * * * *", "timeZone": "Europe/Amsterdam",
        "template": "greet", "parameters": { "word": "hello", "n": 7 },
        "concurrencyPolicy": "forbid", "startingDeadline": "PT5M" });
    let (code, answer) = dev
        .call(Method::PUT, "/api/schedules/minutely", Some(&schedule))
        .await;
    assert_eq!(code, 201, "{answer}");
    let schedule = || dev.call(Method::GET, "/api/schedules/minutely", None);

    let mut browser = Browser::start();
    browser.open(&dev.dashboard);
    // Both pages are in the navigation of every page.
    let mut visit = |page: &str, row: &str, shown: &[&str]| {
        browser.click(&format!("nav a[href='/{page}']"));
        assert_eq!(browser.eval("location.pathname"), json!(format!("/{page}")));
        let row = browser.eval(&format!("document.querySelector('#{row}').innerText"));
        for shown in shown {
            assert!(row.as_str().unwrap().contains(shown), "{shown:?} in {row}");
        }
        browser.screenshot(page);
    };
    visit(
        "templates",
        "template-greet",
        &[
            "greet\t1\t",
            "n number, required",
            "word string, default \"hi\", one of \"hi\" \"hello\"",
        ],
    );
    visit(
        "schedules",
        "schedule-minutely",
        &[
            "minutely\t* * * * *\tEurope/Amsterdam\tforbid, starting deadline PT5M\tActive\t",
            "template greet, latest version",
            "word = \"hello\"",
            "n = 7",
            "minutely-20",
        ],
    );

    // `dev` ticks just after every minute: the first run starts, and the page, updating itself,
    // links it.
    let deadline = Instant::now() + Duration::from_secs(90);
    let run = loop {
        let (_, s) = schedule().await;
        if let Some(id) = s["lastRun"]["deploymentId"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "no run: {s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let link = format!("#schedule-minutely a[href='/d/{run}']");
    browser.wait_for(
        &format!(
            "document.querySelector({}) !== null",
            serde_json::to_string(&link).unwrap()
        ),
        Duration::from_secs(15),
    );
    browser.screenshot("schedules-run");

    // Paused by clicking its button: the API says so, and the page offers to resume it.
    browser.click("#pause-minutely");
    assert_eq!(browser.eval("location.pathname"), json!("/schedules"));
    let (_, paused) = schedule().await;
    assert_eq!(paused["suspended"], true, "{paused}");
    assert!(paused["nextRun"].is_null(), "{paused}");
    let row = browser.eval("document.querySelector('#schedule-minutely').innerText");
    assert!(row.as_str().unwrap().contains("Paused"), "{row}");
    browser.screenshot("schedules-paused");
    browser.click("#resume-minutely");
    let (_, resumed) = schedule().await;
    assert_eq!(resumed["suspended"], false, "{resumed}");

    // Its run is a click away, and says which template it came from.
    browser.click(&link);
    assert_eq!(
        browser.eval("location.pathname"),
        json!(format!("/d/{run}"))
    );
    let summary = browser.eval("document.querySelector('#summary').innerText");
    assert!(
        summary.as_str().unwrap().contains("greet, version 1"),
        "{summary}"
    );
}
