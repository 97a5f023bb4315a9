//! Templates: a spec with typed parameters (`{"parameters": {"word": {"type": "string",
//! "default": "hi"}}}`), referenced as `{{ parameters.word }}` in any string of the spec, and
//! expanded into a full spec when a deployment is started from it.
//!
//! # Guarantees
//! - Substitution happens on parsed JSON string values only, never on text: a value is placed
//!   into one string (or replaces one whole string), so it cannot add keys, close a string or
//!   change the document's structure, whatever it holds (`"}`, newlines, YAML).
//! - Substituted text is never scanned again: a value holding `{{ parameters.x }}` stays that
//!   text. Object keys are not substituted.
//! - A number or boolean parameter that is a whole string (`"{{ parameters.n }}"`) becomes the
//!   typed value; inside a longer string it is written as text.
//! - Every reference names a declared parameter (checked when the template is stored); every
//!   value given names a declared parameter, has its type, is one of its `allowed` values when
//!   they are given and is at most [`MAX_VALUE_BYTES`]; a parameter without `default` is required.
//!   Each refusal names its field (`parameters.word`).
//! - The expansion grows the spec by at most [`crate::spec::parse::MAX_SPEC_BYTES`] in all: many
//!   references to a long value cannot blow it up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{FieldPath, Problems, SpecErrors};
use super::parse::MAX_SPEC_BYTES;

/// Most parameters a template declares.
pub const MAX_PARAMETERS: usize = 50;
/// Most `allowed` values of one parameter.
pub const MAX_ALLOWED: usize = 100;
/// Longest parameter name.
pub const MAX_NAME_LEN: usize = 64;
/// Largest value of a parameter (a default, an allowed value, a value given), as JSON text.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// A parameter's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    String,
    Number,
    Boolean,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        match text {
            "string" => Some(Kind::String),
            "number" => Some(Kind::Number),
            "boolean" => Some(Kind::Boolean),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
        }
    }

    fn holds(self, value: &Value) -> bool {
        match self {
            Kind::String => value.is_string(),
            Kind::Number => value.is_number(),
            Kind::Boolean => value.is_boolean(),
        }
    }
}

/// One declared parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The value when none is given; without it the parameter is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The values it may take (any of its type when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<Value>,
    /// Where an event fills it (`subject`, `data.url`; see [`crate::submit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// Declared parameters by name.
pub type Parameters = BTreeMap<String, Parameter>;

/// A template as put: its parameters, and the rest of the spec with `parameters` taken out.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub parameters: Parameters,
    pub spec: Value,
}

/// The template a spec was expanded from: shown in its deployment's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub name: String,
    pub version: u32,
}

/// A deployment started from a template: `{"id"?, "template", "version"?, "parameters"?}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub id: Option<String>,
    pub template: String,
    /// The version to expand; the latest when absent.
    pub version: Option<u32>,
    pub parameters: Map<String, Value>,
}

impl Invocation {
    /// Whether a request document asks for a template (a spec has `groups`, never `template`).
    pub fn is_invocation(document: &Value) -> bool {
        document.get("template").is_some()
    }

    /// Reads an invocation document; every problem names its field.
    pub fn read(document: Value) -> Result<Invocation, SpecErrors> {
        let root = FieldPath::root();
        let Value::Object(mut doc) = document else {
            return Err(SpecErrors::one("(spec)", "an invocation is a JSON object"));
        };
        let mut problems = Problems::default();
        let id = match doc.remove("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => {
                if let Err(e) = super::validate::deployment_id(&id) {
                    problems.add(&root.key("id"), e);
                }
                Some(id)
            }
            Some(_) => {
                problems.add(&root.key("id"), "must be a string");
                None
            }
        };
        let template = match doc.remove("template") {
            Some(Value::String(name)) => {
                if let Err(e) = super::validate::template_name(&name) {
                    problems.add(&root.key("template"), e);
                }
                name
            }
            _ => {
                problems.add(&root.key("template"), "required: the template's name");
                String::new()
            }
        };
        let version = match doc.remove("version") {
            None | Some(Value::Null) => None,
            Some(v) => match v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
            {
                Some(v) => Some(v),
                None => {
                    problems.add(&root.key("version"), "a version number, from 1");
                    None
                }
            },
        };
        let parameters = match doc.remove("parameters") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(given)) => given,
            Some(_) => {
                problems.add(
                    &root.key("parameters"),
                    "an object of parameter values by name",
                );
                Map::new()
            }
        };
        problems.unknown_fields(
            &doc,
            &root,
            "a deployment from a template has id, template, version and parameters",
        );
        problems.finish()?;
        Ok(Invocation {
            id,
            template,
            version,
            parameters,
        })
    }
}

