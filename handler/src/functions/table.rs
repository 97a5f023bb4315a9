//! The function table: which function folder is which trigger.
//!
//! The table is built from the very `functions/<Name>/function.json` files that are deployed (they
//! are embedded with `include_str!`), so the handler and the function folders cannot drift apart: a
//! folder added without a line in [`FUNCTION_FILES`] fails the `every_function_folder_is_served`
//! test, and a binding the handler does not understand fails [`FunctionTable::embedded`]'s test.

use serde::Deserialize;
use thiserror::Error;

/// `host.json`, as deployed.
pub const HOST_JSON: &str = include_str!("../../../host.json");

/// Every function folder with its `function.json`, as deployed: `(folder name, file text)`.
pub const FUNCTION_FILES: &[(&str, &str)] = &[
    (
        "deployments",
        include_str!("../../../functions/deployments/function.json"),
    ),
    (
        "deployment",
        include_str!("../../../functions/deployment/function.json"),
    ),
    (
        "events",
        include_str!("../../../functions/events/function.json"),
    ),
    (
        "raised",
        include_str!("../../../functions/raised/function.json"),
    ),
    (
        "terminate",
        include_str!("../../../functions/terminate/function.json"),
    ),
    (
        "logs",
        include_str!("../../../functions/logs/function.json"),
    ),
    (
        "history",
        include_str!("../../../functions/history/function.json"),
    ),
    (
        "checkpoint",
        include_str!("../../../functions/checkpoint/function.json"),
    ),
    (
        "instances",
        include_str!("../../../functions/instances/function.json"),
    ),
    (
        "templates",
        include_str!("../../../functions/templates/function.json"),
    ),
    (
        "template",
        include_str!("../../../functions/template/function.json"),
    ),
    (
        "dashboard",
        include_str!("../../../functions/dashboard/function.json"),
    ),
    (
        "callback",
        include_str!("../../../functions/callback/function.json"),
    ),
    (
        "steps",
        include_str!("../../../functions/steps/function.json"),
    ),
    (
        "submit",
        include_str!("../../../functions/submit/function.json"),
    ),
    (
        "cleanup",
        include_str!("../../../functions/cleanup/function.json"),
    ),
    (
        "schedules",
        include_str!("../../../functions/schedules/function.json"),
    ),
    (
        "schedule",
        include_str!("../../../functions/schedule/function.json"),
    ),
    (
        "schedule-action",
        include_str!("../../../functions/schedule-action/function.json"),
    ),
    (
        "scheduler",
        include_str!("../../../functions/scheduler/function.json"),
    ),
];

/// What starts a function, with the binding name its value arrives under in `Data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An `httpTrigger`; the request arrives as `Data.<binding>`.
    Http {
        /// The trigger binding's name (`req`).
        binding: String,
        /// The allowed methods, upper-case.
        methods: Vec<String>,
        /// The route template below the route prefix.
        route: String,
        /// `anonymous`, `function` or `admin`.
        auth_level: String,
    },
    /// A `queueTrigger`; the message text arrives as `Data.<binding>`.
    Queue {
        /// The trigger binding's name (`message`).
        binding: String,
        /// The queue name as written, e.g. `%BERTH_QUEUE%`.
        queue_name: String,
    },
    /// A `timerTrigger`; the `TimerInfo` arrives as `Data.<binding>`.
    Timer {
        /// The trigger binding's name (`timer`).
        binding: String,
        /// The NCRONTAB schedule.
        schedule: String,
    },
}

impl Trigger {
    /// The trigger binding's name, the key of its value in `Data`.
    pub fn binding(&self) -> &str {
        match self {
            Trigger::Http { binding, .. }
            | Trigger::Queue { binding, .. }
            | Trigger::Timer { binding, .. } => binding,
        }
    }
}

/// One function: its folder name (the name the host POSTs to) and its trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// The folder name; the host calls `POST /{name}`.
    pub name: String,
    pub trigger: Trigger,
}

/// All functions of the app, looked up by the name in the invocation path.
#[derive(Debug, Clone, Default)]
pub struct FunctionTable {
    functions: Vec<Function>,
}

/// A `function.json` that the handler cannot serve.
#[derive(Debug, Error)]
pub enum TableError {
    /// The file is not the JSON shape of a `function.json`.
    #[error("functions/{function}/function.json is not valid: {source}")]
    ParseFunctionJson {
        /// The function folder.
        function: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// No binding with `direction: in` and a trigger type.
    #[error("functions/{function}/function.json has no trigger binding")]
    MissingTrigger {
        /// The function folder.
        function: String,
    },
    /// A trigger type the handler does not serve.
    #[error("functions/{function}/function.json: trigger type `{kind}` is not served by Berth")]
    UnknownTrigger {
        /// The function folder.
        function: String,
        /// The binding's `type`.
        kind: String,
    },
    /// A trigger lacks a field it needs.
    #[error("functions/{function}/function.json: trigger binding lacks `{field}`")]
    MissingField {
        /// The function folder.
        function: String,
        /// The missing field.
        field: &'static str,
    },
}

#[derive(Deserialize)]
struct FunctionJson {
    bindings: Vec<BindingJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingJson {
    #[serde(rename = "type")]
    kind: String,
    direction: String,
    name: String,
    methods: Option<Vec<String>>,
    route: Option<String>,
    auth_level: Option<String>,
    queue_name: Option<String>,
    schedule: Option<String>,
}

impl FunctionTable {
    /// The table of the embedded `functions/` folder.
    pub fn embedded() -> Result<Self, TableError> {
        Self::parse(FUNCTION_FILES.iter().copied())
    }

