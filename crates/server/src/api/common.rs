//! What every dataset endpoint shares: JSON bodies parsed with field paths, list parameters,
//! opaque cursors, and the generic create/read/update/delete/list over a [`Resource`].

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use steward_domain::{Scope, Timestamp, ValidationErrors, patch};
use steward_store::{ListQuery, Lookup, Record, StoreExt, TenantCtx};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body: wrong media type is 415, broken JSON 400, and a value of the wrong
/// type 422 naming the field.
#[derive(Debug)]
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let media_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let is_json = media_type.as_deref().is_some_and(|m| m == "application/json" || m.ends_with("+json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json (or application/merge-patch+json for PATCH)".into(),
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(
                    "the body is larger than this server accepts (api.max_body_bytes); send less at once".into(),
                )
            } else {
                ApiError::BadRequest {
                    detail: format!("the request body could not be read: {rejection}"),
                    errors: Vec::new(),
                }
            }
        })?;
        let value = serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest {
            detail: format!("the body is not valid JSON: {e}"),
            errors: Vec::new(),
        })?;
        Ok(Self(value))
    }
}

/// Deserialises a JSON value into `T`, naming the field on a type mismatch or unknown key.
pub fn from_json<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { String::new() } else { path };
        let message = error.into_inner().to_string();
        ApiError::Validation(ValidationErrors::single(field, message))
    })
}

/// Most fields one body is read again without: past that the rest is not worth naming.
const MAX_BAD_FIELDS: usize = 64;

/// Deserialises `value` into `T`, naming every top-level field of the wrong type or unknown,
/// not just the first: a bad field is recorded, left out, and the rest read again. The value
/// read without the bad fields comes back too, so that the entity's own checks can name theirs.
pub fn from_json_all<T: DeserializeOwned>(mut value: Value) -> (Option<T>, ValidationErrors) {
    let mut errors = ValidationErrors::default();
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..=MAX_BAD_FIELDS {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(input) => return (Some(input), errors),
            Err(error) => error,
        };
        let path = error.path().to_string();
        let top = match error.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => Some(key.clone()),
            _ => None,
        };
        let message = error.into_inner().to_string();
        // serde names an unknown key in its message, at the level of the object holding it.
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(key, _)| key.to_string())
            .filter(|_| path == ".");
        let (key, field) = match (top, unknown) {
            (Some(key), _) => (key, path),
            (None, Some(key)) => (key.clone(), key),
            (None, None) => {
                // A missing field or a body that is not an object: a field left out above is
                // already named, anything else is named now; either way reading ends here.
                if !removed.iter().any(|key| message.contains(&format!("`{key}`"))) {
                    errors.add(if path == "." { String::new() } else { path }, message);
                }
                return (None, errors);
            }
        };
        let left_out = value.as_object_mut().and_then(|fields| fields.remove(&key)).is_some();
        errors.add(field, message);
        if !left_out {
            return (None, errors);
        }
        removed.push(key);
    }
    (None, errors)
}

/// Every bad field of a create or update body at once, as one 422: `errors` found before (read-
/// only fields), values of the wrong type or unknown fields, and what `build` (the entity's own
/// checks) refuses in the rest.
fn build_checked<I: DeserializeOwned, R>(
    body: Value,
    mut errors: ValidationErrors,
    build: impl FnOnce(I) -> Result<R, ValidationErrors>,
) -> Result<R, ApiError> {
    let (input, type_errors) = from_json_all::<I>(body);
    for error in type_errors.into_errors() {
        errors.add(error.field, error.message);
    }
    let Some(input) = input else { return Err(ApiError::Validation(errors)) };
    match build(input) {
        Ok(record) if errors.is_empty() => Ok(record),
        Ok(_) => Err(ApiError::Validation(errors)),
        Err(found) => {
            // A field left out for its type is "required" to `build`: it is named already.
            let named: Vec<String> = errors.errors().iter().map(|error| error.field.clone()).collect();
            for error in found.into_errors() {
                let known = named.iter().any(|field| {
                    error.field == *field
                        || error.field.strip_prefix(field.as_str()).is_some_and(|rest| rest.starts_with(['.', '[']))
                });
                if !known {
                    errors.add(error.field, error.message);
                }
            }
            Err(ApiError::Validation(errors))
        }
    }
}

/// The read-only fields `body` sets, and `body` without them.
fn without_read_only(mut body: Value, read_only: &[&str]) -> (Value, ValidationErrors) {
    let errors = patch::refuse_read_only(&body, read_only).err().unwrap_or_default();
    if let Value::Object(fields) = &mut body {
        for key in read_only {
            fields.remove(*key);
        }
    }
    (body, errors)
}

