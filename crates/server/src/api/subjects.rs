//! `/api/v1/data-subjects` and `/api/v1/data-subject-requests`: finding everything held on a
//! person, and the requests the controller answers (see [`crate::subjects`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use steward_domain::subject::{
    RectificationInput, RequestKind, RequestOrigin, RequestStatus, SubjectInput, SubjectRequest,
};
use steward_domain::{Scope, Timestamp, ValidationErrors};
use steward_store::{Actor, ActorKind, AuditDraft, StoreExt, Target, TenantCtx, Value};

use super::common::{JsonBody, ListParams, Page, encode_cursor, from_json, page_response};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use crate::subjects::{self, Acting, Person};

pub fn acting(caller: &Caller) -> Acting {
    Acting {
        actor: Actor { kind: ActorKind::Client, id: Some(caller.client_id.to_string()) },
        ip_network: caller.ip_network,
    }
}

/// Everything held on one person, with counts per store.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonAnswer {
    pub counts: std::collections::BTreeMap<String, u64>,
    #[serde(flatten)]
    pub person: Person,
}

/// Finds every record held on one person by email, phone, contact id or visitor id (several
/// narrow it to the same person's records across them): leads, visitor profiles, sessions with
/// their events, organization contact entries, earlier requests and the audit entries naming
/// them. The lookup itself is audited (without the identifiers).
#[utoipa::path(
    get, path = "/api/v1/data-subjects", tag = "data-subjects",
    params(
        ("email" = Option<String>, Query, description = "An email address"),
        ("phone" = Option<String>, Query, description = "A phone number in international form"),
        ("contact_id" = Option<String>, Query, description = "The tenant's own contact id"),
        ("visitor_id" = Option<String>, Query, description = "A visitor id from the tracker"),
    ),
    responses(
        (status = 200, description = "Everything held on the person", body = PersonAnswer),
        (status = 422, description = "No identifier, or a malformed one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks data-subjects", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["data-subjects"]))
)]
pub async fn find_data_subject(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<PersonAnswer>, ApiError> {
    caller.require(Scope::DataSubjects)?;
    let mut input = SubjectInput::default();
    for (key, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        let value = Some(value.into_owned());
        match key.as_ref() {
            "email" => input.email = value,
            "phone" => input.phone = value,
            "contact_id" => input.contact_id = value,
            "visitor_id" => input.visitor_id = value,
            other => {
                return Err(ApiError::bad_query(other, "is not known here; use email, phone, contact_id, visitor_id"));
            }
        }
    }
    let subject = input.validate().map_err(ApiError::InvalidQuery)?;
    let store = state.store.as_ref();
    let person = subjects::with_audit(store, &caller.ctx, subjects::find(store, &caller.ctx, &subject).await?).await?;
    let counts = person.counts();
    let now = state.clock.now();
    let target = Target { kind: "data_subject".into(), count: counts.values().sum(), ids: Vec::new() };
    let detail = serde_json::json!({ "by": identifier_names(&subject), "counts": counts });
    crate::api::audit::record(
        &state,
        &caller.ctx,
        acting(&caller).draft(now, "data_subject.looked_up", target, detail),
    )
    .await?;
    Ok(Json(PersonAnswer { counts, person }))
}

fn identifier_names(subject: &steward_domain::subject::Subject) -> Vec<&'static str> {
    let mut names = Vec::new();
    if subject.email.is_some() {
        names.push("email");
    }
    if subject.phone.is_some() {
        names.push("phone");
    }
    if subject.contact_id.is_some() {
        names.push("contact_id");
    }
    if subject.visitor_id.is_some() {
        names.push("visitor_id");
    }
    names
}

/// A request as the controller records it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    /// access, rectification, erasure, restriction or objection.
    #[schema(value_type = RequestKind, required)]
    pub kind: Option<String>,
    /// Who the request is about: at least one identifier.
    pub subject: Option<SubjectInput>,
    /// The corrected fields of a rectification.
    pub changes: Option<RectificationInput>,
    /// When the person's request arrived (RFC 3339); now when absent. The deadline runs from it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub received_at: Option<String>,
    /// A reference (a ticket number); not for personal data.
    pub note: Option<String>,
    /// Carry it out now (the default), or record it as pending (e.g. while the person's identity
    /// is checked) and carry it out later with `POST …/{id}/execute`.
    pub execute: Option<bool>,
}

