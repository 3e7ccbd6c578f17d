//! Leads: contact data captured by bots and forms, with answers, attribution and consent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::email::Email;
use crate::geo::{Location, LocationInput};
use crate::id::{LeadId, OrganizationId, VisitorId};
use crate::ip::IpNetwork;
use crate::phone::Phone;
use crate::text::{self, nonblank};
use crate::time::Timestamp;
use crate::touch::{Touch, TouchInput};
use crate::validation::ValidationErrors;
use crate::weburl::WebUrl;

pub const MAX_ANSWERS: usize = 200;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    #[default]
    New,
    Contacted,
    Qualified,
    Won,
    Lost,
}

impl LeadStatus {
    pub const ALL: [LeadStatus; 5] = [Self::New, Self::Contacted, Self::Qualified, Self::Won, Self::Lost];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Contacted => "contacted",
            Self::Qualified => "qualified",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| "must be one of new, contacted, qualified, won, lost".to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BotType {
    Chat,
    Form,
    Popup,
    Other,
}

impl BotType {
    pub const ALL: [BotType; 4] = [Self::Chat, Self::Form, Self::Popup, Self::Other];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Form => "form",
            Self::Popup => "popup",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| "must be one of chat, form, popup, other".to_string())
    }
}

/// The bot or form that captured a lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Bot {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: BotType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Answer {
    pub question: String,
    pub answer: String,
    pub answered_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Consent {
    pub marketing: bool,
    pub captured_at: Timestamp,
    /// Where consent was given, e.g. the form or bot name.
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lead {
    pub id: LeadId,
    /// The tenant's own identifier of this contact (e.g. a CRM id).
    pub contact_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub company_name: Option<String>,
    pub job_title: Option<String>,
    pub bot: Option<Bot>,
    pub answers: Vec<Answer>,
    /// 0 to 100.
    pub score: Option<u8>,
    pub tags: Vec<String>,
    pub status: LeadStatus,
    pub custom_fields: BTreeMap<String, String>,
    pub conversion_url: Option<WebUrl>,
    pub first_touch: Option<Touch>,
    pub last_touch: Option<Touch>,
    pub location: Location,
    pub ip_network: Option<IpNetwork>,
    pub consent: Option<Consent>,
    pub visitor_profile_id: Option<VisitorId>,
    pub organization_id: Option<OrganizationId>,
    /// Since when processing is restricted (GDPR Art. 18): kept, but left out of scoring,
    /// reports and exports other than the person's own access archive.
    #[serde(default)]
    pub restricted_at: Option<Timestamp>,
    /// Since when the person objects (Art. 21): no marketing, profiling or scoring.
    #[serde(default)]
    pub objected_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields no client may set: the server owns them.
pub const LEAD_READ_ONLY: &[&str] = &["id", "created_at", "updated_at", "restricted_at", "objected_at"];

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotInput {
    /// One line of at most 64 characters.
    #[schema(value_type = String, required, max_length = 64, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub id: Option<String>,
    /// One line of at most 200 characters.
    #[schema(value_type = String, required, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = BotType, required)]
    pub kind: Option<String>,
}

impl BotInput {
    fn validate(self) -> Result<Bot, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        required(&mut errors, "id", &self.id);
        required(&mut errors, "name", &self.name);
        required(&mut errors, "type", &self.kind);
        let id = errors.check("id", nonblank(self.id), |t| text::line(t, 64));
        let name = errors.check("name", nonblank(self.name), |t| text::line(t, 200));
        let kind = errors.check("type", self.kind, |t| BotType::parse(&t));
        match (id, name, kind) {
            (Some(id), Some(name), Some(kind)) if errors.is_empty() => Ok(Bot { id, name, kind }),
            _ => Err(errors),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    /// At most 1,000 characters.
    #[schema(value_type = String, required, max_length = 1000, pattern = r"\S")]
    pub question: Option<String>,
    /// At most 10,000 characters.
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub answer: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<String>,
}

impl AnswerInput {
    fn validate(self, fallback_time: Timestamp) -> Result<Answer, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        required(&mut errors, "question", &self.question);
        let question = errors.check("question", nonblank(self.question), |t| text::multiline(t, 1_000));
        let answer = errors.check("answer", self.answer, |t| text::multiline(t, 10_000)).unwrap_or_default();
        let answered_at = errors.check("answered_at", self.answered_at, |t| Timestamp::parse(&t));
        match question {
            Some(question) if errors.is_empty() => {
                Ok(Answer { question, answer, answered_at: answered_at.unwrap_or(fallback_time) })
            }
            _ => Err(errors),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    #[schema(value_type = bool, required)]
    pub marketing: Option<bool>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub captured_at: Option<String>,
    pub source: Option<String>,
}

impl ConsentInput {
    fn validate(self, fallback_time: Timestamp) -> Result<Consent, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if self.marketing.is_none() {
            errors.add("marketing", "is required");
        }
        let captured_at = errors.check("captured_at", self.captured_at, |t| Timestamp::parse(&t));
        let source = errors.check("source", nonblank(self.source), |t| text::line(t, 200));
        errors.finish(|| Consent {
            marketing: self.marketing.unwrap_or(false),
            captured_at: captured_at.unwrap_or(fallback_time),
            source,
        })
    }
}

/// A lead as a client sends it: every field raw, checked together by [`LeadInput::validate`].
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadInput {
    pub contact_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub job_title: Option<String>,
    pub bot: Option<BotInput>,
    pub answers: Option<Vec<AnswerInput>>,
    /// 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub score: Option<i64>,
    /// At most 50, each one line of at most 64 characters.
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<LeadStatus>)]
    pub status: Option<String>,
    pub custom_fields: Option<BTreeMap<String, String>>,
    pub conversion_url: Option<String>,
    pub first_touch: Option<TouchInput>,
    pub last_touch: Option<TouchInput>,
    pub location: Option<LocationInput>,
    /// A network in CIDR notation; masked to /24 or /48 whatever is sent.
    pub ip_network: Option<String>,
    /// The visitor's address; only its /24 or /48 network is kept.
    pub ip_address: Option<String>,
    pub consent: Option<ConsentInput>,
    /// The visitor profile, i.e. the tracker's visitor id (`visitor_id` is accepted too).
    #[serde(alias = "visitor_id")]
    pub visitor_profile_id: Option<String>,
    pub organization_id: Option<String>,
}

impl LeadInput {
    /// Checks every field, reporting all problems at once, and builds the lead.
    pub fn validate(self, id: LeadId, created_at: Timestamp, updated_at: Timestamp) -> Result<Lead, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let contact_id = errors.check("contact_id", nonblank(self.contact_id), |t| text::line(t, 128));
        let first_name = errors.check("first_name", nonblank(self.first_name), |t| text::line(t, 200));
        let last_name = errors.check("last_name", nonblank(self.last_name), |t| text::line(t, 200));
        let email = errors.check("email", nonblank(self.email), |t| Email::parse(&t));
        let phone = errors.check("phone", nonblank(self.phone), |t| Phone::parse(&t));
        let company_name = errors.check("company_name", nonblank(self.company_name), |t| text::line(t, 200));
        let job_title = errors.check("job_title", nonblank(self.job_title), |t| text::line(t, 200));
        let bot = errors.nested("bot", self.bot.map(BotInput::validate));
        let answers = self.answers.unwrap_or_default();
        if answers.len() > MAX_ANSWERS {
            errors.add("answers", format!("holds more than {MAX_ANSWERS} answers"));
        }
        let answers: Vec<Answer> = answers
            .into_iter()
            .enumerate()
            .filter_map(|(index, answer)| {
                errors.nested(&format!("answers[{index}]"), Some(answer.validate(created_at)))
            })
            .collect();
        let score = errors.check("score", self.score, |s| {
            u8::try_from(s).ok().filter(|s| *s <= 100).ok_or("must be between 0 and 100")
        });
        let tags = errors.check("tags", self.tags, text::tags).unwrap_or_default();
        let status = errors.check("status", self.status, |t| LeadStatus::parse(&t)).unwrap_or_default();
        let custom_fields = errors.check("custom_fields", self.custom_fields, text::custom_fields).unwrap_or_default();
        let conversion_url = errors.check("conversion_url", nonblank(self.conversion_url), |u| WebUrl::parse(&u));
        let first_touch = errors.nested("first_touch", self.first_touch.map(TouchInput::validate));
        let last_touch = errors.nested("last_touch", self.last_touch.map(TouchInput::validate));
        let location = errors.nested("location", self.location.map(LocationInput::validate)).unwrap_or_default();
        let from_address = errors.check("ip_address", nonblank(self.ip_address), |a| {
            a.trim().parse().map(IpNetwork::mask).map_err(|_| "is not an IP address")
        });
        let from_network = errors.check("ip_network", nonblank(self.ip_network), |n| IpNetwork::parse(&n));
        let ip_network = from_address.or(from_network);
        let consent = errors.nested("consent", self.consent.map(|c| c.validate(created_at)));
        let visitor_profile_id =
            errors.check("visitor_profile_id", nonblank(self.visitor_profile_id), |t| VisitorId::parse(&t));
        let organization_id =
            errors.check("organization_id", nonblank(self.organization_id), |t| OrganizationId::parse(&t));

        let identifiable = [contact_id.is_some(), email.is_some(), phone.is_some()];
        let named = first_name.is_some() || last_name.is_some();
        if errors.is_empty() && !identifiable.contains(&true) && !named && visitor_profile_id.is_none() {
            errors.add("email", "a lead needs at least one of email, phone, contact_id, a name or visitor_profile_id");
        }
        errors.finish(|| Lead {
            id,
            contact_id,
            first_name,
            last_name,
            email,
            phone,
            company_name,
            job_title,
            bot,
            answers,
            score,
            tags,
            status,
            custom_fields,
            conversion_url,
            first_touch,
            last_touch,
            location,
            ip_network,
            consent,
            visitor_profile_id,
            organization_id,
            restricted_at: None,
            objected_at: None,
            created_at,
            updated_at,
        })
    }
}