/// A whole number as JSON Schema's `integer` takes it: `2` or `2.0` (a zero fraction), for
/// `#[serde(default, deserialize_with = "whole_number")]` on an `Option` of an unsigned type.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    let whole = number.as_u64().or_else(|| {
        number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64).map(|f| f as u64)
    });
    whole
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// A page of results: `data` and the cursor of the next page, `null` on the last.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(text: &str) -> Result<Uuid, ApiError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_query("cursor", "is not a cursor this API issued; use next_cursor as given"))
}

/// `limit`, `cursor`, `created_from`, `created_to` (exclusive) and `updated_since`; any other
/// parameter is refused so typos do not silently widen a query.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1 to 1000, default 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
    /// RFC 3339 (years 1970 to 9999); records created at or after.
    #[param(format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-")]
    pub created_from: Option<String>,
    /// RFC 3339 (years 1970 to 9999); records created before (later than `created_from`).
    #[param(format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-")]
    pub created_to: Option<String>,
    /// RFC 3339 (years 1970 to 9999); records changed at or after.
    #[param(format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-")]
    pub updated_since: Option<String>,
}

impl ListParams {
    /// Reads the query string; `extra` names further parameters the dataset accepts.
    pub fn from_uri(uri: &Uri, extra: &[&str]) -> Result<(Self, BTreeMap<String, String>), ApiError> {
        let mut errors = ValidationErrors::default();
        let read = Self::read(uri, extra, &mut errors);
        if errors.is_empty() { Ok(read) } else { Err(ApiError::InvalidQuery(errors)) }
    }

    /// Reads the query string, recording every unknown parameter in `errors`.
    pub fn read(uri: &Uri, extra: &[&str], errors: &mut ValidationErrors) -> (Self, BTreeMap<String, String>) {
        let pairs: BTreeMap<String, String> =
            url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
        let known: Vec<&str> = ["limit", "cursor", "created_from", "created_to", "updated_since"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        for unknown in pairs.keys().filter(|key| !known.contains(&key.as_str())) {
            errors.add(unknown, format!("is not known here; use {}", known.join(", ")));
        }
        let params = Self {
            limit: pairs.get("limit").cloned(),
            cursor: pairs.get("cursor").cloned(),
            created_from: pairs.get("created_from").cloned(),
            created_to: pairs.get("created_to").cloned(),
            updated_since: pairs.get("updated_since").cloned(),
        };
        (params, pairs)
    }

    /// The store's query, or every bad parameter at once.
    pub fn to_query(&self) -> Result<ListQuery, ApiError> {
        let mut errors = ValidationErrors::default();
        self.to_query_into(&mut errors).ok_or(ApiError::InvalidQuery(errors))
    }

    /// The store's query, recording every bad parameter in `errors` (`None` when there is one),
    /// so that a caller with parameters of its own can name theirs in the same answer.
    pub fn to_query_into(&self, errors: &mut ValidationErrors) -> Option<ListQuery> {
        let before = errors.errors().len();
        let limit = match parse_limit(self.limit.as_deref()) {
            Ok(limit) => limit,
            Err(error) => {
                add_query_error(errors, error);
                100
            }
        };
        let mut time = |field: &str, value: &Option<String>| -> Option<Timestamp> {
            let text = value.as_deref()?;
            Timestamp::parse(text).map_err(|e| errors.add(field, e.to_string())).ok()
        };
        let created_from = time("created_from", &self.created_from);
        let created_to = time("created_to", &self.created_to);
        let updated_since = time("updated_since", &self.updated_since);
        let after = match self.cursor.as_deref().map(decode_cursor).transpose() {
            Ok(after) => after,
            Err(error) => {
                add_query_error(errors, error);
                None
            }
        };
        if let (Some(from), Some(to)) = (created_from, created_to)
            && from >= to
        {
            errors.add("created_to", "must be later than created_from");
        }
        (errors.errors().len() == before).then(|| ListQuery {
            after,
            limit,
            created_from,
            created_to,
            updated_since,
            ..ListQuery::default()
        })
    }
}

/// Adds the fields a query error names to `errors`.
pub fn add_query_error(errors: &mut ValidationErrors, error: ApiError) {
    match error {
        ApiError::InvalidQuery(found) | ApiError::Validation(found) => {
            for error in found.into_errors() {
                errors.add(error.field, error.message);
            }
        }
        ApiError::BadRequest { detail, errors: found } => {
            if found.is_empty() {
                errors.add("", detail);
            }
            for error in found {
                errors.add(error.field, error.message);
            }
        }
        other => errors.add("", other.to_string()),
    }
}

/// An entity served over the API with create, read, merge-patch, delete and list.
pub trait Resource: Record + Clone {
    type Input: DeserializeOwned;
    /// For messages: `lead`, `organization`.
    const NAME: &'static str;
    const READ: Scope;
    const WRITE: Scope;
    const READ_ONLY: &'static [&'static str];
    /// Query parameters that find records by an exact value, with the lookup column they use.
    const LOOKUPS: &'static [(&'static str, Lookup)] = &[];

    /// Builds the entity from validated input: new when `previous` is `None`, else a
    /// replacement that keeps what the server owns.
    fn build(input: Self::Input, id: Uuid, previous: Option<&Self>, now: Timestamp) -> Result<Self, ValidationErrors>;

    /// References to other records, which must exist for the same tenant.
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    /// Stores a new record and returns it as stored (a lead comes back linked to its visitor
    /// and organization).
    fn store_new(
        state: &AppState,
        ctx: &TenantCtx,
        record: Self,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send {
        async move {
            state.store.insert(ctx, std::slice::from_ref(&record)).await?;
            Ok(record)
        }
    }

    /// Stores many new records (an import), one result per record in order: in one
    /// transaction, or record by record when that fails, so a bad one fails alone.
    fn store_batch(
        state: &AppState,
        ctx: &TenantCtx,
        records: Vec<Self>,
    ) -> impl Future<Output = Vec<Result<Self, ApiError>>> + Send {
        async move {
            if records.is_empty() || state.store.insert(ctx, &records).await.is_ok() {
                return records.into_iter().map(Ok).collect();
            }
            let mut results = Vec::with_capacity(records.len());
            for record in records {
                results.push(Self::store_new(state, ctx, record).await);
            }
            results
        }
    }
}

