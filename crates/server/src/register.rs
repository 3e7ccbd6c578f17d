//! The public data register (EU Data Act, Regulation 2023/2854, Art. 26(b)): what Steward keeps,
//! in which structures and formats, how it can be taken out, what switching involves and what is
//! excluded. `GET /data-register` answers JSON to programs and HTML to browsers, without sign-in;
//! `GET /data-register/schemas/{dataset}.schema.json` gives each dataset's JSON Schema 2020-12.
//!
//! Everything about datasets is generated from the definitions the exporters and the tenant
//! archive use ([`steward_export::Dataset`], [`crate::tenant_archive`]), so the register cannot
//! name a column, dataset or format that an export does not write, nor miss one that it does.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;
use steward_domain::{Journey, Lead, Organization, ReportRow, VisitorProfile};
use steward_export::{ColumnKind, Dataset, DatasetName, Format};
use steward_store::AuditEntry;

use crate::error::ApiError;
use crate::state::AppState;

/// Bumped whenever the register's content changes shape or meaning.
pub const VERSION: &str = "1.0.0";
/// When [`VERSION`] last changed.
pub const UPDATED_AT: &str = "2026-11-30T00:00:00Z";

/// What a dataset holds, in one sentence.
pub fn description(dataset: DatasetName) -> &'static str {
    match dataset {
        DatasetName::Leads => {
            "Contact data captured by bots and forms: name, email, phone, contact id, masked IP network, \
             location, answers, attribution (first and last touch), consent, score, tags and status."
        }
        DatasetName::VisitorProfiles => {
            "Pseudonymous visitors: first and last visit, counts, devices, top pages, last location and masked \
             IP network, and the leads and organization they are linked to."
        }
        DatasetName::Journeys => {
            "Visits (sessions) of visitor profiles with their ordered events: pages, bot openings and answers, \
             form submissions, conversions, clicks and custom events."
        }
        DatasetName::Organizations => {
            "Company profiles: name, domain, identifiers, industry, size, address, contact details, tags, visit \
             statistics and contact persons (links to leads)."
        }
        DatasetName::Reports => {
            "Aggregates per day, week or month: traffic, conversions, lead sources, top pages and organizations; \
             groups smaller than the configured threshold are suppressed so no row points at one person."
        }
        DatasetName::AuditLog => {
            "The tenant's tamper-evident log of exports, refusals, mass changes, erasures and sign-ins, each \
             entry chained to the previous one by SHA-256."
        }
    }
}

/// Whether the dataset holds personal data (GDPR Art. 4(1)).
pub fn personal(dataset: DatasetName) -> bool {
    !matches!(dataset, DatasetName::Reports)
}

/// The JSON Schema 2020-12 of one exported record of the dataset.
pub fn schema_of(dataset: DatasetName) -> serde_json::Value {
    match dataset {
        DatasetName::Leads => steward_export::json_schema::<Lead>(),
        DatasetName::VisitorProfiles => steward_export::json_schema::<VisitorProfile>(),
        DatasetName::Journeys => steward_export::json_schema::<Journey>(),
        DatasetName::Organizations => steward_export::json_schema::<Organization>(),
        DatasetName::Reports => steward_export::json_schema::<ReportRow>(),
        DatasetName::AuditLog => steward_export::json_schema::<AuditEntry>(),
    }
}

/// The CSV (and XLSX) columns of the dataset, in file order.
pub fn columns_of(dataset: DatasetName) -> Vec<RegisterColumn> {
    fn of<R: Dataset>() -> Vec<RegisterColumn> {
        R::columns().iter().map(|column| RegisterColumn { name: column.name.clone(), kind: column.kind }).collect()
    }
    match dataset {
        DatasetName::Leads => of::<Lead>(),
        DatasetName::VisitorProfiles => of::<VisitorProfile>(),
        DatasetName::Journeys => of::<Journey>(),
        DatasetName::Organizations => of::<Organization>(),
        DatasetName::Reports => of::<ReportRow>(),
        DatasetName::AuditLog => of::<AuditEntry>(),
    }
}

