//! CSV import of leads and organizations. A mapping (JSON, see [`MappingFile`]) says which source
//! column feeds which Steward field, named by the exporters' dotted column names
//! (`first_touch.utm.source`); every row becomes the input `POST /api/v1/leads` or
//! `POST /api/v1/organizations` takes and is created through the same code.
//!
//! The file is parsed on a blocking thread one row at a time (constant memory); rows reach the
//! async side through a bounded channel and are stored in batches. A bad row is reported with
//! the physical line it starts on (the header is line 1, and a quoted cell spanning lines counts
//! each of them) and never stops the import; a bad mapping is refused before any row is read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use steward_domain::lead::LEAD_READ_ONLY;
use steward_domain::organization::ORGANIZATION_READ_ONLY;
use steward_domain::{FieldError, Lead, Organization, Timestamp, ValidationErrors};
use steward_export::DatasetName;
use steward_store::{Target, TenantCtx};
use time::format_description::OwnedFormatItem;
use time::{Date, OffsetDateTime, PrimitiveDateTime};
use tokio::sync::{mpsc, oneshot};

use crate::api::common::{self, Resource};
use crate::error::ApiError;
use crate::state::AppState;
use crate::subjects::Acting;

/// Problems listed in a summary at most; `rejections_total` counts them all.
pub const MAX_REJECTIONS: usize = 1_000;
/// Rows stored together: as many as one collection group takes, since every group rewrites
/// each organization its leads link to (measured: 10,000 leads of 500 companies took a third
/// of the time they took in batches of 500).
const BATCH: usize = 5_000;
/// Header names quoted in a message at most.
const NAMED_COLUMNS: usize = 30;
/// Longest key of `custom_fields` (as the API checks it).
const MAX_CUSTOM_KEY: usize = 64;

/// What a cell holds, and so how it becomes JSON input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// A whole number.
    Integer,
    /// `true`/`false`, `yes`/`no`, `1`/`0`.
    Boolean,
    /// A time in the mapping's `date_format` (RFC 3339 by default).
    Time,
    /// A JSON array, or items separated by `,` or `;`.
    List,
    /// JSON text, as the exporters write lists and maps.
    Json,
}

/// A Steward field a column can feed.
#[derive(Debug, PartialEq, Eq)]
struct Field {
    path: &'static str,
    kind: Kind,
    /// Whether a source column of exactly this name feeds it without being mapped. Ids of
    /// other records are left out: an export's ids name records of another tenant or instance.
    identity: bool,
}

const fn field(path: &'static str, kind: Kind) -> Field {
    Field { path, kind, identity: true }
}

const fn reference(path: &'static str, kind: Kind) -> Field {
    Field { path, kind, identity: false }
}

/// The writable columns of the leads export, plus `ip_address` (input only).
static LEAD_FIELDS: &[Field] = &[
    field("contact_id", Kind::Text),
    field("first_name", Kind::Text),
    field("last_name", Kind::Text),
    field("email", Kind::Text),
    field("phone", Kind::Text),
    field("company_name", Kind::Text),
    field("job_title", Kind::Text),
    field("bot.id", Kind::Text),
    field("bot.name", Kind::Text),
    field("bot.type", Kind::Text),
    field("answers", Kind::Json),
    field("score", Kind::Integer),
    field("tags", Kind::List),
    field("status", Kind::Text),
    field("custom_fields", Kind::Json),
    field("conversion_url", Kind::Text),
    field("first_touch.referrer_url", Kind::Text),
    field("first_touch.landing_url", Kind::Text),
    field("first_touch.utm.source", Kind::Text),
    field("first_touch.utm.medium", Kind::Text),
    field("first_touch.utm.campaign", Kind::Text),
    field("first_touch.utm.term", Kind::Text),
    field("first_touch.utm.content", Kind::Text),
    field("first_touch.occurred_at", Kind::Time),
    field("last_touch.referrer_url", Kind::Text),
    field("last_touch.landing_url", Kind::Text),
    field("last_touch.utm.source", Kind::Text),
    field("last_touch.utm.medium", Kind::Text),
    field("last_touch.utm.campaign", Kind::Text),
    field("last_touch.utm.term", Kind::Text),
    field("last_touch.utm.content", Kind::Text),
    field("last_touch.occurred_at", Kind::Time),
    field("location.country_code", Kind::Text),
    field("location.region", Kind::Text),
    field("location.city", Kind::Text),
    field("ip_network", Kind::Text),
    field("ip_address", Kind::Text),
    field("consent.marketing", Kind::Boolean),
    field("consent.captured_at", Kind::Time),
    field("consent.source", Kind::Text),
    reference("visitor_profile_id", Kind::Text),
    reference("organization_id", Kind::Text),
];

/// The writable columns of the organizations export.
static ORGANIZATION_FIELDS: &[Field] = &[
    field("name", Kind::Text),
    field("domain", Kind::Text),
    field("website_url", Kind::Text),
    field("business_id", Kind::Text),
    field("vat_id", Kind::Text),
    field("industry", Kind::Text),
    field("employee_range.min", Kind::Integer),
    field("employee_range.max", Kind::Integer),
    field("address.street", Kind::Text),
    field("address.postal_code", Kind::Text),
    field("address.city", Kind::Text),
    field("address.country_code", Kind::Text),
    field("phone", Kind::Text),
    field("email", Kind::Text),
    field("linkedin_url", Kind::Text),
    field("tags", Kind::List),
    reference("contacts", Kind::Json),
];

