//! What `/collect` accepts: the batch envelope and its events, checked one by one so that a bad
//! event is reported by its index and never costs the good ones.

use serde::Deserialize;
use serde_json::{Map, Value};
use steward_domain::journey::{Hit, HitContext};
use steward_domain::lead::LeadInput;
use steward_domain::{EventId, EventType, FieldError, Lead, LeadId, Timestamp, ValidationErrors, WebUrl, text};

/// The batch as the tracker (or a site's own backend) sends it; events stay raw JSON here so
/// that one malformed event is one rejected index, not a rejected batch.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub site_key: Option<String>,
    /// The tracker's first-party visitor id (a UUIDv7); absent in cookieless mode.
    pub visitor_id: Option<String>,
    /// When the browser sent the batch, by its own clock: event times are shifted by the
    /// difference to ours, so a browser whose clock is off still lands its events in order.
    pub sent_at: Option<String>,
    /// `navigator.language`.
    pub language: Option<String>,
    #[serde(default)]
    pub events: Vec<Value>,
}

/// An event that passed its checks, with the lead it carries (a form submit).
#[derive(Debug)]
pub struct Accepted {
    pub hit: Hit,
    pub lead: Option<Lead>,
}

/// One rejected event of a batch, by its index in `events`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Rejected {
    pub index: usize,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventInput {
    #[serde(rename = "type")]
    kind: Option<String>,
    occurred_at: Option<String>,
    url: Option<String>,
    title: Option<String>,
    referrer: Option<String>,
    properties: Option<Map<String, Value>>,
    lead: Option<Value>,
}

/// Lead fields a public form may set. Everything else (status, score, tags, links, address,
/// attribution) is the tenant's or collection's to set, never a visitor's.
const FORM_LEAD_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "job_title",
    "bot",
    "answers",
    "custom_fields",
    "consent",
];

const MAX_PROPERTIES: usize = 50;
const MAX_PROPERTIES_BYTES: usize = 4_096;
/// Differences between the browser's clock and ours up to this are transit, not skew.
const SKEW_THRESHOLD: time::Duration = time::Duration::minutes(1);
/// A browser clock may run a little ahead of ours even after the `sent_at` correction.
const FUTURE_SLACK: time::Duration = time::Duration::minutes(5);

/// The checks and context every event of one batch shares.
#[derive(Debug, Clone)]
pub struct Checks {
    pub now: Timestamp,
    /// Added to every `occurred_at`: our clock minus the browser's.
    pub skew: time::Duration,
    pub oldest: Timestamp,
    pub context: HitContext,
}

impl Checks {
    pub fn new(now: Timestamp, sent_at: Option<&str>, max_age_hours: u32, context: HitContext) -> Self {
        // The difference also holds the time the batch travelled and waited for us; shifting
        // by that would reorder pages a visitor left a moment apart. Only a clock that is off
        // by more than any transit is corrected.
        let skew = sent_at
            .and_then(|text| Timestamp::parse(text).ok())
            .map(|sent| now.as_datetime() - sent.as_datetime())
            .filter(|skew| skew.abs() > SKEW_THRESHOLD)
            .unwrap_or_default();
        let oldest = now.checked_sub(time::Duration::hours(i64::from(max_age_hours))).unwrap_or(now);
        Self { now, skew, oldest, context }
    }
}

