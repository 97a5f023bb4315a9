//! Secrets at rest under `BERTH_SECRETS_KEY`, and callback tokens.
//!
//! Sealed values are AES-256-GCM with a random 96-bit nonce, written `v1.<key id>.<base64>`; the key
//! id lets a rotated key open what the previous key sealed.
//!
//! Callback tokens are HMAC-SHA256 over the deployment id and the event kind under a random key
//! of the deployment's own ([`Keyring::new_callback_key`], kept sealed in its checkpoint), compared
//! in constant time. So a token names one deployment, not one id: a deployment submitted again
//! under a purged one's id has a new key. And `BERTH_SECRETS_KEY` alone does not make tokens:
//! forging one takes the deployment's checkpoint too. (Checkpoints from before per-deployment
//! keys have none; their tokens are HMACs under a key derived from `BERTH_SECRETS_KEY`.)

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Errors of sealing and opening.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("BERTH_SECRETS_KEY must be 32 bytes in base64 ({0})")]
    BadKey(String),
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with key {0}, which is neither BERTH_SECRETS_KEY nor a previous key")]
    UnknownKey(String),
    #[error("sealed value failed authentication (tampered, or sealed under another key)")]
    Authentication,
}

/// A 256-bit key. Never printed.
#[derive(Clone)]
pub struct SecretsKey {
    bytes: [u8; 32],
    id: String,
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretsKey({})", self.id)
    }
}

impl SecretsKey {
    /// Reads a key from its base64 text.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| CryptoError::BadKey(e.to_string()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| CryptoError::BadKey(format!("{} bytes", b.len())))?;
        Ok(Self::from_bytes(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        SecretsKey { bytes, id }
    }

    /// The key as base64, for writing a generated key to its file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// A short public identifier of the key (not secret: a hash prefix).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The keys in use: the current one seals; it and the previous ones open.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: SecretsKey,
    previous: Vec<SecretsKey>,
}

impl Keyring {
    /// A keyring with one key and optional previous keys (for rotation).
    pub fn new(current: SecretsKey, previous: Vec<SecretsKey>) -> Self {
        Keyring { current, previous }
    }

    fn keys(&self) -> impl Iterator<Item = &SecretsKey> {
        std::iter::once(&self.current).chain(self.previous.iter())
    }

    /// Encrypts `plain` under the current key.
    pub fn seal(&self, plain: &[u8]) -> String {
        let cipher =
            Aes256Gcm::new_from_slice(&self.current.derive("berth-seal-v1")).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("AES-GCM encryption cannot fail on a Vec");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("v1.{}.{}", self.current.id, STANDARD.encode(out))
    }

    /// Whether `sealed` was sealed under an older key and should be sealed again.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        sealed.split('.').nth(1) != Some(self.current.id.as_str())
    }

    /// Decrypts a value sealed under any key of the ring.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Malformed);
        };
        let key = self
            .keys()
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))?;
        let bytes = STANDARD.decode(body).map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let cipher = Aes256Gcm::new_from_slice(&key.derive("berth-seal-v1")).expect("32-byte key");
        cipher
            .decrypt(Nonce::from_slice(&bytes[..12]), &bytes[12..])
            .map_err(|_| CryptoError::Authentication)
    }

    /// A keyed digest (HMAC) of `data`: compares specs without keeping them or their secrets.
    pub fn digest(&self, data: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.current.derive("berth-digest-v1"))
                .expect("any key length");
        mac.update(data);
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `digest` is the digest of `data` under any key of the ring.
    pub fn digest_matches(&self, data: &[u8], digest: &str) -> bool {
        self.keys().any(|key| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.derive("berth-digest-v1"))
                .expect("any key length");
            mac.update(data);
            URL_SAFE_NO_PAD
                .encode(mac.finalize().into_bytes())
                .as_bytes()
                .ct_eq(digest.as_bytes())
                .into()
        })
    }

    /// A new deployment's callback key: 32 random bytes, sealed.
    pub fn new_callback_key(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        self.seal(&bytes)
    }

    /// The callback token of one deployment for one event kind, under its sealed callback key
    /// (`None`: a checkpoint from before per-deployment keys).
    pub fn callback_token(
        &self,
        callback_key: Option<&str>,
        deployment: &str,
        kind: &str,
    ) -> Result<String, CryptoError> {
        match callback_key {
            Some(sealed) => Ok(Self::token_under(&self.open(sealed)?, deployment, kind)),
            None => Ok(Self::legacy_token(&self.current, deployment, kind)),
        }
    }

    /// Checks a callback token in constant time against the deployment's callback key; a key
    /// that cannot be opened accepts nothing.
    pub fn verify_callback(
        &self,
        callback_key: Option<&str>,
        deployment: &str,
        kind: &str,
        token: &str,
    ) -> bool {
        match callback_key {
            Some(sealed) => self.open(sealed).is_ok_and(|key| {
                Self::token_under(&key, deployment, kind)
                    .as_bytes()
                    .ct_eq(token.as_bytes())
                    .into()
            }),
            None => self.keys().fold(false, |ok, key| {
                let expected = Self::legacy_token(key, deployment, kind);
                ok | bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
            }),
        }
    }

    fn token_under(key: &[u8], deployment: &str, kind: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(b"berth-callback-v2\0");
        mac.update(deployment.as_bytes());
        mac.update(&[0]);
        mac.update(kind.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..24])
    }

    fn legacy_token(key: &SecretsKey, deployment: &str, kind: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.derive("berth-callback-v1"))
            .expect("any key length");
        mac.update(deployment.as_bytes());
        mac.update(&[0]);
        mac.update(kind.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..24])
    }
}