/// The datasets a CSV import can fill.
fn dataset_fields(dataset: DatasetName) -> Option<(&'static [Field], &'static [&'static str])> {
    match dataset {
        DatasetName::Leads => Some((LEAD_FIELDS, LEAD_READ_ONLY)),
        DatasetName::Organizations => Some((ORGANIZATION_FIELDS, ORGANIZATION_READ_ONLY)),
        _ => None,
    }
}

/// The mapping file: how a CSV from elsewhere becomes leads or organizations. Every key is
/// optional; `{}` (or no mapping at all) imports a Steward CSV export as it is.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// The field separator: `","` (default), `";"` or a tab (`"\t"` or `"tab"`).
    pub delimiter: Option<String>,
    /// Whether the first line names the columns (default `true`). Without a header, `columns`
    /// names source columns by number, `"1"` being the first.
    pub header: Option<bool>,
    /// Source column → Steward field, by the exporters' dotted names (`email`,
    /// `location.country_code`, `first_touch.utm.source`, `custom_fields.<key>`, and for leads
    /// `full_name`, split into first and last name), or `null` to skip the column. A column
    /// not listed here whose name is a Steward field feeds that field.
    #[serde(default)]
    pub columns: BTreeMap<String, Option<String>>,
    /// Columns neither listed nor named like a Steward field: `"ignore"` (default) or
    /// `"custom_fields"` (leads only: kept as `custom_fields.<column name>`).
    pub unmapped: Option<String>,
    /// Steward field → a value every row gets (e.g. `{"status": "new"}`).
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
    /// How time columns are written, in strftime notation (e.g. `%d.%m.%Y %H:%M`); a time
    /// without an offset is UTC. Default: RFC 3339, which is also accepted with a format.
    pub date_format: Option<String>,
}

/// Where a column's cells go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    Field(&'static Field),
    /// `custom_fields.<key>`, leads only.
    Custom(String),
    /// Split into `first_name` and `last_name` (those not set by other columns).
    FullName,
}

impl Destination {
    fn name(&self) -> String {
        match self {
            Self::Field(field) => field.path.to_string(),
            Self::Custom(key) => format!("custom_fields.{key}"),
            Self::FullName => "full_name".to_string(),
        }
    }
}

#[derive(Debug)]
struct DateFormat {
    text: String,
    items: OwnedFormatItem,
}

/// A checked mapping for one dataset; [`Mapping::parse`] refuses what cannot work before any
/// row is read.
#[derive(Debug)]
pub struct Mapping {
    dataset: DatasetName,
    delimiter: u8,
    header: bool,
    /// Source column (name, or number without a header) → destination, `None` to skip.
    columns: Vec<(String, Option<Destination>)>,
    collect_unmapped: bool,
    constants: Vec<(Destination, Value)>,
    date_format: Option<DateFormat>,
}

