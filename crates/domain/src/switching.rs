//! Data Act switching (Regulation (EU) 2023/2854, Chapter VI, Art. 23 to 31): a customer's request
//! to move its data to another provider (`switch_provider`), to its own infrastructure
//! (`on_premises`), or to have it erased (`erase`), and the periods Art. 25 fixes for it.
//!
//! The life of a request, each step on its timeline:
//!
//! 1. **notice**: from receipt until the start of the transitional period the customer chose,
//!    at most two calendar months after receipt (Art. 25(2)(a)); by default at receipt.
//! 2. **transitional**: the service runs unchanged for `switching.transitional_days` (30 at most,
//!    Art. 25(2)(a)). The customer may extend it once, without giving a reason (Art. 25(5)); the
//!    provider may declare 30 days technically infeasible only within 14 working days of the
//!    request, with its reasons and an alternative period of at most seven months (Art. 25(4)).
//! 3. **retrieval**: at least 30 days after the transitional period (Art. 25(2)(d)) in which the
//!    archive stays downloadable; it is removed when the period ends.
//! 4. **erased**: the day after the retrieval period every record, file and the tenant key go,
//!    and a signed attestation says so (Art. 25(2)(e)).
//!
//! `erase` has no archive and no retrieval period: the customer asked for its data to go, not to
//! get it. The service runs unchanged through the transitional period (so the customer can still
//! take what it wants through the API) and the tenant is erased when that period ends.
//!
//! No charge exists for any of it (Art. 29): Steward has no switching or egress fee anywhere.
//!
//! This module is pure: the server asks [`SwitchingRequest::due`] what falls due and runs it.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Time, Weekday};

use crate::email::Email;
pub use crate::id::SwitchingId;
use crate::subject::{add_months, named};
use crate::text::{self, nonblank};
use crate::time::Timestamp;
use crate::validation::ValidationErrors;
use crate::weburl::WebUrl;

/// The longest notice period: the transitional period starts at most this many calendar months
/// after receipt (Art. 25(2)(a)).
pub const MAX_NOTICE_MONTHS: u32 = 2;
/// The mandatory maximum transitional period, in days (Art. 25(2)(a)).
pub const MAX_TRANSITIONAL_DAYS: u32 = 30;
/// The shortest retrieval period, in days (Art. 25(2)(d)).
pub const MIN_RETRIEVAL_DAYS: u32 = 30;
/// Working days after the request within which the provider may declare the transitional
/// period technically infeasible (Art. 25(4)).
pub const INFEASIBILITY_WORKING_DAYS: u32 = 14;
/// The longest alternative transitional period the provider may set instead (Art. 25(4)).
pub const MAX_ALTERNATIVE_MONTHS: u32 = 7;
/// The longest extension the customer may ask for in one go. The Act sets no bound ("a period
/// the customer considers more appropriate"); this one only catches typos such as 3000 days.
pub const MAX_EXTENSION_DAYS: u32 = 366;
/// The most a provider's reason or a note may say.
pub const MAX_REASON: usize = 2_000;

named!(
    /// What the customer wants at the end (Art. 25(3)).
    SwitchingAction {
        SwitchProvider => "switch_provider",
        OnPremises => "on_premises",
        Erase => "erase",
    }
);

named!(
    /// Where a request stands.
    SwitchingStatus {
        Notice => "notice",
        Transitional => "transitional",
        Retrieval => "retrieval",
        Erased => "erased",
        Cancelled => "cancelled",
    }
);

/// Where the data goes, for `switch_provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Destination {
    pub provider_name: String,
    pub contact_email: Email,
    /// Where the destination imports from, if it said.
    pub endpoint_url: Option<WebUrl>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationInput {
    pub provider_name: Option<String>,
    pub contact_email: Option<String>,
    pub endpoint_url: Option<String>,
}

