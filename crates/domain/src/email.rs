//! Email addresses: an RFC 5322 addr-spec within RFC 5321 lengths, internationalised domains and
//! local parts allowed (RFC 6531), no display names, no comments.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is not an email address (RFC 5322 addr-spec such as name@example.com)")]
    Malformed,
    #[error("is longer than RFC 5321 allows (64 octets local part, 254 in all)")]
    TooLong,
    #[error("has a domain that is not a valid host name")]
    BadDomain,
}

/// A valid email address, domain lower-cased.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    /// Text read back from an authenticated stored body (see [`crate::trust`]).
    fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn parse(text: &str) -> Result<Self, EmailError> {
        let text = text.trim();
        let (local, domain) = text.rsplit_once('@').ok_or(EmailError::Malformed)?;
        if local.len() > 64 || domain.len() > 253 || text.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let options = email_address::Options::default().with_required_tld().without_display_text();
        email_address::EmailAddress::parse_with_options(text, options).map_err(|_| EmailError::Malformed)?;
        // The host must also survive IDNA processing, so that lookups can use its ASCII form.
        let ascii = ascii_domain(domain).ok_or(EmailError::BadDomain)?;
        if ascii.len() > 253 || ascii.split('.').any(|label| label.is_empty() || label.len() > 63) {
            return Err(EmailError::BadDomain);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, domain)| domain).unwrap_or_default()
    }

    /// The form used for exact lookups: lower-cased, domain in its ASCII (punycode) form, so that
    /// `Anna@Exämple.fi` and `anna@xn--exmple-cua.fi` find the same person.
    pub fn lookup_key(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let domain = ascii_domain(domain).unwrap_or_else(|| domain.to_string());
        format!("{}@{domain}", local.to_lowercase())
    }
}

fn ascii_domain(domain: &str) -> Option<String> {
    if domain.starts_with('[') {
        return None;
    }
    match url::Host::parse(domain).ok()? {
        url::Host::Domain(ascii) => Some(ascii),
        _ => None,
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    // Personal data: never printed in debug output or logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email([personal])")
    }
}

impl FromStr for Email {
    type Err = EmailError;
    fn from_str(text: &str) -> Result<Self, EmailError> {
        Self::parse(text)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = crate::text::cow_str(deserializer)?;
        if crate::trust::is_trusted() {
            return Ok(Self::from_trusted(text.into_owned()));
        }
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

crate::text::string_schema!(Email, "email", "RFC 5322 addr-spec within RFC 5321 lengths");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plus_addressing_idn_and_unicode_local_parts() {
        for ok in [
            "anna.virtanen+leads@example.fi",
            "matti@exämple.fi",
            "matti@xn--exmple-cua.fi",
            "用户@例子.广告",
            "o'brien@example.ie",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn refuses_what_is_not_an_addr_spec() {
        for bad in [
            "",
            "plainaddress",
            "@example.com",
            "anna@",
            "anna@@example.com",
            "Anna <anna@example.com>",
            "anna@example",
            "anna..virtanen@example.com",
            "anna@exa mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn enforces_rfc_5321_lengths() {
        let local = "a".repeat(65);
        assert_eq!(Email::parse(&format!("{local}@example.com")), Err(EmailError::TooLong));
        let long_domain = format!("{}.com", vec!["b".repeat(60); 5].join("."));
        assert_eq!(Email::parse(&format!("anna@{long_domain}")), Err(EmailError::TooLong));
    }

    #[test]
    fn lookup_key_folds_case_and_idn_forms() {
        let unicode = Email::parse("Anna@Exämple.FI").unwrap();
        let ascii = Email::parse("anna@xn--exmple-cua.fi").unwrap();
        assert_eq!(unicode.as_str(), "Anna@exämple.fi");
        assert_eq!(unicode.lookup_key(), ascii.lookup_key());
    }

    #[test]
    fn debug_output_hides_the_address() {
        let email = Email::parse("secret@example.com").unwrap();
        assert!(!format!("{email:?}").contains("secret"));
    }
}
