//! Reading a request body into a JSON document that refuses a key given twice in one object.
//!
//! `serde_json::Value` keeps the last of two equal keys and YAML parsers differ (first wins, last
//! wins, error), so a spec with a repeated key means one thing to Berth and another to whatever
//! else reads it (a reviewer, a proxy, a policy check). The document is built here by one
//! visitor for both formats, which stops at the first repeated key and names its field path.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::error::{FieldPath, SpecErrors};

/// One step of the path to the value being read.
enum Step {
    Key(String),
    Index(usize),
}

/// The path to the value being read, and the path of a repeated key once one is met.
#[derive(Default)]
struct Walk {
    steps: Vec<Step>,
    repeated: Option<FieldPath>,
}

impl Walk {
    fn path_to(&self, key: &str) -> FieldPath {
        let mut path = FieldPath::root();
        for step in &self.steps {
            path = match step {
                Step::Key(k) => path.key(k),
                Step::Index(i) => path.index(*i),
            };
        }
        path.key(key)
    }
}

/// Reads one value; the walk it shares with the values around it holds its path.
#[derive(Clone, Copy)]
struct Node<'w> {
    walk: &'w RefCell<Walk>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Number::from_i128(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("the number {v} is out of range")))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Number::from_u128(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("the number {v} is out of range")))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own `Value` does: a non-finite number (YAML's `.nan`) becomes null.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.walk.borrow_mut().steps.push(Step::Index(items.len()));
            let item = seq.next_element_seed(self)?;
            self.walk.borrow_mut().steps.pop();
            match item {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let path = self.walk.borrow().path_to(&key);
                self.walk.borrow_mut().repeated = Some(path);
                return Err(de::Error::custom(format!("the key '{key}' is given twice")));
            }
            self.walk.borrow_mut().steps.push(Step::Key(key));
            let value = map.next_value_seed(self)?;
            // The key comes back off the path it was lent to.
            if let Some(Step::Key(key)) = self.walk.borrow_mut().steps.pop() {
                object.insert(key, value);
            }
        }
        Ok(Value::Object(object))
    }
}

/// The error for a document that did not read: at the repeated key when that was the reason.
fn refused(walk: Walk, what: &str, error: impl fmt::Display) -> SpecErrors {
    match walk.repeated {
        Some(path) => SpecErrors::one(
            path.as_str(),
            "given twice in one object; each key may appear once",
        ),
        None => SpecErrors::one("(spec)", format!("not valid {what}: {error}")),
    }
}

/// Reads a JSON document.
pub fn from_json(body: &[u8]) -> Result<Value, SpecErrors> {
    let walk = RefCell::new(Walk::default());
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let read = Node { walk: &walk }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    read.map_err(|e| refused(walk.into_inner(), "JSON", e))
}

/// Reads a YAML document (one). Paths are those of the YAML document itself.
pub fn from_yaml(text: &str) -> Result<Value, SpecErrors> {
    let walk = RefCell::new(Walk::default());
    // Repeated keys reach the visitor, which refuses them by path (the parser's own refusal
    // names only a line).
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    let read = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        Node { walk: &walk }.deserialize(de)
    });
    read.map_err(|e| refused(walk.into_inner(), "YAML", e))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_document_reads_as_serde_json_reads_it() {
        let text = r#"{"a":[1,-2,3.5,true,null,"x",{"b":{}}],"c":18446744073709551615}"#;
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_json(text.as_bytes()).unwrap(), expected);
        let yaml = "a: [1, -2, 3.5, true, null, x, {b: {}}]\nc: 18446744073709551615\n";
        assert_eq!(from_yaml(yaml).unwrap(), expected);
    }

    #[test]
    fn a_repeated_key_is_refused_at_its_path() {
        let cases = [
            (r#"{"a":1,"a":2}"#, "a"),
            (r#"{"a":[{},{"b":1,"c":{"d":1,"d":1}}]}"#, "a[1].c.d"),
            (r#"{"a":{"x":1},"b":[[{"y":1,"y":2}]]}"#, "b[0][0].y"),
        ];
        for (text, field) in cases {
            let errors = from_json(text.as_bytes()).unwrap_err();
            assert_eq!(errors.0[0].field, field, "{text}");
        }
        let errors = from_yaml("a:\n- b: 1\n- c: 1\n  c: 2\n").unwrap_err();
        assert_eq!(errors.0[0].field, "a[1].c");
        assert_eq!(
            from_json(br#"{"a":{"b":1},"c":{"b":2}}"#).unwrap(),
            json!({ "a": { "b": 1 }, "c": { "b": 2 } }),
            "equal keys in different objects are fine"
        );
    }

    #[test]
    fn other_faults_name_the_document() {
        for text in [&b"{"[..], b"[1] [2]", b"{\"a\" 1}"] {
            let errors = from_json(text).unwrap_err();
            assert_eq!(errors.0[0].field, "(spec)");
            assert!(errors.0[0].message.starts_with("not valid JSON"));
        }
        let errors = from_yaml("a: [unclosed").unwrap_err();
        assert!(errors.0[0].message.starts_with("not valid YAML"));
    }
}
