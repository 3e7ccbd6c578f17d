//! OAuth scopes: one per dataset and action, so an integration gets exactly what it needs.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! scopes {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        /// One permission an API client may hold.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Scope {
            $(#[doc = $doc] $variant,)*
        }

        impl Scope {
            pub const ALL: &[Scope] = &[$(Scope::$variant,)*];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $(Scope::$variant => $name,)*
                }
            }

            pub fn description(&self) -> &'static str {
                match self {
                    $(Scope::$variant => $doc,)*
                }
            }
        }

        impl FromStr for Scope {
            type Err = ScopeError;
            fn from_str(text: &str) -> Result<Self, ScopeError> {
                match text {
                    $($name => Ok(Scope::$variant),)*
                    other => Err(ScopeError(other.to_string())),
                }
            }
        }
    };
}

scopes! {
    LeadsRead => "leads:read": "read leads",
    LeadsWrite => "leads:write": "create, change and delete leads",
    OrganizationsRead => "organizations:read": "read organization profiles",
    OrganizationsWrite => "organizations:write": "create, change and delete organization profiles",
    VisitorsRead => "visitors:read": "read visitor profiles and journeys",
    ReportsRead => "reports:read": "read analytical reports",
    Export => "export": "export datasets in bulk",
    DataSubjects => "data-subjects": "find people and handle data-subject requests",
    AuditRead => "audit:read": "read and verify the audit log",
    Admin => "admin": "manage retention, clients and switching",
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}")]
pub struct ScopeError(String);

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = crate::text::cow_str(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of scopes, written as the space-separated list of RFC 6749 §3.3.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub fn all() -> Self {
        Self(Scope::ALL.iter().copied().collect())
    }

    /// Parses a list separated by spaces or commas; empty means none.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        text.split([' ', ','])
            .filter(|part| !part.is_empty())
            .map(str::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_rfc_6749_list() {
        let scopes = Scopes::parse("leads:read organizations:write,export").unwrap();
        assert_eq!(scopes.to_string(), "leads:read organizations:write export");
        assert_eq!(Scopes::parse(&scopes.to_string()).unwrap(), scopes);
    }

    #[test]
    fn refuses_unknown_scopes() {
        assert!(Scopes::parse("leads:read root").is_err());
    }
}