/// The API paths that read the dataset record by record (besides its export).
fn read_paths(dataset: DatasetName) -> Vec<&'static str> {
    match dataset {
        DatasetName::Leads => vec!["/api/v1/leads", "/api/v1/leads/{id}"],
        DatasetName::VisitorProfiles => vec!["/api/v1/visitor-profiles?ids=", "/api/v1/visitor-profiles/{id}"],
        DatasetName::Journeys => vec!["/api/v1/journey-insights?profile_ids="],
        DatasetName::Organizations => vec!["/api/v1/organizations", "/api/v1/organizations/{id}"],
        DatasetName::Reports => vec!["/api/v1/reports/{report}"],
        DatasetName::AuditLog => vec!["/api/v1/audit-log", "/api/v1/audit-log/verify"],
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterColumn {
    pub name: String,
    pub kind: ColumnKind,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterDataset {
    pub name: DatasetName,
    pub description: &'static str,
    pub personal_data: bool,
    pub formats: Vec<Format>,
    /// `ui` (the web console) and `api`.
    pub methods: Vec<&'static str>,
    pub export_path: String,
    pub read_paths: Vec<&'static str>,
    /// Where the dataset's JSON Schema 2020-12 is.
    pub schema: String,
    /// Its files in the tenant archive.
    pub archive_files: Vec<String>,
    /// The CSV column dictionary: dotted names of nested fields; `json` columns hold JSON text.
    pub columns: Vec<RegisterColumn>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Standard {
    pub name: &'static str,
    pub used_for: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exclusion {
    pub what: &'static str,
    pub justification: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Register {
    pub service: &'static str,
    pub version: &'static str,
    pub updated_at: &'static str,
    pub datasets: Vec<RegisterDataset>,
    pub formats: Vec<FormatEntry>,
    pub standards: Vec<Standard>,
    pub limits: serde_json::Value,
    pub switching: serde_json::Value,
    pub tenant_archive: serde_json::Value,
    pub excluded: Vec<Exclusion>,
    pub charges: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct FormatEntry {
    pub name: Format,
    pub media_type: &'static str,
    pub description: &'static str,
}

fn format_description(format: Format) -> &'static str {
    match format {
        Format::Csv => {
            "RFC 4180: UTF-8, CRLF line ends, a header row; nested fields as dotted columns, lists and maps as JSON \
             text in one cell; a cell beginning with =, +, -, @, a tab or a carriage return is prefixed with ' \
             against spreadsheet formula injection."
        }
        Format::Json => "One JSON array of records, each exactly as the API returns it.",
        Format::Ndjson => "One JSON object per line (newline-delimited JSON), each exactly as the API returns it.",
        Format::Xlsx => {
            "Office Open XML workbook: bold frozen header, real date cells, a new sheet every 1,048,575 rows; \
             cells longer than Excel's 32,767 characters are cut."
        }
    }
}

/// The register as this Steward is configured.
pub fn register(state: &AppState) -> Register {
    let settings = &state.settings;
    let datasets = DatasetName::ALL
        .into_iter()
        .map(|name| RegisterDataset {
            name,
            description: description(name),
            personal_data: personal(name),
            formats: Format::ALL.to_vec(),
            methods: vec!["ui", "api"],
            export_path: format!("/api/v1/exports/{name}"),
            read_paths: read_paths(name),
            schema: format!("/data-register/schemas/{name}.schema.json"),
            archive_files: crate::tenant_archive::dataset_files()
                .into_iter()
                .filter(|(dataset, _, _)| *dataset == name)
                .map(|(_, _, path)| path)
                .collect(),
            columns: columns_of(name),
        })
        .collect();
    let formats = Format::ALL
        .into_iter()
        .map(|format| FormatEntry {
            name: format,
            media_type: format.media_type(),
            description: format_description(format),
        })
        .collect();
    let limits = serde_json::json!({
        "api_requests_per_minute_per_client": settings.api.rate_limit_per_minute,
        "api_list_page_max": 1000,
        "api_max_request_body_bytes": settings.api.max_body_bytes,
        "streamed_export_max_bytes": settings.exports.console_max_bytes,
        "streamed_export_max_days": settings.exports.console_max_days,
        "export_jobs": "no limit on size or period; files stay downloadable for the configured days",
        "export_job_file_days": settings.exports.file_days,
        "reports_max_days": settings.reports.max_days,
        "reports_min_group_size": settings.reports.min_group_size,
    });
    Register {
        service: "Steward",
        version: VERSION,
        updated_at: UPDATED_AT,
        datasets,
        formats,
        standards: standards(),
        limits,
        switching: switching(state),
        tenant_archive: serde_json::json!({
            "request": "POST /api/v1/archives (a background job); GET /api/v1/archives/{id}; GET /api/v1/archives/{id}/file (Range, ETag)",
            "format": crate::tenant_archive::FORMAT_NAME,
            "format_version": crate::tenant_archive::FORMAT_VERSION,
            "container": "ZIP (deflate)",
            "layout": {
                "datasets/<dataset>.ndjson": "every record, lossless; what import reads",
                "datasets/<dataset>.csv": "the same records as CSV",
                "schemas/<dataset>.schema.json": "JSON Schema 2020-12 of one NDJSON record",
                "assets/tenant.json": "tenant name, slug and settings",
                "assets/retention-policies.json": "retention per dataset, in days",
                "assets/sites.json": "sites: domains, public site keys, collection settings",
                "assets/legal-holds.json": "legal holds",
                "assets/api-clients.json": "API clients: names and scopes, never secrets",
                "assets/users.json": "console users: address and role, never credentials",
                "README.md": "this layout, for people",
                "manifest.json": "every file with rows, bytes and SHA-256",
                "MANIFEST.sha256": "the same sums, sha256sum -c format",
            },
            "import": "steward import ARCHIVE --tenant ID, or POST /api/v1/imports/archive (application/zip)",
        }),
        excluded: exclusions(),
        charges: "None. Switching, archives, exports and data egress are free of charge.",
    }
}

fn standards() -> Vec<Standard> {
    vec![
        Standard { name: "RFC 4180", used_for: "CSV files" },
        Standard { name: "RFC 8259", used_for: "JSON and NDJSON records" },
        Standard { name: "ECMA-376 (Office Open XML)", used_for: "XLSX workbooks" },
        Standard { name: "RFC 5322", used_for: "email addresses (addr-spec; RFC 5321 lengths)" },
        Standard { name: "RFC 9562", used_for: "record ids (UUID version 7)" },
        Standard { name: "RFC 3339 / ISO 8601", used_for: "times, always UTC with Z" },
        Standard { name: "ISO 3166-1 alpha-2", used_for: "country codes" },
        Standard { name: "E.164", used_for: "phone numbers" },
        Standard { name: "JSON Schema 2020-12", used_for: "the structure of every dataset's records" },
        Standard { name: "OpenAPI 3.1", used_for: "the API (/openapi.json)" },
        Standard {
            name: "RFC 6749 §4.4, RFC 7009, RFC 7662",
            used_for: "OAuth 2.0 client credentials, revocation, introspection",
        },
        Standard { name: "RFC 9457", used_for: "error responses (problem details)" },
        Standard { name: "RFC 9110 §14", used_for: "resumable downloads (Range, ETag)" },
        Standard { name: "RFC 8032 (Ed25519)", used_for: "signed erasure attestations" },
        Standard { name: "ZIP (PKWARE APPNOTE), deflate", used_for: "tenant archives and access archives" },
    ]
}

fn switching(state: &AppState) -> serde_json::Value {
    let public_key = crate::switching::attestation_public_key(state)
        .inspect_err(|error| tracing::error!(error = format!("{error:#}"), "the attestation key cannot be read"))
        .ok();
    let settings = &state.settings.switching;
    serde_json::json!({
        "legal_basis": "Regulation (EU) 2023/2854 (Data Act), Chapter VI, Articles 23 to 26",
        "request": "POST /api/v1/switching-requests (scope admin), or the console",
        "actions": {
            "switch_provider": "move to another provider; destination details are required",
            "on_premises": "move to the customer's own infrastructure",
            "erase": "erase all exportable data and digital assets",
        },
        "notice_period_max_months": 2,
        "transitional_period_days": settings.transitional_days,
        "transitional_period": "the service continues unchanged; the customer may extend it once, without giving reasons",
        "infeasibility": "the provider may declare the transitional period technically infeasible only within 14 working days of the request, with reasons and an alternative period of at most 7 months",
        "retrieval_period_days": settings.retrieval_days,
        "retrieval_period_min_days": steward_domain::switching::MIN_RETRIEVAL_DAYS,
        "after_retrieval": "all data of the tenant is erased from every store, its encryption key destroyed, and a signed erasure attestation (Ed25519) is issued",
        "technical_limits": [
            "console users are listed by address and role; passwords and authenticator secrets never travel, so they are invited again at the destination",
            "API client secrets are never exported; clients are listed by name and scopes so they can be recreated",
            "the erasure ledger holds keyed hashes under this provider's tenant key and cannot be used elsewhere; erased people are already absent from the archive",
            "the audit log is exported for the record; a destination starts its own chain",
        ],
        "attestation": {
            "algorithm": "Ed25519 (RFC 8032)",
            "public_key_base64": public_key,
            "where": "GET /switching-attestations/{tenant_id}, without sign-in, once the tenant is erased",
            "verify": "the signature (base64) is over the UTF-8 bytes of the payload string, with this public key (32 bytes, base64)",
        },
        "charges": "none",
    })
}

fn exclusions() -> Vec<Exclusion> {
    vec![
        Exclusion {
            what: "internal system architecture",
            justification: "database layout, indexes, keyed-hash lookup columns and deployment details describe how Steward works, not the customer's data; every record they hold is exported in the documented structures",
        },
        Exclusion {
            what: "proprietary algorithms",
            justification: "the code that scores leads, derives referrer types or aggregates reports is the provider's; its inputs and results (scores, referrer types, reports) are exported",
        },
        Exclusion {
            what: "internal monitoring",
            justification: "process logs, metrics and traces are about the service's operation, hold no customer records and are never kept with personal data",
        },
        Exclusion {
            what: "internal security processes",
            justification: "encryption keys, password and secret hashes, TOTP secrets and rate-limit state protect the service and every tenant; exporting them would weaken that protection",
        },
    ]
}

/// `GET /data-register`: JSON unless the client prefers HTML.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let register = register(&state);
    if prefers_html(&headers) {
        let mut response = axum::response::Html(html_page(&register).into_string()).into_response();
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept"));
        response
    } else {
        let mut response = axum::Json(register).into_response();
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept"));
        response
    }
}

/// `GET /data-register/schemas/{dataset}.schema.json`.
pub async fn schema(Path(file): Path<String>) -> Result<Response, ApiError> {
    let dataset = file.strip_suffix(".schema.json").and_then(DatasetName::parse).ok_or_else(|| {
        let names: Vec<&str> = DatasetName::ALL.iter().map(|d| d.as_str()).collect();
        ApiError::NotFound(format!(
            "there is no schema {file:?}; the schemas are {}",
            names.iter().map(|n| format!("{n}.schema.json")).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let mut response = axum::Json(schema_of(dataset)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/schema+json"));
    Ok(response)
}

fn prefers_html(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let position = |media: &str| accept.find(media);
    match (position("text/html"), position("application/json")) {
        (Some(_), None) => true,
        (Some(html), Some(json)) => html < json,
        _ => false,
    }
}

fn html_page(register: &Register) -> Markup {
    let json_text = |value: &serde_json::Value| serde_json::to_string_pretty(value).unwrap_or_default();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Data register — Steward" }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                main {
                    h1 { "Data register" }
                    p {
                        "What this Steward keeps for its customers, in which structures and formats, how it can be taken out, and how a customer switches provider (EU Data Act, Art. 26(b)). Version "
                        (register.version) ", updated " (register.updated_at) ". The same register as JSON: "
                        a href="/data-register" { code { "GET /data-register" } } " with " code { "Accept: application/json" } "."
                    }
                    p { strong { "Charges: " } (register.charges) }
                    h2 { "Datasets" }
                    @for dataset in &register.datasets {
                        section aria-labelledby=(format!("ds-{}", dataset.name)) {
                            h3 id=(format!("ds-{}", dataset.name)) { (dataset.name.as_str()) }
                            p { (dataset.description) }
                            ul {
                                li { "Personal data: " (if dataset.personal_data { "yes" } else { "no" }) }
                                li { "Formats: " (dataset.formats.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")) }
                                li { "Methods: web console and API (" code { (dataset.export_path) } ")" }
                                li { "Schema: " a href=(dataset.schema) { (dataset.schema) } }
                                li { "In the tenant archive: " (dataset.archive_files.join(", ")) }
                            }
                            details {
                                summary { "CSV columns (" (dataset.columns.len()) ")" }
                                table {
                                    thead { tr { th scope="col" { "Column" } th scope="col" { "Kind" } } }
                                    tbody {
                                        @for column in &dataset.columns {
                                            tr { td { code { (column.name) } } td { (serde_json::to_value(column.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    h2 { "Formats" }
                    dl {
                        @for format in &register.formats {
                            dt { (format.name.as_str()) " (" code { (format.media_type) } ")" }
                            dd { (format.description) }
                        }
                    }
                    h2 { "Standards" }
                    ul { @for standard in &register.standards { li { strong { (standard.name) } ": " (standard.used_for) } } }
                    h2 { "Limits" }
                    pre { (json_text(&register.limits)) }
                    h2 { "Switching" }
                    pre { (json_text(&register.switching)) }
                    h2 { "Tenant archive" }
                    pre { (json_text(&register.tenant_archive)) }
                    h2 { "Data excluded from export" }
                    dl {
                        @for exclusion in &register.excluded {
                            dt { (exclusion.what) }
                            dd { (exclusion.justification) }
                        }
                    }
                }
            }
        }
    }
}

const CSS: &str = "body{font-family:system-ui,sans-serif;line-height:1.5;color:#1a1a1a;background:#fff;margin:0}\
main{max-width:60rem;margin:0 auto;padding:1rem}\
table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2rem .5rem;text-align:left}\
pre{background:#f3f3f3;padding:.5rem;overflow-x:auto}a{color:#0b4f9c}";
