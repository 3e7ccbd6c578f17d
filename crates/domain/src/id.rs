//! Typed UUIDv7 identifiers (RFC 9562): time-ordered, lowercase, one type per entity so that a
//! lead id can never be passed where a tenant id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not an identifier of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is not a UUID")]
    Malformed,
    #[error("is not a version 7 UUID (RFC 9562)")]
    NotVersion7,
}

/// Parses a UUID and insists on version 7, the only kind Steward issues.
pub fn parse_v7(text: &str) -> Result<Uuid, IdError> {
    let uuid = Uuid::try_parse(text.trim()).map_err(|_| IdError::Malformed)?;
    if uuid.get_version_num() == 7 { Ok(uuid) } else { Err(IdError::NotVersion7) }
}

/// A fresh, process-monotonic UUIDv7.
pub fn new_v7() -> Uuid {
    Uuid::now_v7()
}

/// A UUIDv7 for a given millisecond and 10 random bytes: deterministic demo data and imports.
pub fn v7_from_parts(unix_millis: u64, random: [u8; 10]) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid()
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered identifier.
            pub fn new() -> Self {
                Self(new_v7())
            }

            pub fn parse(text: &str) -> Result<Self, IdError> {
                parse_v7(text).map(Self)
            }

            /// Wraps a UUID read back from storage, which only ever holds ids we issued or imported
            /// after `parse`.
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            pub fn into_uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.as_hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0.as_hyphenated())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = crate::text::cow_str(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                        utoipa::openapi::schema::KnownFormat::Uuid,
                    )))
                    .description(Some("UUIDv7 (RFC 9562), lowercase"))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

define_id!(
    /// A tenant: one customer of the provider, the controller of its data.
    TenantId
);
define_id!(
    /// A website of a tenant.
    SiteId
);
define_id!(
    /// A lead captured by a bot, a form or the API.
    LeadId
);
define_id!(
    /// An organization profile.
    OrganizationId
);
define_id!(
    /// A pseudonymous visitor profile.
    VisitorId
);
define_id!(
    /// One visit (session) of a visitor.
    SessionId
);
define_id!(
    /// One event of a journey.
    EventId
);
define_id!(
    /// An OAuth 2.0 client of a tenant.
    ClientId
);
define_id!(
    /// A console user of a tenant.
    UserId
);
define_id!(
    /// A data-subject request.
    RequestId
);
define_id!(
    /// A legal hold.
    HoldId
);
define_id!(
    /// One identifier of an erased person in the erasure ledger.
    LedgerId
);
define_id!(
    /// A Data Act switching request (Regulation (EU) 2023/2854, Chapter VI).
    SwitchingId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_version_7_and_time_ordered() {
        let first = LeadId::new();
        let second = LeadId::new();
        assert_eq!(first.as_uuid().get_version_num(), 7);
        assert!(first < second, "ids issued later must sort later");
    }

    #[test]
    fn parsing_refuses_other_uuid_versions_and_garbage() {
        assert_eq!(LeadId::parse("not-a-uuid"), Err(IdError::Malformed));
        assert_eq!(LeadId::parse("67e55044-10b1-426f-9247-bb680e5fe0c8"), Err(IdError::NotVersion7));
        let id = LeadId::new();
        assert_eq!(LeadId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn ids_print_lowercase_hyphenated() {
        let uuid = v7_from_parts(1_700_000_000_000, [0xAB; 10]);
        let text = TenantId::from_uuid(uuid).to_string();
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.len(), 36);
    }
}