impl Mapping {
    /// Checks a mapping file (`None`: the identity mapping) for `dataset`; every problem is
    /// named, under `delimiter`, `columns.<source>`, `constants.<field>` and so on.
    pub fn parse(dataset: DatasetName, file: Option<Value>) -> Result<Self, ValidationErrors> {
        let Some((fields, read_only)) = dataset_fields(dataset) else {
            return Err(ValidationErrors::single("dataset", "must be leads or organizations"));
        };
        let file: MappingFile = match file {
            None => MappingFile::default(),
            Some(value) => serde_path_to_error::deserialize(value).map_err(|error| {
                let path = error.path().to_string();
                let field = if path == "." { String::new() } else { path };
                ValidationErrors::single(field, error.into_inner().to_string())
            })?,
        };
        let mut errors = ValidationErrors::default();
        let delimiter = match file.delimiter.as_deref() {
            None | Some(",") => b',',
            Some(";") => b';',
            Some("\t" | "tab") => b'\t',
            Some(_) => {
                errors.add("delimiter", r#"must be "," or ";" or a tab ("\t" or "tab")"#);
                b','
            }
        };
        let header = file.header.unwrap_or(true);
        let leads = dataset == DatasetName::Leads;
        let collect_unmapped = match file.unmapped.as_deref() {
            None | Some("ignore") => false,
            Some("custom_fields") if leads => true,
            Some("custom_fields") => {
                errors.add("unmapped", "organizations have no custom_fields; use \"ignore\"");
                false
            }
            Some(_) => {
                errors.add("unmapped", "must be \"ignore\" or \"custom_fields\"");
                false
            }
        };
        let date_format =
            file.date_format.as_deref().and_then(|text| match time::format_description::parse_strftime_owned(text) {
                Ok(items) => Some(DateFormat { text: text.to_string(), items }),
                Err(error) => {
                    errors.add("date_format", format!("is not a strftime format (e.g. %d.%m.%Y %H:%M): {error}"));
                    None
                }
            });
        let mut taken: HashSet<String> = HashSet::new();
        let mut columns = Vec::with_capacity(file.columns.len());
        for (source, target) in file.columns {
            let key = format!("columns.{source}");
            if !header && source.parse::<usize>().map_or(true, |n| n == 0) {
                errors.add(&key, "without a header row, name source columns by number (\"1\" is the first)");
                continue;
            }
            let Some(target) = target else {
                columns.push((source, None));
                continue;
            };
            match destination(fields, read_only, leads, &target) {
                Ok(destination) if !taken.insert(destination.name()) => {
                    errors.add(&key, format!("maps to {target}, which another column already feeds"));
                }
                Ok(destination) => columns.push((source, Some(destination))),
                Err(message) => errors.add(&key, format!("maps to {target:?}, which {message}")),
            }
        }
        let mut constants = Vec::with_capacity(file.constants.len());
        for (target, value) in file.constants {
            let key = format!("constants.{target}");
            match destination(fields, read_only, leads, &target) {
                Ok(destination) if !taken.insert(destination.name()) => {
                    errors.add(&key, "is fed by a column already; a field takes a column or a constant");
                }
                Ok(destination) => match convert(&destination, &value, date_format.as_ref()) {
                    Ok(converted) => constants.push((destination, converted)),
                    Err(message) => errors.add(&key, message),
                },
                Err(message) => errors.add(&key, message),
            }
        }
        errors.finish(|| Self { dataset, delimiter, header, columns, collect_unmapped, constants, date_format })
    }

    pub fn dataset(&self) -> DatasetName {
        self.dataset
    }

    /// Where each source column goes, given the header (or, without one, the first row's
    /// width); refuses mapped columns the file does not have.
    fn plan(&self, header: Option<&[String]>, width: usize) -> Result<Plan, ValidationErrors> {
        let (fields, read_only) = dataset_fields(self.dataset).unwrap_or((&[], &[]));
        let labels: Vec<String> = match header {
            Some(names) => names.to_vec(),
            None => (1..=width).map(|n| n.to_string()).collect(),
        };
        let mut errors = ValidationErrors::default();
        for (source, _) in &self.columns {
            if !labels.contains(source) {
                let message = match header {
                    Some(names) => {
                        let shown: Vec<&str> = names.iter().take(NAMED_COLUMNS).map(String::as_str).collect();
                        let more = if names.len() > NAMED_COLUMNS { ", …" } else { "" };
                        format!("is not a column of this file (its header names: {}{more})", shown.join(", "))
                    }
                    None => format!("is past the last column of this file ({width})"),
                };
                errors.add(format!("columns.{source}"), message);
            }
        }
        let mut taken: HashSet<String> = self
            .columns
            .iter()
            .filter_map(|(_, destination)| destination.as_ref().map(Destination::name))
            .chain(self.constants.iter().map(|(destination, _)| destination.name()))
            .collect();
        let mut cells = Vec::with_capacity(labels.len());
        let mut sources = HashMap::new();
        for (index, label) in labels.iter().enumerate() {
            let explicit = self.columns.iter().find(|(source, _)| source == label).map(|(_, d)| d.clone());
            let chosen = match explicit {
                Some(destination) => destination,
                None => self.implicit(fields, read_only, header.is_some(), label, index, &mut taken),
            };
            if let Some(Destination::Custom(key)) = &chosen
                && key.chars().count() > MAX_CUSTOM_KEY
            {
                let message = format!(
                    "would be kept as a custom field, whose keys are at most {MAX_CUSTOM_KEY} characters; \
                     map it to a shorter custom_fields.<key> or to null"
                );
                errors.add(format!("columns.{label}"), message);
            }
            if let Some(destination) = &chosen {
                let shown = if header.is_some() { label.clone() } else { format!("column {label}") };
                sources.insert(destination.name(), shown);
            }
            cells.push(chosen);
        }
        errors.finish(|| Plan { cells, sources })
    }

    /// A column the mapping does not list: a Steward field of the same name, a custom field
    /// when unmapped columns are collected, or nothing.
    fn implicit(
        &self,
        fields: &'static [Field],
        read_only: &[&str],
        named: bool,
        label: &str,
        index: usize,
        taken: &mut HashSet<String>,
    ) -> Option<Destination> {
        let leads = self.dataset == DatasetName::Leads;
        let same_name = fields.iter().find(|field| named && field.path == label);
        let destination = match same_name {
            Some(field) if field.identity => Destination::Field(field),
            // Ids of other records, and what Steward sets itself, are skipped (see `Field`).
            Some(_) => return None,
            None if named && read_only.contains(&label) => return None,
            None => match label.strip_prefix("custom_fields.") {
                Some(key) if named && leads && !key.is_empty() => Destination::Custom(key.to_string()),
                // A column without a name (a trailing delimiter) has nothing worth keeping.
                _ if named && label.is_empty() => return None,
                _ if self.collect_unmapped && named => Destination::Custom(label.to_string()),
                _ if self.collect_unmapped => Destination::Custom(format!("column_{}", index + 1)),
                _ => return None,
            },
        };
        taken.insert(destination.name()).then_some(destination)
    }
}

/// The destination a mapping names, or why it cannot be one.
fn destination(fields: &'static [Field], read_only: &[&str], leads: bool, target: &str) -> Result<Destination, String> {
    if let Some(field) = fields.iter().find(|field| field.path == target) {
        return Ok(Destination::Field(field));
    }
    if leads && target == "full_name" {
        return Ok(Destination::FullName);
    }
    if let Some(key) = target.strip_prefix("custom_fields.") {
        return if !leads {
            Err("does not exist: organizations have no custom_fields".into())
        } else if key.trim().is_empty() {
            Err("needs a key after custom_fields.".into())
        } else if key.chars().count() > MAX_CUSTOM_KEY {
            Err(format!("has a key longer than {MAX_CUSTOM_KEY} characters"))
        } else {
            Ok(Destination::Custom(key.to_string()))
        };
    }
    if read_only.contains(&target) {
        return Err("is set by Steward and cannot be imported".into());
    }
    let mut known: Vec<&str> = fields.iter().map(|field| field.path).collect();
    if leads {
        known.extend(["full_name", "custom_fields.<key>"]);
    }
    Err(format!("is not a field of this dataset; use one of {}", known.join(", ")))
}

/// A cell as JSON input for `destination`.
fn convert(destination: &Destination, text: &str, date_format: Option<&DateFormat>) -> Result<Value, String> {
    let kind = match destination {
        Destination::Field(field) => field.kind,
        Destination::Custom(_) | Destination::FullName => Kind::Text,
    };
    let trimmed = text.trim();
    match kind {
        Kind::Text => Ok(Value::String(text.to_string())),
        Kind::Integer => trimmed.parse::<i64>().map(Value::from).map_err(|_| "is not a whole number".to_string()),
        Kind::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "n" | "0" => Ok(Value::Bool(false)),
            _ => Err("is not true or false (or yes/no, 1/0)".to_string()),
        },
        Kind::Time => parse_time(trimmed, date_format).map(|time| Value::String(time.to_rfc3339())),
        Kind::List if trimmed.starts_with('[') => {
            serde_json::from_str(trimmed).map_err(|e| format!("is not a JSON list: {e}"))
        }
        Kind::List => Ok(Value::Array(
            trimmed
                .split([',', ';'])
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        )),
        Kind::Json => serde_json::from_str(trimmed).map_err(|e| format!("is not JSON: {e}")),
    }
}