/// Whether `name` can name a parameter: a letter or `_`, then letters, digits or `_`.
fn parameter_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok
        || name.len() > MAX_NAME_LEN
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "a parameter name is 1 to {MAX_NAME_LEN} letters, digits or _, starting with a letter or _"
        ));
    }
    Ok(())
}

/// Checks a value against a parameter's type, size and allowed values.
fn check_value(parameter: &Parameter, value: &Value) -> Result<(), String> {
    if !parameter.kind.holds(value) {
        return Err(format!("must be a {}", parameter.kind.name()));
    }
    let size = value.to_string().len();
    if size > MAX_VALUE_BYTES {
        return Err(format!(
            "the value is {size} bytes; at most {MAX_VALUE_BYTES} are accepted"
        ));
    }
    if !parameter.allowed.is_empty() && !parameter.allowed.contains(value) {
        let allowed: Vec<String> = parameter.allowed.iter().map(Value::to_string).collect();
        return Err(format!("must be one of {}", allowed.join(", ")));
    }
    Ok(())
}

/// Reads one declaration at `path`.
fn declaration(value: Value, path: &FieldPath, problems: &mut Problems) -> Option<Parameter> {
    let Value::Object(mut fields) = value else {
        problems.add(path, "a parameter is an object with `type`");
        return None;
    };
    let kind = match fields.remove("type") {
        Some(Value::String(t)) => Kind::parse(&t),
        _ => None,
    };
    let Some(kind) = kind else {
        problems.add(&path.key("type"), "required: string, number or boolean");
        return None;
    };
    let allowed = match fields.remove("allowed") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_ALLOWED => items,
        Some(_) => {
            problems.add(
                &path.key("allowed"),
                format!("an array of 1 to {MAX_ALLOWED} values"),
            );
            Vec::new()
        }
    };
    let unchecked = Parameter {
        kind,
        default: None,
        allowed: Vec::new(),
        from: None,
    };
    for (i, item) in allowed.iter().enumerate() {
        if let Err(e) = check_value(&unchecked, item) {
            problems.add(&path.key("allowed").index(i), e);
        }
    }
    let from = match fields.remove("from") {
        None | Some(Value::Null) => None,
        Some(Value::String(from)) if event_path(&from) => Some(from),
        Some(_) => {
            problems.add(
                &path.key("from"),
                "an event field: id, type, source, subject, time, or data.<name>[.<name>…]",
            );
            None
        }
    };
    let mut parameter = Parameter {
        kind,
        default: None,
        allowed,
        from,
    };
    if let Some(default) = fields.remove("default").filter(|d| !d.is_null()) {
        match check_value(&parameter, &default) {
            Ok(()) => parameter.default = Some(default),
            Err(e) => problems.add(&path.key("default"), e),
        }
    }
    problems.unknown_fields(
        &fields,
        path,
        "a parameter has type, default, allowed and from",
    );
    Some(parameter)
}

/// Whether `from` names an event field [`crate::submit`] can read.
pub fn event_path(from: &str) -> bool {
    match from.strip_prefix("data.") {
        Some(rest) => {
            from.len() <= 256
                && rest
                    .split('.')
                    .all(|part| !part.is_empty() && part.chars().all(|c| c != '[' && c != ']'))
        }
        None => matches!(from, "id" | "type" | "source" | "subject" | "time"),
    }
}

/// Reads a template document: its `parameters` declarations, checked, and every reference in
/// the rest of it checked against them. The rest is validated as a spec when it is expanded.
pub fn read(document: Value) -> Result<Template, SpecErrors> {
    let root = FieldPath::root();
    let Value::Object(mut doc) = document else {
        return Err(SpecErrors::one(
            "(spec)",
            "a template is a JSON spec with `parameters`",
        ));
    };
    let mut problems = Problems::default();
    if doc.contains_key("id") {
        problems.add(
            &root.key("id"),
            "a template has no id: each deployment started from it is given its own",
        );
    }
    let mut parameters = Parameters::new();
    let path = root.key("parameters");
    match doc.remove("parameters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(declared)) => {
            if declared.len() > MAX_PARAMETERS {
                problems.add(
                    &path,
                    format!(
                        "{} parameters; a template declares at most {MAX_PARAMETERS}",
                        declared.len()
                    ),
                );
            }
            for (name, value) in declared.into_iter().take(MAX_PARAMETERS) {
                if let Err(e) = parameter_name(&name) {
                    problems.add(&path, e);
                    continue;
                }
                if let Some(p) = declaration(value, &path.key(&name), &mut problems) {
                    parameters.insert(name, p);
                }
            }
        }
        Some(_) => problems.add(&path, "an object of parameter declarations by name"),
    }
    let spec = Value::Object(doc);
    references(&spec, &root, &mut |path, name| {
        if !parameters.contains_key(name) {
            problems.add(
                path,
                format!("{{{{ parameters.{name} }}}} names no declared parameter"),
            );
        }
    });
    problems.finish()?;
    Ok(Template { parameters, spec })
}