/// A field that points at another record.
#[derive(Debug)]
pub struct Reference {
    pub field: String,
    pub kind: steward_store::DocKind,
    pub id: Uuid,
}

pub(crate) async fn check_references<R: Resource>(
    state: &AppState,
    ctx: &TenantCtx,
    record: &R,
) -> Result<(), ApiError> {
    let mut errors = ValidationErrors::default();
    for reference in record.references() {
        if state.store.get_doc(ctx, reference.kind, reference.id).await?.is_none() {
            errors.add(reference.field, "does not refer to an existing record of your tenant");
        }
    }
    errors.finish(|| ()).map_err(ApiError::Validation)
}

/// The normal form a lookup key is computed from, parsed like the stored value was.
fn normalise_lookup(lookup: Lookup, name: &str, value: &str) -> Result<String, ApiError> {
    match lookup {
        Lookup::Email => steward_domain::Email::parse(value)
            .map(|e| e.lookup_key())
            .map_err(|e| ApiError::bad_query(name, e.to_string())),
        Lookup::Phone => steward_domain::Phone::parse(value)
            .map(|p| p.as_str().to_string())
            .map_err(|e| ApiError::bad_query(name, e.to_string())),
        Lookup::ContactId => Ok(value.trim().to_string()),
        Lookup::VisitorId | Lookup::LeadId => steward_domain::VisitorId::parse(value.trim())
            .map(|id| id.to_string())
            .map_err(|e| ApiError::bad_query(name, e.to_string())),
    }
}

fn parse_id(text: &str, name: &str) -> Result<Uuid, ApiError> {
    steward_domain::id::parse_v7(text).map_err(|_| ApiError::not_found(name))
}

pub async fn list<R: Resource + Serialize>(state: AppState, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    list_records::<R>(state, caller, uri, R::READ, R::LOOKUPS).await
}

/// A page of any stored record type in id order, with the list parameters and `lookups`.
pub async fn list_records<R: Record + Serialize>(
    state: AppState,
    caller: Caller,
    uri: Uri,
    scope: Scope,
    lookups: &[(&str, Lookup)],
) -> Result<Response, ApiError> {
    caller.require(scope)?;
    let names: Vec<&str> = lookups.iter().map(|(name, _)| *name).collect();
    let mut errors = ValidationErrors::default();
    let (params, pairs) = ListParams::read(&uri, &names, &mut errors);
    let query = params.to_query_into(&mut errors);
    let mut equals = Vec::new();
    for (name, lookup) in lookups {
        if let Some(value) = pairs.get(*name) {
            match normalise_lookup(*lookup, name, value) {
                Ok(normalised) => equals.push(state.store.lookup(&caller.ctx, *lookup, &normalised)?),
                Err(error) => add_query_error(&mut errors, error),
            }
        }
    }
    let Some(mut query) = query.filter(|_| errors.is_empty()) else { return Err(ApiError::InvalidQuery(errors)) };
    query.equals.extend(equals);
    let limit = query.limit;
    query.limit = limit + 1;
    let data: Vec<R> = state.store.list(&caller.ctx, &query).await?;
    Ok(page_response(data, limit, |last| encode_cursor(last.key()), pairs, &uri))
}

