//! Taking secrets out of a spec before it is stored, and putting them back for the ARM call.
//!
//! The secret fields are ACI's `x-ms-secret` ones: `secureValue` of environment variables,
//! registry `password`, `storageAccountKey`, `secret` volumes and the Log Analytics `workspaceKey`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::Spec;

/// A secret taken out of a group's properties: where it was and what it held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretSlot {
    pub group: usize,
    /// RFC 6901 pointer into the group's `properties`.
    pub pointer: String,
    pub value: Value,
}

/// Every pointer to a secret field in one group's properties.
fn secret_pointers(properties: &Value) -> Vec<String> {
    let mut pointers = Vec::new();
    for list in ["containers", "initContainers"] {
        for (i, container) in properties
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let vars = container
                .pointer("/properties/environmentVariables")
                .and_then(Value::as_array);
            for (j, var) in vars.into_iter().flatten().enumerate() {
                if var.get("secureValue").is_some() {
                    pointers.push(format!(
                        "/{list}/{i}/properties/environmentVariables/{j}/secureValue"
                    ));
                }
            }
        }
    }
    for (i, cred) in properties
        .get("imageRegistryCredentials")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if cred.get("password").is_some() {
            pointers.push(format!("/imageRegistryCredentials/{i}/password"));
        }
    }
    for (i, volume) in properties
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if volume.pointer("/azureFile/storageAccountKey").is_some() {
            pointers.push(format!("/volumes/{i}/azureFile/storageAccountKey"));
        }
        if volume.get("secret").is_some() {
            pointers.push(format!("/volumes/{i}/secret"));
        }
    }
    if properties
        .pointer("/diagnostics/logAnalytics/workspaceKey")
        .is_some()
    {
        pointers.push("/diagnostics/logAnalytics/workspaceKey".to_owned());
    }
    pointers
}

/// Removes every secret from one group's properties and returns them.
fn take_from(properties: &mut Value, group: usize) -> Vec<SecretSlot> {
    let mut slots = Vec::new();
    for pointer in secret_pointers(properties) {
        let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", &pointer));
        if let Some(Value::Object(map)) = properties.pointer_mut(parent)
            && let Some(value) = map.remove(key)
        {
            slots.push(SecretSlot {
                group,
                pointer: pointer.clone(),
                value,
            });
        }
    }
    slots
}

/// Removes every secret from the spec and returns them.
pub fn take_secrets(spec: &mut Spec) -> Vec<SecretSlot> {
    let groups = spec.groups.iter_mut().enumerate();
    groups
        .flat_map(|(group, g)| take_from(&mut g.properties, group))
        .collect()
}

/// Removes every secret from a spec document not parsed yet (a template's: `groups[i].properties`)
/// and returns them.
pub fn take_from_document(doc: &mut Value) -> Vec<SecretSlot> {
    let groups = doc.get_mut("groups").and_then(Value::as_array_mut);
    let groups = groups.into_iter().flatten().enumerate();
    groups
        .filter_map(|(group, g)| Some((group, g.get_mut("properties")?)))
        .flat_map(|(group, properties)| take_from(properties, group))
        .collect()
}

/// Puts secrets back into a spec document ([`take_from_document`]'s inverse).
pub fn put_into_document(doc: &mut Value, slots: &[SecretSlot]) {
    let groups = doc.get_mut("groups").and_then(Value::as_array_mut);
    for (group, g) in groups.into_iter().flatten().enumerate() {
        if let Some(properties) = g.get_mut("properties") {
            put_secrets(properties, group, slots);
        }
    }
}

/// Puts a group's secrets back into (a copy of) its properties.
pub fn put_secrets(properties: &mut Value, group: usize, slots: &[SecretSlot]) {
    for slot in slots.iter().filter(|s| s.group == group) {
        let (parent, key) = slot.pointer.rsplit_once('/').unwrap_or(("", &slot.pointer));
        if let Some(Value::Object(map)) = properties.pointer_mut(parent) {
            map.insert(key.to_owned(), slot.value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::parse::{Format, parse};

    #[test]
    fn every_secret_field_is_taken_out_and_put_back() {
        let body = json!({
            "id": "s1",
            "groups": [{ "name": "g", "properties": {
                "containers": [{ "name": "c", "properties": {
                    "image": "busybox", "resources": { "requests": { "cpu": 1, "memoryInGB": 1 } },
                    "environmentVariables": [
                        { "name": "PLAIN", "value": "v" },
                        { "name": "SECRET", "secureValue": "s3cret" } ] } }],
                "imageRegistryCredentials": [{ "server": "r.io", "username": "u", "password": "pw" }],
                "volumes": [
                    { "name": "share", "azureFile": { "shareName": "data", "storageAccountName": "acct", "storageAccountKey": "key==" } },
                    { "name": "certs", "secret": { "tls.key": "c2VjcmV0" } } ],
                "diagnostics": { "logAnalytics": { "workspaceId": "w", "workspaceKey": "wk" } } } }]
        });
        let original = parse(body.to_string().as_bytes(), Format::Json, || unreachable!()).unwrap();
        let mut spec = original.clone();
        let slots = take_secrets(&mut spec);
        assert_eq!(slots.len(), 5);
        let stored = serde_json::to_string(&spec).unwrap();
        for secret in ["s3cret", "pw", "key==", "c2VjcmV0", "wk"] {
            assert!(!stored.contains(secret), "{secret} left in the stored spec");
        }
        let mut properties = spec.groups[0].properties.clone();
        put_secrets(&mut properties, 0, &slots);
        assert_eq!(properties, original.groups[0].properties);
    }
}