/// One piece of a string: text, or a reference to a parameter.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Reference(&'a str),
}

/// The pieces of a string: `{{ parameters.NAME }}` (spaces inside the braces optional) is a
/// reference; anything else, `{{` included, is text.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut pending = 0;
    while let Some(open) = rest[pending..].find("{{").map(|i| i + pending) {
        let after = &rest[open + 2..];
        let reference = after.find("}}").and_then(|close| {
            let name = after[..close].trim().strip_prefix("parameters.")?;
            parameter_name(name).is_ok().then_some((name, close))
        });
        match reference {
            Some((name, close)) => {
                if open > 0 {
                    out.push(Piece::Text(&rest[..open]));
                }
                out.push(Piece::Reference(name));
                rest = &after[close + 2..];
                pending = 0;
            }
            None => pending = open + 2,
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Calls `found` with the path and parameter name of every reference in `value`'s strings.
fn references(value: &Value, path: &FieldPath, found: &mut impl FnMut(&FieldPath, &str)) {
    match value {
        Value::String(s) => {
            for piece in pieces(s) {
                if let Piece::Reference(name) = piece {
                    found(path, name);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                references(item, &path.index(i), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                references(item, &path.key(key), found);
            }
        }
        _ => {}
    }
}

/// The values of a deployment's parameters: each given one checked, defaults filled in, every
/// required one present. Errors name `parameters.<name>`.
pub fn values(
    declared: &Parameters,
    given: Map<String, Value>,
) -> Result<BTreeMap<String, Value>, SpecErrors> {
    let path = FieldPath::root().key("parameters");
    let mut problems = Problems::default();
    let mut values = BTreeMap::new();
    for (name, value) in given {
        let Some(parameter) = declared.get(&name) else {
            let names: Vec<&str> = declared.keys().map(String::as_str).collect();
            let known = match names.is_empty() {
                true => "the template declares none".to_owned(),
                false => format!("the template declares {}", names.join(", ")),
            };
            let shown = match parameter_name(&name) {
                Ok(()) => path.key(&name),
                Err(_) => path.clone(),
            };
            problems.add(&shown, format!("unknown parameter; {known}"));
            continue;
        };
        match check_value(parameter, &value) {
            Ok(()) => {
                values.insert(name, value);
            }
            Err(e) => problems.add(&path.key(&name), e),
        }
    }
    for (name, parameter) in declared {
        if values.contains_key(name)
            || problems
                .0
                .iter()
                .any(|p| p.field == path.key(name).as_str())
        {
            continue;
        }
        match &parameter.default {
            Some(default) => {
                values.insert(name.clone(), default.clone());
            }
            None => problems.add(
                &path.key(name),
                format!(
                    "required: a {} (the template gives no default)",
                    parameter.kind.name()
                ),
            ),
        }
    }
    problems.finish()?;
    Ok(values)
}

/// A value written into a longer string.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Expands `spec` with `values` (from [`values`]): see the module's guarantees.
pub fn expand(spec: &Value, values: &BTreeMap<String, Value>) -> Result<Value, SpecErrors> {
    let mut budget = MAX_SPEC_BYTES;
    substitute(spec, values, &mut budget).ok_or_else(|| {
        SpecErrors::one(
            "(spec)",
            format!("the expanded spec would grow by more than {MAX_SPEC_BYTES} bytes"),
        )
    })
}

/// `value` with its references replaced; `None` once `budget` (bytes added) is spent.
fn substitute(
    value: &Value,
    values: &BTreeMap<String, Value>,
    budget: &mut usize,
) -> Option<Value> {
    Some(match value {
        Value::String(s) => {
            let pieces = pieces(s);
            if let [Piece::Reference(name)] = pieces.as_slice() {
                let v = values.get(*name)?;
                *budget = budget.checked_sub(v.to_string().len())?;
                return Some(v.clone());
            }
            let mut out = String::with_capacity(s.len());
            for piece in pieces {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Reference(name) => {
                        let text = as_text(values.get(name)?);
                        *budget = budget.checked_sub(text.len())?;
                        out.push_str(&text);
                    }
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| substitute(item, values, budget))
                .collect::<Option<_>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, item)| Some((k.clone(), substitute(item, values, budget)?)))
                .collect::<Option<_>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(parameters: Value, spec: Value) -> Template {
        let mut doc = spec;
        doc["parameters"] = parameters;
        read(doc).unwrap()
    }

    fn given(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn references_are_found_only_in_their_exact_form() {
        assert_eq!(
            pieces("a {{ parameters.x }}b{{parameters.y}}"),
            vec![
                Piece::Text("a "),
                Piece::Reference("x"),
                Piece::Text("b"),
                Piece::Reference("y")
            ]
        );
        assert_eq!(pieces("{{ x }} {{"), vec![Piece::Text("{{ x }} {{")]);
        assert_eq!(
            pieces("{{ {{ parameters.x }}"),
            vec![Piece::Text("{{ "), Piece::Reference("x")]
        );
        assert_eq!(
            pieces("{{ parameters.a-b }}"),
            vec![Piece::Text("{{ parameters.a-b }}")]
        );
    }

    #[test]
    fn whole_strings_take_the_typed_value_and_longer_ones_the_text() {
        let t = template(
            json!({ "n": { "type": "number" }, "b": { "type": "boolean", "default": true },
                    "w": { "type": "string", "default": "hi" } }),
            json!({ "a": "{{ parameters.n }}", "b": "{{parameters.b}}", "c": "n={{ parameters.n }} {{ parameters.w }}",
                    "{{ parameters.w }}": "keys stay" }),
        );
        let values = values(&t.parameters, given(json!({ "n": 2.5 }))).unwrap();
        let out = expand(&t.spec, &values).unwrap();
        assert_eq!(
            out,
            json!({ "a": 2.5, "b": true, "c": "n=2.5 hi", "{{ parameters.w }}": "keys stay" })
        );
    }

    #[test]
    fn values_cannot_inject_structure_or_recurse() {
        let t = template(
            json!({ "w": { "type": "string" }, "x": { "type": "string", "default": "X" } }),
            json!({ "cmd": ["sh", "-c", "echo {{ parameters.w }}"] }),
        );
        for hostile in ["\"}, \"evil\": {\"", "{{ parameters.x }}", "a\nb: c\n"] {
            let values = values(&t.parameters, given(json!({ "w": hostile }))).unwrap();
            let out = expand(&t.spec, &values).unwrap();
            assert_eq!(
                out,
                json!({ "cmd": ["sh", "-c", format!("echo {hostile}")] })
            );
        }
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let t = template(
            json!({ "word": { "type": "string", "allowed": ["hi", "hello"] }, "n": { "type": "number", "default": 1 } }),
            json!({}),
        );
        let field = |v: Value| values(&t.parameters, given(v)).unwrap_err().0[0].clone();
        assert_eq!(field(json!({})).field, "parameters.word");
        assert!(field(json!({})).message.starts_with("required"));
        assert_eq!(field(json!({ "word": "yo" })).field, "parameters.word");
        assert_eq!(field(json!({ "word": 3 })).field, "parameters.word");
        assert_eq!(
            field(json!({ "word": "hi", "n": "1" })).field,
            "parameters.n"
        );
        assert_eq!(
            field(json!({ "word": "hi", "nope": 1 })).field,
            "parameters.nope"
        );
        assert_eq!(
            field(json!({ "word": "hi", "../x": 1 })).field,
            "parameters"
        );
        let long = "a".repeat(MAX_VALUE_BYTES + 1);
        let t = template(json!({ "w": { "type": "string" } }), json!({}));
        let e = values(&t.parameters, given(json!({ "w": long }))).unwrap_err();
        assert_eq!(e.0[0].field, "parameters.w");
    }

    #[test]
    fn declarations_and_references_are_checked_when_stored() {
        let bad = |doc: Value| read(doc).unwrap_err().0[0].field.clone();
        assert_eq!(
            bad(json!({ "parameters": { "w": { "type": "text" } } })),
            "parameters.w.type"
        );
        assert_eq!(
            bad(json!({ "parameters": { "w": { "type": "number", "default": "1" } } })),
            "parameters.w.default"
        );
        assert_eq!(
            bad(json!({ "parameters": {}, "groups": [{ "name": "{{ parameters.nope }}" }] })),
            "groups[0].name"
        );
        assert_eq!(bad(json!({ "id": "x" })), "id");
        let many: Map<String, Value> = (0..=MAX_PARAMETERS)
            .map(|i| (format!("p{i}"), json!({ "type": "string" })))
            .collect();
        assert_eq!(bad(json!({ "parameters": many })), "parameters");
    }

    #[test]
    fn the_expansion_is_bounded() {
        let t = template(
            json!({ "w": { "type": "string" } }),
            json!({ "a": vec!["{{ parameters.w }}"; 100] }),
        );
        let values = values(&t.parameters, given(json!({ "w": "a".repeat(8000) }))).unwrap();
        assert_eq!(expand(&t.spec, &values).unwrap_err().0[0].field, "(spec)");
    }
}