/// Checks one event; every problem is reported at once, under field names of the event.
pub fn check_event(raw: Value, checks: &Checks) -> Result<Accepted, Vec<FieldError>> {
    let input: EventInput = match serde_json::from_value(raw) {
        Ok(input) => input,
        Err(error) => return Err(vec![FieldError { field: "event".into(), message: shape_error(&error) }]),
    };
    let mut errors = ValidationErrors::default();
    let kind = match input.kind.as_deref() {
        None => {
            errors.add("type", "is required");
            None
        }
        Some(name) => errors.check("type", Some(name), EventType::parse),
    };
    let occurred_at = match input.occurred_at {
        Some(text) => errors.check("occurred_at", Some(text), |t| occurred_at(&t, checks)),
        None => Some(checks.now),
    };
    let url = errors.check("url", text::nonblank(input.url), |u| collected_url(&u));
    if kind == Some(EventType::PageView) && url.is_none() && errors.errors().iter().all(|e| e.field != "url") {
        errors.add("url", "is required for a page_view");
    }
    let page_title = errors.check("title", text::nonblank(input.title), |t| text::line(t, 500));
    let referrer_url = errors.check("referrer", text::nonblank(input.referrer), |u| referrer(&u));
    let properties = errors.check("properties", input.properties, properties).unwrap_or_default();
    let id = EventId::new();
    let lead = match input.lead {
        Some(_) if kind.is_some_and(|k| k != EventType::FormSubmit) => {
            errors.add("lead", "is only accepted on a form_submit event");
            None
        }
        Some(fields) => form_lead(fields, occurred_at.unwrap_or(checks.now), checks.now, &mut errors),
        None => None,
    };
    match (kind, occurred_at) {
        (Some(kind), Some(occurred_at)) if errors.is_empty() => Ok(Accepted {
            hit: Hit {
                id,
                occurred_at,
                kind,
                url,
                page_title,
                referrer_url,
                properties,
                context: checks.context.clone(),
            },
            lead,
        }),
        _ => Err(errors.into_errors()),
    }
}

fn shape_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    // serde names the offending field itself; the position in a re-read value means nothing.
    let message = message.split(" at line ").next().unwrap_or(&message);
    format!("is not a valid event: {message}")
}

fn occurred_at(text: &str, checks: &Checks) -> Result<Timestamp, String> {
    let sent = Timestamp::parse(text).map_err(|e| e.to_string())?;
    let at = sent.checked_add(checks.skew).ok_or("is out of range")?;
    if at > checks.now.checked_add(FUTURE_SLACK).unwrap_or(checks.now) {
        return Err("is in the future".into());
    }
    if at < checks.oldest {
        return Err(format!("is older than the {} accepted", describe_age(checks)));
    }
    Ok(at)
}

fn describe_age(checks: &Checks) -> String {
    let hours = (checks.now.as_datetime() - checks.oldest.as_datetime()).whole_hours();
    format!("{hours} hours")
}

/// A page address as kept: no fragment, and of the query only the UTM parameters, which carry
/// the campaign; other parameters are where forms and apps leak emails and tokens.
pub fn collected_url(text: &str) -> Result<WebUrl, String> {
    let parsed = WebUrl::parse(text).map_err(|e| e.to_string())?;
    let Ok(mut url) = url::Url::parse(parsed.as_str()) else { return Ok(parsed) };
    url.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name.starts_with("utm_"))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    WebUrl::parse(url.as_str()).map_err(|e| e.to_string())
}

/// Where the visitor came from, without the query (search terms are personal).
fn referrer(text: &str) -> Result<WebUrl, String> {
    let url = WebUrl::parse(text).map_err(|e| e.to_string())?;
    WebUrl::parse(&url.without_query()).map_err(|e| e.to_string())
}

fn properties(properties: Map<String, Value>) -> Result<Map<String, Value>, String> {
    if properties.len() > MAX_PROPERTIES {
        return Err(format!("holds more than {MAX_PROPERTIES} entries"));
    }
    let size = serde_json::to_vec(&properties).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
    if size > MAX_PROPERTIES_BYTES {
        return Err(format!("is larger than {MAX_PROPERTIES_BYTES} bytes as JSON"));
    }
    Ok(properties)
}

