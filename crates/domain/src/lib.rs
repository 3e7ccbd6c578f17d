//! Steward's domain: values that cannot hold bad data, and the entities built from them.
//!
//! Everything here is parsed once at the edge (HTTP, CLI, collection, import) and trusted after.
//! The crate knows nothing of HTTP, SQL or async runtimes.

pub mod client;
pub mod email;
pub mod freemail;
pub mod geo;
pub mod id;
pub mod ip;
pub mod journey;
pub mod lead;
pub mod organization;
pub mod patch;
pub mod phone;
pub mod report;
pub mod scope;
pub mod subject;
pub mod switching;
pub mod tenant;
pub mod text;
pub mod time;
pub mod touch;
pub mod trust;
pub mod user;
pub mod validation;
pub mod visitor;
pub mod weburl;

pub use client::{AccessToken, ApiClient, SecretHash};
pub use email::Email;
pub use geo::{CountryCode, Location};
pub use id::{ClientId, EventId, LeadId, OrganizationId, SessionId, SiteId, TenantId, UserId, VisitorId};
pub use ip::{IpNetwork, MaskPolicy};
pub use lead::{Lead, LeadInput};
pub use organization::{Organization, OrganizationInput};
pub use phone::Phone;
pub use report::{Granularity, ReportName, ReportRow};
pub use scope::{Scope, Scopes};
pub use tenant::{Site, SiteKey, Tenant, TenantSlug};
pub use time::Timestamp;
pub use user::{Password, Permission, Role, User};
pub use validation::{FieldError, ValidationErrors};
pub use visitor::{Event, EventType, Journey, Session, VisitorProfile};
pub use weburl::WebUrl;