impl DestinationInput {
    pub fn validate(self) -> Result<Destination, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let provider_name = match nonblank(self.provider_name) {
            Some(name) => errors.check("provider_name", Some(name), |t| text::line(t, 200)),
            None => {
                errors.add("provider_name", "is required: the destination provider's name");
                None
            }
        };
        let contact_email = match nonblank(self.contact_email) {
            Some(email) => errors.check("contact_email", Some(email), |t| Email::parse(&t)),
            None => {
                errors.add("contact_email", "is required: whom the destination provider's import is agreed with");
                None
            }
        };
        let endpoint_url = errors.check("endpoint_url", nonblank(self.endpoint_url), |t| WebUrl::parse(&t));
        match (provider_name, contact_email) {
            (Some(provider_name), Some(contact_email)) if errors.is_empty() => {
                Ok(Destination { provider_name, contact_email, endpoint_url })
            }
            _ => Err(errors),
        }
    }
}

/// The periods the operator's settings fix, within what the Act allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchingPeriods {
    transitional_days: u32,
    retrieval_days: u32,
}

impl SwitchingPeriods {
    /// Transitional days are held to 1 to 30, retrieval days to at least 30.
    pub fn new(transitional_days: u32, retrieval_days: u32) -> Self {
        Self {
            transitional_days: transitional_days.clamp(1, MAX_TRANSITIONAL_DAYS),
            retrieval_days: retrieval_days.max(MIN_RETRIEVAL_DAYS),
        }
    }
}

impl Default for SwitchingPeriods {
    fn default() -> Self {
        Self::new(MAX_TRANSITIONAL_DAYS, MIN_RETRIEVAL_DAYS)
    }
}

/// The customer's one extension of the transitional period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerExtension {
    pub days: u32,
    pub at: Timestamp,
    /// The end of the transitional period before the extension.
    pub previous_end: Timestamp,
}

/// The provider's declaration that the transitional period is technically infeasible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Infeasibility {
    pub declared_at: Timestamp,
    /// Why, as told to the customer.
    pub reason: String,
    /// The end of the alternative transitional period.
    pub alternative_ends_at: Timestamp,
    /// The end of the transitional period before the declaration.
    pub previous_end: Timestamp,
}

/// The tenant archive built for the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SwitchingArchive {
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex; also its `ETag`.
    pub sha256: String,
    pub built_at: Timestamp,
    /// Built at the end of the transitional period: the service ran unchanged until then, so
    /// this one holds everything.
    pub complete: bool,
    /// When the file was removed (the retrieval period ended).
    pub removed_at: Option<Timestamp>,
}

/// One step in a request's life: who did what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SwitchingStep {
    pub at: Timestamp,
    /// `requested`, `extended`, `infeasible`, `cancelled`, `transitional_started`,
    /// `archive_built`, `transitional_ended`, `archive_removed`, `erased`.
    pub action: String,
    /// `user`, `client`, `operator` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why a change to a request is refused; each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchingError {
    #[error(
        "the transitional period was extended once already (at {0}); the Data Act allows the customer one extension, so ask the operator"
    )]
    AlreadyExtended(Timestamp),
    #[error("the transitional period ended at {0}; an extension must be asked for before it ends")]
    TransitionalOver(Timestamp),
    #[error("an extension is 1 to {MAX_EXTENSION_DAYS} days")]
    ExtensionDays,
    #[error("the request is {0}; nothing about its periods can change any more")]
    Closed(&'static str),
    #[error(
        "infeasibility may only be declared within {INFEASIBILITY_WORKING_DAYS} working days of the request, that is by the end of {0} (UTC); it is too late, the transitional period stands"
    )]
    InfeasibilityTooLate(Date),
    #[error("infeasibility was declared once already (at {0}), with an alternative period until {1}")]
    AlreadyInfeasible(Timestamp, Timestamp),
    #[error(
        "the alternative transitional period may last at most {MAX_ALTERNATIVE_MONTHS} months from its start, until {0}; choose an earlier end"
    )]
    AlternativeTooLong(Timestamp),
    #[error("the alternative transitional period must end after the current end, {0}; choose a later end")]
    AlternativeTooShort(Timestamp),
    #[error("a reason is required and is one line of at most {MAX_REASON} characters")]
    Reason,
    #[error("only a request in its notice period can be cancelled; this one is {0}")]
    NotCancellable(&'static str),
}

