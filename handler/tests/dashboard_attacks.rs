//! The dashboard attacked without a browser: each request goes through `tower`'s `oneshot` on the
//! router `serve` and `dev` serve ([`Runtime::router`]) or the Functions mode's
//! ([`Runtime::functions_router`]), over SQLite in a temporary folder and ARM at a closed port
//! (no page reaches ARM). Each refusal sits beside the same request done right.
//!
//! Attacks: a foreign page posting an action (foreign `Origin`, none at all, a missing or wrong
//! CSRF token), the key in an action's URL, hostile text in tags, event payloads, logs, ARM's
//! messages and the URL (rendered escaped), framing (clickjacking), and the cookie's attributes.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use berth::checkpoint::Deployments;
use berth::clock::{Clock, ShiftedClock, SystemClock, parse_rfc3339};
use berth::config::{Config, Defaults};
use berth::crypto::SecretsKey;
use berth::engine::state::HistoryEntry;
use berth::engine::{ContainerObservation, Deployment, Instance, Observation, RuntimeStatus};
use berth::runtime::Runtime;
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "dashboard-test-key-77e1";
const ORIGIN: &str = "http://127.0.0.1:7071";
/// A request's extra headers.
type Headers<'a> = Vec<(header::HeaderName, &'a str)>;

const XSS: &str = "<script>alert('x')</script><img src=x onerror=alert(1)>";

struct Berth {
    runtime: Runtime,
    router: Router,
    _dir: tempfile::TempDir,
}

async fn berth(public_url: &str) -> Berth {
    berth_in(public_url, false).await
}

/// [`berth`], with `dev`'s loopback-only guard when `loopback_only`.
async fn berth_in(public_url: &str, loopback_only: bool) -> Berth {
    berth_with(public_url, loopback_only, Arc::new(SystemClock)).await
}

/// [`berth_in`], on `clock`.
async fn berth_with(public_url: &str, loopback_only: bool, clock: Arc<dyn Clock>) -> Berth {
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        (
            "BERTH_SQLITE_PATH",
            dir.path().join("b.db").display().to_string(),
        ),
        ("BERTH_ARM_ENDPOINT", "http://127.0.0.1:9".into()),
        // The submit only saves (its first step, which would create the groups, is a message).
        ("BERTH_INLINE_STEP", "PT0S".into()),
        (
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000".into(),
        ),
        ("BERTH_RESOURCE_GROUP", "dashboard".into()),
        ("BERTH_LOCATION", "local".into()),
        ("BERTH_SECRETS_KEY", SecretsKey::generate().to_base64()),
        ("BERTH_PUBLIC_URL", public_url.into()),
        ("BERTH_API_KEY", KEY.into()),
    ];
    let settings = settings
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut config =
        Config::from_lookup(&Config::map_lookup(settings), Defaults::default()).unwrap();
    config.loopback_only = loopback_only;
    let runtime = Runtime::build(config, clock).await.unwrap();
    Berth {
        router: runtime.router(),
        runtime,
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// Asserts a `400` page whose detail (escaped) holds `detail`.
    #[track_caller]
    fn assert_bad_request(&self, detail: &str) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text);
        assert!(self.text.contains(detail), "{}", self.text);
    }

    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let at = self.text.find("name=\"csrf\" value=\"").unwrap() + 19;
        self.text[at..at + 64].to_owned()
    }
}