impl RequestInput {
    pub fn validate(self, origin: RequestOrigin, now: Timestamp) -> Result<(SubjectRequest, bool), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let kind = match self.kind {
            Some(kind) => errors.check("kind", Some(kind), |t| RequestKind::parse(&t)),
            None => {
                errors.add("kind", "is required: access, rectification, erasure, restriction or objection");
                None
            }
        };
        let subject = match self.subject {
            Some(subject) => errors.nested("subject", Some(subject.validate())),
            None => {
                errors.add("subject", "is required: give at least one of email, phone, contact_id, visitor_id");
                None
            }
        };
        let changes = errors.nested("changes", self.changes.map(RectificationInput::validate));
        match (kind, &changes) {
            (Some(RequestKind::Rectification), None) if errors.is_empty() => {
                errors.add("changes", "a rectification names the corrected fields")
            }
            (Some(kind), Some(_)) if kind != RequestKind::Rectification => {
                errors.add("changes", "only a rectification takes changes")
            }
            _ => {}
        }
        let received_at = errors.check("received_at", self.received_at, |t| Timestamp::parse(&t));
        if received_at.is_some_and(|at| at > now) {
            errors.add("received_at", "is in the future");
        }
        let note = errors.check("note", steward_domain::text::nonblank(self.note), |t| {
            steward_domain::text::line(t, steward_domain::subject::MAX_NOTE)
        });
        let execute = self.execute.unwrap_or(true);
        match (kind, subject) {
            (Some(kind), Some(subject)) if errors.is_empty() => {
                let mut request = SubjectRequest::new(kind, origin, subject, changes, received_at.unwrap_or(now), now);
                request.note = note;
                Ok((request, execute))
            }
            _ => Err(errors),
        }
    }
}

/// Records a data-subject request and, unless `execute` is false, carries it out at once in
/// every store: the answer holds the completed request with its report (counts per store; for
/// access, the archive to download). Due one month after `received_at`.
#[utoipa::path(
    post, path = "/api/v1/data-subject-requests", tag = "data-subjects",
    request_body = RequestInput,
    responses(
        (status = 201, description = "Recorded (and carried out); `Location` names it", body = SubjectRequest),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks data-subjects", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["data-subjects"]))
)]
pub async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require(Scope::DataSubjects)?;
    let input: RequestInput = from_json(body)?;
    let now = state.clock.now();
    let (mut request, execute) = input.validate(RequestOrigin::Controller, now).map_err(ApiError::Validation)?;
    let acting = acting(&caller);
    request.step(now, "received", acting.step_actor(), None);
    if execute {
        subjects::execute(&state, &caller.ctx, &mut request, &acting, false).await?;
    } else {
        subjects::record_pending(
            state.store.as_ref(),
            &caller.ctx,
            &mut request,
            &acting,
            "subject_request.received",
            now,
        )
        .await?;
    }
    let location = format!("/api/v1/data-subject-requests/{}", request.id);
    let mut response = (StatusCode::CREATED, Json(request.public())).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The tenant's requests, oldest first, by `status` (pending, completed, rejected) and `kind`.
#[utoipa::path(
    get, path = "/api/v1/data-subject-requests", tag = "data-subjects",
    params(
        ("status" = Option<RequestStatus>, Query, description = "pending, completed or rejected"),
        ("kind" = Option<RequestKind>, Query, description = "access, rectification, erasure, restriction or objection"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, pattern = r"^[A-Za-z0-9_-]{21}[AQgw]$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of requests", body = Page<SubjectRequest>),
        (status = 422, description = "Bad or unknown query parameters, each named", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks data-subjects", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["data-subjects"]))
)]
pub async fn list_requests(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    caller.require(Scope::DataSubjects)?;
    let (params, pairs) = ListParams::from_uri(&uri, &["status", "kind"])?;
    let mut query = params.to_query()?;
    if let Some(status) = pairs.get("status") {
        let status = RequestStatus::parse(status).map_err(|e| ApiError::bad_query("status", e))?;
        query.equals.push(("status", Value::Text(status.as_str().into())));
    }
    let kind = match pairs.get("kind") {
        Some(kind) => Some(RequestKind::parse(kind).map_err(|e| ApiError::bad_query("kind", e))?),
        None => None,
    };
    let limit = query.limit;
    // Kind is inside the sealed body: read pages until one more than a page matches.
    let mut data: Vec<SubjectRequest> = Vec::new();
    query.limit = steward_store::doc::MAX_PAGE;
    loop {
        let page: Vec<SubjectRequest> = state.store.list(&caller.ctx, &query).await?;
        let full = page.len() == steward_store::doc::MAX_PAGE as usize;
        query.after = page.last().map(|r| r.id.into_uuid());
        data.extend(page.into_iter().filter(|r| kind.is_none_or(|kind| r.kind == kind)).map(SubjectRequest::public));
        if data.len() > limit as usize || !full {
            break;
        }
    }
    data.truncate(limit as usize + 1);
    Ok(page_response(data, limit, |last| encode_cursor(last.id.into_uuid()), pairs, &uri))
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<SubjectRequest, ApiError> {
    let id = decode_id(id)?;
    state.store.get::<SubjectRequest>(&caller.ctx, id).await?.ok_or_else(|| ApiError::not_found("data-subject request"))
}

fn decode_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    steward_domain::id::parse_v7(id).map_err(|_| ApiError::not_found("data-subject request"))
}

