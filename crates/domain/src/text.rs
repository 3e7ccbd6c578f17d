//! Free text from outside: trimmed, bounded, without control characters; plus the schema helper
//! the string newtypes share.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("is longer than {0} characters")]
    TooLong(usize),
    #[error("contains control characters")]
    Control,
}

/// Trims and checks a single-line text of at most `max` characters; empty text is refused.
pub fn line(text: String, max: usize) -> Result<String, TextError> {
    bounded(text, max, false)
}

/// Like [`line`] but tabs and line breaks are kept and empty text is allowed (answers, notes).
pub fn multiline(text: String, max: usize) -> Result<String, TextError> {
    bounded(text, max, true)
}

fn bounded(text: String, max: usize, multiline: bool) -> Result<String, TextError> {
    let trimmed = text.trim();
    if trimmed.is_empty() && !multiline {
        return Err(TextError::Empty);
    }
    if trimmed.chars().count() > max {
        return Err(TextError::TooLong(max));
    }
    let allowed = |c: char| multiline && matches!(c, '\t' | '\n' | '\r');
    if trimmed.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(TextError::Control);
    }
    Ok(if trimmed.len() == text.len() { text } else { trimmed.to_string() })
}

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 64;
pub const MAX_CUSTOM_FIELDS: usize = 100;

/// `None` for absent or blank text: forms send `""` for fields left empty.
pub fn nonblank(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

/// Tags: each a short line, duplicates dropped, order kept.
pub fn tags(tags: Vec<String>) -> Result<Vec<String>, String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("holds more than {MAX_TAGS} tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (index, tag) in tags.into_iter().enumerate() {
        let tag = line(tag, MAX_TAG_LEN).map_err(|e| format!("tag {index} {e}"))?;
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// Custom fields: string keys and values, at most [`MAX_CUSTOM_FIELDS`] entries.
pub fn custom_fields(fields: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    if fields.len() > MAX_CUSTOM_FIELDS {
        return Err(format!("holds more than {MAX_CUSTOM_FIELDS} entries"));
    }
    let mut out = BTreeMap::new();
    for (key, value) in fields {
        let clean_key = line(key.clone(), 64).map_err(|e| format!("key {key:?} {e}"))?;
        let value = multiline(value, 2_000).map_err(|e| format!("value of {key:?} {e}"))?;
        out.insert(clean_key, value);
    }
    Ok(out)
}

/// Implements `utoipa::ToSchema` for a string newtype with a format and a description.
macro_rules! string_schema {
    ($type:ty, $format:literal, $description:literal) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::schema::SchemaFormat::Custom($format.to_string())))
                    .description(Some($description))
                    .into()
            }
        }

        impl utoipa::ToSchema for $type {}
    };
}
pub(crate) use string_schema;

/// A string from any deserialiser, borrowed from the input when it lends one (a JSON string
/// without escapes) instead of copied: serde's own `Cow<str>` always copies. Stored bodies hold
/// millions of ids and timestamps that are parsed and never kept as text.
pub(crate) fn cow_str<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<std::borrow::Cow<'de, str>, D::Error> {
    struct Text;
    impl<'de> serde::de::Visitor<'de> for Text {
        type Value = std::borrow::Cow<'de, str>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
            Ok(std::borrow::Cow::Borrowed(text))
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(std::borrow::Cow::Owned(text.to_owned()))
        }

        fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
            Ok(std::borrow::Cow::Owned(text))
        }
    }
    deserializer.deserialize_str(Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_trims_and_bounds() {
        assert_eq!(line("  Anna ".into(), 10).unwrap(), "Anna");
        assert_eq!(line("   ".into(), 10), Err(TextError::Empty));
        assert_eq!(line("abcdef".into(), 5), Err(TextError::TooLong(5)));
        assert_eq!(line("a\u{0}b".into(), 5), Err(TextError::Control));
        assert_eq!(line("a\nb".into(), 5), Err(TextError::Control));
        assert_eq!(multiline("a\nb".into(), 5).unwrap(), "a\nb");
        assert_eq!(multiline("".into(), 5).unwrap(), "");
    }

    #[test]
    fn emoji_and_rtl_count_as_characters_not_bytes() {
        assert!(line("😀😀😀".into(), 3).is_ok());
        assert!(line("שלום".into(), 4).is_ok());
    }

    #[test]
    fn tags_are_deduplicated_in_order() {
        let out = tags(vec!["b".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(out, vec!["b", "a"]);
    }
}
