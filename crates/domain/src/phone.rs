//! Phone numbers in E.164, validated with the libphonenumber metadata (`phonenumber` crate).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is not an international phone number (E.164 such as +358401234567)")]
    Malformed,
    #[error("is not a valid number for its country")]
    Invalid,
}

/// A valid phone number, kept in E.164 (`+358401234567`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

impl Phone {
    /// Accepts international notation with spaces, dashes or brackets (`+358 40 123 4567`).
    pub fn parse(text: &str) -> Result<Self, PhoneError> {
        let text = text.trim();
        if !text.starts_with('+') {
            return Err(PhoneError::Malformed);
        }
        let number = phonenumber::parse(None, text).map_err(|_| PhoneError::Malformed)?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError::Invalid);
        }
        Ok(Self(number.format().mode(phonenumber::Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone([personal])")
    }
}

impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Deserialising reads back what [`Phone::parse`] produced (stored records; API input arrives
/// as text and goes through `parse`). A value already in canonical E.164 form is taken as is:
/// re-running libphonenumber on every stored row made exports five times slower. Anything else
/// is parsed in full.
impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = crate::text::cow_str(deserializer)?;
        if is_e164(&text) {
            return Ok(Self(text.into_owned()));
        }
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `+`, a non-zero digit, and 7 to 14 more digits: E.164's shape (at most 15 digits).
fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

crate::text::string_schema!(Phone, "phone", "E.164 phone number, e.g. +358401234567");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_finnish_and_other_numbers_to_e164() {
        assert_eq!(Phone::parse("+358 40 123 4567").unwrap().as_str(), "+358401234567");
        assert_eq!(Phone::parse("+358-9-1234567").unwrap().as_str(), "+35891234567");
        assert_eq!(Phone::parse("+49 30 901820").unwrap().as_str(), "+4930901820");
    }

    #[test]
    fn refuses_national_notation_letters_and_impossible_numbers() {
        assert_eq!(Phone::parse("040 123 4567"), Err(PhoneError::Malformed));
        assert!(Phone::parse("+358 abc").is_err());
        assert!(Phone::parse("+358 1").is_err());
        assert!(Phone::parse("+999 123456789").is_err());
    }

    #[test]
    fn stored_e164_reads_back_as_is_and_other_text_is_parsed_in_full() {
        let phone: Phone = serde_json::from_str("\"+358401234567\"").unwrap();
        assert_eq!(phone.as_str(), "+358401234567");
        let spaced: Phone = serde_json::from_str("\"+358 40 123 4567\"").unwrap();
        assert_eq!(spaced.as_str(), "+358401234567", "not canonical: parsed and normalised");
        assert!(serde_json::from_str::<Phone>("\"+0123456789\"").is_err());
        assert!(serde_json::from_str::<Phone>("\"+358 abc\"").is_err());
        assert!(serde_json::from_str::<Phone>("\"0401234567\"").is_err());
    }
}
