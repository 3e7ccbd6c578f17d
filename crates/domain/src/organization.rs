//! Organization profiles: companies with contact details, linked to the leads that work there.

use serde::{Deserialize, Serialize};

use crate::email::Email;
use crate::geo::CountryCode;
use crate::id::{LeadId, OrganizationId};
use crate::lead::Lead;
use crate::phone::Phone;
use crate::tenant::Domain;
use crate::text::{self, nonblank};
use crate::time::Timestamp;
use crate::validation::ValidationErrors;
use crate::weburl::WebUrl;

pub const MAX_CONTACTS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmployeeRange {
    pub min: Option<u32>,
    pub max: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Address {
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country_code: Option<CountryCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contact {
    pub lead_id: LeadId,
    pub role: Option<String>,
    /// The lead's name and email, copied when it was linked; a rectification or an erasure of
    /// the person changes or removes them with the lead.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<Email>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub domain: Option<Domain>,
    pub website_url: Option<WebUrl>,
    /// National business id, e.g. a Finnish Y-tunnus `1234567-8`.
    pub business_id: Option<String>,
    /// EU VAT number with its country prefix, e.g. `FI12345678`.
    pub vat_id: Option<String>,
    pub industry: Option<String>,
    pub employee_range: Option<EmployeeRange>,
    pub address: Address,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub linkedin_url: Option<WebUrl>,
    pub tags: Vec<String>,
    pub first_visit_at: Option<Timestamp>,
    pub last_visit_at: Option<Timestamp>,
    pub visit_count: u64,
    pub visitor_count: u64,
    pub contacts: Vec<Contact>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Contact {
    /// The contact entry of a lead who works at the organization.
    pub fn of(lead: &Lead) -> Self {
        let name = [lead.first_name.as_deref(), lead.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>();
        Self {
            lead_id: lead.id,
            role: lead.job_title.clone(),
            name: (!name.is_empty()).then(|| name.join(" ")),
            email: lead.email.clone(),
        }
    }
}

/// Server-owned fields: identity, timestamps and the visit statistics collection maintains.
pub const ORGANIZATION_READ_ONLY: &[&str] =
    &["id", "created_at", "updated_at", "first_visit_at", "last_visit_at", "visit_count", "visitor_count"];

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmployeeRangeInput {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country_code: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    pub lead_id: Option<String>,
    pub role: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// An organization as a client sends it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    /// Required: one line of at most 200 characters.
    #[schema(value_type = String, required, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    pub domain: Option<String>,
    pub website_url: Option<String>,
    pub business_id: Option<String>,
    pub vat_id: Option<String>,
    pub industry: Option<String>,
    pub employee_range: Option<EmployeeRangeInput>,
    pub address: Option<AddressInput>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub linkedin_url: Option<String>,
    pub tags: Option<Vec<String>>,
    pub contacts: Option<Vec<ContactInput>>,
}

/// Visit statistics kept by collection, carried over unchanged when a client edits the profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VisitStats {
    pub first_visit_at: Option<Timestamp>,
    pub last_visit_at: Option<Timestamp>,
    pub visit_count: u64,
    pub visitor_count: u64,
}

impl OrganizationInput {
    pub fn validate(
        self,
        id: OrganizationId,
        stats: VisitStats,
        created_at: Timestamp,
        updated_at: Timestamp,
    ) -> Result<Organization, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if nonblank(self.name.clone()).is_none() {
            errors.add("name", "is required");
        }
        let name = errors.check("name", nonblank(self.name), |t| text::line(t, 200));
        let domain = errors.check("domain", nonblank(self.domain), |t| Domain::parse(&t));
        let website_url = errors.check("website_url", nonblank(self.website_url), |t| WebUrl::parse(&t));
        let business_id = errors.check("business_id", nonblank(self.business_id), parse_business_id);
        let vat_id = errors.check("vat_id", nonblank(self.vat_id), parse_vat_id);
        let industry = errors.check("industry", nonblank(self.industry), |t| text::line(t, 200));
        let employee_range = errors.nested("employee_range", self.employee_range.map(validate_range));
        let address = errors.nested("address", self.address.map(validate_address)).unwrap_or_default();
        let phone = errors.check("phone", nonblank(self.phone), |t| Phone::parse(&t));
        let email = errors.check("email", nonblank(self.email), |t| Email::parse(&t));
        let linkedin_url = errors.check("linkedin_url", nonblank(self.linkedin_url), |t| WebUrl::parse(&t));
        let tags = errors.check("tags", self.tags, text::tags).unwrap_or_default();
        let contacts = self.contacts.unwrap_or_default();
        if contacts.len() > MAX_CONTACTS {
            errors.add("contacts", format!("holds more than {MAX_CONTACTS} contacts"));
        }
        let contacts: Vec<Contact> = contacts
            .into_iter()
            .enumerate()
            .filter_map(|(index, contact)| {
                errors.nested(&format!("contacts[{index}]"), Some(validate_contact(contact)))
            })
            .collect();
        match name {
            Some(name) if errors.is_empty() => Ok(Organization {
                id,
                name,
                domain,
                website_url,
                business_id,
                vat_id,
                industry,
                employee_range,
                address,
                phone,
                email,
                linkedin_url,
                tags,
                first_visit_at: stats.first_visit_at,
                last_visit_at: stats.last_visit_at,
                visit_count: stats.visit_count,
                visitor_count: stats.visitor_count,
                contacts,
                created_at,
                updated_at,
            }),
            _ => Err(errors),
        }
    }
}

impl Organization {
    /// An organization known only by the domain of a lead's work email: named after the
    /// company the lead gave, or else after the domain, until someone fills in the rest.
    pub fn from_email_domain(domain: Domain, company_name: Option<&str>, now: Timestamp) -> Self {
        let name = company_name.map(str::to_string).unwrap_or_else(|| domain.as_str().to_string());
        Self {
            id: OrganizationId::new(),
            name,
            website_url: WebUrl::parse(&format!("https://{}/", domain.as_str())).ok(),
            domain: Some(domain),
            business_id: None,
            vat_id: None,
            industry: None,
            employee_range: None,
            address: Address::default(),
            phone: None,
            email: None,
            linkedin_url: None,
            tags: Vec::new(),
            first_visit_at: None,
            last_visit_at: None,
            visit_count: 0,
            visitor_count: 0,
            contacts: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Adds a lead as a contact (once) and counts a newly linked visitor's visits.
    pub fn add_contact(&mut self, lead: &Lead, new_visitor: Option<(u64, Timestamp, Timestamp)>, now: Timestamp) {
        if !self.contacts.iter().any(|contact| contact.lead_id == lead.id) {
            self.contacts.push(Contact::of(lead));
        }
        if let Some((visits, first, last)) = new_visitor {
            self.visitor_count = self.visitor_count.saturating_add(1);
            self.visit_count = self.visit_count.saturating_add(visits);
            self.first_visit_at = Some(self.first_visit_at.map_or(first, |known| known.min(first)));
            self.last_visit_at = Some(self.last_visit_at.map_or(last, |known| known.max(last)));
        }
        self.updated_at = now;
    }

    /// Counts visits of a visitor already linked to this organization.
    pub fn count_visits(&mut self, visits: u64, last: Timestamp, now: Timestamp) {
        self.visit_count = self.visit_count.saturating_add(visits);
        self.last_visit_at = Some(self.last_visit_at.map_or(last, |known| known.max(last)));
        self.updated_at = now;
    }

    pub fn visit_stats(&self) -> VisitStats {
        VisitStats {
            first_visit_at: self.first_visit_at,
            last_visit_at: self.last_visit_at,
            visit_count: self.visit_count,
            visitor_count: self.visitor_count,
        }
    }
}

/// Business ids differ by country; Finnish ones (`1234567-8`) are checked with their check digit.
fn parse_business_id(text: String) -> Result<String, String> {
    let text = text.trim().to_string();
    let finnish = text.len() == 9 && text.as_bytes()[7] == b'-';
    if finnish && text.bytes().enumerate().all(|(i, b)| i == 7 || b.is_ascii_digit()) {
        return if finnish_check_digit_ok(&text) {
            Ok(text)
        } else {
            Err("has a wrong check digit for a Finnish business id".into())
        };
    }
    let plausible = (2..=32).contains(&text.len())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/' | ' '));
    if plausible { Ok(text) } else { Err("is not a business id (2 to 32 letters, digits, - . /)".into()) }
}

fn finnish_check_digit_ok(text: &str) -> bool {
    const WEIGHTS: [u32; 7] = [7, 9, 10, 5, 8, 4, 2];
    let digits: Vec<u32> = text.bytes().filter(u8::is_ascii_digit).map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    let expected = match sum % 11 {
        0 => 0,
        1 => return false,
        r => 11 - r,
    };
    digits.get(7) == Some(&expected)
}

/// EU VAT numbers: two-letter country prefix and 2 to 13 letters or digits.
fn parse_vat_id(text: String) -> Result<String, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    // Checked by characters, never by byte offsets: a multibyte first character (`€1234`)
    // is refused like any other, rather than splitting it.
    let mut chars = compact.chars();
    let prefix = chars.by_ref().take(2).filter(char::is_ascii_uppercase).count();
    let valid = (4..=15).contains(&compact.len()) && prefix == 2 && chars.all(|c| c.is_ascii_alphanumeric());
    if valid { Ok(compact) } else { Err("is not a VAT number (country prefix and 2 to 13 letters or digits)".into()) }
}

fn validate_range(input: EmployeeRangeInput) -> Result<EmployeeRange, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let count = |n: i64| u32::try_from(n).map_err(|_| "must be a whole number of at least 0");
    let min = errors.check("min", input.min, count);
    let max = errors.check("max", input.max, count);
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        errors.add("max", "must not be smaller than min");
    }
    errors.finish(|| EmployeeRange { min, max })
}

fn validate_address(input: AddressInput) -> Result<Address, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let street = errors.check("street", nonblank(input.street), |t| text::line(t, 200));
    let postal_code = errors.check("postal_code", nonblank(input.postal_code), |t| text::line(t, 20));
    let city = errors.check("city", nonblank(input.city), |t| text::line(t, 200));
    let country_code = errors.check("country_code", nonblank(input.country_code), |c| CountryCode::parse(&c));
    errors.finish(|| Address { street, postal_code, city, country_code })
}

