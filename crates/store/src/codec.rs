//! How a record's body is written and how exact-match lookup keys are derived.
//!
//! Bodies are versioned by their first byte so the format can change without a flag day: `{`
//! is plain JSON, the only format so far.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::StoreError;

pub fn encode<R: Serialize>(record: &R) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(format!("encoding failed: {e}")))
}

pub fn decode<R: DeserializeOwned>(body: &[u8]) -> Result<R, StoreError> {
    match body.first() {
        Some(b'{') => serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(e.to_string())),
        Some(other) => Err(StoreError::Corrupt(format!(
            "unknown body format {other:#04x}"
        ))),
        None => Err(StoreError::Corrupt("empty body".into())),
    }
}

/// The lookup key of a normalised value (an email's `lookup_key`, an E.164 phone, a contact id):
/// a hash, so the column is useless for reading the value back.
pub fn lookup_key(kind: &str, normalised: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(b"steward-lookup-v0\0");
    hasher.update(kind.as_bytes());
    hasher.update(b"\0");
    hasher.update(normalised.as_bytes());
    hasher.finalize().to_vec()
}

pub fn email_key(email: &steward_domain::Email) -> Vec<u8> {
    lookup_key("email", &email.lookup_key())
}

pub fn phone_key(phone: &steward_domain::Phone) -> Vec<u8> {
    lookup_key("phone", phone.as_str())
}

pub fn contact_key(contact_id: &str) -> Vec<u8> {
    lookup_key("contact_id", contact_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_keys_separate_kinds_and_hide_values() {
        let a = lookup_key("email", "anna@example.fi");
        assert_ne!(a, lookup_key("phone", "anna@example.fi"));
        assert_eq!(a.len(), 32);
        assert!(!String::from_utf8_lossy(&a).contains("anna"));
    }

    #[test]
    fn unknown_body_formats_are_reported_not_guessed() {
        let result: Result<serde_json::Value, _> = decode(&[0x7f, 1, 2]);
        assert!(matches!(result, Err(StoreError::Corrupt(_))));
    }
}
