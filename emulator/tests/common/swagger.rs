//! A small checker of JSON values against the definitions of the ACI swagger
//! (`containerInstance.json`): types, formats, enums, required properties, no properties the
//! swagger does not define, and, for answers, no `x-ms-secret` property at all.
//!
//! Why a checker rather than typed structs: the emulator's own types are derived from the swagger,
//! so checking the emulator with them would only check them against themselves. The checker reads
//! the swagger itself, so a field the swagger lacks, a misspelt enum, a number where a string is
//! due, or a secret in an answer all fail.

use serde_json::{Map, Value};

/// The swagger's definitions.
pub struct Swagger {
    definitions: Map<String, Value>,
}

/// Whether the value is a request (secrets allowed) or an answer (secrets forbidden).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

impl Swagger {
    pub fn load() -> Self {
        let path = super::fixtures().join("containerInstance.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let document: Value = serde_json::from_str(&text).unwrap();
        Swagger {
            definitions: document["definitions"].as_object().unwrap().clone(),
        }
    }

    /// Checks `value` against definition `name`; the errors name JSON paths.
    pub fn check(
        &self,
        name: &str,
        value: &Value,
        direction: Direction,
    ) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        let schema = serde_json::json!({"$ref": format!("#/definitions/{name}")});
        self.check_schema(&schema, value, "$", direction, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Panics with every error when `value` does not match.
    pub fn assert(&self, name: &str, value: &Value, direction: Direction) {
        if let Err(errors) = self.check(name, value, direction) {
            panic!(
                "{name} does not match the swagger:\n  {}\nvalue: {value:#}",
                errors.join("\n  ")
            );
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) if reference.starts_with("#/definitions/") => {
                let name = &reference["#/definitions/".len()..];
                self.definitions
                    .get(name)
                    .unwrap_or_else(|| panic!("unknown definition {name}"))
            }
            _ => schema,
        }
    }

    /// Every property an object schema allows (its own and those of its `allOf` parts).
    fn properties(&self, schema: &Value, into: &mut Map<String, Value>) {
        let schema = self.resolve(schema);
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            // common-types ProxyResource / Resource: id, name, type, systemData (all read-only).
            if reference.contains("types.json") {
                for name in ["id", "name", "type"] {
                    into.insert(name.into(), serde_json::json!({"type": "string"}));
                }
                into.insert("systemData".into(), serde_json::json!({"type": "object"}));
                return;
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                into.insert(name.clone(), property.clone());
            }
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.properties(part, into);
        }
    }

    fn check_schema(
        &self,
        schema: &Value,
        value: &Value,
        path: &str,
        direction: Direction,
        errors: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        let reference = schema.get("$ref").and_then(Value::as_str);
        if reference.is_some_and(|reference| reference.contains("managedidentity.json")) {
            return; // a common identity type, not used by container groups
        }
        if value.is_null() {
            errors.push(format!("{path}: null is not allowed"));
            return;
        }
        let kind = schema.get("type").and_then(Value::as_str).or_else(|| {
            (schema.get("properties").is_some() || schema.get("allOf").is_some())
                .then_some("object")
        });
        match kind {
            None => {} // any value (e.g. emptyDir)
            Some("object") => self.check_object(schema, value, path, direction, errors),
            Some("array") => match value.as_array() {
                Some(items) => {
                    for (index, item) in items.iter().enumerate() {
                        self.check_schema(
                            &schema["items"],
                            item,
                            &format!("{path}[{index}]"),
                            direction,
                            errors,
                        );
                    }
                }
                None => errors.push(format!("{path}: expected an array, found {value}")),
            },
            Some("string") => match value.as_str() {
                Some(text) => {
                    let allowed = schema.get("enum").and_then(Value::as_array);
                    if allowed.is_some_and(|allowed| {
                        !allowed.iter().any(|item| item.as_str() == Some(text))
                    }) {
                        errors.push(format!("{path}: '{text}' is not one of {allowed:?}"));
                    }
                    if schema.get("format").and_then(Value::as_str) == Some("date-time")
                        && time::OffsetDateTime::parse(
                            text,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .is_err()
                    {
                        errors.push(format!("{path}: '{text}' is not an RFC 3339 date-time"));
                    }
                }
                None => errors.push(format!("{path}: expected a string, found {value}")),
            },
            Some("integer") if !(value.is_i64() || value.is_u64()) => {
                errors.push(format!("{path}: expected an integer, found {value}"));
            }
            Some("number") if !value.is_number() => {
                errors.push(format!("{path}: expected a number, found {value}"));
            }
            Some("boolean") if !value.is_boolean() => {
                errors.push(format!("{path}: expected a boolean, found {value}"));
            }
            Some("integer" | "number" | "boolean") => {}
            Some(other) => errors.push(format!("{path}: unsupported schema type {other}")),
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        value: &Value,
        path: &str,
        direction: Direction,
        errors: &mut Vec<String>,
    ) {
        let Some(object) = value.as_object() else {
            errors.push(format!("{path}: expected an object, found {value}"));
            return;
        };
        let mut properties = Map::new();
        self.properties(schema, &mut properties);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap();
            // Azure strips secrets from answers even when the swagger marks them required
            // (`logAnalytics.workspaceKey`).
            let secret = properties
                .get(name)
                .and_then(|property| property.get("x-ms-secret"))
                .and_then(Value::as_bool)
                == Some(true);
            if secret && direction == Direction::Response {
                continue;
            }
            if !object.contains_key(name) {
                errors.push(format!("{path}: missing required property '{name}'"));
            }
        }
        let additional = schema.get("additionalProperties");
        for (name, item) in object {
            let here = format!("{path}.{name}");
            match properties.get(name) {
                Some(property) => {
                    let secret = property.get("x-ms-secret").and_then(Value::as_bool) == Some(true);
                    if secret && direction == Direction::Response {
                        errors.push(format!("{here}: a secret (x-ms-secret) is answered"));
                    }
                    self.check_schema(property, item, &here, direction, errors);
                }
                None => match additional {
                    Some(Value::Bool(true)) => {}
                    Some(additional @ Value::Object(_)) => {
                        self.check_schema(additional, item, &here, direction, errors)
                    }
                    _ if properties.is_empty() && schema.get("properties").is_none() => {}
                    _ => errors.push(format!("{here}: the swagger defines no such property")),
                },
            }
        }
    }
}