fn validate_contact(input: ContactInput) -> Result<Contact, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if input.lead_id.is_none() {
        errors.add("lead_id", "is required");
    }
    let lead_id = errors.check("lead_id", input.lead_id, |t| LeadId::parse(&t));
    let role = errors.check("role", nonblank(input.role), |t| text::line(t, 200));
    let name = errors.check("name", nonblank(input.name), |t| text::line(t, 400));
    let email = errors.check("email", nonblank(input.email), |t| Email::parse(&t));
    match lead_id {
        Some(lead_id) if errors.is_empty() => Ok(Contact { lead_id, role, name, email }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(json: serde_json::Value) -> Result<Organization, ValidationErrors> {
        let input: OrganizationInput = serde_json::from_value(json).unwrap();
        let now = Timestamp::now();
        input.validate(OrganizationId::new(), VisitStats::default(), now, now)
    }

    #[test]
    fn finnish_business_ids_are_checked() {
        assert_eq!(parse_business_id("0112038-9".into()).unwrap(), "0112038-9");
        assert!(parse_business_id("0112038-8".into()).is_err());
        assert!(parse_business_id("HRB 12345".into()).is_ok());
    }

    #[test]
    fn vat_ids_are_compacted() {
        assert_eq!(parse_vat_id("fi 0112 0389".into()).unwrap(), "FI01120389");
        assert!(parse_vat_id("12345678".into()).is_err());
    }

    #[test]
    fn name_is_required_and_every_bad_field_reported() {
        let errors = validate(serde_json::json!({
            "domain": "not a domain",
            "employee_range": {"min": 50, "max": 10},
            "address": {"country_code": "QQ"},
            "contacts": [{"role": "CEO"}],
        }))
        .unwrap_err();
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["name", "domain", "employee_range.max", "address.country_code", "contacts[0].lead_id"]);
    }
}