/// What falls due for a request at a moment; the server carries it out and then records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchingDue {
    /// The transitional period begins: build the archive.
    StartTransitional,
    /// The transitional period is over: build the complete archive; retrieval begins.
    EndTransitional,
    /// The retrieval period is over: remove the archive.
    EndRetrieval,
    /// Erase the tenant.
    Erase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SwitchingRequest {
    pub id: SwitchingId,
    pub action: SwitchingAction,
    /// Required for `switch_provider`, absent otherwise.
    pub destination: Option<Destination>,
    pub status: SwitchingStatus,
    pub received_at: Timestamp,
    /// The customer's choice, at most two calendar months after receipt.
    pub transitional_starts_at: Timestamp,
    /// After the settings' days, an extension or an alternative period.
    pub transitional_ends_at: Timestamp,
    pub extension: Option<CustomerExtension>,
    pub infeasibility: Option<Infeasibility>,
    /// The last day (`YYYY-MM-DD`, UTC) on which the provider may declare infeasibility.
    pub infeasibility_deadline: String,
    /// Days of the retrieval period; 0 for `erase`.
    pub retrieval_days: u32,
    /// The archive stays downloadable until then; none for `erase`.
    pub retrieval_ends_at: Option<Timestamp>,
    /// When every record, file and the tenant key go.
    pub erasure_due_at: Timestamp,
    pub archive: Option<SwitchingArchive>,
    pub erased_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    pub timeline: Vec<SwitchingStep>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl SwitchingRequest {
    /// A request received at `received_at`; `starts_at` is the customer's chosen start of the
    /// transitional period (at receipt when `None`). The caller has checked `starts_at` with
    /// [`check_start`].
    pub fn new(
        action: SwitchingAction,
        destination: Option<Destination>,
        received_at: Timestamp,
        starts_at: Option<Timestamp>,
        periods: SwitchingPeriods,
        now: Timestamp,
    ) -> Self {
        let starts_at = starts_at.unwrap_or(received_at);
        let mut request = Self {
            id: SwitchingId::new(),
            action,
            destination,
            status: SwitchingStatus::Notice,
            received_at,
            transitional_starts_at: starts_at,
            transitional_ends_at: plus_days(starts_at, periods.transitional_days),
            extension: None,
            infeasibility: None,
            infeasibility_deadline: infeasibility_deadline(received_at).to_string(),
            retrieval_days: if action == SwitchingAction::Erase { 0 } else { periods.retrieval_days },
            retrieval_ends_at: None,
            erasure_due_at: starts_at,
            archive: None,
            erased_at: None,
            cancelled_at: None,
            timeline: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        request.schedule();
        request
    }

    /// Retrieval and erasure follow the end of the transitional period.
    fn schedule(&mut self) {
        if self.action == SwitchingAction::Erase {
            self.retrieval_ends_at = None;
            self.erasure_due_at = self.transitional_ends_at;
        } else {
            let retrieval_ends = plus_days(self.transitional_ends_at, self.retrieval_days);
            self.retrieval_ends_at = Some(retrieval_ends);
            // The day after the retrieval period: the archive is gone (410) for a day before the
            // tenant and its credentials go too.
            self.erasure_due_at = plus_days(retrieval_ends, 1);
        }
    }

    pub fn step(&mut self, at: Timestamp, action: &str, actor: (&str, Option<String>), note: Option<String>) {
        self.timeline.push(SwitchingStep {
            at,
            action: action.to_string(),
            actor_kind: actor.0.to_string(),
            actor_id: actor.1,
            note,
        });
        self.updated_at = at;
    }

    /// Still running: not erased, not cancelled.
    pub fn is_open(&self) -> bool {
        !matches!(self.status, SwitchingStatus::Erased | SwitchingStatus::Cancelled)
    }

    fn before_transitional_end(&self, now: Timestamp) -> Result<(), SwitchingError> {
        if !matches!(self.status, SwitchingStatus::Notice | SwitchingStatus::Transitional) {
            return Err(SwitchingError::Closed(self.status.as_str()));
        }
        if now >= self.transitional_ends_at {
            return Err(SwitchingError::TransitionalOver(self.transitional_ends_at));
        }
        Ok(())
    }

    /// The customer's one extension, without a reason, before the transitional period ends.
    pub fn extend(&mut self, days: u32, now: Timestamp) -> Result<(), SwitchingError> {
        if let Some(extension) = &self.extension {
            return Err(SwitchingError::AlreadyExtended(extension.at));
        }
        if !(1..=MAX_EXTENSION_DAYS).contains(&days) {
            return Err(SwitchingError::ExtensionDays);
        }
        self.before_transitional_end(now)?;
        let previous_end = self.transitional_ends_at;
        self.transitional_ends_at = plus_days(previous_end, days);
        self.extension = Some(CustomerExtension { days, at: now, previous_end });
        self.schedule();
        Ok(())
    }

    /// The provider's declaration that the transitional period is technically infeasible:
    /// within 14 working days of the request, once, with a reason and an alternative period of
    /// at most seven months from the start of the transitional period.
    pub fn declare_infeasible(
        &mut self,
        until: Timestamp,
        reason: String,
        now: Timestamp,
    ) -> Result<(), SwitchingError> {
        if let Some(infeasibility) = &self.infeasibility {
            return Err(SwitchingError::AlreadyInfeasible(
                infeasibility.declared_at,
                infeasibility.alternative_ends_at,
            ));
        }
        if !matches!(self.status, SwitchingStatus::Notice | SwitchingStatus::Transitional) {
            return Err(SwitchingError::Closed(self.status.as_str()));
        }
        let deadline = infeasibility_deadline(self.received_at);
        if now.as_datetime().date() > deadline {
            return Err(SwitchingError::InfeasibilityTooLate(deadline));
        }
        let reason = text::line(reason, MAX_REASON).map_err(|_| SwitchingError::Reason)?;
        let longest = add_months(self.transitional_starts_at, MAX_ALTERNATIVE_MONTHS);
        if until > longest {
            return Err(SwitchingError::AlternativeTooLong(longest));
        }
        if until <= self.transitional_ends_at {
            return Err(SwitchingError::AlternativeTooShort(self.transitional_ends_at));
        }
        let previous_end = self.transitional_ends_at;
        self.transitional_ends_at = until;
        self.infeasibility = Some(Infeasibility { declared_at: now, reason, alternative_ends_at: until, previous_end });
        self.schedule();
        Ok(())
    }

    /// The customer withdraws the request while it is in its notice period.
    pub fn cancel(&mut self, now: Timestamp) -> Result<(), SwitchingError> {
        if self.status != SwitchingStatus::Notice {
            return Err(SwitchingError::NotCancellable(self.status.as_str()));
        }
        self.status = SwitchingStatus::Cancelled;
        self.cancelled_at = Some(now);
        self.updated_at = now;
        Ok(())
    }

    /// What falls due at `now`, one step at a time.
    pub fn due(&self, now: Timestamp) -> Option<SwitchingDue> {
        match self.status {
            SwitchingStatus::Notice if now >= self.transitional_starts_at => Some(SwitchingDue::StartTransitional),
            SwitchingStatus::Transitional if now >= self.transitional_ends_at => match self.action {
                SwitchingAction::Erase => Some(SwitchingDue::Erase),
                _ => Some(SwitchingDue::EndTransitional),
            },
            SwitchingStatus::Retrieval => {
                let archive_kept = self.archive.as_ref().is_some_and(|archive| archive.removed_at.is_none());
                let retrieval_over = self.retrieval_ends_at.is_none_or(|end| now >= end);
                if archive_kept && retrieval_over {
                    Some(SwitchingDue::EndRetrieval)
                } else if now >= self.erasure_due_at {
                    Some(SwitchingDue::Erase)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    pub fn start_transitional(&mut self, now: Timestamp) {
        self.status = SwitchingStatus::Transitional;
        self.updated_at = now;
    }

    pub fn end_transitional(&mut self, now: Timestamp) {
        self.status = SwitchingStatus::Retrieval;
        self.updated_at = now;
    }

    pub fn archive_built(&mut self, bytes: u64, sha256: String, complete: bool, now: Timestamp) {
        self.archive = Some(SwitchingArchive { bytes, sha256, built_at: now, complete, removed_at: None });
        self.updated_at = now;
    }

    pub fn archive_removed(&mut self, now: Timestamp) {
        if let Some(archive) = self.archive.as_mut() {
            archive.removed_at.get_or_insert(now);
        }
        self.updated_at = now;
    }

    /// The archive may be downloaded: it exists and the retrieval period has not ended.
    pub fn archive_available(&self, now: Timestamp) -> bool {
        let kept = self.archive.as_ref().is_some_and(|archive| archive.removed_at.is_none());
        kept && self.retrieval_ends_at.is_some_and(|end| now < end)
    }

    pub fn erased(&mut self, now: Timestamp) {
        self.status = SwitchingStatus::Erased;
        self.erased_at = Some(now);
        self.updated_at = now;
    }
}

/// Checks the customer's chosen start of the transitional period: not before receipt, at most
/// two calendar months after it.
pub fn check_start(received_at: Timestamp, starts_at: Timestamp) -> Result<(), String> {
    let latest = add_months(received_at, MAX_NOTICE_MONTHS);
    if starts_at < received_at {
        Err(format!("must not be before the request ({received_at})"))
    } else if starts_at > latest {
        Err(format!("the notice period is at most {MAX_NOTICE_MONTHS} months: start by {latest}"))
    } else {
        Ok(())
    }
}

fn plus_days(at: Timestamp, days: u32) -> Timestamp {
    at.checked_add(Duration::days(i64::from(days))).unwrap_or(at)
}

/// Monday to Friday. Working days in the sense of Regulation (EEC, Euratom) No 1182/71 also leave
/// out public holidays; Steward counts them as working days because they differ by member
/// state and year. That can only bring the 14th working day earlier, so the provider's window
/// is at most as long as the Act allows, never longer.
pub fn is_working_day(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The last day (UTC) on which infeasibility may be declared: the 14th working day after the
/// day of the request (that day itself does not count).
pub fn infeasibility_deadline(received_at: Timestamp) -> Date {
    let mut date = received_at.as_datetime().date();
    let mut counted = 0;
    while counted < INFEASIBILITY_WORKING_DAYS {
        match date.next_day() {
            Some(next) => date = next,
            None => break,
        }
        if is_working_day(date) {
            counted += 1;
        }
    }
    date
}

/// Working days after the day of `from` up to and including the day of `to` (UTC dates).
pub fn working_days_between(from: Timestamp, to: Timestamp) -> u32 {
    let (mut date, end) = (from.as_datetime().date(), to.as_datetime().date());
    let mut counted = 0;
    while date < end {
        match date.next_day() {
            Some(next) => date = next,
            None => break,
        }
        if is_working_day(date) {
            counted += 1;
        }
    }
    counted
}

/// Parses `--until` of the operator: RFC 3339, or a date `YYYY-MM-DD` meaning the end of that day
/// (UTC), so that the period runs through it.
pub fn parse_until(text: &str) -> Result<Timestamp, String> {
    if let Ok(at) = Timestamp::parse(text) {
        return Ok(at);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text.trim(), &format)
        .map_err(|_| format!("{text:?} is neither a date (2027-03-31) nor an RFC 3339 date-time"))?;
    let next = date.next_day().ok_or_else(|| format!("{text:?} is out of range"))?;
    Ok(Timestamp::from_datetime(next.with_time(Time::MIDNIGHT).assume_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn request(action: SwitchingAction, received: &str) -> SwitchingRequest {
        SwitchingRequest::new(action, None, at(received), None, SwitchingPeriods::default(), at(received))
    }

    #[test]
    fn the_periods_follow_from_receipt_transitional_retrieval_and_the_day_after() {
        // Monday 2 November 2026.
        let r = request(SwitchingAction::OnPremises, "2026-11-02T10:00:00Z");
        assert_eq!(r.transitional_starts_at, at("2026-11-02T10:00:00Z"));
        assert_eq!(r.transitional_ends_at, at("2026-12-02T10:00:00Z"));
        assert_eq!(r.retrieval_ends_at, Some(at("2027-01-01T10:00:00Z")));
        assert_eq!(r.erasure_due_at, at("2027-01-02T10:00:00Z"));
        let erase = request(SwitchingAction::Erase, "2026-11-02T10:00:00Z");
        assert_eq!(erase.retrieval_ends_at, None);
        assert_eq!(erase.erasure_due_at, erase.transitional_ends_at, "erase: no retrieval period");
    }

    #[test]
    fn settings_cannot_go_past_what_the_act_allows() {
        let r = SwitchingRequest::new(
            SwitchingAction::OnPremises,
            None,
            at("2026-11-02T00:00:00Z"),
            None,
            SwitchingPeriods::new(90, 5),
            at("2026-11-02T00:00:00Z"),
        );
        assert_eq!(r.transitional_ends_at, at("2026-12-02T00:00:00Z"), "30 days at most");
        assert_eq!(r.retrieval_days, 30, "never below 30");
    }

    #[test]
    fn the_notice_period_is_at_most_two_calendar_months() {
        let received = at("2026-12-31T10:00:00Z");
        assert!(check_start(received, at("2027-02-28T10:00:00Z")).is_ok(), "the month's last day");
        assert!(check_start(received, at("2027-02-28T10:00:01Z")).unwrap_err().contains("at most 2 months"));
        assert!(check_start(received, at("2026-12-30T00:00:00Z")).unwrap_err().contains("before the request"));
    }

    #[test]
    fn the_customer_extends_once_without_a_reason_and_before_the_end() {
        let mut r = request(SwitchingAction::OnPremises, "2026-11-02T10:00:00Z");
        r.extend(10, at("2026-11-20T00:00:00Z")).unwrap();
        assert_eq!(r.transitional_ends_at, at("2026-12-12T10:00:00Z"));
        assert_eq!(r.retrieval_ends_at, Some(at("2027-01-11T10:00:00Z")), "retrieval moves with it");
        let second = r.extend(5, at("2026-11-21T00:00:00Z")).unwrap_err();
        assert!(matches!(second, SwitchingError::AlreadyExtended(_)));
        assert!(second.to_string().contains("one extension"), "{second}");
        let mut late = request(SwitchingAction::OnPremises, "2026-11-02T10:00:00Z");
        assert!(matches!(late.extend(5, at("2026-12-02T10:00:00Z")), Err(SwitchingError::TransitionalOver(_))));
        assert_eq!(late.extend(0, at("2026-11-03T00:00:00Z")), Err(SwitchingError::ExtensionDays));
    }

    #[test]
    fn working_days_skip_weekends_and_the_day_of_the_request() {
        // Friday 6 November 2026: Monday 9th is working day 1, Thursday 26th is working day 14.
        let friday = at("2026-11-06T16:00:00Z");
        assert_eq!(infeasibility_deadline(friday), time::macros::date!(2026 - 11 - 26));
        assert_eq!(working_days_between(friday, at("2026-11-08T12:00:00Z")), 0, "a weekend is not counted");
        assert_eq!(working_days_between(friday, at("2026-11-09T00:00:00Z")), 1);
        assert_eq!(working_days_between(friday, at("2026-11-26T23:59:59Z")), 14);
        assert_eq!(working_days_between(friday, at("2026-11-27T00:00:00Z")), 15);
    }

    #[test]
    fn infeasibility_is_accepted_on_working_day_14_and_refused_on_day_15() {
        let friday = "2026-11-06T16:00:00Z";
        let until = at("2027-03-01T00:00:00Z");
        let mut on_time = request(SwitchingAction::SwitchProvider, friday);
        on_time.declare_infeasible(until, "the graph store moves by hand".into(), at("2026-11-26T23:00:00Z")).unwrap();
        assert_eq!(on_time.transitional_ends_at, until);
        assert_eq!(on_time.retrieval_ends_at, Some(at("2027-03-31T00:00:00Z")));
        let again = on_time.declare_infeasible(until, "again".into(), at("2026-11-26T23:00:00Z"));
        assert!(matches!(again, Err(SwitchingError::AlreadyInfeasible(..))));

        let mut late = request(SwitchingAction::SwitchProvider, friday);
        let error = late.declare_infeasible(until, "too late".into(), at("2026-11-27T08:00:00Z")).unwrap_err();
        assert_eq!(error, SwitchingError::InfeasibilityTooLate(time::macros::date!(2026 - 11 - 26)));
        assert!(error.to_string().contains("14 working days"), "{error}");
    }

    #[test]
    fn the_alternative_period_is_at_most_seven_months_later_than_now_and_needs_a_reason() {
        let mut r = request(SwitchingAction::OnPremises, "2026-11-02T10:00:00Z");
        let now = at("2026-11-03T00:00:00Z");
        let error = r.declare_infeasible(at("2027-06-02T10:00:01Z"), "x".into(), now).unwrap_err();
        assert_eq!(error, SwitchingError::AlternativeTooLong(at("2027-06-02T10:00:00Z")));
        assert!(matches!(
            r.declare_infeasible(at("2026-11-20T00:00:00Z"), "x".into(), now),
            Err(SwitchingError::AlternativeTooShort(_))
        ));
        assert_eq!(r.declare_infeasible(at("2027-01-01T00:00:00Z"), "  ".into(), now), Err(SwitchingError::Reason));
        r.declare_infeasible(at("2027-06-02T10:00:00Z"), "x".into(), now).unwrap();
    }

    #[test]
    fn steps_fall_due_in_order_and_the_archive_is_removed_before_erasure() {
        let mut r = SwitchingRequest::new(
            SwitchingAction::OnPremises,
            None,
            at("2026-11-02T10:00:00Z"),
            Some(at("2026-11-10T00:00:00Z")),
            SwitchingPeriods::default(),
            at("2026-11-02T10:00:00Z"),
        );
        assert_eq!(r.due(at("2026-11-09T23:59:59Z")), None, "notice");
        assert_eq!(r.due(at("2026-11-10T00:00:00Z")), Some(SwitchingDue::StartTransitional));
        r.start_transitional(at("2026-11-10T00:00:00Z"));
        r.archive_built(10, "ab".into(), false, at("2026-11-10T00:00:00Z"));
        assert_eq!(r.due(at("2026-12-09T23:59:59Z")), None);
        assert_eq!(r.due(at("2026-12-10T00:00:00Z")), Some(SwitchingDue::EndTransitional));
        r.end_transitional(at("2026-12-10T00:00:00Z"));
        assert!(r.archive_available(at("2027-01-08T23:59:59Z")), "the last day of retrieval");
        assert!(!r.archive_available(at("2027-01-09T00:00:00Z")));
        assert_eq!(r.due(at("2027-01-09T00:00:00Z")), Some(SwitchingDue::EndRetrieval));
        r.archive_removed(at("2027-01-09T00:00:00Z"));
        assert_eq!(r.due(at("2027-01-09T12:00:00Z")), None, "the day after retrieval: gone, not yet erased");
        assert_eq!(r.due(at("2027-01-10T00:00:00Z")), Some(SwitchingDue::Erase));
    }

    #[test]
    fn erase_goes_from_transitional_straight_to_erasure() {
        let mut r = request(SwitchingAction::Erase, "2026-11-02T10:00:00Z");
        r.start_transitional(at("2026-11-02T10:00:00Z"));
        assert_eq!(r.due(at("2026-12-02T10:00:00Z")), Some(SwitchingDue::Erase));
    }

    #[test]
    fn only_a_request_in_notice_can_be_cancelled() {
        let mut r = request(SwitchingAction::Erase, "2026-11-02T10:00:00Z");
        r.cancel(at("2026-11-02T10:00:00Z")).unwrap();
        assert!(!r.is_open());
        let mut running = request(SwitchingAction::Erase, "2026-11-02T10:00:00Z");
        running.start_transitional(at("2026-11-02T10:00:00Z"));
        assert_eq!(running.cancel(at("2026-11-03T00:00:00Z")), Err(SwitchingError::NotCancellable("transitional")));
    }

    #[test]
    fn a_destination_names_a_provider_and_a_contact() {
        let missing = DestinationInput::default().validate().unwrap_err();
        let fields: Vec<&str> = missing.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["provider_name", "contact_email"]);
        let ok = DestinationInput {
            provider_name: Some("Next Cloud Oy".into()),
            contact_email: Some("switch@next.example".into()),
            endpoint_url: Some("https://import.next.example/steward".into()),
        }
        .validate()
        .unwrap();
        assert_eq!(ok.provider_name, "Next Cloud Oy");
    }

    #[test]
    fn until_takes_a_date_through_its_end_or_a_date_time() {
        assert_eq!(parse_until("2027-03-31").unwrap(), at("2027-04-01T00:00:00Z"));
        assert_eq!(parse_until("2027-03-31T12:00:00Z").unwrap(), at("2027-03-31T12:00:00Z"));
        assert!(parse_until("next spring").is_err());
    }
}
