//! Data-subject rights (GDPR Art. 15 to 21): the requests a controller answers, their deadlines
//! (Art. 12(3)), the legal holds that keep records from retention, and retention policies.
//!
//! Requests keep the person's identifiers only while they are open: once answered, only keyed
//! hashes (for finding earlier requests) and a masked hint remain, so an answered rectification or
//! erasure does not itself keep the value it removed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

use crate::email::Email;
use crate::id::VisitorId;
use crate::phone::Phone;
use crate::text::{self, nonblank};
use crate::time::Timestamp;
use crate::validation::ValidationErrors;

pub use crate::id::{HoldId, LedgerId, RequestId};

macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(text: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|value| value.as_str() == text).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|value| value.as_str()).collect();
                    format!("must be one of {}", names.join(", "))
                })
            }
        }
    };
}
pub(crate) use named;

named!(
    /// What the person asked for.
    RequestKind {
        Access => "access",
        Rectification => "rectification",
        Erasure => "erasure",
        Restriction => "restriction",
        Objection => "objection",
    }
);

impl RequestKind {
    /// The GDPR article the request rests on.
    pub fn article(&self) -> &'static str {
        match self {
            Self::Access => "Art. 15 and 20",
            Self::Rectification => "Art. 16",
            Self::Erasure => "Art. 17",
            Self::Restriction => "Art. 18",
            Self::Objection => "Art. 21",
        }
    }
}

named!(
    /// Where a request stands: `pending` until the controller acts, then `completed` or `rejected`.
    RequestStatus {
        Pending => "pending",
        Completed => "completed",
        Rejected => "rejected",
    }
);

named!(
    /// Who received the request: the controller itself, or the processor (the operator), who
    /// forwards it and never answers it.
    RequestOrigin {
        Controller => "controller",
        Processor => "processor",
    }
);

/// What identifies the person. At least one is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subject {
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub contact_id: Option<String>,
    pub visitor_id: Option<VisitorId>,
}

impl Subject {
    /// A masked reminder of who this was (`a***@example.com`), kept after the identifiers go.
    pub fn hint(&self) -> String {
        let mut parts = Vec::new();
        if let Some(email) = &self.email {
            let (local, domain) = email.as_str().rsplit_once('@').unwrap_or(("", email.as_str()));
            let first: String = local.chars().take(1).collect();
            parts.push(format!("{first}***@{domain}"));
        }
        if let Some(phone) = &self.phone {
            let digits = phone.as_str();
            let tail: String = digits.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
            let head: String = digits.chars().take(4).collect();
            parts.push(format!("{head}***{tail}"));
        }
        if self.contact_id.is_some() {
            parts.push("contact id".into());
        }
        if let Some(visitor) = &self.visitor_id {
            parts.push(format!("visitor {}…", &visitor.to_string()[..8]));
        }
        parts.join(", ")
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectInput {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub contact_id: Option<String>,
    pub visitor_id: Option<String>,
}

impl SubjectInput {
    pub fn validate(self) -> Result<Subject, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let email = errors.check("email", nonblank(self.email), |t| Email::parse(&t));
        let phone = errors.check("phone", nonblank(self.phone), |t| Phone::parse(&t));
        let contact_id = errors.check("contact_id", nonblank(self.contact_id), |t| text::line(t, 128));
        let visitor_id = errors.check("visitor_id", nonblank(self.visitor_id), |t| VisitorId::parse(&t));
        let subject = Subject { email, phone, contact_id, visitor_id };
        if errors.is_empty() && subject == Subject::default() {
            errors.add("subject", "give at least one of email, phone, contact_id, visitor_id");
        }
        errors.finish(|| subject)
    }
}

/// New values for a person's contact fields (Art. 16); absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rectification {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
}

