//! Secrets of a connection (account key, SAS token, client secret) in types whose `Debug` prints
//! no secret and which implement neither `Display` nor `Serialize`.

use azure_core::credentials::Secret;
use base64::Engine as _;
use std::fmt;

/// A storage account key (base64), validated at construction. Neither `Debug` nor anything else
/// prints it.
#[derive(Clone)]
pub struct AccountKey(Secret);

impl AccountKey {
    /// Checks that `base64` is a base64 key; the error says why without repeating the value.
    pub fn new(base64: impl Into<String>) -> Result<Self, &'static str> {
        let text: String = base64.into();
        match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
            Ok(bytes) if !bytes.is_empty() => Ok(Self(Secret::new(text.trim().to_owned()))),
            Ok(_) => Err("is empty"),
            Err(_) => Err("is not valid base64"),
        }
    }

    /// A key known to be valid (Azurite's published one).
    pub(super) fn well_known(key: &'static str) -> Self {
        Self(Secret::new(key))
    }

    /// The key, for signing only.
    pub(crate) fn secret(&self) -> &Secret {
        &self.0
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

/// A shared access signature (the query string, without a leading `?`). `Debug` hides it.
#[derive(Clone)]
pub struct SasToken(Secret);

impl SasToken {
    /// Wraps a SAS query string, dropping a leading `?`.
    pub fn new(token: impl Into<String>) -> Self {
        let token: String = token.into();
        Self(Secret::new(token.trim().trim_start_matches('?').to_owned()))
    }

    /// The query string, to append to request URLs.
    pub(crate) fn query(&self) -> &str {
        self.0.secret()
    }
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SasToken(<redacted>)")
    }
}

/// A service principal's client secret. `Debug` hides it.
#[derive(Clone)]
pub struct ClientSecret(pub(crate) Secret);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Secret::new(secret.into()))
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let key = AccountKey::new("c2VjcmV0LWtleQ==").unwrap();
        let sas = SasToken::new("?sv=2024-11-04&sig=c2lnbmF0dXJl");
        let client = ClientSecret::new("client-s3cret");
        let shown = format!("{key:?} {sas:?} {client:?}");
        assert_eq!(
            shown,
            "AccountKey(<redacted>) SasToken(<redacted>) ClientSecret(<redacted>)"
        );
        assert_eq!(sas.query(), "sv=2024-11-04&sig=c2lnbmF0dXJl");
        assert_eq!(AccountKey::new("").unwrap_err(), "is empty");
        assert_eq!(AccountKey::new("%%").unwrap_err(), "is not valid base64");
    }
}
