//! The ARM body of a container group: the spec group's properties with its secrets opened,
//! `secureValueFrom` resolved from the allowed app settings, Berth's callback variables, Azure
//! Files keys, diagnostics, and Berth's tags (which the sweep and the look-first create read).

use serde_json::{Value, json};

use crate::engine::Deployment;
use crate::spec::secrets::{SecretSlot, put_secrets};
use crate::spec::{settings, validate};

use super::Driver;

/// Sends the group's logs to a Log Analytics workspace (ACI's `diagnostics.logAnalytics`).
fn add_diagnostics(properties: &mut Value, workspace_id: &str, key: &str) {
    if let Some(map) = properties.as_object_mut() {
        let log_analytics = json!({ "workspaceId": workspace_id, "workspaceKey": key, "logType": "ContainerInstanceLogs" });
        map.insert(
            "diagnostics".into(),
            json!({ "logAnalytics": log_analytics }),
        );
    }
}

/// The outputs group `slot` is handed: of each group it depends on, each succeeded instance's
/// `completed` output by index.
fn inputs(d: &Deployment, slot: usize) -> Value {
    let mut by_group = serde_json::Map::new();
    for name in &d.spec.groups[slot].depends_on {
        let mut by_index = serde_json::Map::new();
        for inst in &d.instances {
            let succeeded = inst.verdict.as_ref().is_some_and(|v| v.succeeded);
            if d.spec.groups[inst.slot].name == *name
                && succeeded
                && let Some(output) = inst.completed.as_ref().and_then(|c| c.output.clone())
            {
                by_index.insert(inst.index.to_string(), output);
            }
        }
        by_group.insert(name.clone(), Value::Object(by_index));
    }
    Value::Object(by_group)
}

impl Driver {
    /// The ARM body for instance `instance` (index `index` of group `slot`): the spec group's
    /// properties with its secrets back in place, `secureValueFrom` resolved, Berth's environment
    /// variables added, and Berth's tags.
    pub(super) async fn group_body(
        &self,
        d: &Deployment,
        slot: usize,
        index: u32,
        instance: &str,
    ) -> Result<Value, String> {
        let group = &d.spec.groups[slot];
        let mut properties = group.properties.clone();
        if let Some(sealed) = &d.sealed {
            let plain = self
                .keys
                .open(sealed)
                .map_err(|e| format!("the spec's secrets cannot be opened: {e}"))?;
            let slots: Vec<SecretSlot> = serde_json::from_slice(&plain)
                .map_err(|e| format!("the spec's secrets are unreadable: {e}"))?;
            put_secrets(&mut properties, slot, &slots);
        }
        self.resolve_settings(&mut properties, slot)?;
        self.add_variables(d, slot, index, instance, &mut properties)?;
        if self.settings.fetch_share_keys {
            self.add_share_keys(&mut properties).await?;
        }
        if let Some(workspace) = &self.settings.diagnostics_workspace
            && properties.get("diagnostics").is_none()
        {
            let (id, key) = self
                .diagnostics
                .get_or_try_init(|| self.arm.workspace_credentials(workspace))
                .await
                .map_err(|e| {
                    format!("BERTH_DIAGNOSTICS_WORKSPACE: reading the workspace failed: {e}")
                })?;
            add_diagnostics(&mut properties, id, key);
        }
        let mut tags: serde_json::Map<String, Value> = d
            .spec
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        tags.insert("berth-app".into(), Value::from(self.settings.app.as_str()));
        tags.insert("berth-deployment".into(), Value::from(d.id.as_str()));
        if let Some(uid) = &d.uid {
            tags.insert("berth-uid".into(), Value::from(uid.as_str()));
        }
        tags.insert("berth-group".into(), Value::from(group.name.as_str()));
        tags.insert(
            "berth-created".into(),
            Value::from(self.clock.now().to_string()),
        );
        // The instance's own location and priority (its attempt's, after any fallback), over the
        // group's.
        let placed = d.instances.iter().find(|i| i.aci_name == instance);
        if let Some(priority) = placed.and_then(|i| i.priority)
            && let Some(map) = properties.as_object_mut()
        {
            map.insert("priority".into(), Value::from(priority.as_str()));
        }
        let location = placed
            .and_then(|i| i.location.as_deref())
            .or(group.location.as_deref())
            .unwrap_or(self.arm.target().location.as_str());
        let mut body = json!({ "location": location, "tags": tags, "properties": properties });
        if let Some(identity) = &group.identity {
            body["identity"] = identity.clone();
        }
        if let Some(zones) = &group.zones {
            body["zones"] = json!(zones);
        }
        Ok(body)
    }