impl Rectification {
    /// The names of the fields it changes.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        let named: [(&'static str, bool); 6] = [
            ("first_name", self.first_name.is_some()),
            ("last_name", self.last_name.is_some()),
            ("email", self.email.is_some()),
            ("phone", self.phone.is_some()),
            ("company_name", self.company_name.is_some()),
            ("job_title", self.job_title.is_some()),
        ];
        for (name, set) in named {
            if set {
                fields.push(name);
            }
        }
        fields
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RectificationInput {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub job_title: Option<String>,
}

impl RectificationInput {
    pub fn validate(self) -> Result<Rectification, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let first_name = errors.check("first_name", nonblank(self.first_name), |t| text::line(t, 200));
        let last_name = errors.check("last_name", nonblank(self.last_name), |t| text::line(t, 200));
        let email = errors.check("email", nonblank(self.email), |t| Email::parse(&t));
        let phone = errors.check("phone", nonblank(self.phone), |t| Phone::parse(&t));
        let company_name = errors.check("company_name", nonblank(self.company_name), |t| text::line(t, 200));
        let job_title = errors.check("job_title", nonblank(self.job_title), |t| text::line(t, 200));
        let changes = Rectification { first_name, last_name, email, phone, company_name, job_title };
        if errors.is_empty() && changes.fields().is_empty() {
            errors.add("changes", "give at least one field to correct");
        }
        errors.finish(|| changes)
    }
}

/// The one extension Art. 12(3) allows: up to two more months, with the reason told to the
/// person within the first month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Extension {
    pub months: u8,
    pub reason: String,
    pub at: Timestamp,
}

/// One step in a request's life: who did what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestStep {
    pub at: Timestamp,
    /// `received`, `forwarded`, `extended`, `completed`, `rejected`.
    pub action: String,
    /// `user`, `client`, `operator` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An access request's archive in the file store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArchiveFile {
    /// Where the file store keeps it; stored, left out of answers ([`SubjectRequest::public`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(ignore)]
    pub key: String,
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// After this the file is gone; ask again for a new one.
    pub expires_at: Timestamp,
}

/// What answering the request did, per store: records found, changed or removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompletionReport {
    /// Per store (`leads`, `visitor_profiles`, `sessions`, `events`, `organization_contacts`,
    /// `subject_requests`, `audit_entries`, `erasure_ledger`): how many records it touched.
    pub counts: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Keyed hashes (hex) of the identifiers a request was about, so that later lookups of the same