/// One request: its deadline, history and report.
#[utoipa::path(
    get, path = "/api/v1/data-subject-requests/{id}", tag = "data-subjects",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request", body = SubjectRequest),
        (status = 404, description = "No such request for this tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["data-subjects"]))
)]
pub async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubjectRequest>, ApiError> {
    caller.require(Scope::DataSubjects)?;
    Ok(Json(load(&state, &caller, &id).await?.public()))
}

fn pending(request: &SubjectRequest) -> Result<(), ApiError> {
    if request.status == RequestStatus::Pending {
        Ok(())
    } else {
        Err(ApiError::Conflict(format!("the request is {} already", request.status.as_str()), Vec::new()))
    }
}

/// Carries out a pending request (one recorded with `execute: false`, or forwarded by the
/// service provider).
#[utoipa::path(
    post, path = "/api/v1/data-subject-requests/{id}/execute", tag = "data-subjects",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, description = "Completed, with its report", body = SubjectRequest),
        (status = 409, description = "Not pending", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["data-subjects"]))
)]
pub async fn execute_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubjectRequest>, ApiError> {
    caller.require(Scope::DataSubjects)?;
    let mut request = load(&state, &caller, &id).await?;
    pending(&request)?;
    subjects::execute(&state, &caller.ctx, &mut request, &acting(&caller), true).await?;
    Ok(Json(request.public()))
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendInput {
    /// 1 or 2.
    #[schema(value_type = u8, required, minimum = 1, maximum = 2)]
    #[serde(default, deserialize_with = "super::common::whole_number")]
    pub months: Option<u8>,
    /// Why more time is needed; told to the person (Art. 12(3)). One line of at most 2,000
    /// characters.
    #[schema(value_type = String, required, max_length = 2000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub reason: Option<String>,
}

/// Extends a pending request's deadline once, by one or two months, within its first month.
#[utoipa::path(
    post, path = "/api/v1/data-subject-requests/{id}/extend", tag = "data-subjects",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body = ExtendInput,
    responses(
        (status = 200, description = "The new deadline", body = SubjectRequest),
        (status = 409, description = "Not pending, extended already, or past its first month", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad months or no reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["data-subjects"]))
)]
pub async fn extend_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<SubjectRequest>, ApiError> {
    caller.require(Scope::DataSubjects)?;
    let input: ExtendInput = from_json(body)?;
    let mut request = load(&state, &caller, &id).await?;
    extend(&state, &caller.ctx, &acting(&caller), &mut request, input).await?;
    Ok(Json(request.public()))
}

/// Extends a request's deadline by one or two months with the reason the person is told
/// (Art. 12(3)); audited as `subject_request.extended`. Shared by the API and the console.
pub(crate) async fn extend(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    request: &mut SubjectRequest,
    input: ExtendInput,
) -> Result<(), ApiError> {
    let mut errors = ValidationErrors::default();
    let months = input.months.unwrap_or(0);
    if !(1..=2).contains(&months) {
        errors.add("months", "is 1 or 2");
    }
    let reason = required_reason(errors, input.reason, "the person is told why the answer takes longer")?;
    let now = state.clock.now();
    request.extend(months, reason.clone(), now).map_err(|detail| ApiError::Conflict(detail, Vec::new()))?;
    request.step(now, "extended", acting.step_actor(), Some(reason));
    let target = Target { kind: "subject_request".into(), count: 1, ids: vec![request.id.into_uuid()] };
    let detail = serde_json::json!({ "request": request.id, "months": months, "due_at": request.due_at });
    save(state, ctx, request, &acting.draft(now, "subject_request.extended", target, detail)).await?;
    Ok(())
}

/// A reason the person is told: required, one line; reported with the other `errors`.
fn required_reason(mut errors: ValidationErrors, reason: Option<String>, why: &str) -> Result<String, ApiError> {
    let reason = steward_domain::text::nonblank(reason);
    if reason.is_none() {
        errors.add("reason", format!("is required: {why}"));
    }
    let reason = errors.check("reason", reason, |t| steward_domain::text::line(t, steward_domain::subject::MAX_NOTE));
    errors.finish(|| reason.unwrap_or_default()).map_err(ApiError::Validation)
}

