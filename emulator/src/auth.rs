//! The bearer token that guards the emulator's HTTP API. Its containers share the host's network,
//! so without one any container (or any local process) could create, change or delete groups.
//! With a token configured every route, ARM and `/_emulator/*`, needs `Authorization: Bearer
//! <token>`, compared in constant time; a request without it gets ARM's own `401` answers.

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use subtle::ConstantTimeEq;

use crate::aci::Emulator;
use crate::error::ArmError;

/// A bearer token. Neither `Debug` nor anything else prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token given by the operator; `None` when it is empty or not a valid header value.
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = text.into().trim().to_string();
        let usable = !text.is_empty() && HeaderValue::from_str(&text).is_ok();
        usable.then_some(Token(text))
    }

    /// A fresh random token: 32 bytes from the OS-seeded generator, in hex.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::rng().random();
        Token(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    /// The token, for the one place that needs it (a client's header, a start line the operator
    /// asked for).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token, in time independent of where they differ.
    pub fn matches(&self, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.0.as_bytes()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<set>")
    }
}

/// Lets a request through when it carries the configured token (or when none is configured),
/// and answers ARM's `401` otherwise.
pub async fn require_token(
    State(emulator): State<Arc<Emulator>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &emulator.config().token else {
        return next.run(request).await;
    };
    match check(token, request.headers().get(AUTHORIZATION)) {
        Ok(()) => next.run(request).await,
        Err(error) => {
            let description = error.message.clone();
            let mut response = error.into_response();
            let challenge = format!(
                "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\", error_description=\"{description}\""
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(WWW_AUTHENTICATE, value);
            }
            response
        }
    }
}

/// ARM's answers: `AuthenticationFailed` without a usable header, `InvalidAuthenticationToken`
/// for a bearer token that is not the one.
fn check(token: &Token, header: Option<&HeaderValue>) -> Result<(), ArmError> {
    let Some(header) = header else {
        return Err(ArmError::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ));
    };
    let given = header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credential)| credential.trim());
    match given {
        None => Err(ArmError::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )),
        Some(given) if token.matches(given) => Ok(()),
        Some(_) => Err(ArmError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).unwrap()
    }

    #[test]
    fn only_the_bearer_token_itself_passes() {
        let token = Token::new("s3cret").unwrap();
        assert_eq!(check(&token, Some(&header("Bearer s3cret"))), Ok(()));
        assert_eq!(check(&token, Some(&header("bearer s3cret"))), Ok(()));
        let code = |value: Option<&str>| {
            let value = value.map(header);
            check(&token, value.as_ref()).unwrap_err().code
        };
        assert_eq!(code(None), "AuthenticationFailed");
        assert_eq!(code(Some("s3cret")), "AuthenticationFailed");
        assert_eq!(code(Some("Basic s3cret")), "AuthenticationFailed");
        assert_eq!(code(Some("Bearer s3cre")), "InvalidAuthenticationToken");
        assert_eq!(code(Some("Bearer s3cret2")), "InvalidAuthenticationToken");
        assert_eq!(code(Some("Bearer ")), "InvalidAuthenticationToken");
    }

    #[test]
    fn tokens_are_random_unprintable_and_never_empty() {
        let (a, b) = (Token::generate(), Token::generate());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert_eq!(format!("{a:?}"), "<set>");
        assert!(Token::new("  ").is_none());
        assert!(Token::new("line\nbreak").is_none());
        assert_eq!(Token::new(" t ").unwrap().expose(), "t");
    }
}