/// person find it without the request keeping the values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectKeys {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub contact_id: Option<String>,
    pub visitor_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubjectRequest {
    pub id: RequestId,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub origin: RequestOrigin,
    /// When the person's request reached the controller (or the processor).
    pub received_at: Timestamp,
    /// One month after receipt, or later by an extension.
    pub due_at: Timestamp,
    pub extension: Option<Extension>,
    /// The identifiers, while the request is open; gone once it is answered.
    pub subject: Option<Subject>,
    /// A masked reminder of who asked.
    pub subject_hint: String,
    /// Stored with the request; answers leave it out ([`SubjectRequest::public`]).
    #[serde(default, skip_serializing_if = "SubjectKeys::is_empty")]
    #[schema(ignore)]
    pub subject_keys: SubjectKeys,
    /// The corrections of a rectification.
    pub changes: Option<Rectification>,
    /// The controller's reference or notes (a ticket number); not for personal data.
    pub note: Option<String>,
    pub history: Vec<RequestStep>,
    pub report: Option<CompletionReport>,
    pub completed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl SubjectKeys {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Most a request's reason, rejection or note may say.
pub const MAX_NOTE: usize = 2_000;

impl SubjectRequest {
    pub fn new(
        kind: RequestKind,
        origin: RequestOrigin,
        subject: Subject,
        changes: Option<Rectification>,
        received_at: Timestamp,
        now: Timestamp,
    ) -> Self {
        Self {
            id: RequestId::new(),
            kind,
            status: RequestStatus::Pending,
            origin,
            received_at,
            due_at: add_months(received_at, 1),
            extension: None,
            subject_hint: subject.hint(),
            subject: Some(subject),
            subject_keys: SubjectKeys::default(),
            changes,
            note: None,
            history: Vec::new(),
            report: None,
            completed_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn step(&mut self, at: Timestamp, action: &str, actor: (&str, Option<String>), note: Option<String>) {
        self.history.push(RequestStep {
            at,
            action: action.to_string(),
            actor_kind: actor.0.to_string(),
            actor_id: actor.1,
            note,
        });
        self.updated_at = at;
    }

    /// Extends the deadline once, by one or two months, while the first month runs.
    pub fn extend(&mut self, months: u8, reason: String, now: Timestamp) -> Result<(), String> {
        if self.status != RequestStatus::Pending {
            return Err(format!("the request is {} already", self.status.as_str()));
        }
        if self.extension.is_some() {
            return Err("the deadline was extended once already; Art. 12(3) allows one extension".into());
        }
        if !(1..=2).contains(&months) {
            return Err("an extension is one or two months".into());
        }
        let first_month_ends = add_months(self.received_at, 1);
        if now > first_month_ends {
            return Err(format!(
                "an extension must be given within one month of receipt, by {first_month_ends}; the request is overdue"
            ));
        }
        self.due_at = add_months(self.received_at, 1 + u32::from(months));
        self.extension = Some(Extension { months, reason, at: now });
        Ok(())
    }

    /// Answered: the identifiers go, the report stays.
    pub fn complete(&mut self, report: CompletionReport, now: Timestamp) {
        self.status = RequestStatus::Completed;
        self.report = Some(report);
        self.completed_at = Some(now);
        self.subject = None;
        self.updated_at = now;
    }

    pub fn reject(&mut self, now: Timestamp) {
        self.status = RequestStatus::Rejected;
        self.completed_at = Some(now);
        self.subject = None;
        self.updated_at = now;
    }

    /// The request as answers show it: without its lookup keys.
    pub fn public(mut self) -> Self {
        self.subject_keys = SubjectKeys::default();
        if let Some(archive) = self.report.as_mut().and_then(|report| report.archive.as_mut()) {
            archive.key.clear();
        }
        self
    }

    /// Open past its deadline.
    pub fn overdue(&self, now: Timestamp) -> bool {
        self.status == RequestStatus::Pending && now > self.due_at
    }
}

/// The same day of the month `months` later, or the month's last day when it is shorter
/// (received 31 January, due 28 or 29 February), at the same time of day.
pub fn add_months(at: Timestamp, months: u32) -> Timestamp {
    let datetime = at.as_datetime();
    let date = datetime.date();
    let total = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months as i32;
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    let month = Month::try_from(month).unwrap_or(Month::December);
    let day = date.day().min(time::util::days_in_month(month, year));
    match Date::from_calendar_date(year, month, day) {
        Ok(due) => Timestamp::from_datetime(datetime.replace_date(due)),
        Err(_) => at,
    }
}

named!(
    /// What a legal hold keeps: the whole tenant or one record (a visitor profile holds its
    /// journeys, a lead its profile's too).
    HoldScope {
        Tenant => "tenant",
        Lead => "lead",
        VisitorProfile => "visitor_profile",
        Organization => "organization",
    }
);

/// Keeps records from retention sweeps until it is released (deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LegalHold {
    pub id: HoldId,
    pub scope: HoldScope,
    /// The held record; none for a tenant-wide hold.
    pub record_id: Option<uuid::Uuid>,
    /// Why (a case reference); not for personal data.
    pub reason: String,
    pub created_at: Timestamp,
    pub created_by: String,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalHoldInput {
    /// `tenant` (every record), or the one record's kind.
    #[schema(value_type = HoldScope, required)]
    pub scope: Option<String>,
    /// The record held (UUIDv7): required for a hold on one record, refused for `tenant`.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub record_id: Option<String>,
    /// Why (a case reference); one line of at most 2,000 characters, not for personal data.
    #[schema(value_type = String, required, max_length = 2000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub reason: Option<String>,
}

impl LegalHoldInput {
    pub fn validate(self, created_by: String, now: Timestamp) -> Result<LegalHold, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let scope = match self.scope {
            Some(scope) => errors.check("scope", Some(scope), |t| HoldScope::parse(&t)),
            None => {
                errors.add("scope", "is required: tenant, lead, visitor_profile or organization");
                None
            }
        };
        let record_id = errors.check("record_id", nonblank(self.record_id), |t| crate::id::parse_v7(&t));
        match (scope, record_id) {
            (Some(HoldScope::Tenant), Some(_)) => errors.add("record_id", "a tenant-wide hold names no record"),
            (Some(scope), None) if scope != HoldScope::Tenant && errors.is_empty() => {
                errors.add("record_id", "is required for a hold on one record")
            }
            _ => {}
        }
        let reason = match nonblank(self.reason) {
            Some(reason) => errors.check("reason", Some(reason), |t| text::line(t, MAX_NOTE)),
            None => {
                errors.add("reason", "is required: say why the records must be kept");
                None
            }
        };
        errors.finish(|| LegalHold {
            id: HoldId::new(),
            scope: scope.unwrap_or(HoldScope::Tenant),
            record_id,
            reason: reason.unwrap_or_default(),
            created_at: now,
            created_by,
        })
    }
}

named!(
    /// Why an identifier is in the ledger: erased (everything later is dropped) or objected
    /// (tracking stops; a lead the person gives again is kept).
    LedgerReason {
        Erasure => "erasure",
        Objection => "objection",
    }
);

/// One identifier of a person who was erased or objected, as a keyed hash: the ledger outlives
/// the records, so what arrives for them later is dropped and a restored backup is erased again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: LedgerId,
    /// Hex of the keyed hash.
    pub key: String,
    pub reason: LedgerReason,
    pub request_id: RequestId,
    pub created_at: Timestamp,
}

named!(
    /// The datasets retention applies to.
    RetentionDataset {
        Leads => "leads",
        VisitorProfiles => "visitor-profiles",
        Journeys => "journeys",
        Organizations => "organizations",
    }
);

impl RetentionDataset {
    /// Days kept when the tenant sets nothing: two years for leads (a sales cycle and its
    /// follow-up), 13 months for tracking data (the CNIL's guidance for audience measurement),
    /// organizations (company data, not personal) until deleted.
    pub fn default_days(&self) -> Option<u32> {
        match self {
            Self::Leads => Some(730),
            Self::VisitorProfiles | Self::Journeys => Some(395),
            Self::Organizations => None,
        }
    }

    /// Which time a record's age counts from.
    pub fn age_from(&self) -> &'static str {
        match self {
            Self::Leads | Self::Organizations => "updated_at",
            Self::VisitorProfiles => "last_seen_at",
            Self::Journeys => "started_at / occurred_at",
        }
    }
}

/// Most days a policy may keep records: ten years.
pub const MAX_RETENTION_DAYS: u32 = 3_650;

/// A tenant's retention choices: days per dataset; a dataset absent keeps its default and a
/// `null` keeps records until they are deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetentionSettings {
    #[serde(default)]
    pub days: BTreeMap<String, Option<u32>>,
}