    fn resolve_settings(&self, properties: &mut Value, slot: usize) -> Result<(), String> {
        // Checked at submit too, but the list may have changed since (a restart with other
        // settings): nothing is read unless it is allowed now.
        settings::check_group(properties, slot, &self.settings.secure_value_from)
            .map_err(|refused| refused.to_string())?;
        for list in ["containers", "initContainers"] {
            let Some(containers) = properties.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for (i, container) in containers.iter_mut().enumerate() {
                let Some(vars) = container
                    .pointer_mut("/properties/environmentVariables")
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for (j, var) in vars.iter_mut().enumerate() {
                    let Some(setting) = var
                        .get("secureValueFrom")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                    else {
                        continue;
                    };
                    let value = (self.settings.settings)(&setting).ok_or_else(|| {
                        format!(
                            "groups[{slot}].properties.{list}[{i}].properties.environmentVariables[{j}].secureValueFrom: app setting '{setting}' is not set"
                        )
                    })?;
                    if let Some(map) = var.as_object_mut() {
                        map.remove("secureValueFrom");
                        map.insert("secureValue".into(), Value::from(value));
                    }
                }
            }
        }
        Ok(())
    }

    /// Berth's variables in every container: the deployment's id, its W3C `TRACEPARENT` (see
    /// [`crate::trace`]), the instance's callback URLs
    /// (their tokens bound to the instance), its index in the group's fan-out (`BERTH_INDEX`,
    /// `BERTH_COUNT`, and `BERTH_ITEM`: the item's JSON), and the outputs of the groups it
    /// depends on (`BERTH_INPUTS`: by group name, then instance index).
    fn add_variables(
        &self,
        d: &Deployment,
        slot: usize,
        index: u32,
        instance: &str,
        properties: &mut Value,
    ) -> Result<(), String> {
        let base = d.callback_base.trim_end_matches('/');
        let url = |kind: &str| -> Result<String, String> {
            let token = self
                .keys
                .callback_token(
                    d.callback_key.as_deref(),
                    &d.id,
                    &format!("{kind}:{instance}"),
                )
                .map_err(|e| format!("the deployment's callback key cannot be opened: {e}"))?;
            Ok(format!(
                "{base}/api/callbacks/{}/{kind}?token={token}&instance={instance}",
                d.id
            ))
        };
        let group = &d.spec.groups[slot];
        let mut injected = vec![
            json!({ "name": "BERTH_DEPLOYMENT_ID", "value": d.id }),
            json!({ "name": "BERTH_CALLBACK_URL", "secureValue": url("completed")? }),
            json!({ "name": "BERTH_HEARTBEAT_URL", "secureValue": url("heartbeat")? }),
            json!({ "name": "BERTH_INDEX", "value": index.to_string() }),
            json!({ "name": "BERTH_COUNT", "value": group.instance_count().to_string() }),
            json!({ "name": "TRACEPARENT", "value": crate::trace::traceparent(&d.id, instance) }),
        ];
        if let Some(item) = group
            .items
            .as_ref()
            .and_then(|items| items.get(index as usize))
        {
            injected.push(json!({ "name": "BERTH_ITEM", "value": item.to_string() }));
        }
        if !group.depends_on.is_empty() {
            injected.push(json!({ "name": "BERTH_INPUTS", "value": inputs(d, slot).to_string() }));
        }
        let Some(containers) = properties
            .get_mut("containers")
            .and_then(Value::as_array_mut)
        else {
            return Ok(());
        };
        for container in containers {
            let Some(props) = container
                .get_mut("properties")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let vars = props
                .entry("environmentVariables")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(vars) = vars.as_array_mut() {
                vars.retain(|v| {
                    !v.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| validate::RESERVED_ENV.contains(&n))
                });
                vars.extend(injected.iter().cloned());
            }
        }
        Ok(())
    }

    async fn add_share_keys(&self, properties: &mut Value) -> Result<(), String> {
        let Some(volumes) = properties.get_mut("volumes").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        for volume in volumes {
            let Some(file) = volume.get_mut("azureFile").and_then(Value::as_object_mut) else {
                continue;
            };
            if file.contains_key("storageAccountKey")
                || file.contains_key("storageAccountKeyReference")
            {
                continue;
            }
            let account = file
                .get("storageAccountName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let key = self
                .arm
                .storage_account_key(&account)
                .await
                .map_err(|e| {
                    format!("fetching the key of storage account '{account}' failed: {e}")
                })?
                .ok_or_else(|| format!("storage account '{account}' returned no key"))?;
            file.insert("storageAccountKey".into(), Value::from(key));
        }
        Ok(())
    }
}
