//! Properties of the invocation-payload decoders, for any body the Functions host could send.

use berth::functions::http::{HttpInvocation, RouteError};
use berth::functions::table::{FunctionTable, Trigger};
use berth::functions::{Envelope, InvocationError, QueueMessage, TimerTick};
use berth::store::StepMessage;

/// Decodes `body` as the dispatcher does, then with every decoder under every binding name (the
/// function table's and each key of `Data`), so that all three decoders see every input.
/// Failures must be errors that name a field; successes must be usable.
pub fn check_invocation(body: &[u8]) {
    let envelope = match Envelope::parse(body) {
        Ok(envelope) => envelope,
        Err(error) => return check_error(&error),
    };
    let mut bindings: Vec<String> = FunctionTable::embedded()
        .expect("the embedded function table is valid")
        .functions()
        .iter()
        .map(|f| f.trigger.binding().to_owned())
        .collect();
    bindings.extend(envelope.data.keys().cloned());
    bindings.sort();
    bindings.dedup();
    for binding in &bindings {
        match QueueMessage::decode(&envelope, binding) {
            Ok(message) => {
                assert!(message.dequeue_count >= 1);
                let _ = StepMessage::from_text(&message.text);
            }
            Err(error) => check_error(&error),
        }
        if let Err(error) = TimerTick::decode(&envelope, binding) {
            check_error(&error);
        }
        match HttpInvocation::decode(&envelope, binding) {
            Ok(invocation) => check_http(invocation),
            Err(error) => check_error(&error),
        }
    }
}

/// Every HTTP function of the table, as the dispatcher would serve `invocation` for it: the
/// target path must be that function's route and no other's, each parameter one segment that
/// decodes to its `Params` value, and the rebuilt request must carry that path.
fn check_http(invocation: HttpInvocation) {
    let table = FunctionTable::embedded().expect("the embedded function table is valid");
    let routes: Vec<&str> = table
        .functions()
        .iter()
        .filter_map(|f| match &f.trigger {
            Trigger::Http { route, .. } => Some(route.as_str()),
            _ => None,
        })
        .collect();
    for route in &routes {
        check_route(&invocation, route, &routes);
    }
}

/// The dispatch of `invocation` to the function whose route template is `route`.
pub fn check_route(invocation: &HttpInvocation, route: &str, all_routes: &[&str]) {
    let path = match invocation.route_path("api", route) {
        Ok(path) => path,
        Err(RouteError::MissingParam(name)) => {
            assert!(
                route.contains(&format!("{{{name}}}")) || route.contains(&format!("{{*{name}}}")),
                "{route}: {name}"
            );
            return;
        }
        Err(RouteError::Mismatch { .. }) => return,
    };
    assert!(
        serves(route, &path, &invocation.params),
        "{path} is not {route} with {:?}",
        invocation.params
    );
    for other in all_routes.iter().filter(|r| *r != &route) {
        assert!(
            !serves(other, &path, &invocation.params),
            "{path}, built for {route}, also reads as {other}"
        );
    }
    let body_len = invocation.body.as_ref().map(|b| b.len());
    match invocation.clone().into_request(&path) {
        Ok(request) => {
            assert_eq!(request.uri().path(), path, "the rebuilt request's path");
            let length = request
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            assert_eq!(length, body_len, "the rebuilt request's Content-Length");
        }
        Err(error) => check_error(&error),
    }
}

/// Whether `path` is `/api/` + `route` with each `{param}` one segment decoding to its value, and
/// a last `{*param}` any number of such segments whose decoded values, joined by `/`, are its
/// value (none when it is absent, null or empty).
fn serves(route: &str, path: &str, params: &serde_json::Map<String, serde_json::Value>) -> bool {
    let Some(rest) = path.strip_prefix("/api/") else {
        return false;
    };
    let given: Vec<&str> = rest.split('/').collect();
    let wanted: Vec<&str> = route.split('/').collect();
    let real =
        |segment: &str| !segment.contains(['/', '\\', ';']) && !matches!(segment, "." | "..");
    let one = |segment: &str, part: &str| match part
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
    {
        None => segment == part,
        Some(name) => {
            real(segment) && decode(segment).as_deref() == params.get(name).and_then(|v| v.as_str())
        }
    };
    let catch_all = wanted
        .last()
        .and_then(|p| p.strip_prefix("{*"))
        .and_then(|p| p.strip_suffix('}'));
    let Some(name) = catch_all else {
        return given.len() == wanted.len() && given.iter().zip(&wanted).all(|(s, p)| one(s, p));
    };
    let fixed = wanted.len() - 1;
    if given.len() < fixed || !given.iter().zip(&wanted[..fixed]).all(|(s, p)| one(s, p)) {
        return false;
    }
    let value = params
        .get(name)
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let tail = &given[fixed..];
    if value.is_empty() {
        return tail.is_empty();
    }
    // Each a real segment that decodes to one, so the parts say where the value's `/`s were.
    let decoded: Option<Vec<String>> = tail
        .iter()
        .map(|s| decode(s).filter(|d| real(s) && !d.is_empty() && real(d)))
        .collect();
    decoded.is_some_and(|parts| parts.join("/") == value)
}

fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(segment.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn check_error(error: &InvocationError) {
    let field = match error {
        InvocationError::BodyNotJson { .. } => "(body)",
        InvocationError::MissingField { field }
        | InvocationError::WrongType { field, .. }
        | InvocationError::InvalidValue { field, .. } => field,
    };
    assert!(
        !field.is_empty(),
        "an invocation error without a field: {error:?}"
    );
    assert!(!error.to_string().is_empty());
}

/// The dispatch of one HTTP function for a URL path and route values from `data`: the first byte
/// picks the function (of the table's HTTP functions), the rest is the URL path, then one line
/// per route parameter in template order. Fuzzes invoked function × URL × Params.
pub fn check_http_route(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let table = FunctionTable::embedded().expect("the embedded function table is valid");
    let http: Vec<(&str, &str)> = table
        .functions()
        .iter()
        .filter_map(|f| match &f.trigger {
            Trigger::Http { route, methods, .. } => Some((
                route.as_str(),
                methods.first().map_or("GET", String::as_str),
            )),
            _ => None,
        })
        .collect();
    let (route, method) = http[usize::from(pick) % http.len()];
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let path = lines.next().unwrap_or_default();
    let names = route
        .split('/')
        .filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
        .map(|p| p.trim_start_matches('*'));
    let params: serde_json::Map<String, serde_json::Value> = names
        .zip(lines)
        .map(|(name, value)| (name.to_owned(), serde_json::Value::from(value)))
        .collect();
    let payload = serde_json::json!({"Data": {"req": {
        "Url": format!("http://localhost:7071{path}"),
        "Method": method,
        "Query": {},
        "Headers": {"Host": ["localhost:7071"]},
        "Params": params,
    }}, "Metadata": {}});
    let envelope = Envelope::parse(payload.to_string().as_bytes()).expect("a well-formed envelope");
    match HttpInvocation::decode(&envelope, "req") {
        Ok(invocation) => {
            let routes: Vec<&str> = http.iter().map(|(r, _)| *r).collect();
            check_route(&invocation, route, &routes);
        }
        Err(error) => check_error(&error),
    }
}