/// A page from `data` read with one row more than `limit`: the extra row says a next page
/// exists, whose cursor (from the page's last row) goes into `next_cursor` and a `Link` header
/// repeating the request's other parameters.
pub fn page_response<T: Serialize>(
    mut data: Vec<T>,
    limit: u32,
    cursor_of: impl Fn(&T) -> String,
    mut pairs: BTreeMap<String, String>,
    uri: &Uri,
) -> Response {
    let next_cursor = if data.len() > limit as usize {
        data.truncate(limit as usize);
        data.last().map(cursor_of)
    } else {
        None
    };
    let mut response = Json(Page { data, next_cursor: next_cursor.clone() }).into_response();
    if let Some(cursor) = next_cursor {
        pairs.insert("cursor".into(), cursor);
        let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let link = format!("<{}?{query}>; rel=\"next\"", uri.path());
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

/// `limit`: 1 to 1000, 100 when absent.
pub fn parse_limit(text: Option<&str>) -> Result<u32, ApiError> {
    match text {
        None => Ok(100),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_query("limit", "must be a whole number from 1 to 1000")),
    }
}

pub async fn create<R: Resource + Serialize>(
    state: AppState,
    caller: Caller,
    uri: Uri,
    body: Value,
) -> Result<Response, ApiError> {
    caller.require(R::WRITE)?;
    let (body, read_only) = without_read_only(body, R::READ_ONLY);
    let (id, now) = (steward_domain::id::new_v7(), state.clock.now());
    let record = build_checked(body, read_only, |input| R::build(input, id, None, now))?;
    check_references(&state, &caller.ctx, &record).await?;
    let record = R::store_new(&state, &caller.ctx, record).await?;
    let location = format!("{}/{}", uri.path().trim_end_matches('/'), record.key());
    let mut response = (StatusCode::CREATED, Json(&record)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// A new record from client input, validated and with its references checked, not yet stored
/// ([`Resource::store_new`] or [`Resource::store_batch`] do that): what `POST` and imports share.
pub async fn prepare_new<R: Resource>(state: &AppState, ctx: &TenantCtx, input: R::Input) -> Result<R, ApiError> {
    let record = R::build(input, steward_domain::id::new_v7(), None, state.clock.now())?;
    check_references(state, ctx, &record).await?;
    Ok(record)
}

pub async fn read<R: Resource + Serialize>(state: AppState, caller: Caller, id: &str) -> Result<Json<R>, ApiError> {
    caller.require(R::READ)?;
    let id = parse_id(id, R::NAME)?;
    state.store.get::<R>(&caller.ctx, id).await?.map(Json).ok_or_else(|| ApiError::not_found(R::NAME))
}

pub async fn update<R: Resource + Serialize>(
    state: AppState,
    caller: Caller,
    id: &str,
    body: Value,
) -> Result<Json<R>, ApiError> {
    caller.require(R::WRITE)?;
    let id = parse_id(id, R::NAME)?;
    let current = state.store.get::<R>(&caller.ctx, id).await?.ok_or_else(|| ApiError::not_found(R::NAME))?;
    let (body, mut errors) = without_read_only(body, R::READ_ONLY);
    let merged = match patch::apply(&current, &body, R::READ_ONLY) {
        Ok(merged) => merged,
        Err(patch::PatchError::Invalid(found)) => {
            for error in found.into_errors() {
                errors.add(error.field, error.message);
            }
            return Err(ApiError::Validation(errors));
        }
        Err(patch::PatchError::Internal(message)) => return Err(ApiError::Internal(anyhow::anyhow!(message))),
    };
    let now = state.clock.now();
    let record = build_checked(merged, errors, |input| R::build(input, id, Some(&current), now))?;
    check_references(&state, &caller.ctx, &record).await?;
    if !state.store.update(&caller.ctx, &record).await? {
        return Err(ApiError::not_found(R::NAME));
    }
    Ok(Json(record))
}

pub async fn remove<R: Resource>(state: AppState, caller: Caller, id: &str) -> Result<StatusCode, ApiError> {
    caller.require(R::WRITE)?;
    let id = parse_id(id, R::NAME)?;
    if state.store.delete::<R>(&caller.ctx, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(R::NAME))
    }
}
