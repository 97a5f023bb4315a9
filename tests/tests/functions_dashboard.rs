//! The dashboard in Functions mode: the real `handler` behind the simulated host (SQLite in a
//! temporary folder, ARM nowhere), reached only through the host's front as a browser would:
//! the `dashboard` function's catch-all route `dashboard/{*path}` under `/api`, the function key
//! as `?code=` on every link, form and asset, and nothing served to a request without it.
#![allow(clippy::unwrap_used)]

use berth_test_support::api::json_body;
use berth_tests::host::{FunctionsHost, HostOptions, workspace_binary};
use serde_json::json;

async fn start(dir: &std::path::Path) -> FunctionsHost {
    let settings = [
        ("BERTH_SQLITE_PATH", dir.join("b.db").display().to_string()),
        ("BERTH_QUEUE", "berth-steps".into()),
        ("BERTH_SUBMIT_QUEUE", "berth-submit".into()),
        ("BERTH_ARM_ENDPOINT", "http://127.0.0.1:9".into()),
        (
            "BERTH_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000000".into(),
        ),
        ("BERTH_RESOURCE_GROUP", "rg".into()),
        ("BERTH_LOCATION", "local".into()),
        (
            "BERTH_SECRETS_KEY",
            berth::crypto::SecretsKey::generate().to_base64(),
        ),
        ("RUST_LOG", "warn".into()),
    ];
    let settings = settings
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let options = HostOptions::new(&workspace_binary("handler").unwrap(), settings).unwrap();
    FunctionsHost::start(options).await.unwrap()
}

#[tokio::test]
async fn the_dashboard_function_serves_pages_and_actions_with_the_function_key() {
    let dir = tempfile::tempdir().unwrap();
    let host = start(dir.path()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (api, key) = (host.api_url(), host.function_key().to_owned());
    let spec = json!({ "id": "hosted-1", "groups": [{ "name": "g", "properties": { "containers": [
        { "name": "c", "properties": { "image": "busybox", "command": ["true"],
          "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } } } }] } }] });
    let r = http
        .post(format!("{api}/deployments"))
        .header("x-functions-key", &key)
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Without the key the host refuses and the handler is never invoked.
    let before = host.records().len();
    for path in ["dashboard", "dashboard/", "dashboard/d/hosted-1"] {
        let r = http.get(format!("{api}/{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    assert_eq!(host.records().len(), before);

    // With it: the list (with or without the trailing slash), the page, the assets.
    for path in ["dashboard", "dashboard/"] {
        let r = http
            .get(format!("{api}/{path}?code={key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains(&format!("/api/dashboard/d/hosted-1?code={key}")),
            "{text}"
        );
        assert_eq!(host.records().last().unwrap().function, "dashboard");
    }
    let page = http
        .get(format!("{api}/dashboard/d/hosted-1?code={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("set-cookie").is_none());
    let page = page.text().await.unwrap();
    for asset in ["dashboard.css", "dashboard.js"] {
        let r = http
            .get(format!("{api}/dashboard/assets/{asset}?code={key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(page.contains(&format!("/api/dashboard/assets/{asset}?code={key}")));
    }

    // Encoded slashes and dots in the catch-all do not reach another route (`%2e%2e` itself the
    // client already reads as `..`).
    for path in [
        "dashboard/d%2F..%2F..%2Fdeployments",
        "dashboard/%252e%252e/deployments",
    ] {
        let r = http
            .get(format!("{api}/{path}?code={key}"))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 400 | 404),
            "{path}: {}",
            r.status()
        );
        assert_eq!(host.records().last().unwrap().function, "dashboard");
    }

    // Terminate by the page's form: refused from another origin, done from the dashboard's own.
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &page[at..at + 64];
    let action = format!("{api}/dashboard/d/hosted-1/terminate?code={key}");
    let origin = {
        let url = url::Url::parse(&api).unwrap();
        url.origin().ascii_serialization()
    };
    let post = |origin: &str| {
        http.post(&action)
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&reason=from+the+hosted+dashboard"))
            .send()
    };
    assert_eq!(post("http://evil.example").await.unwrap().status(), 403);
    let r = post(&origin).await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let status = json_body(
        http.get(format!("{api}/deployments/hosted-1"))
            .header("x-functions-key", &key),
    )
    .await;
    assert_eq!(status["runtimeStatus"], "Terminated", "{status}");
    assert!(host.violations().is_empty(), "{:?}", host.violations());
    host.stop().await;
}
