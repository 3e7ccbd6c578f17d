//! Pseudonymous visitors and their journeys: profiles, sessions (visits) and ordered events.

use serde::{Deserialize, Serialize};

use crate::geo::Location;
use crate::id::{EventId, LeadId, OrganizationId, SessionId, VisitorId};
use crate::ip::IpNetwork;
use crate::lead::Lead;
use crate::time::Timestamp;
use crate::touch::{Touch, Utm};
use crate::weburl::WebUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    Other,
}

impl DeviceType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Mobile => "mobile",
            Self::Tablet => "tablet",
            Self::Bot => "bot",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceCount {
    #[serde(rename = "type")]
    pub kind: DeviceType,
    pub os: Option<String>,
    pub browser: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PageCount {
    pub url: WebUrl,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VisitorProfile {
    pub id: VisitorId,
    /// Set once the visitor became a lead with a contact id.
    pub contact_id: Option<String>,
    pub identified: bool,
    pub lead_ids: Vec<LeadId>,
    pub organization_id: Option<OrganizationId>,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub visit_count: u64,
    pub pageview_count: u64,
    pub event_count: u64,
    pub total_duration_s: u64,
    pub conversion_count: u64,
    pub first_touch: Option<Touch>,
    pub last_touch: Option<Touch>,
    pub last_location: Location,
    pub ip_network: Option<IpNetwork>,
    pub devices: Vec<DeviceCount>,
    pub top_pages: Vec<PageCount>,
    /// Since when processing is restricted (GDPR Art. 18); see [`Lead::restricted_at`].
    #[serde(default)]
    pub restricted_at: Option<Timestamp>,
    /// Since when the person objects to profiling (Art. 21): collection stops for them.
    #[serde(default)]
    pub objected_at: Option<Timestamp>,
}

impl VisitorProfile {
    /// Links a captured lead and this visitor both ways: the profile becomes identified and
    /// lists the lead; the lead gets the visitor, the visitor's first and last touch and last
    /// known place where it brought none of its own, and the visitor's organization unless it
    /// names one itself.
    pub fn identify(&mut self, lead: &mut Lead) {
        lead.visitor_profile_id = Some(self.id);
        if lead.first_touch.is_none() {
            lead.first_touch = self.first_touch.clone();
        }
        if lead.last_touch.is_none() {
            lead.last_touch = self.last_touch.clone();
        }
        if lead.location == Location::default() {
            lead.location = self.last_location.clone();
        }
        if lead.ip_network.is_none() {
            lead.ip_network = self.ip_network;
        }
        if lead.organization_id.is_none() {
            lead.organization_id = self.organization_id;
        }
        self.identified = true;
        if !self.lead_ids.contains(&lead.id) {
            self.lead_ids.push(lead.id);
        }
        if self.contact_id.is_none() {
            self.contact_id = lead.contact_id.clone();
        }
        if self.organization_id.is_none() {
            self.organization_id = lead.organization_id;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferrerType {
    Direct,
    Search,
    Social,
    Campaign,
    Website,
}

impl ReferrerType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Search => "search",
            Self::Social => "social",
            Self::Campaign => "campaign",
            Self::Website => "website",
        }
    }

    /// Classifies where a visit came from: UTM parameters make a campaign; no referrer is
    /// direct; a known search engine or social network by its host; any other site is a website.
    pub fn classify(referrer: Option<&WebUrl>, utm: &Utm) -> Self {
        const SEARCH: &[&str] =
            &["google", "bing", "duckduckgo", "yahoo", "yandex", "baidu", "ecosia", "qwant", "startpage"];
        const SOCIAL: &[&str] =
            &["facebook", "instagram", "linkedin", "lnkd", "twitter", "youtube", "tiktok", "reddit", "pinterest"];
        const SOCIAL_HOSTS: &[&str] = &["x.com", "t.co"];
        if utm.source.is_some() || utm.medium.is_some() || utm.campaign.is_some() {
            return Self::Campaign;
        }
        let Some(referrer) = referrer else { return Self::Direct };
        let host = referrer.host();
        let host = host.strip_prefix("www.").unwrap_or(&host);
        // Every label but the last (the top-level domain): google.co.uk, search.yahoo.com.
        let labels: Vec<&str> = host.split('.').collect();
        let named = |names: &[&str]| labels[..labels.len().saturating_sub(1)].iter().any(|l| names.contains(l));
        if named(SEARCH) {
            Self::Search
        } else if named(SOCIAL) || SOCIAL_HOSTS.contains(&host) {
            Self::Social
        } else {
            Self::Website
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    #[serde(rename = "type")]
    pub kind: DeviceType,
    pub os: Option<String>,
    pub browser: Option<String>,
    pub language: Option<String>,
}

/// One visit: events with less than 30 minutes between them and the same campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    pub id: SessionId,
    pub visitor_profile_id: VisitorId,
    /// 1 for the visitor's first visit.
    pub visit_index: u32,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub duration_s: u64,
    pub entry_url: Option<WebUrl>,
    pub exit_url: Option<WebUrl>,
    pub referrer_url: Option<WebUrl>,
    pub referrer_type: ReferrerType,
    pub utm: Utm,
    pub device: Device,
    pub location: Location,
    pub ip_network: Option<IpNetwork>,
    pub pageview_count: u64,
    pub converted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PageView,
    BotOpen,
    BotAnswer,
    FormSubmit,
    Conversion,
    Click,
    Custom,
}

impl EventType {
    pub const ALL: [EventType; 7] =
        [Self::PageView, Self::BotOpen, Self::BotAnswer, Self::FormSubmit, Self::Conversion, Self::Click, Self::Custom];

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or_else(|| {
            "must be one of page_view, bot_open, bot_answer, form_submit, conversion, click, custom".to_string()
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PageView => "page_view",
            Self::BotOpen => "bot_open",
            Self::BotAnswer => "bot_answer",
            Self::FormSubmit => "form_submit",
            Self::Conversion => "conversion",
            Self::Click => "click",
            Self::Custom => "custom",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: EventId,
    pub session_id: SessionId,
    pub visitor_profile_id: VisitorId,
    /// 1-based position within the session, in order of occurrence.
    pub position: u32,
    pub occurred_at: Timestamp,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub url: Option<WebUrl>,
    pub page_title: Option<String>,
    pub referrer_url: Option<WebUrl>,
    pub time_on_page_s: Option<u64>,
    #[schema(value_type = Object)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// One visit with its events in order: the unit of the `journeys` dataset and of journey insights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Journey {
    #[serde(flatten)]
    pub session: Session,
    /// The visit's events by `position`.
    pub events: Vec<Event>,
}