    /// Builds a table from `(folder name, function.json text)` pairs.
    pub fn parse<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, TableError> {
        let functions = files
            .into_iter()
            .map(|(name, text)| parse_function(name, text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { functions })
    }

    /// The function the host calls `POST /{name}` for; names compare case-insensitively, as the
    /// host's function names do.
    pub fn get(&self, name: &str) -> Option<&Function> {
        self.functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// All functions, in folder order.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }
}

fn parse_function(name: &str, text: &str) -> Result<Function, TableError> {
    let doc: FunctionJson =
        serde_json::from_str(text).map_err(|source| TableError::ParseFunctionJson {
            function: name.to_owned(),
            source,
        })?;
    let trigger = doc
        .bindings
        .into_iter()
        .find(|b| b.direction == "in" && b.kind.to_ascii_lowercase().ends_with("trigger"))
        .ok_or_else(|| TableError::MissingTrigger {
            function: name.to_owned(),
        })?;
    let missing = |field| TableError::MissingField {
        function: name.to_owned(),
        field,
    };
    let trigger = match trigger.kind.as_str() {
        "httpTrigger" => Trigger::Http {
            binding: trigger.name,
            methods: trigger
                .methods
                .unwrap_or_default()
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            route: trigger.route.unwrap_or_else(|| name.to_owned()),
            auth_level: trigger.auth_level.unwrap_or_else(|| "function".to_owned()),
        },
        "queueTrigger" => Trigger::Queue {
            binding: trigger.name,
            queue_name: trigger.queue_name.ok_or_else(|| missing("queueName"))?,
        },
        "timerTrigger" => Trigger::Timer {
            binding: trigger.name,
            schedule: trigger.schedule.ok_or_else(|| missing("schedule"))?,
        },
        other => {
            return Err(TableError::UnknownTrigger {
                function: name.to_owned(),
                kind: other.to_owned(),
            });
        }
    };
    Ok(Function {
        name: name.to_owned(),
        trigger,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_function_folder_is_served() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
        let mut on_disk: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().join("function.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FUNCTION_FILES
            .iter()
            .map(|(n, _)| (*n).to_owned())
            .collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "functions/ and FUNCTION_FILES differ");
        for (name, text) in FUNCTION_FILES {
            let file = std::fs::read_to_string(root.join(name).join("function.json")).unwrap();
            assert_eq!(&file, text, "{name}");
        }
    }

    #[test]
    fn embedded_table_has_the_decided_triggers() {
        let table = FunctionTable::embedded().unwrap();
        let http = |name: &str| match &table.get(name).unwrap().trigger {
            Trigger::Http {
                methods,
                route,
                auth_level,
                ..
            } => (methods.join(","), route.clone(), auth_level.clone()),
            other => panic!("{name} is {other:?}"),
        };
        assert_eq!(
            http("deployments"),
            ("GET,POST".into(), "deployments".into(), "function".into())
        );
        assert_eq!(
            http("deployment"),
            (
                "GET,DELETE".into(),
                "deployments/{id}".into(),
                "function".into()
            )
        );
        assert_eq!(
            http("callback"),
            (
                "POST".into(),
                "callbacks/{id}/{name}".into(),
                "anonymous".into()
            )
        );
        assert_eq!(
            table.get("steps").unwrap().trigger,
            Trigger::Queue {
                binding: "message".into(),
                queue_name: "%BERTH_QUEUE%".into()
            }
        );
        assert_eq!(
            table.get("CLEANUP").unwrap().trigger,
            Trigger::Timer {
                binding: "timer".into(),
                schedule: "0 */5 * * * *".into()
            }
        );
        assert_eq!(
            table.get("scheduler").unwrap().trigger,
            Trigger::Timer {
                binding: "timer".into(),
                schedule: "0 * * * * *".into()
            }
        );
        assert_eq!(
            http("schedule"),
            (
                "GET,PUT,DELETE".into(),
                "schedules/{name}".into(),
                "function".into()
            )
        );
        assert_eq!(
            table.get("submit").unwrap().trigger,
            Trigger::Queue {
                binding: "message".into(),
                queue_name: "%BERTH_SUBMIT_QUEUE%".into()
            }
        );
        assert!(table.get("nope").is_none());
    }

    #[test]
    fn host_json_has_the_decided_settings() {
        let host: serde_json::Value = serde_json::from_str(HOST_JSON).unwrap();
        assert_eq!(host["version"], "2.0");
        assert_eq!(
            host["customHandler"]["description"]["defaultExecutablePath"],
            "handler"
        );
        assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], false);
        assert_eq!(host["extensions"]["queues"]["messageEncoding"], "base64");
        assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    }

    #[test]
    fn bad_function_json_names_the_folder_and_field() {
        let err = FunctionTable::parse([("x", "{")]).unwrap_err();
        assert!(err.to_string().contains("functions/x/function.json"));
        let err = FunctionTable::parse([(
            "q",
            r#"{"bindings":[{"type":"queueTrigger","direction":"in","name":"m"}]}"#,
        )])
        .unwrap_err();
        assert!(err.to_string().contains("queueName"), "{err}");
        let err = FunctionTable::parse([(
            "b",
            r#"{"bindings":[{"type":"blobTrigger","direction":"in","name":"m"}]}"#,
        )])
        .unwrap_err();
        assert!(err.to_string().contains("blobTrigger"), "{err}");
    }
}