/// A time in `format` (offset optional: UTC when absent; date only: midnight UTC) or RFC 3339.
fn parse_time(text: &str, format: Option<&DateFormat>) -> Result<Timestamp, String> {
    let rfc3339 = Timestamp::parse(text);
    let Some(format) = format else { return rfc3339.map_err(|e| e.to_string()) };
    if let Ok(time) = rfc3339 {
        return Ok(time);
    }
    let items = &format.items;
    let parsed = OffsetDateTime::parse(text, items)
        .or_else(|_| PrimitiveDateTime::parse(text, items).map(PrimitiveDateTime::assume_utc))
        .or_else(|_| Date::parse(text, items).map(|date| date.midnight().assume_utc()))
        .map_err(|_| format!("does not match the date format {} (nor RFC 3339)", format.text))?;
    if parsed.year() < 1970 || parsed.year() > 9999 {
        return Err("is outside the supported range (years 1970 to 9999)".into());
    }
    Ok(Timestamp::from_datetime(parsed))
}

/// A cell as written by a Steward export, with the apostrophe that defused a formula removed.
fn undefuse(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if steward_export::needs_defusing(rest) => rest,
        _ => cell,
    }
}

/// Puts `value` at a dotted `path` of `object`, creating the objects on the way.
fn set_path(object: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            object.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = object.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// `First Middle Last` → (`First Middle`, `Last`); `Last, First` → (`First`, `Last`).
fn split_name(full: &str) -> (Option<String>, Option<String>) {
    let full = full.trim();
    if let Some((last, first)) = full.split_once(',') {
        let (first, last) = (first.trim(), last.trim());
        return ((!first.is_empty()).then(|| first.to_string()), (!last.is_empty()).then(|| last.to_string()));
    }
    match full.rsplit_once(char::is_whitespace) {
        Some((first, last)) => (Some(first.trim().to_string()), Some(last.to_string())),
        None if full.is_empty() => (None, None),
        None => (Some(full.to_string()), None),
    }
}

/// The mapping laid over one file's columns.
#[derive(Debug)]
struct Plan {
    /// Per source column, in order.
    cells: Vec<Option<Destination>>,
    /// For messages.
    sources: Sources,
}

/// Steward field → the source column feeding it.
type Sources = HashMap<String, String>;

/// The source column behind an error's field (`answers[2].question` → the `answers` column).
fn column_of(sources: &Sources, field: &str) -> Option<String> {
    let mut name = field.split('[').next().unwrap_or(field);
    loop {
        if let Some(column) = sources.get(name) {
            return Some(column.clone());
        }
        name = name.rsplit_once('.')?.0;
    }
}

impl Plan {
    fn column_of(&self, field: &str) -> Option<String> {
        column_of(&self.sources, field)
    }

    /// One row as JSON input, or each of its cells' problems.
    fn row(&self, mapping: &Mapping, cells: &[&str]) -> Result<Value, Vec<(String, String)>> {
        let mut object = Map::new();
        let mut problems = Vec::new();
        let mut full_name = None;
        let mut custom = Map::new();
        for (cell, destination) in cells.iter().zip(&self.cells) {
            let Some(destination) = destination else { continue };
            let text = undefuse(cell);
            if text.trim().is_empty() {
                continue;
            }
            match destination {
                Destination::FullName => full_name = Some(text),
                Destination::Custom(key) => {
                    custom.insert(key.clone(), Value::String(text.to_string()));
                }
                Destination::Field(field) => match convert(destination, text, mapping.date_format.as_ref()) {
                    Ok(value) => set_path(&mut object, field.path, value),
                    Err(message) => problems.push((field.path.to_string(), message)),
                },
            }
        }
        for (destination, value) in &mapping.constants {
            match destination {
                Destination::FullName => full_name = value.as_str(),
                Destination::Custom(key) => {
                    custom.insert(key.clone(), value.clone());
                }
                Destination::Field(field) => set_path(&mut object, field.path, value.clone()),
            }
        }
        if let Some(full) = full_name {
            let (first, last) = split_name(full);
            for (key, part) in [("first_name", first), ("last_name", last)] {
                if let Some(part) = part.filter(|_| !object.contains_key(key)) {
                    object.insert(key.to_string(), Value::String(part));
                }
            }
        }
        if !custom.is_empty() {
            let entry = object.entry("custom_fields").or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(fields) => fields.extend(custom),
                _ => problems.push(("custom_fields".into(), "must be a JSON object of texts".into())),
            }
        }
        if problems.is_empty() { Ok(Value::Object(object)) } else { Err(problems) }
    }
}

/// One problem of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// The physical line the row starts on; the header is line 1.
    pub line: u64,
    /// The Steward field (dotted), or `null` when the row as a whole is refused.
    pub field: Option<String>,
    /// The source column that fed the field, when one did.
    pub column: Option<String>,
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    pub dataset: DatasetName,
    /// Data rows read (the header aside).
    pub rows: u64,
    /// Records created.
    pub created: u64,
    /// Rows refused; every other row was stored.
    pub rejected: u64,
    /// Up to 1,000 problems, in line order (a row may have several).
    pub rejections: Vec<Rejection>,
    /// Every problem found, listed or not.
    pub rejections_total: u64,
}

impl ImportSummary {
    fn reject(&mut self, problems: Vec<Rejection>) {
        self.rejected += 1;
        self.rejections_total += problems.len() as u64;
        let room = MAX_REJECTIONS.saturating_sub(self.rejections.len());
        self.rejections.extend(problems.into_iter().take(room));
    }
}

/// What the reader thread sends: a row's input (or its problems), or why it had to stop.
enum Item<I> {
    Row(u64, Result<I, Vec<Rejection>>),
    Failed(String),
}