/// A lead from a public form: only contact fields, consent and answers; the rest is linked by
/// the pipeline (visitor, organization, attribution, network).
fn form_lead(fields: Value, occurred_at: Timestamp, now: Timestamp, errors: &mut ValidationErrors) -> Option<Lead> {
    let Value::Object(object) = fields else {
        errors.add("lead", "must be an object of form fields");
        return None;
    };
    let mut refused = false;
    for name in object.keys().filter(|name| !FORM_LEAD_FIELDS.contains(&name.as_str())) {
        errors.add(format!("lead.{name}"), "cannot be set from a web form");
        refused = true;
    }
    if refused {
        return None;
    }
    let input: LeadInput = match serde_json::from_value(Value::Object(object)) {
        Ok(input) => input,
        Err(error) => {
            errors.add("lead", shape_error(&error));
            return None;
        }
    };
    match input.validate(LeadId::new(), occurred_at, now) {
        Ok(lead) => Some(lead),
        Err(lead_errors) => {
            errors.nest("lead", lead_errors);
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;
    use steward_domain::visitor::{Device, DeviceType};

    use super::*;

    fn checks() -> Checks {
        let context = HitContext {
            device: Device { kind: DeviceType::Desktop, os: None, browser: None, language: None },
            location: Default::default(),
            ip_network: None,
        };
        Checks::new(Timestamp::parse("2026-11-23T12:00:00Z").unwrap(), None, 24, context)
    }

    #[test]
    fn urls_keep_only_their_campaign_parameters() {
        let url = collected_url("https://shop.example/p?email=a@b.fi&utm_source=news&x=1#top").unwrap();
        assert_eq!(url.as_str(), "https://shop.example/p?utm_source=news");
        assert_eq!(collected_url("https://shop.example/p?token=abc").unwrap().as_str(), "https://shop.example/p");
    }

    #[test]
    fn a_page_view_needs_a_url_and_every_problem_is_named() {
        let errors = check_event(json!({"type": "page_view", "title": 5}), &checks()).unwrap_err();
        assert_eq!(errors[0].field, "event", "a wrong JSON type is a shape error: {errors:?}");
        let errors = check_event(json!({"type": "teleport", "occurred_at": "yesterday", "url": "ftp://x"}), &checks())
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["type", "occurred_at", "url"]);
        let errors = check_event(json!({"type": "page_view"}), &checks()).unwrap_err();
        assert_eq!(errors[0].field, "url");
    }

    #[test]
    fn browser_clock_skew_is_corrected_and_old_or_future_events_refused() {
        let mut skewed = checks();
        skewed = Checks::new(skewed.now, Some("2026-11-23T13:00:00Z"), 24, skewed.context);
        let event = json!({"type": "click", "occurred_at": "2026-11-23T12:59:00Z"});
        let accepted = check_event(event, &skewed).unwrap();
        assert_eq!(accepted.hit.occurred_at, Timestamp::parse("2026-11-23T11:59:00Z").unwrap());
        let in_transit = Checks::new(skewed.now, Some("2026-11-23T11:59:30Z"), 24, skewed.context.clone());
        let event = json!({"type": "click", "occurred_at": "2026-11-23T11:59:29Z"});
        let accepted = check_event(event, &in_transit).unwrap();
        assert_eq!(accepted.hit.occurred_at, Timestamp::parse("2026-11-23T11:59:29Z").unwrap(), "transit is no skew");
        let old = json!({"type": "click", "occurred_at": "2026-11-21T12:00:00Z"});
        assert_eq!(check_event(old, &checks()).unwrap_err()[0].message, "is older than the 24 hours accepted");
        let future = json!({"type": "click", "occurred_at": "2026-11-23T13:00:00Z"});
        assert_eq!(check_event(future, &checks()).unwrap_err()[0].message, "is in the future");
    }

    #[test]
    fn a_form_may_not_set_what_belongs_to_the_tenant() {
        let event = json!({"type": "form_submit", "url": "https://shop.example/contact",
            "lead": {"email": "aino@acme.fi", "status": "won", "visitor_profile_id": "x"}});
        let errors = check_event(event, &checks()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["lead.status", "lead.visitor_profile_id"]);
        let event = json!({"type": "form_submit", "url": "https://shop.example/contact",
            "lead": {"email": "not an email", "first_name": "Aino"}});
        assert_eq!(check_event(event, &checks()).unwrap_err()[0].field, "lead.email");
        let event = json!({"type": "form_submit", "url": "https://shop.example/contact",
            "lead": {"email": "aino@acme.fi", "consent": {"marketing": true, "source": "contact form"}}});
        let lead = check_event(event, &checks()).unwrap().lead.unwrap();
        assert_eq!(lead.email.unwrap().as_str(), "aino@acme.fi");
        assert!(lead.consent.unwrap().marketing);
    }
}
