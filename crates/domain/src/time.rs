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
        if let Some(utc) = parse_utc(text.as_bytes()) {
            return Self::checked(utc);
        }
        let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| TimestampError::Malformed)?;
        Self::checked(parsed)
    }

    fn checked(parsed: OffsetDateTime) -> Result<Self, TimestampError> {
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
        let mut buffer = [0; RFC3339_MAX];
        let length = self.write_rfc3339(&mut buffer);
        String::from_utf8_lossy(&buffer[..length]).into_owned()
    }

    /// Writes [`Timestamp::to_rfc3339`]'s text into `out` and says how many bytes it took,
    /// without allocating: exports write millions of these.
    pub fn write_rfc3339(&self, out: &mut [u8; RFC3339_MAX]) -> usize {
        let (year, month, day) = self.0.to_calendar_date();
        let (hour, minute, second, nanos) = self.0.to_hms_nano();
        let year = u32::try_from(year).unwrap_or(0) % 10_000;
        digits(&mut out[0..4], year);
        out[4] = b'-';
        digits(&mut out[5..7], u32::from(u8::from(month)));
        out[7] = b'-';
        digits(&mut out[8..10], u32::from(day));
        out[10] = b'T';
        digits(&mut out[11..13], u32::from(hour));
        out[13] = b':';
        digits(&mut out[14..16], u32::from(minute));
        out[16] = b':';
        digits(&mut out[17..19], u32::from(second));
        let mut end = 19;
        if nanos != 0 {
            out[19] = b'.';
            digits(&mut out[20..29], nanos);
            end = 29;
            while out[end - 1] == b'0' {
                end -= 1;
            }
        }
        out[end] = b'Z';
        end + 1
    }
}

/// The longest text [`Timestamp::write_rfc3339`] writes: nine fraction digits.
pub const RFC3339_MAX: usize = 30;

/// `value`'s last `out.len()` decimal digits, zero-padded.
fn digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The form this program writes (`2026-11-22T10:15:00.123456Z`) read without the general RFC 3339
/// parser; `None` for anything else (other offsets, lower-case letters, leap seconds, bad dates),
/// which the general parser then judges.
fn parse_utc(text: &[u8]) -> Option<OffsetDateTime> {
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        part.iter().try_fold(0_u32, |n, b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if text.len() < 20 || text.last() != Some(&b'Z') || separators.iter().any(|(i, c)| text[*i] != *c) {
        return None;
    }
    let nanos = match &text[19..text.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            let value = number(20..text.len() - 1)?;
            value * 10_u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let day = u8::try_from(number(8..10)?).ok()?;
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let time = time::Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, time).assume_utc())
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buffer = [0; RFC3339_MAX];
        let length = self.write_rfc3339(&mut buffer);
        f.write_str(std::str::from_utf8(&buffer[..length]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buffer = [0; RFC3339_MAX];
        let length = self.write_rfc3339(&mut buffer);
        serializer.serialize_str(std::str::from_utf8(&buffer[..length]).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = crate::text::cow_str(deserializer)?;
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

    /// The fast text paths against the `time` crate's general RFC 3339 formatter and parser.
    #[test]
    fn fast_text_agrees_with_the_general_rfc3339_code_everywhere() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let last = Timestamp::parse("9999-12-31T23:59:59.999999Z").unwrap().unix_micros();
        let mut samples: Vec<i64> = vec![0, 1, 10, 999_999, 1_000_000, last, 951_782_400_000_000];
        samples.extend((0..20_000).map(|_| (next() % (last as u64)) as i64));
        // Whole seconds and round fractions, whose trailing zeros are dropped.
        samples.extend((0..2_000).map(|i| ((next() % (last as u64)) as i64 / 1_000_000) * 1_000_000 + i * 10_000));
        for micros in samples {
            let at = Timestamp::from_unix_micros(micros).unwrap();
            let general = at.as_datetime().format(&Rfc3339).unwrap();
            assert_eq!(at.to_rfc3339(), general, "{micros}");
            assert_eq!(at.to_string(), general);
            assert_eq!(serde_json::to_string(&at).unwrap(), format!("\"{general}\""));
            assert_eq!(parse_utc(general.as_bytes()), Some(at.as_datetime()), "{general}");
            assert_eq!(Timestamp::parse(&general), Ok(at));
        }
        for (text, expected) in [
            ("2026-11-22T10:00:00.1Z", "2026-11-22T10:00:00.1Z"),
            ("2026-11-22T10:00:00.123456789Z", "2026-11-22T10:00:00.123456Z"),
            ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),
            ("2026-11-22t10:00:00z", "2026-11-22T10:00:00Z"),
            ("2026-11-22T10:00:00+00:00", "2026-11-22T10:00:00Z"),
        ] {
            assert_eq!(Timestamp::parse(text).map(|at| at.to_string()), Ok(expected.to_string()), "{text}");
        }
        for bad in [
            "2026-02-29T10:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:60:00Z",
            "2026-11-22T10:00:00.Z",
            "2026-11-22T10:00:0aZ",
            "2026-1-22T10:00:00Z",
            "+026-11-22T10:00:00Z",
        ] {
            assert_eq!(parse_utc(bad.as_bytes()), None, "{bad}");
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        // More than nine fraction digits: left to the general parser, which takes them.
        assert_eq!(parse_utc(b"2026-11-22T10:00:00.1234567890Z"), None);
        assert_eq!(
            Timestamp::parse("2026-11-22T10:00:00.1234567890Z").unwrap().to_string(),
            "2026-11-22T10:00:00.123456Z"
        );
        assert_eq!(Timestamp::parse("1969-12-31T23:59:59Z"), Err(TimestampError::OutOfRange));
    }

    #[test]
    fn refuses_dates_without_offset_and_garbage() {
        assert_eq!(Timestamp::parse("2026-11-22 10:00:00"), Err(TimestampError::Malformed));
        assert_eq!(Timestamp::parse("2026-11-22T10:00:00"), Err(TimestampError::Malformed));
        assert_eq!(Timestamp::parse("yesterday"), Err(TimestampError::Malformed));
        assert_eq!(Timestamp::parse("2026-13-01T00:00:00Z"), Err(TimestampError::Malformed));
    }
}
