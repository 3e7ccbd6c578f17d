//! RFC 3339 timestamps, always UTC, printed with `Z`, at microsecond precision so that every
//! backend stores and returns exactly the same instant.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("is not an RFC 3339 date-time with an offset (e.g. 2026-11-22T10:15:00Z)")]
    Malformed,
    #[error("is outside the supported range (years 1970 to 9999)")]
    OutOfRange,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// Parses RFC 3339 with any offset and converts it to UTC.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| TimestampError::Malformed)?;
        if parsed.year() < 1970 {
            return Err(TimestampError::OutOfRange);
        }
        Ok(Self::from_datetime(parsed))
    }

    /// Normalises to UTC and truncates to whole microseconds.
    pub fn from_datetime(value: OffsetDateTime) -> Self {
        let utc = value.to_offset(UtcOffset::UTC);
        let micros = utc.nanosecond() / 1_000 * 1_000;
        Self(utc.replace_nanosecond(micros).unwrap_or(utc))
    }

    pub fn from_unix_micros(micros: i64) -> Result<Self, TimestampError> {
        let nanos = i128::from(micros) * 1_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).map(Self).map_err(|_| TimestampError::OutOfRange)
    }

    pub fn unix_micros(&self) -> i64 {
        i64::try_from(self.0.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
    }

    pub fn unix_millis(&self) -> u64 {
        u64::try_from(self.0.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    }

    pub fn as_datetime(&self) -> OffsetDateTime {
        self.0
    }

    pub fn checked_add(&self, duration: Duration) -> Option<Self> {
        self.0.checked_add(duration).map(Self)
    }

    pub fn checked_sub(&self, duration: Duration) -> Option<Self> {
        self.0.checked_sub(duration).map(Self)
    }

    /// RFC 3339 text with `Z` and only as many fraction digits as needed.
    pub fn to_rfc3339(&self) -> String {
        self.0.format(&Rfc3339).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::DateTime,
            )))
            .description(Some("RFC 3339 date-time in UTC with `Z`"))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_utc_with_z() {
        let ts = Timestamp::parse("2026-11-22T12:00:00+02:00").unwrap();
        assert_eq!(ts.to_string(), "2026-11-22T10:00:00Z");
    }

    #[test]
    fn precision_is_microseconds() {
        let ts = Timestamp::parse("2026-11-22T10:00:00.123456789Z").unwrap();
        assert_eq!(ts.to_string(), "2026-11-22T10:00:00.123456Z");
        assert_eq!(Timestamp::from_unix_micros(ts.unix_micros()).unwrap(), ts);
    }

    #[test]
    fn refuses_dates_without_offset_and_garbage() {
        assert_eq!(Timestamp::parse("2026-11-22 10:00:00"), Err(TimestampError::Malformed));
        assert_eq!(Timestamp::parse("2026-11-22T10:00:00"), Err(TimestampError::Malformed));
        assert_eq!(Timestamp::parse("yesterday"), Err(TimestampError::Malformed));
        assert_eq!(Timestamp::parse("2026-13-01T00:00:00Z"), Err(TimestampError::Malformed));
    }
}