impl RetentionSettings {
    pub fn days_for(&self, dataset: RetentionDataset) -> Option<u32> {
        match self.days.get(dataset.as_str()) {
            Some(days) => *days,
            None => dataset.default_days(),
        }
    }

    pub fn is_default(&self, dataset: RetentionDataset) -> bool {
        !self.days.contains_key(dataset.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn request(received: &str) -> SubjectRequest {
        let subject = Subject { email: Some(Email::parse("anna@example.com").unwrap()), ..Subject::default() };
        SubjectRequest::new(RequestKind::Access, RequestOrigin::Controller, subject, None, at(received), at(received))
    }

    #[test]
    fn a_request_is_due_one_calendar_month_after_receipt_or_the_months_last_day() {
        assert_eq!(request("2026-01-15T10:00:00Z").due_at, at("2026-02-15T10:00:00Z"));
        assert_eq!(request("2026-01-31T10:00:00Z").due_at, at("2026-02-28T10:00:00Z"));
        assert_eq!(request("2028-01-31T10:00:00Z").due_at, at("2028-02-29T10:00:00Z"));
        assert_eq!(request("2026-12-05T00:00:00Z").due_at, at("2027-01-05T00:00:00Z"));
    }

    #[test]
    fn one_extension_of_up_to_two_months_within_the_first_month_with_a_reason() {
        let mut late = request("2026-01-15T10:00:00Z");
        assert!(late.extend(2, "complex".into(), at("2026-02-16T00:00:00Z")).unwrap_err().contains("within one month"));
        let mut open = request("2026-01-15T10:00:00Z");
        assert!(open.extend(3, "complex".into(), at("2026-01-20T00:00:00Z")).is_err());
        open.extend(2, "many stores".into(), at("2026-01-20T00:00:00Z")).unwrap();
        assert_eq!(open.due_at, at("2026-04-15T10:00:00Z"));
        assert!(open.extend(1, "again".into(), at("2026-01-21T00:00:00Z")).unwrap_err().contains("once already"));
        assert!(!open.overdue(at("2026-04-15T10:00:00Z")));
        assert!(open.overdue(at("2026-04-15T10:00:01Z")));
    }

    #[test]
    fn answering_drops_the_identifiers_and_keeps_a_masked_hint() {
        let mut done = request("2026-01-15T10:00:00Z");
        assert_eq!(done.subject_hint, "a***@example.com");
        done.complete(CompletionReport::default(), at("2026-01-16T00:00:00Z"));
        assert_eq!(done.subject, None);
        assert_eq!(done.status, RequestStatus::Completed);
        let json = serde_json::to_string(&done).unwrap();
        assert!(!json.contains("anna@"), "{json}");
    }

    #[test]
    fn a_subject_needs_one_identifier_and_each_is_checked() {
        let empty = SubjectInput::default().validate().unwrap_err();
        assert_eq!(empty.errors()[0].field, "subject");
        let bad = SubjectInput { email: Some("nope".into()), visitor_id: Some("x".into()), ..SubjectInput::default() }
            .validate()
            .unwrap_err();
        let fields: Vec<&str> = bad.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["email", "visitor_id"]);
    }

    #[test]
    fn retention_defaults_apply_until_the_tenant_chooses() {
        let mut settings = RetentionSettings::default();
        assert_eq!(settings.days_for(RetentionDataset::Journeys), Some(395));
        settings.days.insert("journeys".into(), Some(30));
        settings.days.insert("leads".into(), None);
        assert_eq!(settings.days_for(RetentionDataset::Journeys), Some(30));
        assert_eq!(settings.days_for(RetentionDataset::Leads), None);
        assert!(settings.is_default(RetentionDataset::VisitorProfiles));
    }

    #[test]
    fn a_hold_on_one_record_names_it_and_says_why() {
        let now = at("2026-01-15T10:00:00Z");
        let missing = LegalHoldInput { scope: Some("lead".into()), ..LegalHoldInput::default() }
            .validate("u".into(), now)
            .unwrap_err();
        let fields: Vec<&str> = missing.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["record_id", "reason"]);
        let tenant = LegalHoldInput { scope: Some("tenant".into()), reason: Some("case 14".into()), record_id: None }
            .validate("u".into(), now)
            .unwrap();
        assert_eq!(tenant.scope, HoldScope::Tenant);
    }
}