/// Imports `source` into the tenant: reads it with `mapping`, creates every good row the way
/// the API does and reports the others; audits `import.completed` (counts only) as `acting`.
/// Errors: a mapping that does not fit the file (422), an unreadable file (400), a store failure.
pub async fn import(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    mapping: Mapping,
    source: impl Read + Send + 'static,
) -> Result<ImportSummary, ApiError> {
    match mapping.dataset {
        DatasetName::Leads => run::<Lead>(state, ctx, acting, mapping, source).await,
        DatasetName::Organizations => run::<Organization>(state, ctx, acting, mapping, source).await,
        other => Err(ApiError::NotFound(format!("{other} cannot be imported from CSV; use leads or organizations"))),
    }
}

async fn run<R: Resource>(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    mapping: Mapping,
    source: impl Read + Send + 'static,
) -> Result<ImportSummary, ApiError>
where
    R::Input: Send + 'static,
{
    let dataset = mapping.dataset;
    let (planned, plan) = oneshot::channel();
    let (sender, mut rows) = mpsc::channel::<Item<R::Input>>(1_024);
    let reader = tokio::task::spawn_blocking(move || read::<R::Input>(&mapping, source, planned, &sender));
    let sources = match plan.await {
        Ok(Ok(sources)) => sources,
        Ok(Err(error)) => return Err(error),
        Err(_) => return Err(reader_failure(reader.await)),
    };
    let mut summary =
        ImportSummary { dataset, rows: 0, created: 0, rejected: 0, rejections: Vec::new(), rejections_total: 0 };
    let mut batch: Vec<(u64, R)> = Vec::with_capacity(BATCH);
    let mut failure = None;
    while let Some(item) = rows.recv().await {
        let (line, input) = match item {
            Item::Row(line, input) => (line, input),
            Item::Failed(message) => {
                failure = Some(message);
                break;
            }
        };
        summary.rows += 1;
        match input {
            Err(problems) => summary.reject(problems),
            Ok(input) => match prepare::<R>(state, ctx, input).await {
                Ok(record) => batch.push((line, record)),
                Err(error) => summary.reject(rejections(line, error, Some(&sources))?),
            },
        }
        if batch.len() >= BATCH {
            store(state, ctx, &mut batch, &sources, &mut summary).await?;
        }
    }
    store(state, ctx, &mut batch, &sources, &mut summary).await?;
    // Refusals at storing (an erased person) come after those found while reading its batch.
    summary.rejections.sort_by_key(|rejection| rejection.line);
    drop(rows);
    if let Err(error) = reader.await {
        return Err(ApiError::Internal(anyhow::anyhow!("the CSV reader stopped: {error}")));
    }
    let detail = serde_json::json!({
        "dataset": dataset.as_str(), "rows": summary.rows, "created": summary.created,
        "rejected": summary.rejected, "complete": failure.is_none(),
    });
    let target = Target { kind: R::NAME.to_string(), count: summary.created, ids: Vec::new() };
    crate::api::audit::record(state, ctx, acting.draft(state.clock.now(), "import.completed", target, detail)).await?;
    match failure {
        Some(message) => Err(ApiError::BadRequest {
            detail: format!(
                "the file could not be read past row {}: {message}; the {} rows before it were imported",
                summary.rows, summary.created
            ),
            errors: Vec::new(),
        }),
        None => Ok(summary),
    }
}

/// A row's record, built as `POST` builds it. A panic in the rules (a bug) refuses this row
/// alone: the rows before and after it are still imported, and the panic's message, which may
/// quote the row, is not kept.
async fn prepare<R: Resource>(state: &AppState, ctx: &TenantCtx, input: R::Input) -> Result<R, ApiError> {
    let now = state.clock.now();
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        R::build(input, steward_domain::id::new_v7(), None, now)
    }));
    let record = match built {
        Ok(record) => record?,
        Err(_) => {
            tracing::error!(dataset = R::NAME, "checking an imported row panicked; the row was refused");
            return Err(ApiError::Validation(ValidationErrors::single(
                "",
                "this row could not be checked (an internal error); it was not imported",
            )));
        }
    };
    common::check_references(state, ctx, &record).await?;
    Ok(record)
}

/// Stores a batch and counts what was created and refused.
async fn store<R: Resource>(
    state: &AppState,
    ctx: &TenantCtx,
    batch: &mut Vec<(u64, R)>,
    sources: &Sources,
    summary: &mut ImportSummary,
) -> Result<(), ApiError> {
    if batch.is_empty() {
        return Ok(());
    }
    let (lines, records): (Vec<u64>, Vec<R>) = std::mem::take(batch).into_iter().unzip();
    let results = R::store_batch(state, ctx, records).await;
    for (line, result) in lines.into_iter().zip(results) {
        match result {
            Ok(_) => summary.created += 1,
            Err(error) => summary.reject(rejections(line, error, Some(sources))?),
        }
    }
    Ok(())
}

/// A row's refusal as rejections; errors that are not about the row stop the import.
fn rejections(line: u64, error: ApiError, sources: Option<&Sources>) -> Result<Vec<Rejection>, ApiError> {
    let from_fields = |errors: Vec<FieldError>| -> Vec<Rejection> {
        errors
            .into_iter()
            .map(|error| Rejection {
                line,
                column: sources.and_then(|sources| column_of(sources, &error.field)),
                field: (!error.field.is_empty()).then_some(error.field),
                message: error.message,
            })
            .collect()
    };
    match error {
        ApiError::Validation(errors) => Ok(from_fields(errors.into_errors())),
        ApiError::Conflict(detail, errors) if errors.is_empty() => {
            Ok(vec![Rejection { line, field: None, column: None, message: detail }])
        }
        ApiError::Conflict(_, errors) => Ok(from_fields(errors)),
        other => Err(other),
    }
}