fn required(errors: &mut ValidationErrors, field: &str, value: &Option<String>) {
    if nonblank(value.clone()).is_none() {
        errors.add(field, "is required");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> LeadInput {
        serde_json::from_value(json).unwrap()
    }

    fn validate(json: serde_json::Value) -> Result<Lead, ValidationErrors> {
        let now = Timestamp::now();
        input(json).validate(LeadId::new(), now, now)
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let errors = validate(serde_json::json!({
            "email": "not-an-email",
            "phone": "0401234567",
            "location": {"country_code": "XX"},
            "first_touch": {"occurred_at": "last tuesday"},
            "answers": [{"question": "Budget?", "answer": "10k", "answered_at": "soon"}],
            "score": 101,
        }))
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![
                "email",
                "phone",
                "answers[0].answered_at",
                "score",
                "first_touch.occurred_at",
                "location.country_code"
            ]
        );
    }

    #[test]
    fn valid_edge_cases_are_accepted_and_normalised() {
        let lead = validate(serde_json::json!({
            "email": "anna+leads@exämple.fi",
            "phone": "+358 40 123 4567",
            "location": {"country_code": "fi", "city": "Espoo"},
            "ip_address": "198.51.100.77",
            "first_name": "",
            "tags": ["vip", "vip", "b2b"],
        }))
        .unwrap();
        assert_eq!(lead.email.unwrap().as_str(), "anna+leads@exämple.fi");
        assert_eq!(lead.phone.unwrap().as_str(), "+358401234567");
        assert_eq!(lead.location.country_code.unwrap().as_str(), "FI");
        assert_eq!(lead.ip_network.unwrap().to_string(), "198.51.100.0/24");
        assert_eq!(lead.first_name, None, "blank text counts as absent");
        assert_eq!(lead.tags, vec!["vip", "b2b"]);
    }

    #[test]
    fn an_empty_lead_is_refused() {
        let errors = validate(serde_json::json!({"tags": ["x"]})).unwrap_err();
        assert_eq!(fields(&errors), vec!["email"]);
    }

    #[test]
    fn unknown_fields_are_refused_by_the_parser() {
        let parsed: Result<LeadInput, _> = serde_json::from_value(serde_json::json!({"emial": "a@b.fi"}));
        assert!(parsed.unwrap_err().to_string().contains("emial"));
    }

    #[test]
    fn a_lead_round_trips_through_its_own_json_as_input() {
        let lead = validate(serde_json::json!({
            "email": "anna@example.fi",
            "bot": {"id": "b1", "name": "Pricing bot", "type": "chat"},
            "answers": [{"question": "Budget?", "answer": "", "answered_at": "2026-11-01T10:00:00Z"}],
            "first_touch": {"landing_url": "https://example.fi/", "utm": {"source": "google"}, "occurred_at": "2026-11-01T09:00:00Z"},
            "consent": {"marketing": true, "captured_at": "2026-11-01T10:00:00Z", "source": "form"},
            "custom_fields": {"size": "", "industry": "retail"},
        }))
        .unwrap();
        let mut json = serde_json::to_value(&lead).unwrap();
        for key in LEAD_READ_ONLY {
            json.as_object_mut().unwrap().remove(*key);
        }
        let again = input(json).validate(lead.id, lead.created_at, lead.updated_at).unwrap();
        assert_eq!(again, lead);
    }
}
