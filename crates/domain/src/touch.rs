//! Attribution: where a visit or a lead came from (referrer, landing page, UTM parameters).

use serde::{Deserialize, Serialize};

use crate::text;
use crate::time::Timestamp;
use crate::validation::ValidationErrors;
use crate::weburl::WebUrl;

/// UTM campaign parameters; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

impl Utm {
    pub fn is_empty(&self) -> bool {
        self == &Utm::default()
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UtmInput {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

impl UtmInput {
    pub fn validate(self) -> Result<Utm, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut part =
            |name: &str, value: Option<String>| errors.check(name, text::nonblank(value), |t| text::line(t, 200));
        let utm = Utm {
            source: part("source", self.source),
            medium: part("medium", self.medium),
            campaign: part("campaign", self.campaign),
            term: part("term", self.term),
            content: part("content", self.content),
        };
        errors.finish(|| utm)
    }
}

/// One touch point: the first or the last one that led somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Touch {
    pub referrer_url: Option<WebUrl>,
    pub landing_url: Option<WebUrl>,
    pub utm: Utm,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TouchInput {
    pub referrer_url: Option<String>,
    pub landing_url: Option<String>,
    pub utm: Option<UtmInput>,
    /// Required.
    pub occurred_at: Option<String>,
}

impl TouchInput {
    pub fn validate(self) -> Result<Touch, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let referrer_url = errors.check("referrer_url", text::nonblank(self.referrer_url), |u| WebUrl::parse(&u));
        let landing_url = errors.check("landing_url", text::nonblank(self.landing_url), |u| WebUrl::parse(&u));
        let utm = errors.nested("utm", self.utm.map(UtmInput::validate)).unwrap_or_default();
        if self.occurred_at.is_none() {
            errors.add("occurred_at", "is required");
        }
        let occurred_at = errors.check("occurred_at", self.occurred_at, |t| Timestamp::parse(&t));
        match occurred_at {
            Some(occurred_at) if errors.is_empty() => Ok(Touch { referrer_url, landing_url, utm, occurred_at }),
            _ => Err(errors),
        }
    }
}
