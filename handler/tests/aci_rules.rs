//! ACI's create-time rules, from both sides: for every rule of the shared table (`aci_rules`),
//! Berth refuses the sample group at submit (`400`, the field path first in `detail`, ACI's code in
//! it, nothing created) and the emulator refuses the same properties at PUT with the same code and
//! field. A rule added to the table is checked here without a new test, so the two sides cannot
//! drift.

#![allow(clippy::unwrap_used)]

mod common;

use aci_rules::RULES;
use common::Harness;
use common::scenarios::{self, API_VERSION, RESOURCE_GROUP, SUBSCRIPTION};
use serde_json::{Value, json};

#[tokio::test]
async fn berth_and_the_emulator_refuse_every_rule_with_its_code_and_field() {
    let harness = Harness::start().await;
    let groups = format!(
        "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups",
        harness.emulator.base_url()
    );
    let http = reqwest::Client::new();
    assert!(RULES.len() >= 8, "{} rules", RULES.len());
    for (index, rule) in RULES.iter().enumerate() {
        let properties = (rule.sample)();
        // Berth's harness deploys to `local`: every sample must break its rule there too.
        assert!(
            rule.check(&properties, Some("local")).is_some(),
            "{}: the sample cannot be checked through Berth in `local`",
            rule.code
        );
        let expected = rule
            .check(&properties, Some(rule.sample_location))
            .unwrap_or_else(|| panic!("{}: its sample passes", rule.code));
        let id = format!("rule-{index}");
        let spec = json!({ "id": id, "mode": "job",
            "groups": [{ "name": "ruled", "properties": properties }] });
        let (status, body) = harness.submit(&spec).await;
        assert_eq!(status, 400, "{}: {body}", rule.code);
        let field = format!("groups[0].properties.{}", expected.path);
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{field}: {}", rule.code)),
            "{}: {detail}",
            rule.code
        );
        let (status, _) = scenarios::get(&harness, &format!("/deployments/{id}")).await;
        assert_eq!(
            status, 404,
            "{}: a refused deployment was recorded",
            rule.code
        );

        let url = format!("{groups}/ruled?api-version={API_VERSION}");
        let body = json!({ "location": rule.sample_location, "properties": properties });
        let response = http.put(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{}", rule.code);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], rule.code, "{error}");
        assert_eq!(
            error["error"]["target"],
            format!("properties.{}", expected.path),
            "{error}"
        );
    }
    let stats = harness.stats();
    assert_eq!(
        (stats.groups, stats.creates_by_name.len()),
        (0, 0),
        "nothing was created: {stats:?}"
    );
}
