//! Tenants (the provider's customers, each the controller of its data) and their websites.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{SiteId, TenantId};
use crate::text;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("name {0}")]
    Name(text::TextError),
    #[error("slug must be 1 to 63 lower-case letters, digits or dashes, not starting with a dash")]
    Slug,
    #[error("is not a host name (e.g. www.example.fi)")]
    Domain,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub slug: TenantSlug,
    pub created_at: Timestamp,
    #[serde(default)]
    pub settings: TenantSettings,
}

impl Tenant {
    /// A new tenant whose slug is derived from its name.
    pub fn new(name: &str, now: Timestamp) -> Result<Self, TenantError> {
        let name = text::line(name.to_string(), 200).map_err(TenantError::Name)?;
        let slug = TenantSlug::from_name(&name);
        Ok(Self { id: TenantId::new(), name, slug, created_at: now, settings: TenantSettings::default() })
    }
}

/// Settings a tenant controls. Extended by later features; unknown keys are kept out by design.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantSettings {
    /// Where notices about data-subject requests and switching go.
    #[serde(default)]
    pub notification_emails: Vec<crate::Email>,
    /// Days kept per dataset; see [`crate::subject::RetentionSettings`].
    #[serde(default)]
    pub retention: crate::subject::RetentionSettings,
}

/// A URL-safe short name of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(text: &str) -> Result<Self, TenantError> {
        let valid = !text.is_empty()
            && text.len() <= 63
            && !text.starts_with('-')
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid { Ok(Self(text.to_string())) } else { Err(TenantError::Slug) }
    }

    /// Lower-cases, folds anything else to single dashes, and falls back to `tenant`.
    pub fn from_name(name: &str) -> Self {
        let mut slug = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let slug: String = slug.trim_end_matches('-').chars().take(63).collect();
        Self(if slug.is_empty() { "tenant".to_string() } else { slug })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantSlug {
    type Error = TenantError;
    fn try_from(value: String) -> Result<Self, TenantError> {
        Self::parse(&value)
    }
}

impl From<TenantSlug> for String {
    fn from(slug: TenantSlug) -> String {
        slug.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host name such as `www.example.fi`, stored lower-case in ASCII (IDNs as punycode).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String)]
pub struct Domain(String);

impl Domain {
    pub fn parse(text: &str) -> Result<Self, TenantError> {
        let text = text.trim().trim_end_matches('.');
        if text.is_empty() || text.contains(['/', ':', '@', ' ']) {
            return Err(TenantError::Domain);
        }
        match url::Host::parse(text) {
            Ok(url::Host::Domain(ascii)) if ascii.contains('.') && ascii.len() <= 253 => Ok(Self(ascii)),
            _ => Err(TenantError::Domain),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the domain itself and its subdomains.
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == self.0 || host.ends_with(&format!(".{}", self.0))
    }
}

impl TryFrom<String> for Domain {
    type Error = TenantError;
    fn try_from(value: String) -> Result<Self, TenantError> {
        Self::parse(&value)
    }
}

impl From<Domain> for String {
    fn from(domain: Domain) -> String {
        domain.0
    }
}

/// The public key a site's tracker sends; it identifies, it does not authenticate a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct SiteKey(String);

impl SiteKey {
    /// Builds a key from 16 random bytes: `site_` and 26 base32 characters.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut bits: u128 = u128::from_be_bytes(bytes);
        let mut out = String::from("site_");
        for _ in 0..26 {
            out.push(char::from(ALPHABET[(bits & 31) as usize]));
            bits >>= 5;
        }
        Self(out)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let valid = text.len() == 31
            && text.starts_with("site_")
            && text[5..].bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
        valid.then(|| Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Site {
    pub id: SiteId,
    pub tenant_id: TenantId,
    pub domain: Domain,
    pub site_key: SiteKey,
    pub created_at: Timestamp,
    pub collection: CollectionSettings,
}

/// How the tracker collects on a site; the tenant (controller) decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CollectionSettings {
    /// No identifier is kept in the browser: the visitor id is a hash of the day's salt, the
    /// site, the address and the user agent, so a visitor is recognised for one day at most.
    pub cookieless: bool,
    /// Browsers that send Global Privacy Control or Do-Not-Track are not tracked at all.
    pub honour_gpc: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_come_from_names() {
        assert_eq!(TenantSlug::from_name("Acme Oy — Helsinki").as_str(), "acme-oy-helsinki");
        assert_eq!(TenantSlug::from_name("ÄÖ").as_str(), "tenant");
        assert!(TenantSlug::parse("-bad").is_err());
    }

    #[test]
    fn domains_are_hosts_and_cover_subdomains() {
        let domain = Domain::parse("Example.FI").unwrap();
        assert_eq!(domain.as_str(), "example.fi");
        assert!(domain.covers("www.example.fi"));
        assert!(!domain.covers("badexample.fi"));
        assert_eq!(Domain::parse("exämple.fi").unwrap().as_str(), "xn--exmple-cua.fi");
        for bad in ["", "localhost", "https://example.fi", "exa mple.fi", "a@b.fi"] {
            assert!(Domain::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn site_keys_are_well_formed() {
        let key = SiteKey::from_random([7; 16]);
        assert!(SiteKey::parse(key.as_str()).is_some());
        assert!(SiteKey::parse("site_short").is_none());
    }
}