impl Berth {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), 1 << 24).await.unwrap();
        Answer {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A browser's `GET`, with the session cookie when given.
    async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut request = Request::get(path)
            .header(header::HOST, "127.0.0.1:7071")
            .header(header::ACCEPT, "text/html,*/*");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("berth_dashboard={cookie}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// A form `POST` with the given headers.
    async fn post(&self, path: &str, headers: &[(header::HeaderName, &str)], form: &str) -> Answer {
        let mut request = Request::post(path)
            .header(header::HOST, "127.0.0.1:7071")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        self.send(request.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    /// Signs in with `?code=` and returns the cookie's value.
    async fn sign_in(&self) -> String {
        let answer = self.get(&format!("/?code={KEY}"), None).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
        let cookie = answer.header(header::SET_COOKIE);
        let value = cookie.split(';').next().unwrap();
        value.strip_prefix("berth_dashboard=").unwrap().to_owned()
    }

    async fn api(&self, method: &str, path: &str, body: Value) -> StatusCode {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1:7071")
            .header("x-functions-key", KEY)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await.status
    }

    async fn submit(&self, id: &str, tags: Value) {
        let spec = json!({
            "id": id, "tags": tags,
            "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
                "image": "busybox", "command": ["true"],
                "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }]
        });
        assert_eq!(
            self.api("POST", "/api/deployments", spec).await,
            StatusCode::ACCEPTED
        );
    }

    async fn status(&self, id: &str) -> RuntimeStatus {
        self.runtime.driver.load(id).await.unwrap().unwrap().status
    }
}

#[tokio::test]
async fn readiness_stays_json_and_a_browser_without_the_key_gets_a_401_page() {
    let b = berth(ORIGIN).await;
    for accept in [None, Some("application/json"), Some("*/*")] {
        let mut request = Request::get("/");
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        let answer = b.send(request.body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            serde_json::from_str::<Value>(&answer.text).unwrap(),
            json!({ "status": "ready" })
        );
    }
    for path in ["/", "/d/anything", "/d/anything/purge"] {
        let answer = b.get(path, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(answer.header(header::CONTENT_TYPE).starts_with("text/html"));
        assert!(answer.text.contains("?code="), "{}", answer.text);
        assert!(!answer.text.contains(KEY));
    }
    let wrong = b.get("/?code=not-the-key", None).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    let forged = b.get("/", Some(KEY)).await;
    assert_eq!(
        forged.status,
        StatusCode::UNAUTHORIZED,
        "the key is not the cookie"
    );
}

#[tokio::test]
async fn the_code_becomes_a_strict_http_only_cookie_and_leaves_the_url() {
    let b = berth(ORIGIN).await;
    let answer = b
        .get(&format!("/?status=Running&code={KEY}&tag=a%3Db"), None)
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header(header::LOCATION),
        "/?status=Running&tag=a%3Db"
    );
    let cookie = answer.header(header::SET_COOKIE);
    let attributes: Vec<&str> = cookie.split("; ").collect();
    assert!(attributes[0].starts_with("berth_dashboard="), "{cookie}");
    assert!(!cookie.contains(KEY), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(&attribute), "{cookie}");
    }
    assert!(!attributes.contains(&"Secure"), "plain http: {cookie}");
    let value = b.sign_in().await;
    let page = b.get("/?status=Running", Some(&value)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("<option selected>Running</option>"));

    // Behind an https public URL the cookie is Secure.
    let b = berth("https://berth.example.com").await;
    let answer = b.get(&format!("/?code={KEY}"), None).await;
    assert!(
        answer.header(header::SET_COOKIE).contains("; Secure"),
        "{}",
        answer.header(header::SET_COOKIE)
    );
}

#[tokio::test]
async fn every_page_refuses_framing_inline_script_and_sniffing() {
    let b = berth(ORIGIN).await;
    b.submit("framed", json!({})).await;
    let cookie = b.sign_in().await;
    for path in [
        "/",
        "/d/framed",
        "/d/framed/purge",
        "/d/nothing-here",
        "/schedules",
        "/templates",
        "/assets/dashboard.css",
        "/assets/dashboard.js",
    ] {
        let answer = b.get(path, Some(&cookie)).await;
        let csp = answer.header(header::CONTENT_SECURITY_POLICY);
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "script-src 'self';",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(answer.header(header::X_FRAME_OPTIONS), "DENY", "{path}");
        assert_eq!(answer.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        // No page reaches outside: no URL to another host (the SVG namespace is a name, not a
        // request), no inline script.
        let text = answer.text.replace("http://www.w3.org/2000/svg", "");
        for external in ["http://", "https://", "=\"//", "url(", "@import"] {
            assert!(!text.contains(external), "{path}: {external}");
        }
        assert!(!answer.text.contains("<script>"), "{path}");
    }
    assert_eq!(
        b.get("/d/nothing-here", Some(&cookie)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn in_dev_a_rebound_host_or_a_foreign_origin_gets_no_page() {
    let b = berth_in(ORIGIN, true).await;
    let cookie = b.sign_in().await;
    assert_eq!(b.get("/", Some(&cookie)).await.status, StatusCode::OK);
    for (name, value) in [
        (header::HOST, "rebound.example:7071"),
        (header::ORIGIN, "http://evil.example"),
    ] {
        let request = Request::get("/")
            .header(header::HOST, "127.0.0.1:7071")
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, format!("berth_dashboard={cookie}"));
        let mut request = request.body(Body::empty()).unwrap();
        request
            .headers_mut()
            .insert(name.clone(), value.parse().unwrap());
        let answer = b.send(request).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{name}: {value}");
    }
}

/// An action's form sent as a foreign page could send it: each with what it lacks, and the
/// field its refusal names.
fn forged<'a>(
    cookie_h: (header::HeaderName, &'a str),
    form: &str,
) -> Vec<(&'static str, Headers<'a>, String, &'static str)> {
    vec![
        (
            "foreign Origin",
            vec![cookie_h.clone(), (header::ORIGIN, "http://evil.example")],
            form.to_owned(),
            "origin",
        ),
        (
            "null Origin",
            vec![cookie_h.clone(), (header::ORIGIN, "null")],
            form.to_owned(),
            "origin",
        ),
        (
            "another port",
            vec![cookie_h.clone(), (header::ORIGIN, "http://127.0.0.1:8080")],
            form.to_owned(),
            "origin",
        ),
        (
            "foreign Referer, no Origin",
            vec![
                cookie_h.clone(),
                (header::REFERER, "http://evil.example/d/target"),
            ],
            form.to_owned(),
            "origin",
        ),
        (
            "look-alike Referer",
            vec![
                cookie_h.clone(),
                (header::REFERER, "http://127.0.0.1:7071.evil.example/"),
            ],
            form.to_owned(),
            "origin",
        ),
        (
            "neither Origin nor Referer",
            vec![cookie_h.clone()],
            form.to_owned(),
            "origin",
        ),
        (
            "no CSRF token",
            vec![cookie_h.clone(), (header::ORIGIN, ORIGIN)],
            "reason=attack".into(),
            "csrf",
        ),
        (
            "wrong CSRF token",
            vec![cookie_h.clone(), (header::ORIGIN, ORIGIN)],
            format!("csrf={}&reason=attack", "0".repeat(64)),
            "csrf",
        ),
        (
            "no cookie",
            vec![(header::ORIGIN, ORIGIN)],
            form.to_owned(),
            "No key",
        ),
    ]
}

impl Berth {
    /// Posts every [`forged`] form to `path` and asserts each is refused, naming why; then the
    /// same form with the key in the URL, with and without the cookie.
    async fn assert_forgeries_refused(&self, path: &str, cookie: &str, form: &str) {
        let with_cookie = format!("berth_dashboard={cookie}");
        let cookie_h = (header::COOKIE, with_cookie.as_str());
        for (what, headers, body, field) in &forged(cookie_h.clone(), form) {
            let answer = self.post(path, headers, body).await;
            let expected = if *field == "No key" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(answer.status, expected, "{path}: {what}: {}", answer.text);
            assert!(answer.text.contains(field), "{what}: {}", answer.text);
        }
        for headers in [
            vec![(header::ORIGIN, ORIGIN)],
            vec![cookie_h.clone(), (header::ORIGIN, ORIGIN)],
        ] {
            let answer = self
                .post(&format!("{path}?code={KEY}"), &headers, form)
                .await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text);
            assert!(answer.text.contains("code: an action"), "{}", answer.text);
        }
    }
}

#[tokio::test]
async fn a_foreign_page_cannot_take_an_action() {
    let b = berth(ORIGIN).await;
    b.submit("target", json!({})).await;
    let cookie = b.sign_in().await;
    let page = b.get("/d/target", Some(&cookie)).await;
    let csrf = page.csrf();
    let with_cookie = format!("berth_dashboard={cookie}");
    let form = format!("csrf={csrf}&reason=attack");
    let cookie_h = (header::COOKIE, with_cookie.as_str());
    // The key in an action's URL is refused too, with or without the cookie.
    b.assert_forgeries_refused("/d/target/terminate", &cookie, &form)
        .await;
    assert_eq!(
        b.status("target").await,
        RuntimeStatus::Pending,
        "no refusal acted"
    );

    // The same form from the dashboard's own page terminates (by Origin, or by Referer alone).
    let answer = b
        .post(
            "/d/target/terminate",
            &[
                cookie_h.clone(),
                (header::REFERER, "http://127.0.0.1:7071/d/target"),
            ],
            &form,
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert_eq!(answer.header(header::LOCATION), "/d/target");
    assert_eq!(b.status("target").await, RuntimeStatus::Terminated);
}

#[tokio::test]
async fn events_and_purges_check_their_fields_and_need_a_confirmation() {
    let b = berth(ORIGIN).await;
    b.submit("acted-on", json!({})).await;
    let cookie = b.sign_in().await;
    let csrf = b.get("/d/acted-on", Some(&cookie)).await.csrf();
    let with_cookie = format!("berth_dashboard={cookie}");
    let headers = [
        (header::COOKIE, with_cookie.as_str()),
        (header::ORIGIN, ORIGIN),
    ];
    let bad = [
        ("name=bad%20name&payload=", "name: "),
        ("name=ok&payload=%7Bnot%20json", "payload: must be JSON"),
    ];
    for (form, detail) in bad {
        let answer = b
            .post(
                "/d/acted-on/events",
                &headers,
                &format!("csrf={csrf}&{form}"),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{form}");
        assert!(answer.text.contains(detail), "{}", answer.text);
    }
    let answer = b
        .post(
            "/d/acted-on/events",
            &headers,
            &format!("csrf={csrf}&name=go&payload=%7B%22n%22%3A1%7D"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    let d = b.runtime.driver.load("acted-on").await.unwrap().unwrap();
    assert_eq!(
        d.inbox.last().map(|r| (r.name.as_str(), r.payload.clone())),
        Some(("go", json!({"n": 1})))
    );

    // A deployment that has not ended is not purged; one that has, after its id is typed.
    let purge = |confirm: &str| format!("csrf={csrf}&confirm={confirm}");
    let answer = b
        .post("/d/acted-on/purge", &headers, &purge("acted-on"))
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    let answer = b
        .post("/d/acted-on/terminate", &headers, &format!("csrf={csrf}"))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let stored = b
        .runtime
        .sweep
        .store
        .load("acted-on")
        .await
        .unwrap()
        .unwrap();
    let mut done = stored.deployment.clone();
    done.phase = berth::engine::Phase::Done;
    b.runtime
        .sweep
        .store
        .save(&done, &stored.version, None)
        .await
        .unwrap();
    let confirm = b.get("/d/acted-on/purge", Some(&cookie)).await;
    assert!(
        confirm.text.contains("Type the id to confirm"),
        "{}",
        confirm.text
    );
    let answer = b
        .post("/d/acted-on/purge", &headers, &purge("another-id"))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.text.contains("confirm: "));
    let answer = b
        .post("/d/acted-on/purge", &headers, &purge("acted-on"))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert!(b.runtime.driver.load("acted-on").await.unwrap().is_none());
}

/// A checkpoint with an instance whose logs are saved, so the page shows them.
async fn with_saved_logs(b: &Berth, id: &str, logs: &str, problem: &str) {
    let store = b.runtime.sweep.store.clone();
    let stored = store.load(id).await.unwrap().unwrap();
    let mut d = stored.deployment.clone();
    let mut instance = Instance::new(0, 0, 1, format!("{id}-work-1"));
    instance.create_tries = 1;
    instance.created = Some(d.created + 10);
    instance.observed = Some(Observation {
        provisioning_state: "Succeeded".into(),
        state: "Succeeded".into(),
        containers: vec![ContainerObservation {
            name: "main".into(),
            state: "Terminated".into(),
            exit_code: Some(0),
            restart_count: 0,
            detail: None,
            start: Some(d.created + 20),
            finish: Some(d.created + 30),
        }],
        problem: Some(problem.into()),
    });
    instance.logs_saved = true;
    d.instances.push(instance);
    store.save(&d, &stored.version, None).await.unwrap();
    store
        .put_logs(id, "work", &format!("{id}-work-1"), "main", logs)
        .await
        .unwrap();
}

#[tokio::test]
async fn hostile_values_are_rendered_as_text() {
    let b = berth(ORIGIN).await;
    b.submit(
        "hostile",
        json!({ "owner": XSS, "x": "\"><svg onload=alert(2)>" }),
    )
    .await;
    let status = b
        .api(
            "POST",
            "/api/deployments/hostile/events/note",
            json!({ "html": XSS }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    with_saved_logs(&b, "hostile", &format!("line one\n{XSS}\n"), XSS).await;
    let cookie = b.sign_in().await;
    for path in [
        "/",
        "/d/hostile",
        "/?tag=owner%3D%3Cscript%3E",
        &format!("/?tag={}", urlencode(&format!("owner={XSS}"))),
    ] {
        let page = b.get(path, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        for raw in ["<script>alert", "<img src=x", "<svg onload"] {
            assert!(!page.text.contains(raw), "{path}: {raw} unescaped");
        }
    }
    let page = b.get("/d/hostile", Some(&cookie)).await;
    let escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;";
    // In the tags, the saved logs, the inbox's payload and ARM's problem message.
    assert!(page.text.matches(escaped).count() >= 3, "{}", page.text);
    assert!(page.text.contains("line one"));
    assert!(
        page.text
            .contains("x=&quot;&gt;&lt;svg onload=alert(2)&gt;"),
        "{}",
        page.text
    );
    let filtered = b
        .get(
            &format!("/?tag={}", urlencode(&format!("owner={XSS}"))),
            Some(&cookie),
        )
        .await;
    assert!(
        filtered.text.contains("/d/hostile"),
        "the tag filter matches the hostile value"
    );
    // The URL is hostile input too: an id that is not one is a 400 page that escapes it.
    let page = b
        .get("/d/%3Cscript%3Ealert(1)%3C%2Fscript%3E", Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(!page.text.contains("<script>alert"), "{}", page.text);
    let page = b.get("/?status=%3Cscript%3E", Some(&cookie)).await;
    page.assert_bad_request("status: &#39;&lt;script&gt;&#39; is not one of");
    // The logs the script polls are plain text that is never sniffed as HTML.
    let logs = b.get("/d/hostile/logs/work/main", Some(&cookie)).await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.text);
    assert!(logs.header(header::CONTENT_TYPE).starts_with("text/plain"));
    assert_eq!(logs.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert!(logs.text.contains(XSS));
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn under_functions_the_host_authenticates_and_links_carry_the_code() {
    let b = berth(ORIGIN).await;
    b.submit("hosted", json!({})).await;
    let body = schedule("0 3 * * *", json!({ "spec": one_group() }), json!({}));
    assert_eq!(
        b.api("PUT", "/api/schedules/nightly", body).await,
        StatusCode::CREATED
    );
    let router = b.runtime.functions_router();
    let hosted = |path: &str| {
        let request = Request::get(format!("/api/dashboard{path}?code=function-key"))
            .header(header::HOST, "app.azurewebsites.net")
            .body(Body::empty())
            .unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert!(response.headers().get(header::SET_COOKIE).is_none());
            let bytes = to_bytes(response.into_body(), 1 << 24).await.unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        }
    };
    let text = hosted("/d/hosted").await;
    for link in [
        "href=\"/api/dashboard/?code=function-key\"",
        "href=\"/api/dashboard/schedules?code=function-key\"",
        "href=\"/api/dashboard/templates?code=function-key\"",
        "action=\"/api/dashboard/d/hosted/terminate?code=function-key\"",
        "/api/dashboard/assets/dashboard.css?code=function-key",
    ] {
        assert!(text.contains(link), "{link} in {text}");
    }
    let text = hosted("/schedules").await;
    assert!(
        text.contains("action=\"/api/dashboard/schedules/nightly/pause?code=function-key\""),
        "{text}"
    );
    hosted("/templates").await;
    for path in ["/api/dashboard", "/api/dashboard/"] {
        let request = Request::get(format!("{path}?code=k"))
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn long_logs_show_their_end_and_link_to_the_whole() {
    let b = berth(ORIGIN).await;
    b.submit("chatty", json!({})).await;
    let mut logs = String::from("FIRST LINE\n");
    while logs.len() < 300 * 1024 {
        logs.push_str("a line of output that repeats itself\n");
    }
    logs.push_str("LAST LINE\n");
    with_saved_logs(&b, "chatty", &logs, "none").await;
    let cookie = b.sign_in().await;
    let page = b.get("/d/chatty", Some(&cookie)).await;
    assert!(page.text.contains("LAST LINE"));
    assert!(!page.text.contains("FIRST LINE"));
    assert!(
        page.text.contains("the last 256 KB of 300 KB"),
        "{}",
        &page.text[..2000]
    );
    assert!(
        page.text
            .contains("href=\"/d/chatty/logs/chatty-work-1/main\"")
    );
    let whole = b
        .get("/d/chatty/logs/chatty-work-1/main", Some(&cookie))
        .await;
    assert_eq!(whole.text, logs);
}

#[tokio::test]
async fn the_list_filters_by_status_time_and_tag_and_pages() {
    let b = berth(ORIGIN).await;
    for n in 0..27 {
        let team = if n % 2 == 0 { "even" } else { "odd" };
        b.submit(&format!("listed-{n:02}"), json!({ "team": team }))
            .await;
    }
    let cookie = b.sign_in().await;
    let first = b.get("/", Some(&cookie)).await;
    let at = first.text.find("rel=\"next\" href=\"").unwrap() + 17;
    let next = &first.text[at..at + first.text[at..].find('"').unwrap()];
    let second = b.get(&next.replace("&amp;", "&"), Some(&cookie)).await;
    let (mut seen, mut count) = (std::collections::BTreeSet::new(), Vec::new());
    for page in [&first, &second] {
        let ids: Vec<&str> = page
            .text
            .split(">listed-")
            .skip(1)
            .map(|s| &s[..2])
            .collect();
        count.push(ids.len());
        seen.extend(ids);
    }
    assert_eq!(count, [25, 2], "a page of 25, then the rest");
    assert_eq!(seen.len(), 27);
    assert!(!second.text.contains("rel=\"next\""));
    let odd = b.get("/?tag=team%3Dodd", Some(&cookie)).await;
    let shown: Vec<u32> = odd
        .text
        .split(">listed-")
        .skip(1)
        .map(|s| s[..2].parse().unwrap())
        .collect();
    assert!(
        shown.len() >= 11 && shown.iter().all(|n| n % 2 == 1),
        "{shown:?}"
    );
    let none = b.get("/?status=Succeeded", Some(&cookie)).await;
    assert!(none.text.contains("No deployments here."));
    // Everything is newer than 2000; nothing is newer than 2999, and no later page is offered.
    let all = b.get("/?after=2000-01-01", Some(&cookie)).await;
    assert!(all.text.contains(">listed-") && all.text.contains("rel=\"next\""));
    let future = b.get("/?after=2999-01-01T00%3A00", Some(&cookie)).await;
    assert!(future.text.contains("No deployments here.") && !future.text.contains("rel=\"next\""));
    let bad = b.get("/?after=yesterday", Some(&cookie)).await;
    bad.assert_bad_request("after: &#39;yesterday&#39; is not a time");
    // The next page keeps every filter, and shows only what they let through.
    let filtered = b
        .get(
            "/?status=Pending&after=2000-01-01&tag=team%3Dodd",
            Some(&cookie),
        )
        .await;
    let next = href_after(&filtered.text, "rel=\"next\"").unwrap();
    for kept in [
        "status=Pending",
        "after=2000-01-01",
        "tag=team%3Dodd",
        "continuationToken=",
    ] {
        assert!(next.contains(kept), "{kept} lost: {next}");
    }
    let second = b.get(&next, Some(&cookie)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let mut odd = std::collections::BTreeSet::new();
    for page in [&filtered, &second] {
        for n in page.text.split(">listed-").skip(1) {
            let n: u32 = n[..2].parse().unwrap();
            assert!(n % 2 == 1 && odd.insert(n), "{n} shown, or shown twice");
        }
    }
    assert_eq!(odd.len(), 13, "every odd one, over the two pages: {odd:?}");
    assert!(
        second.text.contains("value=\"team=odd\""),
        "the form shows the filter"
    );
}

#[tokio::test]
async fn hostile_list_filters_are_refused_on_the_page_or_matched_as_text() {
    let b = berth(ORIGIN).await;
    b.submit("plain", json!({ "team": "a" })).await;
    let cookie = b.sign_in().await;
    // Refused: the list page says which filter and why, keeps its form, and lists nothing.
    let long = "t".repeat(5000);
    let refused = [
        (
            format!("/?status={}", urlencode("Running' OR 1=1 --")),
            "status: &#39;Running&#39; OR 1=1 --&#39; is not one of",
        ),
        (
            format!("/?after={}", urlencode(XSS)),
            "after: &#39;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;",
        ),
        (format!("/?tag={long}"), "tag: at most 1024 characters"),
        (
            format!("/?continuationToken={long}"),
            "continuationToken: at most 1024 characters",
        ),
        (
            format!("/?continuationToken={}", urlencode(XSS)),
            "continuationToken: not a token this API gave out",
        ),
        (
            "/?continuationToken=MTphOmI%3D".to_owned(),
            "continuationToken: not a token this API gave out",
        ),
    ];
    for (path, detail) in &refused {
        let page = b.get(path, Some(&cookie)).await;
        page.assert_bad_request(detail);
        assert!(
            page.text.contains("id=\"filter-error\""),
            "{path}: {}",
            page.text
        );
        assert!(page.text.contains("<form class=\"filters\""), "{path}");
        assert!(!page.text.contains("/d/plain"), "{path}: listed anyway");
        for raw in ["<script>alert", "<img src=x"] {
            assert!(!page.text.contains(raw), "{path}: {raw} unescaped");
        }
        assert!(
            !page.text.contains(&long),
            "{path}: the oversize value echoed"
        );
    }
    // Matched as text: a tag filter is compared, never interpreted.
    for tag in ["' OR '1'='1", "team=a' --", "team=*", "%", XSS] {
        let page = b
            .get(&format!("/?tag={}", urlencode(tag)), Some(&cookie))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{tag}: {}", page.text);
        assert!(page.text.contains("No deployments here."), "{tag} matched");
        assert!(!page.text.contains("<script>alert"), "{tag}");
    }
    let page = b.get("/?tag=team%3Da", Some(&cookie)).await;
    assert!(page.text.contains("/d/plain"), "the same filter done right");
}

#[tokio::test]
async fn a_workflow_shows_its_dependency_graph() {
    let b = berth(ORIGIN).await;
    let group = |name: &str, depends: Value| {
        json!({ "name": name, "dependsOn": depends, "properties": { "containers": [{ "name": "main",
            "properties": { "image": "busybox", "command": ["true"],
                "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } })
    };
    let spec = json!({ "id": "flow", "groups": [
        group("extract", json!([])),
        group("transform", json!(["extract"])),
        group("load", json!(["transform", "extract"])),
        group("alert", json!(["load"])) ] });
    let mut spec = spec;
    spec["groups"][3]["runWhen"] = json!("failed");
    assert_eq!(
        b.api("POST", "/api/deployments", spec).await,
        StatusCode::ACCEPTED
    );
    let cookie = b.sign_in().await;
    let page = b.get("/d/flow", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let workflow = &page.text[page.text.find("id=\"workflow\"").unwrap()..];
    let workflow = &workflow[..workflow.find("</section>").unwrap()];
    // Four nodes, four arrows each labelled with when its group runs, and the table says the
    // same.
    assert_eq!(workflow.matches("<g class=\"node").count(), 4, "{workflow}");
    assert_eq!(
        workflow
            .matches("<path class=\"edge succeeded\" marker-end=\"url(#graph-arrow)\"")
            .count(),
        3,
        "{workflow}"
    );
    assert_eq!(
        workflow.matches(">on success</text>").count(),
        3,
        "{workflow}"
    );
    assert!(
        workflow.contains("<title>load → alert: it runs on failure</title>"),
        "{workflow}"
    );
    assert!(
        workflow.contains("<text class=\"when failed\""),
        "{workflow}"
    );
    assert!(
        workflow.contains("<th scope=\"row\">alert</th><td>load</td><td>on failure</td>"),
        "{workflow}"
    );
    assert!(
        workflow.contains("<th scope=\"row\">load</th><td>transform, extract</td>"),
        "{workflow}"
    );
    assert!(
        workflow.contains("<th scope=\"row\">transform</th><td>extract</td>"),
        "{workflow}"
    );
    assert!(workflow.contains("Waiting"), "{workflow}");
}

/// The observation of a fan-out instance whose container `main` exited with `exit`, or is still
/// running (`None`), at `now`.
fn ran(exit: Option<i64>, now: i64) -> Observation {
    let state = match exit {
        None => "Running",
        Some(0) => "Succeeded",
        Some(_) => "Failed",
    };
    Observation {
        provisioning_state: "Succeeded".into(),
        state: state.into(),
        containers: vec![ContainerObservation {
            name: "main".into(),
            state: if exit.is_some() {
                "Terminated"
            } else {
                "Running"
            }
            .into(),
            exit_code: exit,
            restart_count: 0,
            detail: None,
            start: Some(now - 5),
            finish: exit.map(|_| now),
        }],
        problem: None,
    }
}

/// Runs deployment `id` through the engine, as a worker would against an ARM where index `i`'s
/// attempt `a` ends as `exit(i, a)` says (`None`: it keeps running), then saves it: what its
/// dashboard pages read is what the engine made.
async fn run_fan_out(b: &Berth, id: &str, exit: impl Fn(u32, u32) -> Option<i64>) -> Deployment {
    use berth::engine::{Action, Event, Phase, apply};
    let store = b.runtime.sweep.store.clone();
    let stored = store.load(id).await.unwrap().unwrap();
    let mut d = stored.deployment.clone();
    let mut now = d.created;
    let mut queue = std::collections::VecDeque::from([(String::new(), Event::Wake)]);
    // A step asks again for what is not answered yet: one answer per instance and action.
    let mut pending = std::collections::HashSet::new();
    let mut seen_running = std::collections::HashSet::new();
    let mut idle_wakes = 0;
    while d.phase != Phase::Done {
        let Some((key, event)) = queue.pop_front() else {
            // Nothing left to answer: the engine's next step, unless only running ones remain.
            idle_wakes += 1;
            if idle_wakes > 20 {
                break;
            }
            now = now.max(d.wake.map_or(now, |w| w.at));
            queue.push_back((String::new(), Event::Wake));
            continue;
        };
        pending.remove(&key);
        now += 10;
        let transition = apply(&d, event, now).unwrap();
        d = transition.next;
        for action in transition.actions {
            let key = format!("{action:?}");
            if pending.contains(&key) {
                continue;
            }
            let event = match action {
                Action::Create { instance, .. } => Event::Created { instance },
                Action::Observe { instance } => {
                    let inst = d.instances.iter().find(|i| i.aci_name == instance).unwrap();
                    let ends = exit(inst.index, inst.generation);
                    if inst.index < 3 {
                        // These report through their `completed` callback, with an output.
                        pending.insert(key.clone());
                        queue.push_back((
                            key,
                            Event::InstanceCompleted {
                                instance,
                                exit_code: Some(0),
                                output: Some(json!({ "item": inst.index, "note": XSS })),
                            },
                        ));
                        continue;
                    }
                    if ends.is_none() && !seen_running.insert(instance.clone()) {
                        continue;
                    }
                    if ends.is_some() {
                        idle_wakes = 0;
                    }
                    Event::Observed {
                        instance,
                        observation: ran(ends, now),
                        at: now,
                    }
                }
                // Left for the clean-up, which needs no answer for the pages: each step of the
                // engine over 1,000 instances is dear in a debug build.
                Action::Stop { .. }
                | Action::CaptureLogs { .. }
                | Action::Delete { .. }
                | Action::Schedule { .. }
                | Action::Notify { .. } => continue,
            };
            pending.insert(key.clone());
            queue.push_back((key, event));
        }
    }
    store.save(&d, &stored.version, None).await.unwrap();
    d
}

/// Reads `href="..."` after `marker` in `text`, unescaped.
fn href_after(text: &str, marker: &str) -> Option<String> {
    let at = text.find(marker)? + marker.len();
    let at = at + text[at..].find("href=\"")? + 6;
    let end = at + text[at..].find('"')?;
    Some(text[at..end].replace("&amp;", "&"))
}

#[tokio::test]
async fn a_fan_out_of_1000_items_is_summarised_and_paged() {
    let b = berth(ORIGIN).await;
    let items: Vec<Value> = (0..1000).map(|n| json!({ "n": n })).collect();
    let spec = json!({ "id": "fan", "groups": [{ "name": "shard", "items": items, "completion": "either",
        "tolerateFailures": 50, "retry": { "maxAttempts": 2, "backoff": "PT1S" },
        "properties": { "containers": [{ "name": "main", "properties": { "image": "busybox",
            "command": ["true"], "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }] });
    assert_eq!(
        b.api("POST", "/api/deployments", spec).await,
        StatusCode::ACCEPTED
    );
    // Every 100th from 7 fails its first attempt and is retried; every 200th from 7 fails its
    // second too; the last ten keep running.
    let started = std::time::Instant::now();
    let d = run_fan_out(&b, "fan", |index, attempt| match index {
        990.. => None,
        i if i % 200 == 7 => Some(3),
        i if i % 100 == 7 && attempt == 1 => Some(3),
        _ => Some(0),
    })
    .await;
    eprintln!(
        "engine ran 1,000 items ({} container groups) in {:?}",
        d.instances.len(),
        started.elapsed()
    );
    assert_eq!(
        d.instances.len(),
        1010,
        "1,000 first attempts and 10 retries"
    );
    // History kinds the dashboard does not know yet (an eviction, a fallback, a quota hold) are
    // marks like the others, on the instance's row or the deployment's.
    let store = b.runtime.sweep.store.clone();
    let stored = store.load("fan").await.unwrap().unwrap();
    let mut d = stored.deployment.clone();
    let evicted = d.instances[500].aci_name.clone();
    for (kind, detail) in [
        ("Evicted", format!("{evicted}: spot capacity reclaimed")),
        (
            "LocationFallback",
            format!("{evicted}: westeurope after northeurope"),
        ),
        ("QuotaHeld", "waiting for 4 cores".to_owned()),
    ] {
        d.history.push(HistoryEntry {
            at: d.updated,
            kind: kind.into(),
            detail,
        });
    }
    store.save(&d, &stored.version, None).await.unwrap();
    let cookie = b.sign_in().await;

    let started = std::time::Instant::now();
    let page = b.get("/d/fan", Some(&cookie)).await;
    eprintln!(
        "deployment page: {} bytes in {:?}",
        page.text.len(),
        started.elapsed()
    );
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let groups = &page.text[page.text.find("id=\"groups\"").unwrap()..];
    let groups = &groups[..groups.find("</section>").unwrap()];
    assert!(
        groups.contains("0 new, 10 running, 0 retrying, 985 succeeded, 5 failed"),
        "{groups}"
    );
    assert!(groups.contains("Failures (5 of 5 shown)"), "{groups}");
    for index in [7, 207, 407, 607, 807] {
        assert!(
            groups.contains(&format!(
                "<tr><th scope=\"row\">{index}</th><td>2</td><td>3</td>"
            )),
            "failure {index} with its attempt and exit code: {groups}"
        );
    }
    assert!(groups.contains("Output of [0]"), "{groups}");
    assert!(!groups.contains("<script>alert"), "outputs are escaped");
    // Never every instance: beside the history (its latest 200 entries, the rest said to be in
    // the API's pages), the page names a handful of container groups, not a thousand.
    assert!(
        page.text
            .contains("id=\"history-archived\">The latest 200 entries; the ")
    );
    let history = page.text.find("id=\"history\"").unwrap();
    let history = &page.text[history..];
    let history = &history[..history.find("</section>").unwrap()];
    let named = page.text.matches("fan-shard-").count() - history.matches("fan-shard-").count();
    assert!(named < 60, "{named} container group names on the page");
    assert!(page.text.len() < 200 * 1024, "{} bytes", page.text.len());
    // The timeline folds the group into one row that keeps its retries and failures.
    let timeline = &page.text[page.text.find("id=\"timeline\"").unwrap()..];
    let timeline = &timeline[..timeline.find("</section>").unwrap()];
    assert!(timeline.contains("shard (1000 instances)"), "{timeline}");
    assert!(timeline.contains("1010 container group(s)"), "{timeline}");
    assert_eq!(timeline.matches("<g class=\"row\">").count(), 2);
    assert!(timeline.matches("class=\"mark retry\"").count() >= 10);
    let marked = |class: &str, text: &str| {
        timeline
            .split(&format!("<circle class=\"mark {class}\""))
            .skip(1)
            .any(|m| m[..m.find("</circle>").unwrap()].contains(text))
    };
    assert!(
        marked("evicted", &format!("Evicted {evicted}: spot capacity")),
        "{timeline}"
    );
    assert!(marked("fallback", "LocationFallback"), "{timeline}");
    assert!(
        marked("other", "QuotaHeld waiting for 4 cores"),
        "{timeline}"
    );
    assert!(marked("failed", "exited with code 3"), "{timeline}");

    // Page after page of at most 100, each index once, the last without a next page.
    let mut next = href_after(groups, "class=\"instances\"");
    assert_eq!(next.as_deref(), Some("/d/fan/g/shard"));
    let (mut indexes, mut pages) = (Vec::new(), 0);
    while let Some(path) = next.take() {
        let started = std::time::Instant::now();
        let page = b.get(&path, Some(&cookie)).await;
        if pages == 0 {
            eprintln!(
                "instances page: {} bytes in {:?}",
                page.text.len(),
                started.elapsed()
            );
        }
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        pages += 1;
        let table = &page.text[page.text.find("<table class=\"instances\"").unwrap()..];
        let table = &table[..table.find("</table>").unwrap()];
        let rows: Vec<u32> = table
            .split("<tr><th scope=\"row\">")
            .skip(1)
            .map(|row| row[..row.find('<').unwrap()].parse().unwrap())
            .collect();
        assert!(rows.len() <= 100, "{} rows", rows.len());
        if rows.contains(&7) {
            assert!(table.contains("<tr><th scope=\"row\">7</th><td><span class=\"state failed\">Failed</span></td><td>2</td>"), "{table}");
        }
        if rows.contains(&995) {
            assert!(
                table.contains(
                    "<tr><th scope=\"row\">995</th><td><span class=\"state running\">Running</span>"
                ),
                "{table}"
            );
            assert!(
                table.contains("/main?tail=200\">main (live)</a>"),
                "{table}"
            );
        }
        // This page's instances on their own timeline, labelled by index.
        let first = rows[0];
        assert!(page.text.contains(&format!("shard[{first}] #1")), "{first}");
        indexes.extend(rows);
        next = href_after(&page.text, "rel=\"next\"");
        assert!(pages <= 10, "more pages than 1,000 / 100");
    }
    assert_eq!(pages, 10);
    assert_eq!(indexes, (0..1000).collect::<Vec<u32>>());

    // A smaller page on request; a larger one, a forged token or another group refused.
    let small = b.get("/d/fan/g/shard?top=7", Some(&cookie)).await;
    assert_eq!(small.text.matches("<tr><th scope=\"row\">").count(), 7);
    let next = href_after(&small.text, "rel=\"next\"").unwrap();
    assert!(next.contains("top=7&continuationToken="), "{next}");
    b.get("/d/fan/g/shard?top=10000", Some(&cookie))
        .await
        .assert_bad_request("top: must be a number from 1 to 100");
    b.get(
        "/d/fan/g/shard?continuationToken=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        Some(&cookie),
    )
    .await
    .assert_bad_request("continuationToken: not a token this page gave");
    let missing = b.get("/d/fan/g/nothing", Some(&cookie)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing
            .text
            .contains("group: deployment &#39;fan&#39; has no group &#39;nothing&#39;")
    );
    let hostile = b.get("/d/fan/g/%3Cscript%3E", Some(&cookie)).await;
    assert_eq!(hostile.status, StatusCode::BAD_REQUEST);
    assert!(!hostile.text.contains("<script>"), "{}", hostile.text);
}

#[tokio::test]
async fn notifications_show_their_delivery_but_never_the_webhooks_secret_path_or_query() {
    let b = berth(ORIGIN).await;
    let secret = "T0000/B0000/XXXXsecretXXXX";
    let spec = json!({
        "id": "notified",
        "notify": [{ "url": format!("https://hooks.example.com/services/{secret}?token=tok-{secret}"), "on": ["Succeeded", "GroupFailed"] }],
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["true"],
            "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }]
    });
    assert_eq!(
        b.api("POST", "/api/deployments", spec).await,
        StatusCode::ACCEPTED
    );
    // A delivery that failed once and waits for its next attempt, for a group with a hostile name
    // (as a checkpoint could hold it).
    let store = b.runtime.sweep.store.clone();
    let stored = store.load("notified").await.unwrap().unwrap();
    let mut d = stored.deployment.clone();
    d.notifications.push(berth::engine::Notification {
        id: "uid-1.0".into(),
        target: 0,
        event_grid: false,
        on: berth::spec::NotifyOn::GroupFailed,
        group: Some(XSS.into()),
        at: d.created + 10,
        attempts: 1,
        state: berth::engine::DeliveryState::Pending,
        next_at: Some(d.created + 2_000),
        last: Some(format!("503 {XSS}")),
    });
    store.save(&d, &stored.version, None).await.unwrap();

    let cookie = b.sign_in().await;
    let page = b.get("/d/notified", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let table = page
        .text
        .split("id=\"notifications-table\"")
        .nth(1)
        .expect("a notifications table")
        .split("</table>")
        .next()
        .unwrap();
    assert!(
        table.contains("<code>https://hooks.example.com</code>"),
        "{table}"
    );
    assert!(table.contains("GroupFailed (&lt;script&gt;"), "{table}");
    assert!(
        table.contains("Pending") && table.contains("uid-1.0"),
        "{table}"
    );
    assert!(
        !page.text.contains(secret),
        "the webhook's path and query are on no part of the page, its spec included"
    );
    assert!(
        page.text.contains("https://hooks.example.com/(sealed)"),
        "the spec shows the origin"
    );
    // Nor in storage: the checkpoint keeps them sealed.
    let raw = store.load_record("notified").await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&raw.record.body).contains(secret));
    for raw in ["<script>alert", "<img src=x"] {
        assert!(!page.text.contains(raw), "{raw} unescaped");
    }
}

#[tokio::test]
async fn a_deployment_from_a_template_names_it_and_its_version() {
    let b = berth(ORIGIN).await;
    let template = json!({
        "parameters": { "word": { "type": "string", "default": "hi" } },
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["echo", "{{ parameters.word }}"],
            "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }]
    });
    assert_eq!(
        b.api("PUT", "/api/templates/greet", template).await,
        StatusCode::CREATED
    );
    let invocation =
        json!({ "id": "from-template", "template": "greet", "parameters": { "word": XSS } });
    assert_eq!(
        b.api("POST", "/api/deployments", invocation).await,
        StatusCode::ACCEPTED
    );
    let cookie = b.sign_in().await;
    let page = b.get("/d/from-template", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text
            .contains("<dt>Template</dt><dd><code>greet</code>, version 1</dd>"),
        "{}",
        page.text
    );
    // The substituted value is in the spec shown, as text.
    assert!(!page.text.contains("<script>alert"), "unescaped");
    assert!(page.text.contains("&lt;script&gt;alert"), "{}", page.text);
}

/// A schedule's body: `cron` in Amsterdam, starting `target` (a `spec` or a `template`), with
/// `more` fields.
fn schedule(cron: &str, target: Value, more: Value) -> Value {
    let mut body = json!({ "cron": cron, "timeZone": "Europe/Amsterdam" });
    for (k, v) in target
        .as_object()
        .unwrap()
        .iter()
        .chain(more.as_object().unwrap())
    {
        body[k] = v.clone();
    }
    body
}

fn one_group() -> Value {
    json!({ "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
        "image": "busybox", "command": ["true"],
        "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }] })
}

#[tokio::test]
async fn a_schedule_is_paused_and_resumed_only_from_the_dashboards_own_page() {
    let b = berth(ORIGIN).await;
    let body = schedule("0 3 * * *", json!({ "spec": one_group() }), json!({}));
    assert_eq!(
        b.api("PUT", "/api/schedules/nightly", body).await,
        StatusCode::CREATED
    );
    let suspended = || async { b.runtime.scheduler.get("nightly").await.unwrap().suspended };
    let cookie = b.sign_in().await;
    let page = b.get("/schedules", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("action=\"/schedules/nightly/pause\""),
        "{}",
        page.text
    );
    let csrf = page.csrf();
    let form = format!("csrf={csrf}");
    b.assert_forgeries_refused("/schedules/nightly/pause", &cookie, &form)
        .await;
    assert!(!suspended().await, "no refusal paused it");

    let with_cookie = format!("berth_dashboard={cookie}");
    let own = [
        (header::COOKIE, with_cookie.as_str()),
        (header::ORIGIN, ORIGIN),
    ];
    // Not a schedule's action, not a schedule's name, no such schedule: refused, nothing changes.
    let answer = b.post("/schedules/nightly/delete", &own, &form).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
    let answer = b
        .post(
            "/schedules/%3Cscript%3Ealert(1)%3C%2Fscript%3E/pause",
            &own,
            &form,
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert!(answer.text.contains("name: "), "{}", answer.text);
    assert!(!answer.text.contains("<script>alert"), "{}", answer.text);
    let answer = b.post("/schedules/weekly/pause", &own, &form).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
    assert!(
        answer.text.contains("no schedule &#39;weekly&#39;"),
        "{}",
        answer.text
    );
    assert!(!suspended().await);

    // From the dashboard's own page, with its token: paused, then resumed.
    let answer = b.post("/schedules/nightly/pause", &own, &form).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert_eq!(answer.header(header::LOCATION), "/schedules");
    assert!(suspended().await);
    let page = b.get("/schedules", Some(&cookie)).await;
    assert!(
        page.text
            .contains("<span class=\"badge paused\">Paused</span>"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("action=\"/schedules/nightly/resume\""),
        "{}",
        page.text
    );
    let answer = b.post("/schedules/nightly/resume", &own, &form).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert!(!suspended().await);
}

#[tokio::test]
async fn schedules_and_templates_show_their_fields_and_hostile_values_as_text() {
    let clock = Arc::new(ShiftedClock::at(
        parse_rfc3339("2026-12-03T10:00:30Z").unwrap(),
    ));
    let b = berth_with(ORIGIN, false, clock.clone()).await;
    let mut template = one_group();
    template["groups"][0]["properties"]["containers"][0]["properties"]["command"] =
        json!(["echo", "{{ parameters.word }}"]);
    template["parameters"] = json!({
        "word": { "type": "string", "default": XSS, "allowed": [XSS, "\"><svg onload=alert(2)>"] },
        "n": { "type": "number" },
        "url": { "type": "string", "default": "x", "from": "data.url" },
    });
    assert_eq!(
        b.api("PUT", "/api/templates/greet", template).await,
        StatusCode::CREATED
    );
    assert_eq!(
        b.api("PUT", "/api/templates/plain", one_group()).await,
        StatusCode::CREATED
    );
    // Names cannot carry markup: the API refuses them before anything is stored.
    for path in ["/api/templates/%3Cb%3Ex", "/api/schedules/%3Cb%3Ex"] {
        assert_eq!(
            b.api("PUT", path, one_group()).await,
            StatusCode::BAD_REQUEST,
            "{path}"
        );
    }
    let from_template = schedule(
        "30 6 * * 1-5",
        json!({ "template": "greet", "version": 1, "parameters": { "word": XSS, "n": 2 } }),
        json!({ "concurrencyPolicy": "replace" }),
    );
    assert_eq!(
        b.api("PUT", "/api/schedules/greeter", from_template).await,
        StatusCode::CREATED
    );
    let mut notifying = one_group();
    notifying["notify"] = json!([{ "url": "https://hooks.example.com/services/s3cr3t-path" }]);
    let every = schedule(
        "* * * * *",
        json!({ "spec": notifying }),
        json!({ "concurrencyPolicy": "forbid", "startingDeadline": "PT10M" }),
    );
    assert_eq!(
        b.api("PUT", "/api/schedules/every", every).await,
        StatusCode::CREATED
    );
    // Three minutes on, one tick: the latest time starts, the two before it are missed. A minute
    // later the run has not ended (nothing runs it here), so `forbid` holds the next time.
    clock.advance(3 * 60_000);
    let report = b.runtime.scheduler.run_once().await;
    assert_eq!(report.started, ["every-202612031003"], "{report:?}");
    clock.advance(60_000);
    let report = b.runtime.scheduler.run_once().await;
    assert_eq!(report.held, 1, "{report:?}");

    let cookie = b.sign_in().await;
    let page = b.get("/schedules", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let row = |name: &str| {
        let at = page
            .text
            .find(&format!("<tr id=\"schedule-{name}\">"))
            .unwrap();
        let end = at + page.text[at..].find("</tr>").unwrap();
        page.text[at..end].to_owned()
    };
    let every = row("every");
    for shown in [
        "<code class=\"nowrap\">* * * * *</code>",
        "<td>Europe/Amsterdam</td>",
        "<td>forbid, starting deadline PT10M</td>",
        "<span class=\"badge active\">Active</span>",
        // Where its runs notify, by origin: the webhook's path is sealed, never shown.
        "spec: a job of <code>work</code>, notifying <code>https://hooks.example.com</code>",
        // The last run, linked to its deployment.
        "<a class=\"nowrap\" href=\"/d/every-202612031003\">every-202612031003</a><br>for <time datetime=\"2026-12-03T10:03:00.000Z\">",
        // The next run and the id it will have.
        "<time datetime=\"2026-12-03T10:05:00.000Z\">2026-12-03T10:05:00.000Z</time><br><code class=\"nowrap\">every-202612031005</code>",
        "<td>2, the last for <time datetime=\"2026-12-03T10:02:00.000Z\">",
        "concurrencyPolicy forbid: the previous run every-202612031003 is still live (for <time datetime=\"2026-12-03T10:04:00.000Z\">",
        "<button type=\"submit\" id=\"pause-every\"",
    ] {
        assert!(every.contains(shown), "{shown} in {every}");
    }
    let greeter = row("greeter");
    for shown in [
        "<code class=\"nowrap\">30 6 * * 1-5</code>",
        "<td>replace</td>",
        "template <code>greet</code>, version 1",
        "<li><code>n</code> = <code>2</code></li>",
        "<li><code>word</code> = <code>&quot;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;</code></li>",
        // Mondays to Fridays at 06:30 in Amsterdam: Friday the 4th, 05:30 UTC.
        "<code class=\"nowrap\">greeter-202612040530</code>",
        "<td>0</td><td>—</td>",
    ] {
        assert!(greeter.contains(shown), "{shown} in {greeter}");
    }
    assert!(!page.text.contains("s3cr3t"), "{}", page.text);
    // The run's page is a click away.
    let run = b.get("/d/every-202612031003", Some(&cookie)).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);

    let page = b.get("/templates", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for shown in [
        "<tr id=\"template-greet\"><th scope=\"row\">greet</th><td>1</td>",
        "<li><code>n</code> number, required</li>",
        "<li><code>url</code> string, default <code>&quot;x&quot;</code>, from the event's <code>data.url</code></li>",
        "<li><code>word</code> string, default <code>&quot;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;</code>, one of <code>&quot;&lt;script&gt;",
        "<code>&quot;\\&quot;&gt;&lt;svg onload=alert(2)&gt;&quot;</code></li>",
        "<tr id=\"template-plain\"><th scope=\"row\">plain</th><td>1</td>",
    ] {
        assert!(page.text.contains(shown), "{shown} in {}", page.text);
    }
    for path in ["/schedules", "/templates"] {
        let page = b.get(path, Some(&cookie)).await;
        for raw in ["<script>alert", "<img src=x", "<svg onload"] {
            assert!(!page.text.contains(raw), "{path}: {raw} unescaped");
        }
        // Every page links to both.
        for link in [
            "<a href=\"/schedules\">Schedules</a>",
            "<a href=\"/templates\">Templates</a>",
        ] {
            assert!(page.text.contains(link), "{path}: {link}");
        }
    }
}