/// Whether `text` has the shape of a sealed value (`v<n>.<key id>.<base64>`, of any version).
fn looks_sealed(text: &str) -> bool {
    let mut parts = text.splitn(3, '.');
    let (Some(version), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    version.len() > 1
        && version.starts_with('v')
        && version[1..].bytes().all(|b| b.is_ascii_digit())
        && !id.is_empty()
        && body.len() >= 16
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
}

/// Replaces every sealed value in a stored document by `(sealed)`, and the fields that hold
/// them (`sealed`, `callbackKey`) whatever they hold, so that a document shown as stored (a
/// checkpoint this Berth cannot read) shows no ciphertext.
pub fn redact_sealed(doc: &mut serde_json::Value) {
    use serde_json::Value;
    match doc {
        Value::String(text) if looks_sealed(text) => *text = "(sealed)".into(),
        Value::Array(items) => items.iter_mut().for_each(redact_sealed),
        Value::Object(fields) => {
            for (key, value) in fields.iter_mut() {
                if matches!(key.as_str(), "sealed" | "callbackKey") && !value.is_null() {
                    *value = Value::String("(sealed)".into());
                } else {
                    redact_sealed(value);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_and_do_not_show_the_plain_text() {
        let ring = Keyring::new(SecretsKey::generate(), vec![]);
        let sealed = ring.seal(b"hunter2");
        assert!(!sealed.contains("hunter2"));
        assert!(!sealed.contains(&STANDARD.encode("hunter2")));
        assert_eq!(ring.open(&sealed).unwrap(), b"hunter2");
        assert_ne!(ring.seal(b"hunter2"), sealed, "a fresh nonce each time");
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let ring = Keyring::new(SecretsKey::generate(), vec![]);
        let sealed = ring.seal(b"x");
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(ring.open(&String::from_utf8(bytes).unwrap()).is_err());
        let other = Keyring::new(SecretsKey::generate(), vec![]);
        assert!(matches!(
            other.open(&sealed),
            Err(CryptoError::UnknownKey(_))
        ));
        assert!(matches!(ring.open("v2.x.y"), Err(CryptoError::Malformed)));
    }

    #[test]
    fn a_rotated_ring_opens_old_values_and_seals_with_the_new_key() {
        let old = SecretsKey::generate();
        let before = Keyring::new(old.clone(), vec![]);
        let sealed = before.seal(b"payload");
        let callback_key = before.new_callback_key();
        let token = before
            .callback_token(Some(&callback_key), "d1", "completed")
            .unwrap();
        let after = Keyring::new(SecretsKey::generate(), vec![old]);
        assert_eq!(after.open(&sealed).unwrap(), b"payload");
        assert!(after.needs_reseal(&sealed));
        assert!(!after.needs_reseal(&after.seal(b"payload")));
        assert!(after.verify_callback(Some(&callback_key), "d1", "completed", &token));
    }

    #[test]
    fn tokens_are_scoped_to_deployment_key_and_kind() {
        let ring = Keyring::new(SecretsKey::generate(), vec![]);
        let key = ring.new_callback_key();
        let token = ring.callback_token(Some(&key), "d1", "completed").unwrap();
        assert!(ring.verify_callback(Some(&key), "d1", "completed", &token));
        assert!(!ring.verify_callback(Some(&key), "d2", "completed", &token));
        assert!(!ring.verify_callback(Some(&key), "d1", "heartbeat", &token));
        assert!(!ring.verify_callback(Some(&key), "d1", "completed", ""));
        // The same id with another deployment's key (purged, then submitted again).
        let again = ring.new_callback_key();
        assert!(!ring.verify_callback(Some(&again), "d1", "completed", &token));
        // A token made from BERTH_SECRETS_KEY alone (the scheme before per-deployment keys).
        let forged = ring.callback_token(None, "d1", "completed").unwrap();
        assert!(!ring.verify_callback(Some(&key), "d1", "completed", &forged));
        assert!(
            ring.verify_callback(None, "d1", "completed", &forged),
            "legacy checkpoints"
        );
        // A key sealed under another ring opens nothing.
        assert!(!ring.verify_callback(Some("v1.x.y"), "d1", "completed", &token));
    }

    #[test]
    fn keys_parse_from_base64_and_name_their_error() {
        let key = SecretsKey::generate();
        assert_eq!(
            SecretsKey::from_base64(&key.to_base64()).unwrap().id(),
            key.id()
        );
        assert!(
            SecretsKey::from_base64("c2hvcnQ=")
                .unwrap_err()
                .to_string()
                .contains("BERTH_SECRETS_KEY")
        );
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }

    #[test]
    fn redaction_hides_every_sealed_value_and_keeps_the_rest() {
        let ring = Keyring::new(SecretsKey::generate(), Vec::new());
        let mut doc = serde_json::json!({
            "id": "job-1",
            "sealed": ring.seal(b"{\"DB_PASSWORD\":\"hunter2\"}"),
            "callbackKey": "not even sealed",
            "future": {"nested": [ring.seal(b"x"), "v2.k1.QUJDREVGR0hJSktMTU5PUA=="]},
            "phase": "Paused",
            "version": "v1.2.3"
        });
        redact_sealed(&mut doc);
        assert_eq!(doc["sealed"], "(sealed)");
        assert_eq!(doc["callbackKey"], "(sealed)");
        assert_eq!(
            doc["future"]["nested"],
            serde_json::json!(["(sealed)", "(sealed)"])
        );
        assert_eq!(
            (doc["phase"].as_str(), doc["version"].as_str()),
            (Some("Paused"), Some("v1.2.3"))
        );
        assert!(!doc.to_string().contains(&ring.current.id));
    }
}
