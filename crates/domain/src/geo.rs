//! Countries (ISO 3166-1 alpha-2 from the `celes` dataset) and coarse locations.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::text;
use crate::validation::ValidationErrors;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not an ISO 3166-1 alpha-2 country code (e.g. FI)")]
pub struct CountryError;

/// An assigned ISO 3166-1 alpha-2 code, upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(text: &str) -> Result<Self, CountryError> {
        let text = text.trim();
        if text.len() != 2 || !text.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(CountryError);
        }
        let upper = text.to_ascii_uppercase();
        celes::Country::from_alpha2(&upper).map_err(|_| CountryError)?;
        let bytes = upper.as_bytes();
        Ok(Self([bytes[0], bytes[1]]))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("ZZ")
    }

    /// The country's English short name, for people.
    pub fn name(&self) -> String {
        celes::Country::from_alpha2(self.as_str()).map(|c| c.long_name.to_string()).unwrap_or_default()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = text::cow_str(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

text::string_schema!(CountryCode, "iso3166-1-alpha-2", "ISO 3166-1 alpha-2 country code");

/// Where a visitor or lead was, as coarse as the network allows; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Location {
    pub country_code: Option<CountryCode>,
    pub region: Option<String>,
    pub city: Option<String>,
}

/// The raw form of [`Location`] as it arrives.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    pub country_code: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
}

impl LocationInput {
    pub fn validate(self) -> Result<Location, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let country_code = errors.check("country_code", self.country_code, |c| CountryCode::parse(&c));
        let region = errors.check("region", self.region, |t| text::line(t, 200));
        let city = errors.check("city", self.city, |t| text::line(t, 200));
        errors.finish(|| Location { country_code, region, city })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_assigned_codes_in_any_case() {
        assert_eq!(CountryCode::parse("FI").unwrap().as_str(), "FI");
        assert_eq!(CountryCode::parse("se").unwrap().as_str(), "SE");
        assert_eq!(CountryCode::parse("FI").unwrap().name(), "Finland");
    }

    #[test]
    fn refuses_unassigned_and_malformed_codes() {
        for bad in ["XX", "ZZ", "FIN", "F", "1A", "", "Ä1"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}