fn reader_failure(joined: Result<(), tokio::task::JoinError>) -> ApiError {
    match joined {
        Ok(()) => ApiError::Internal(anyhow::anyhow!("the CSV reader ended without a word")),
        Err(error) => ApiError::Internal(anyhow::anyhow!("the CSV reader stopped: {error}")),
    }
}

/// The reader thread: header and plan first (answered through `planned`), then every row.
fn read<I: serde::de::DeserializeOwned + Send + 'static>(
    mapping: &Mapping,
    source: impl Read,
    planned: oneshot::Sender<Result<Sources, ApiError>>,
    rows: &mpsc::Sender<Item<I>>,
) {
    let mut source = source;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    if let Err(error) = source.by_ref().take(SNIFF_BYTES as u64).read_to_end(&mut head) {
        let detail = format!("the file could not be read: {error}");
        let _ = planned.send(Err(ApiError::BadRequest { detail, errors: Vec::new() }));
        return;
    }
    if let Some(looks_like) = not_csv(&head) {
        let message =
            format!("is not a CSV file (it looks like {looks_like}); export it as CSV (UTF-8) and import that");
        let detail = format!("this {message}");
        let errors = vec![FieldError { field: "file".into(), message }];
        let _ = planned.send(Err(ApiError::Unprocessable { detail, errors }));
        return;
    }
    let source = std::io::Cursor::new(head).chain(source);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(mapping.delimiter)
        .has_headers(false)
        .flexible(true)
        // Records end at `\n` only (the `\r` of a CRLF left on the last cell is dropped), and
        // the input always ends with one: then the reader's line count after a record is one
        // past its last line (see `start_line`).
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_reader(source.chain(&b"\n"[..]));
    let mut record = ::csv::ByteRecord::new();
    let unreadable = |error: ::csv::Error| ApiError::BadRequest {
        detail: format!("the file is not readable CSV: {error}"),
        errors: Vec::new(),
    };
    let first = match reader.read_byte_record(&mut record) {
        Ok(found) => found,
        Err(error) => {
            let _ = planned.send(Err(unreadable(error)));
            return;
        }
    };
    let mut pending = None;
    let (plan, width) = if mapping.header {
        let names: Result<Vec<String>, usize> = record
            .iter()
            .enumerate()
            .map(|(index, cell)| {
                let name = std::str::from_utf8(cell).map_err(|_| index + 1)?;
                Ok(name.trim_start_matches('\u{feff}').trim().to_string())
            })
            .collect();
        let names = match names {
            Ok(names) if first => names,
            Ok(_) => Vec::new(),
            Err(column) => {
                let detail = format!("the header is not UTF-8 text (column {column}); save the file as UTF-8");
                let _ = planned.send(Err(ApiError::BadRequest { detail, errors: Vec::new() }));
                return;
            }
        };
        let width = names.len();
        (mapping.plan(Some(&names), width), width)
    } else {
        if first {
            pending = Some((start_line(&reader, &record), record.clone()));
        }
        (mapping.plan(None, record.len()), record.len())
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(errors) => {
            let _ = planned.send(Err(ApiError::Validation(errors)));
            return;
        }
    };
    if planned.send(Ok(plan.sources.clone())).is_err() {
        return;
    }
    let expected = if mapping.header { "the header has" } else { "the first row has" };
    loop {
        let (line, row) = match pending.take() {
            Some(row) => row,
            None => match reader.read_byte_record(&mut record) {
                Ok(true) => (start_line(&reader, &record), record.clone()),
                Ok(false) => return,
                Err(error) => {
                    let _ = rows.blocking_send(Item::Failed(error.to_string()));
                    return;
                }
            },
        };
        if row.len() == 1 && matches!(row.get(0), Some(b"" | b"\r")) {
            continue;
        }
        let input = if row.len() != width {
            Err(vec![Rejection {
                line,
                field: None,
                column: None,
                message: format!("has {} fields where {expected} {width}", row.len()),
            }])
        } else {
            convert_row::<I>(mapping, &plan, &row, line)
        };
        if rows.blocking_send(Item::Row(line, input)).is_err() {
            return;
        }
    }
}

/// How much of a file is looked at to tell a CSV from something else.
const SNIFF_BYTES: usize = 4_096;

/// What a file's first bytes say it is when it is plainly not CSV text (by magic number, or by
/// its first character for JSON and markup), so that it is refused once rather than reported
/// line by line.
fn not_csv(head: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF-", "PDF"),
        (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", "XLS, an older Excel or Office file"),
        (b"\x1F\x8B", "gzip-compressed data"),
        (b"\xFF\xFE", "UTF-16 text; save it as UTF-8"),
        (b"\xFE\xFF", "UTF-16 text; save it as UTF-8"),
        (b"7z\xBC\xAF\x27\x1C", "a 7z archive"),
        (b"SQLite format 3\0", "an SQLite database"),
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
    ];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        let holds = |name: &[u8]| head.windows(name.len()).any(|window| window == name);
        return Some(if holds(b"xl/") {
            "XLSX, an Excel workbook"
        } else if holds(b"word/") || holds(b"ppt/") || holds(b"[Content_Types].xml") || holds(b"content.xml") {
            "an Office document (XLSX, DOCX or similar)"
        } else {
            "a ZIP archive"
        });
    }
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(*what);
    }
    if head.contains(&0) {
        return Some("binary data: it holds NUL bytes");
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut visible = text.iter().copied().filter(|byte| !byte.is_ascii_whitespace());
    match (visible.next(), visible.next()) {
        (Some(b'{'), _) => Some("JSON"),
        (Some(b'['), Some(b'{' | b'[' | b'"' | b']' | b'-' | b'0'..=b'9')) => Some("JSON"),
        (Some(b'<'), _) => Some("XML or HTML"),
        _ => None,
    }
}