/// Saves the request with the audit entry recording the change, in one transaction.
async fn save(state: &AppState, ctx: &TenantCtx, request: &SubjectRequest, entry: &AuditDraft) -> Result<(), ApiError> {
    if state.store.update_audited(ctx, request, std::slice::from_ref(entry)).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("data-subject request"))
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectInput {
    /// Why (e.g. manifestly unfounded or excessive, Art. 12(5); identity not confirmed). One
    /// line of at most 2,000 characters.
    #[schema(value_type = String, required, max_length = 2000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub reason: Option<String>,
}

/// Rejects a pending request with the reason the person is told.
#[utoipa::path(
    post, path = "/api/v1/data-subject-requests/{id}/reject", tag = "data-subjects",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body = RejectInput,
    responses(
        (status = 200, description = "Rejected", body = SubjectRequest),
        (status = 409, description = "Not pending", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["data-subjects"]))
)]
pub async fn reject_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<SubjectRequest>, ApiError> {
    caller.require(Scope::DataSubjects)?;
    let input: RejectInput = from_json(body)?;
    let mut request = load(&state, &caller, &id).await?;
    reject(&state, &caller.ctx, &acting(&caller), &mut request, input).await?;
    Ok(Json(request.public()))
}

/// Rejects a pending request with the reason the person is told; audited as
/// `subject_request.rejected`. Shared by the API and the console.
pub(crate) async fn reject(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    request: &mut SubjectRequest,
    input: RejectInput,
) -> Result<(), ApiError> {
    let reason = required_reason(ValidationErrors::default(), input.reason, "the person is told why")?;
    pending(request)?;
    let now = state.clock.now();
    request.step(now, "rejected", acting.step_actor(), Some(reason));
    request.reject(now);
    let target = Target { kind: "subject_request".into(), count: 1, ids: vec![request.id.into_uuid()] };
    let detail = serde_json::json!({ "request": request.id, "kind": request.kind.as_str() });
    save(state, ctx, request, &acting.draft(now, "subject_request.rejected", target, detail)).await?;
    Ok(())
}

/// The archive of an answered access request: a ZIP of every record in JSON and CSV, the
/// datasets' JSON Schemas, a summary to read, and SHA-256 sums of every file.
#[utoipa::path(
    get, path = "/api/v1/data-subject-requests/{id}/archive", tag = "data-subjects",
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The ZIP archive", content_type = "application/zip"),
        (status = 404, description = "No such request, or not an access request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not answered yet", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The archive expired", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["data-subjects"]))
)]
pub async fn download_archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::DataSubjects)?;
    let request = load(&state, &caller, &id).await?;
    archive_response(&state, &caller.ctx, &acting(&caller), &request).await
}

/// The access archive of a request as a download, audited as downloaded by `acting`; shared by
/// the API and the console.
pub(crate) async fn archive_response(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    request: &SubjectRequest,
) -> Result<Response, ApiError> {
    if request.kind != RequestKind::Access {
        return Err(ApiError::NotFound(format!(
            "request {} is a {} request; only access requests have an archive",
            request.id,
            request.kind.as_str()
        )));
    }
    let Some(archive) = request.report.as_ref().and_then(|report| report.archive.clone()) else {
        if request.status == RequestStatus::Completed {
            return Err(ApiError::Gone(format!(
                "the archive of request {} was deleted when the person's data was erased",
                request.id
            )));
        }
        return Err(ApiError::Conflict(
            format!(
                "request {} is {}; its archive is made when it is carried out",
                request.id,
                request.status.as_str()
            ),
            Vec::new(),
        ));
    };
    if archive.expires_at <= state.clock.now() {
        return Err(ApiError::Gone(format!(
            "the archive of request {} expired at {}; record a new access request",
            request.id, archive.expires_at
        )));
    }
    let file = crate::api::files::open_sealed(state, ctx, &archive.key)
        .await?
        .ok_or_else(|| ApiError::Gone(format!("the archive of request {} is no longer stored", request.id)))?;
    let length = file.len();
    let now = state.clock.now();
    let target = Target { kind: "subject_request".into(), count: 1, ids: vec![request.id.into_uuid()] };
    let detail = serde_json::json!({ "request": request.id, "bytes": length, "sha256": archive.sha256 });
    crate::api::audit::record(state, ctx, acting.draft(now, "subject_request.archive_downloaded", target, detail))
        .await?;
    let body = crate::api::files::plaintext_body(file, 0, length);
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", archive.sha256)) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"access-{}.zip\"", request.id)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
