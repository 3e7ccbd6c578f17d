//! Web addresses: absolute `http`/`https` URLs with a host, at most 2,048 characters.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const MAX_URL_LEN: usize = 2_048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is not an absolute URL")]
    Malformed,
    #[error("must use http or https")]
    Scheme,
    #[error("is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("must not carry a user name or password")]
    Credentials,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WebUrl(String);

impl WebUrl {
    /// Text read back from an authenticated stored body (see [`crate::trust`]).
    fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let text = text.trim();
        if text.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let url = url::Url::parse(text).map_err(|_| UrlError::Malformed)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::Scheme);
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::Malformed);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        let normalised: String = url.into();
        if normalised.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host in lower case (ASCII form for IDNs).
    pub fn host(&self) -> String {
        url::Url::parse(&self.0).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default()
    }

    /// The URL without query and fragment, which is where personal data in URLs usually hides.
    pub fn without_query(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                url.set_query(None);
                url.set_fragment(None);
                url.into()
            }
            Err(_) => self.0.clone(),
        }
    }
}

impl fmt::Display for WebUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WebUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebUrl({})", self.without_query())
    }
}

impl Serialize for WebUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WebUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = crate::text::cow_str(deserializer)?;
        if crate::trust::is_trusted() {
            return Ok(Self::from_trusted(text.into_owned()));
        }
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

crate::text::string_schema!(WebUrl, "uri", "absolute http or https URL");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_web_urls_and_normalises_them() {
        let url = WebUrl::parse("HTTPS://Example.FI/hinnasto?utm_source=google").unwrap();
        assert_eq!(url.as_str(), "https://example.fi/hinnasto?utm_source=google");
        assert_eq!(url.host(), "example.fi");
        assert_eq!(url.without_query(), "https://example.fi/hinnasto");
    }

    #[test]
    fn refuses_other_schemes_relative_urls_and_credentials() {
        assert_eq!(WebUrl::parse("javascript:alert(1)"), Err(UrlError::Scheme));
        assert_eq!(WebUrl::parse("/relative/path"), Err(UrlError::Malformed));
        assert_eq!(WebUrl::parse("https://user:pw@example.com/"), Err(UrlError::Credentials));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(WebUrl::parse(&long), Err(UrlError::TooLong));
    }
}