/// The physical line a record just read starts on: the reader counts every `\n` it consumed,
/// so it stands one past the record's last line (it ends with `\n`), less the line breaks
/// inside its quoted cells. Counting from the start instead goes wrong: skipped blank lines and
/// a CRLF's `\n` are consumed only with the next record.
fn start_line<R: Read>(reader: &::csv::Reader<R>, record: &::csv::ByteRecord) -> u64 {
    let inside: usize = record.iter().map(|cell| cell.iter().filter(|byte| **byte == b'\n').count()).sum();
    reader.position().line().saturating_sub(1).saturating_sub(inside as u64)
}

/// One CSV row as the API's input type.
fn convert_row<I: serde::de::DeserializeOwned>(
    mapping: &Mapping,
    plan: &Plan,
    row: &::csv::ByteRecord,
    line: u64,
) -> Result<I, Vec<Rejection>> {
    let mut cells = Vec::with_capacity(row.len());
    let last = row.len().saturating_sub(1);
    for (index, cell) in row.iter().enumerate() {
        let cell = if index == last { cell.strip_suffix(b"\r").unwrap_or(cell) } else { cell };
        match std::str::from_utf8(cell) {
            Ok(text) => cells.push(text),
            Err(_) => {
                return Err(vec![Rejection {
                    line,
                    field: plan.cells.get(index).and_then(|d| d.as_ref()).map(Destination::name),
                    column: None,
                    message: format!("column {} is not UTF-8 text", index + 1),
                }]);
            }
        }
    }
    let value = plan.row(mapping, &cells).map_err(|problems| {
        problems
            .into_iter()
            .map(|(field, message)| Rejection { line, column: plan.column_of(&field), field: Some(field), message })
            .collect::<Vec<_>>()
    })?;
    common::from_json::<I>(value).map_err(|error| match rejections(line, error, Some(&plan.sources)) {
        Ok(found) => found,
        Err(other) => vec![Rejection { line, field: None, column: None, message: other.to_string() }],
    })
}

#[cfg(test)]
mod tests {
    use steward_domain::LeadInput;

    use super::*;

    fn mapping(dataset: DatasetName, json: Value) -> Result<Mapping, ValidationErrors> {
        Mapping::parse(dataset, Some(json))
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn every_writable_export_column_is_a_field_of_the_same_name() {
        use steward_export::Dataset;
        for column in <Lead as Dataset>::columns() {
            let known = LEAD_FIELDS.iter().any(|f| f.path == column.name);
            assert!(known || LEAD_READ_ONLY.contains(&column.name.as_str()), "lead column {}", column.name);
        }
        for column in <Organization as Dataset>::columns() {
            let known = ORGANIZATION_FIELDS.iter().any(|f| f.path == column.name);
            let read_only = ORGANIZATION_READ_ONLY.contains(&column.name.as_str());
            assert!(known || read_only, "organization column {}", column.name);
        }
    }

    #[test]
    fn what_cannot_work_is_named_before_any_row_is_read() {
        let errors = mapping(
            DatasetName::Leads,
            serde_json::json!({
                "delimiter": "|",
                "unmapped": "keep",
                "date_format": "%Q",
                "columns": {"E-mail": "emial", "Created": "created_at", "Mail": "email", "Other mail": "email"},
                "constants": {"score": "high"},
            }),
        )
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![
                "delimiter",
                "unmapped",
                "date_format",
                "columns.Created",
                "columns.E-mail",
                "columns.Other mail",
                "constants.score"
            ]
        );
        assert!(errors.errors()[3].message.contains("set by Steward"), "{errors}");
        assert!(errors.errors()[4].message.contains("use one of contact_id"), "{errors}");
        let unknown_key = mapping(DatasetName::Leads, serde_json::json!({"colums": {}})).unwrap_err();
        assert!(unknown_key.to_string().contains("colums"), "{unknown_key}");
        let organizations = mapping(DatasetName::Organizations, serde_json::json!({"unmapped": "custom_fields"}));
        assert_eq!(fields(&organizations.unwrap_err()), vec!["unmapped"]);
    }

    #[test]
    fn dates_follow_the_format_and_rfc_3339_is_always_understood() {
        let format = DateFormat {
            text: "%d.%m.%Y %H:%M".into(),
            items: time::format_description::parse_strftime_owned("%d.%m.%Y %H:%M").unwrap(),
        };
        assert_eq!(parse_time("31.01.2026 14:05", Some(&format)).unwrap().to_rfc3339(), "2026-01-31T14:05:00Z");
        assert_eq!(
            parse_time("2026-01-31T14:05:00+02:00", Some(&format)).unwrap().to_rfc3339(),
            "2026-01-31T12:05:00Z"
        );
        assert!(parse_time("31.02.2026 14:05", Some(&format)).unwrap_err().contains("%d.%m.%Y %H:%M"));
        assert!(parse_time("31.01.2026", None).is_err());
        let date_only = DateFormat {
            text: "%Y/%m/%d".into(),
            items: time::format_description::parse_strftime_owned("%Y/%m/%d").unwrap(),
        };
        assert_eq!(parse_time("2026/01/31", Some(&date_only)).unwrap().to_rfc3339(), "2026-01-31T00:00:00Z");
    }

    #[test]
    fn names_split_at_the_last_space_or_a_comma() {
        assert_eq!(split_name("Anna Maria Virtanen"), (Some("Anna Maria".into()), Some("Virtanen".into())));
        assert_eq!(split_name("Virtanen, Anna"), (Some("Anna".into()), Some("Virtanen".into())));
        assert_eq!(split_name("Cher"), (Some("Cher".into()), None));
    }

