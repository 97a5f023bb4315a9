//! Which app settings a spec's `secureValueFrom` may read.
//!
//! A `secureValueFrom` copies an environment variable of the Berth process into a container, so
//! an unchecked one hands out `BERTH_SECRETS_KEY` (and with it every callback token), the API key,
//! storage credentials and the platform's identity secrets. Only names the operator listed in
//! `BERTH_SECURE_VALUE_FROM` may be read (none by default), and Berth's own and the platform's
//! settings never, even when listed. The API checks a spec at submit; the driver checks again
//! before each create, since the list may have changed in between.

use serde_json::Value;

use super::error::{FieldPath, Problems, SpecErrors};
use super::model::Spec;

/// Reads settings by name (app settings: the environment, in production).
pub type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Prefixes of settings no spec may read, compared without regard to case (environment names are
/// case-insensitive on Windows hosts): Berth's own settings, the Functions host's, App Service's
/// (which also repeats every app setting under `APPSETTING_`), the managed identity endpoint's,
/// Application Insights' and the Linux Functions container's (`CONTAINER_ENCRYPTION_KEY`).
pub const DENIED_PREFIXES: [&str; 13] = [
    "BERTH_",
    "AZURE_",
    "AzureWebJobs",
    "AzureFunctionsJobHost",
    "IDENTITY_",
    "MSI_",
    "WEBSITE_",
    "FUNCTIONS_",
    "APPLICATIONINSIGHTS_",
    "APPINSIGHTS_",
    "APPSETTING_",
    "CONTAINER_",
    "SCM_",
];

/// The setting that lists what a spec may read.
pub const SETTING: &str = "BERTH_SECURE_VALUE_FROM";

/// One entry of the list: a name, or a `PREFIX*` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Allowed {
    Name(String),
    Prefix(String),
}

/// The app settings a spec may read with `secureValueFrom`. The default allows none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsPolicy {
    allowed: Vec<Allowed>,
}

fn setting_name_chars(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl SettingsPolicy {
    /// Reads `BERTH_SECURE_VALUE_FROM`: names and `PREFIX*` patterns, comma-separated.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, pattern) = match entry.strip_suffix('*') {
                Some(prefix) => (prefix, true),
                None => (entry, false),
            };
            if !setting_name_chars(name) {
                return Err(format!(
                    "'{entry}' is neither a setting name nor a PREFIX* pattern (letters, digits, _ - .; a pattern needs a prefix)"
                ));
            }
            allowed.push(if pattern {
                Allowed::Prefix(name.to_owned())
            } else {
                Allowed::Name(name.to_owned())
            });
        }
        Ok(SettingsPolicy { allowed })
    }

    /// Whether `name` may be read; the error says why not.
    pub fn check(&self, name: &str) -> Result<(), String> {
        let upper = name.to_ascii_uppercase();
        if let Some(prefix) = DENIED_PREFIXES
            .iter()
            .find(|p| upper.starts_with(&p.to_ascii_uppercase()))
        {
            return Err(format!(
                "'{name}' is one of Berth's or the platform's own settings ({prefix}*), which a container may never read"
            ));
        }
        let listed = self.allowed.iter().any(|allowed| match allowed {
            Allowed::Name(n) => n == name,
            Allowed::Prefix(p) => name.starts_with(p.as_str()),
        });
        if listed {
            Ok(())
        } else {
            Err(format!(
                "'{name}' is not an app setting this Berth lets specs read (the operator lists those in {SETTING})"
            ))
        }
    }
}

/// Checks every `secureValueFrom` of one group's properties (at `groups[{group}]`).
pub fn check_group(
    properties: &Value,
    group: usize,
    policy: &SettingsPolicy,
) -> Result<(), SpecErrors> {
    let mut problems = Problems::default();
    check_properties(properties, group, policy, &mut problems);
    problems.finish()
}

/// Checks every `secureValueFrom` of a spec: the step the API takes after parsing.
pub fn check_spec(spec: &Spec, policy: &SettingsPolicy) -> Result<(), SpecErrors> {
    let mut problems = Problems::default();
    for (group, g) in spec.groups.iter().enumerate() {
        check_properties(&g.properties, group, policy, &mut problems);
    }
    problems.finish()
}

