//! Properties of the invocation-payload decoders, for any body the Functions host could send.

use berth::functions::http::HttpInvocation;
use berth::functions::table::FunctionTable;
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

fn check_http(invocation: HttpInvocation) {
    let path = invocation.url.path().to_owned();
    let body_len = invocation.body.as_ref().map(|b| b.len());
    match invocation.into_request() {
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