    #[test]
    fn cells_become_nested_typed_input_and_defused_formulas_are_restored() {
        let mapping = mapping(
            DatasetName::Leads,
            serde_json::json!({
                "columns": {"Name": "full_name", "Src": "first_touch.utm.source", "Tags": "tags", "Opt in": "consent.marketing"},
                "unmapped": "custom_fields",
                "constants": {"status": "qualified"},
            }),
        )
        .unwrap();
        let header: Vec<String> =
            ["Name", "Src", "Tags", "Opt in", "phone", "id", "Favourite colour"].map(String::from).to_vec();
        let plan = mapping.plan(Some(&header), header.len()).unwrap();
        let value = plan
            .row(&mapping, &["Anna Virtanen", "google", "vip; b2b", "yes", "'+358 40 123 4567", "0190…", "blue"])
            .unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "first_name": "Anna", "last_name": "Virtanen",
                "first_touch": {"utm": {"source": "google"}},
                "tags": ["vip", "b2b"], "consent": {"marketing": true},
                "phone": "+358 40 123 4567", "status": "qualified",
                "custom_fields": {"Favourite colour": "blue"},
            })
        );
        assert_eq!(plan.column_of("first_touch.utm.source").as_deref(), Some("Src"));
        let problems = plan.row(&mapping, &["", "", "", "perhaps", "", "", ""]).unwrap_err();
        assert_eq!(
            problems,
            vec![("consent.marketing".to_string(), "is not true or false (or yes/no, 1/0)".to_string())]
        );
    }

    #[test]
    fn rows_are_numbered_by_physical_line_with_crlf_or_lf_and_quoted_line_breaks() {
        for end in ["\r\n", "\n"] {
            let csv = format!(
                "email,last_name{end}a@b.fi,\"two{end}lines\"{end}{end}x@y.fi,Z{end}c@d.fi,C,extra{end}e@f.fi,E"
            );
            let mapping = Mapping::parse(DatasetName::Leads, None).unwrap();
            let (planned, rows) = read_all(&mapping, csv.as_bytes());
            assert!(planned.is_ok());
            let seen: Vec<(u64, Result<String, u64>)> = rows
                .into_iter()
                .map(|(line, input)| (line, input.map(|lead| lead.last_name.unwrap_or_default())))
                .collect();
            let expected = vec![
                (2, Ok(format!("two{end}lines"))),
                (5, Ok("Z".to_string())),
                (6, Err(6)),
                (7, Ok("E".to_string())),
            ];
            assert_eq!(seen, expected, "line ends {end:?}");
        }
    }

    /// A row as read: its line, and its input or the line of its first problem.
    type ReadRow = (u64, Result<LeadInput, u64>);

    /// Runs the reader thread's work here: the plan's outcome, then every row.
    fn read_all(mapping: &Mapping, csv: &[u8]) -> (Result<(), ApiError>, Vec<ReadRow>) {
        let (planned, mut plan) = oneshot::channel();
        let (sender, mut rows) = mpsc::channel(16);
        read::<LeadInput>(mapping, csv, planned, &sender);
        let planned = plan.try_recv().unwrap().map(drop);
        let mut seen = Vec::new();
        while let Ok(Item::Row(line, input)) = rows.try_recv() {
            seen.push((line, input.map_err(|r| r[0].line)));
        }
        (planned, seen)
    }

    #[test]
    fn without_a_header_columns_are_named_by_number_and_a_byte_order_mark_is_ignored() {
        let numbered =
            serde_json::json!({"header": false, "delimiter": "tab", "columns": {"1": "email", "2": "full_name"}});
        let mapping = mapping(DatasetName::Leads, numbered).unwrap();
        let (planned, rows) = read_all(&mapping, b"anna@example.fi\tAnna Virtanen\nbob@example.fi\tBob\n");
        assert!(planned.is_ok());
        let rows: Vec<(u64, Option<String>, Option<String>)> = rows
            .into_iter()
            .map(|(line, input)| {
                let input = input.unwrap();
                (line, input.email, input.last_name)
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (1, Some("anna@example.fi".into()), Some("Virtanen".into())),
                (2, Some("bob@example.fi".into()), None)
            ]
        );
        let past = mapping_of(serde_json::json!({"header": false, "columns": {"3": "email"}}));
        let (planned, rows) = read_all(&past, b"a,b\n");
        assert!(planned.unwrap_err().to_string().contains("past the last column of this file (2)"));
        assert!(rows.is_empty(), "no row is read after a refused plan");

        let identity = Mapping::parse(DatasetName::Leads, None).unwrap();
        let (planned, rows) = read_all(&identity, "\u{feff}email,first_name\r\nanna@example.fi,Anna\r\n".as_bytes());
        assert!(planned.is_ok());
        assert_eq!(rows[0].1.as_ref().unwrap().email.as_deref(), Some("anna@example.fi"));
    }

    fn mapping_of(json: Value) -> Mapping {
        mapping(DatasetName::Leads, json).unwrap()
    }

    #[test]
    fn unmapped_columns_kept_as_custom_fields_need_a_name_that_fits_a_key() {
        let mapping = mapping(DatasetName::Leads, serde_json::json!({"unmapped": "custom_fields"})).unwrap();
        let long = "x".repeat(65);
        let header = vec!["email".to_string(), String::new(), long.clone()];
        let errors = mapping.plan(Some(&header), 3).unwrap_err();
        assert_eq!(fields(&errors), vec![format!("columns.{long}")]);
        let header = vec!["email".to_string(), String::new(), "Shoe size".to_string()];
        let plan = mapping.plan(Some(&header), 3).unwrap();
        let value = plan.row(&mapping, &["a@b.fi", "stray", "42"]).unwrap();
        assert_eq!(value, serde_json::json!({"email": "a@b.fi", "custom_fields": {"Shoe size": "42"}}));
    }

    #[test]
    fn a_mapped_column_the_file_lacks_is_refused_with_the_header_it_has() {
        let mapping = mapping(DatasetName::Leads, serde_json::json!({"columns": {"Email Address": "email"}})).unwrap();
        let header = vec!["Email".to_string()];
        let errors = mapping.plan(Some(&header), 1).unwrap_err();
        assert_eq!(fields(&errors), vec!["columns.Email Address"]);
        assert!(errors.to_string().contains("its header names: Email"), "{errors}");
    }
}