fn check_properties(
    properties: &Value,
    group: usize,
    policy: &SettingsPolicy,
    problems: &mut Problems,
) {
    let at = FieldPath::root()
        .key("groups")
        .index(group)
        .key("properties");
    for list in ["containers", "initContainers"] {
        let containers = properties.get(list).and_then(Value::as_array);
        for (i, container) in containers.into_iter().flatten().enumerate() {
            let vars = container
                .pointer("/properties/environmentVariables")
                .and_then(Value::as_array);
            for (j, var) in vars.into_iter().flatten().enumerate() {
                let Some(name) = var.get("secureValueFrom").and_then(Value::as_str) else {
                    continue;
                };
                if let Err(message) = policy.check(name) {
                    let path = at
                        .key(list)
                        .index(i)
                        .key("properties")
                        .key("environmentVariables")
                        .index(j)
                        .key("secureValueFrom");
                    problems.add(&path, message);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SETTINGS;

    #[test]
    fn nothing_may_be_read_by_default() {
        let policy = SettingsPolicy::default();
        assert_eq!(SettingsPolicy::parse(" , ").unwrap(), policy);
        for name in ["SEED_DB_PASSWORD", "PATH", "HOME"] {
            assert!(policy.check(name).is_err(), "{name}");
        }
    }

    #[test]
    fn listed_names_and_prefixes_may_be_read_exactly() {
        let policy = SettingsPolicy::parse("SEED_DB_PASSWORD, REGISTRY_*").unwrap();
        for name in ["SEED_DB_PASSWORD", "REGISTRY_", "REGISTRY_TOKEN"] {
            assert_eq!(policy.check(name), Ok(()), "{name}");
        }
        for name in [
            "seed_db_password",
            "SEED_DB_PASSWORD2",
            "SEED_DB",
            "registry_token",
        ] {
            assert!(policy.check(name).is_err(), "{name}");
        }
    }

    #[test]
    fn berths_and_the_platforms_settings_are_never_read_even_when_listed() {
        let policy = SettingsPolicy::parse(
            "BERTH_SECRETS_KEY,berth_*,AZURE_*,AzureWebJobsStorage,Identity_Header,MSI_SECRET,WEBSITE_*,FUNCTIONS_*,APPLICATIONINSIGHTS_*,APPSETTING_*",
        )
        .unwrap();
        let mut names: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
        names.extend(SETTINGS.iter().map(|s| s.to_ascii_lowercase()));
        names.extend(SETTINGS.iter().map(|s| format!("APPSETTING_{s}")));
        names.extend(
            [
                "berth_secrets_key",
                "Berth_Api_Key",
                "AZUREWEBJOBSSTORAGE",
                "azure_client_secret",
                "IDENTITY_HEADER",
                "identity_endpoint",
                "MSI_SECRET",
                "WEBSITE_AUTH_ENCRYPTION_KEY",
                "FUNCTIONS_WORKER_RUNTIME",
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                "APPINSIGHTS_INSTRUMENTATIONKEY",
                "CONTAINER_ENCRYPTION_KEY",
                "AzureFunctionsJobHost__logging__logLevel__default",
            ]
            .map(String::from),
        );
        for name in &names {
            let error = policy.check(name).unwrap_err();
            assert!(error.contains("never"), "{name}: {error}");
        }
    }

    #[test]
    fn a_bad_entry_is_refused() {
        for list in ["*", "A B", "SEED,*", "A*B", "NAME;X"] {
            assert!(SettingsPolicy::parse(list).is_err(), "{list}");
        }
    }

    #[test]
    fn a_spec_is_checked_field_by_field() {
        let body = serde_json::json!({
            "id": "s",
            "groups": [{ "name": "g", "properties": {
                "initContainers": [{ "name": "i", "properties": { "image": "busybox",
                    "environmentVariables": [{ "name": "A", "secureValueFrom": "BERTH_API_KEY" }] } }],
                "containers": [{ "name": "c", "properties": {
                    "image": "busybox", "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } },
                    "environmentVariables": [
                        { "name": "OK", "secureValueFrom": "SEED" },
                        { "name": "NO", "secureValueFrom": "OTHER" } ] } }] } }]
        });
        let spec = crate::spec::parse(
            body.to_string().as_bytes(),
            crate::spec::Format::Json,
            || unreachable!(),
        )
        .unwrap();
        let errors = check_spec(&spec, &SettingsPolicy::parse("SEED").unwrap()).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "groups[0].properties.containers[0].properties.environmentVariables[1].secureValueFrom",
                "groups[0].properties.initContainers[0].properties.environmentVariables[0].secureValueFrom",
            ]
        );
        let policy = SettingsPolicy::parse("SEED,OTHER").unwrap();
        assert!(check_group(&spec.groups[0].properties, 0, &policy).is_err());
        let fine = SettingsPolicy::parse("SEED,OTHER,BERTH_API_KEY").unwrap();
        assert!(check_spec(&spec, &fine).is_err(), "BERTH_ stays refused");
    }
}
