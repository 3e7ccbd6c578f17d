//! `GET /api/v1/exports/{dataset}`: a dataset streamed in CSV, JSON, NDJSON or XLSX.
//!
//! Pages are read from the store in id order and handed to a blocking writer thread through a
//! bounded channel; the writer's output goes to the client in 64 KiB chunks through another.
//! Both channels are bounded, so memory stays flat whatever the size, and a client that stops
//! reading stops the export. XLSX cannot be sent before it is complete: it is written to a
//! temporary file first and then sent with its length. A failure mid-way aborts the response
//! (the client sees a broken transfer, never a short file that looks complete).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use steward_domain::{Event, Journey, Lead, Organization, Scope, Session, Timestamp, VisitorProfile};
use steward_export::{CsvRows, Dataset, DatasetName, Format, JsonColumns, JsonRecord, Writer};
use steward_store::records::decode_doc_in_place;
use steward_store::{
    Actor, ActorKind, AuditEntry, AuditQuery, Doc, DocKind, ListQuery, Record, Store, StoreExt, StoreResult, Target,
    TenantCtx, Value,
};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::audit;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use crate::subjects::Acting;

const PAGE: u32 = 1_000;
const JOURNEY_PAGE: u32 = 200;
const CHUNK: usize = 256 * 1024;

/// A dataset as the export engine reads it: pages in order from the store.
#[async_trait]
pub trait Exportable: Dataset + Send + Sync {
    const SCOPE: Scope;

    /// Sends every record of the window in order, a page at a time, until the end or until
    /// `pages` closes (the writer stopped; not an error here).
    async fn scan(
        store: Arc<dyn Store>,
        ctx: TenantCtx,
        window: ListQuery,
        audience: Audience,
        pages: mpsc::Sender<Vec<Self>>,
    ) -> anyhow::Result<()>;

    /// The dataset's columns read straight from its stored JSON, when it can be exported that
    /// way (see [`steward_export::body`]): CSV then skips building each typed record.
    fn json_columns() -> Option<&'static JsonColumns> {
        None
    }

    /// As [`Exportable::scan`], with each page rendered as CSV rows (and their count) from the
    /// stored JSON by [`Exportable::json_columns`], on the threads that open the bodies.
    async fn scan_csv(
        _store: Arc<dyn Store>,
        _ctx: TenantCtx,
        _window: ListQuery,
        _audience: Audience,
        _pages: mpsc::Sender<(Vec<u8>, u64)>,
    ) -> anyhow::Result<()> {
        anyhow::bail!("{} is not exported from its stored JSON", Self::NAME)
    }

    /// Rows and stored bytes in the period.
    async fn measure(store: &dyn Store, ctx: &TenantCtx, window: &ListQuery) -> StoreResult<(u64, u64)>;

    /// When the oldest record of the window was created.
    async fn first_created(store: &dyn Store, ctx: &TenantCtx, window: &ListQuery) -> StoreResult<Option<Timestamp>>;
}

/// When the oldest stored record of `kind` in the window was created.
async fn first_doc(
    store: &dyn Store,
    ctx: &TenantCtx,
    kind: DocKind,
    window: &ListQuery,
) -> StoreResult<Option<Timestamp>> {
    let docs = store.list_docs(ctx, kind, &ListQuery { limit: 1, ..window.clone() }).await?;
    Ok(docs.first().map(|doc| doc.created_at))
}

macro_rules! exportable_record {
    ($type:ty, $scope:expr) => {
        #[async_trait]
        impl Exportable for $type {
            const SCOPE: Scope = $scope;
            async fn scan(
                store: Arc<dyn Store>,
                ctx: TenantCtx,
                window: ListQuery,
                audience: Audience,
                pages: mpsc::Sender<Vec<Self>>,
            ) -> anyhow::Result<()> {
                scan_records(store, ctx, window, audience, pages).await
            }
            fn json_columns() -> Option<&'static JsonColumns> {
                static COLUMNS: std::sync::LazyLock<Option<JsonColumns>> =
                    std::sync::LazyLock::new(JsonColumns::of::<$type>);
                COLUMNS.as_ref()
            }
            async fn scan_csv(
                store: Arc<dyn Store>,
                ctx: TenantCtx,
                window: ListQuery,
                audience: Audience,
                pages: mpsc::Sender<(Vec<u8>, u64)>,
            ) -> anyhow::Result<()> {
                scan_records_csv::<Self>(store, ctx, window, audience, pages).await
            }
            async fn measure(store: &dyn Store, ctx: &TenantCtx, window: &ListQuery) -> StoreResult<(u64, u64)> {
                store.measure_docs(ctx, <$type as Record>::KIND, window).await
            }
            async fn first_created(
                store: &dyn Store,
                ctx: &TenantCtx,
                window: &ListQuery,
            ) -> StoreResult<Option<Timestamp>> {
                first_doc(store, ctx, <$type as Record>::KIND, window).await
            }
        }
    };
}

exportable_record!(Lead, Scope::LeadsRead);
exportable_record!(Organization, Scope::OrganizationsRead);
exportable_record!(VisitorProfile, Scope::VisitorsRead);

/// Sessions in id order, a page at a time, each with its events.
#[async_trait]
impl Exportable for Journey {
    const SCOPE: Scope = Scope::VisitorsRead;

    async fn scan(
        store: Arc<dyn Store>,
        ctx: TenantCtx,
        window: ListQuery,
        audience: Audience,
        pages: mpsc::Sender<Vec<Self>>,
    ) -> anyhow::Result<()> {
        let mut query = ListQuery { limit: JOURNEY_PAGE, ..window };
        let restricted = match audience {
            Audience::Export => restricted_visitors(store.as_ref(), &ctx).await?,
            Audience::Archive => HashSet::new(),
        };
        loop {
            let mut sessions: Vec<Session> = store.list(&ctx, &query).await?;
            let full = sessions.len() == JOURNEY_PAGE as usize;
            query.after = sessions.last().map(|s| s.id.into_uuid());
            sessions.retain(|session| !restricted.contains(session.visitor_profile_id.as_uuid()));
            let page = journeys(store.as_ref(), &ctx, sessions).await?;
            if page.is_empty() || pages.send(page).await.is_err() || !full {
                return Ok(());
            }
        }
    }

    async fn measure(store: &dyn Store, ctx: &TenantCtx, window: &ListQuery) -> StoreResult<(u64, u64)> {
        let (sessions, session_bytes) = store.measure_docs(ctx, DocKind::Session, window).await?;
        let (_, event_bytes) = store.measure_docs(ctx, DocKind::Event, window).await?;
        Ok((sessions, session_bytes + event_bytes))
    }

    async fn first_created(store: &dyn Store, ctx: &TenantCtx, window: &ListQuery) -> StoreResult<Option<Timestamp>> {
        first_doc(store, ctx, DocKind::Session, window).await
    }
}

/// The audit log in sequence order, its window on the entries' time (`at`). Reading it is not
/// itself an entry until the export ends, so an export never holds its own entry.
#[async_trait]
impl Exportable for AuditEntry {
    const SCOPE: Scope = Scope::AuditRead;

    async fn scan(
        store: Arc<dyn Store>,
        ctx: TenantCtx,
        window: ListQuery,
        _audience: Audience,
        pages: mpsc::Sender<Vec<Self>>,
    ) -> anyhow::Result<()> {
        let mut query = audit_window(&window, PAGE);
        loop {
            let page = store.audit_entries(&ctx, &query).await?;
            let full = page.len() == PAGE as usize;
            query.after_seq = page.last().map(|entry| entry.seq);
            if page.is_empty() || pages.send(page).await.is_err() || !full {
                return Ok(());
            }
        }
    }

    /// Counted from the stored rows without opening their sealed bodies; the bytes are those
    /// stored, as for the other datasets. The log has no count of its own, so this reads it once.
    async fn measure(store: &dyn Store, ctx: &TenantCtx, window: &ListQuery) -> StoreResult<(u64, u64)> {
        let mut query = audit_window(window, PAGE);
        let (mut rows, mut bytes) = (0_u64, 0_u64);
        loop {
            let page = store.list_audit(ctx, &query, false).await?;
            rows += page.len() as u64;
            bytes += page
                .iter()
                .map(|row| {
                    let text = row.action.len() + row.actor_kind.len() + row.actor_id.as_ref().map_or(0, String::len);
                    (text + row.body.len() + row.prev_hash.len() + row.hash.len() + 40) as u64
                })
                .sum::<u64>();
            query.after_seq = page.last().map(|row| row.seq);
            if page.len() < PAGE as usize {
                return Ok((rows, bytes));
            }
        }
    }

    async fn first_created(store: &dyn Store, ctx: &TenantCtx, window: &ListQuery) -> StoreResult<Option<Timestamp>> {
        let first = store.list_audit(ctx, &audit_window(window, 1), false).await?;
        Ok(first.first().map(|row| row.at))
    }
}

/// The audit query of an export window: its period on `at`, every action and actor.
fn audit_window(window: &ListQuery, limit: u32) -> AuditQuery {
    AuditQuery { limit, from: window.created_from, to: window.created_to, ..AuditQuery::default() }
}

/// Stored records read with the store's bulk scan and opened on a blocking thread of their own,
/// so reading, opening and writing each have a core's worth of time.
/// Who a scan is for. An export (and a report) leaves out the records whose processing is
/// restricted; the tenant's own archive (Data Act switching) keeps every record, restriction
/// marks included, since the controller's data must travel whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Export,
    Archive,
}

/// Records an export leaves out: those whose processing is restricted (GDPR Art. 18) appear only
/// in the person's own access archive.
pub trait Withheld {
    fn withheld(&self) -> bool;
    /// The same, read from the record's stored JSON.
    fn withheld_json(record: &JsonRecord<'_>) -> bool;
}

impl Withheld for Lead {
    fn withheld(&self) -> bool {
        self.restricted_at.is_some()
    }

    fn withheld_json(record: &JsonRecord<'_>) -> bool {
        record.is_set("restricted_at")
    }
}

impl Withheld for VisitorProfile {
    fn withheld(&self) -> bool {
        self.restricted_at.is_some()
    }

    fn withheld_json(record: &JsonRecord<'_>) -> bool {
        record.is_set("restricted_at")
    }
}

impl Withheld for Organization {
    fn withheld(&self) -> bool {
        false
    }

    fn withheld_json(_record: &JsonRecord<'_>) -> bool {
        false
    }
}

/// The tenant's visitor profiles whose processing is restricted: their journeys are withheld.
pub async fn restricted_visitors(store: &dyn Store, ctx: &TenantCtx) -> StoreResult<HashSet<Uuid>> {
    let mut query = ListQuery { limit: PAGE, equals: vec![("restricted", Value::Int(1))], ..ListQuery::default() };
    let mut found = HashSet::new();
    loop {
        let page = store.list_docs(ctx, DocKind::VisitorProfile, &query).await?;
        let full = page.len() == PAGE as usize;
        query.after = page.last().map(|doc| doc.id);
        found.extend(page.iter().map(|doc| doc.id));
        if !full {
            return Ok(found);
        }
    }
}

async fn scan_records<R: Record + Withheld + Send + 'static>(
    store: Arc<dyn Store>,
    ctx: TenantCtx,
    window: ListQuery,
    audience: Audience,
    pages: mpsc::Sender<Vec<R>>,
) -> anyhow::Result<()> {
    let keys = store.keys(&ctx)?;
    let open = move |mut page: Vec<Doc>| -> anyhow::Result<Vec<R>> {
        let mut records = Vec::with_capacity(page.len());
        for doc in &mut page {
            records.push(decode_doc_in_place::<R>(&ctx, &keys, R::KIND, doc)?);
        }
        if audience == Audience::Export {
            records.retain(|record| !record.withheld());
        }
        Ok(records)
    };
    scan_opened(store, ctx, R::KIND, window, open, pages).await
}

/// [`scan_records`] rendering CSV rows from the stored JSON (see [`Exportable::scan_csv`]).
async fn scan_records_csv<R: Exportable + Record + Withheld + Send + 'static>(
    store: Arc<dyn Store>,
    ctx: TenantCtx,
    window: ListQuery,
    audience: Audience,
    pages: mpsc::Sender<(Vec<u8>, u64)>,
) -> anyhow::Result<()> {
    let keys = store.keys(&ctx)?;
    let columns = R::json_columns().ok_or_else(|| anyhow::anyhow!("{} has no JSON columns", R::NAME))?;
    let open = move |mut page: Vec<Doc>| -> anyhow::Result<(Vec<u8>, u64)> {
        let mut rows = CsvRows::new(page.len() * 768);
        for doc in &mut page {
            let context = steward_store::codec::context(&ctx, R::KIND, &doc.id);
            let json = steward_store::codec::open_in_place(&mut doc.body, &keys, &context)?;
            let record = JsonRecord::parse(json)?;
            if audience == Audience::Export && R::withheld_json(&record) {
                continue;
            }
            rows.write(columns, &record)?;
        }
        Ok(rows.finish()?)
    };
    scan_opened(store, ctx, R::KIND, window, open, pages).await
}

/// Reads the window with the store's bulk scan and sends every page through `open` (decrypts,
/// parses, filters, perhaps renders) in order. Opening is the export's largest cost per row, so
/// two threads share it: page 0 to the first, page 1 to the second, and so on, each collected
/// back in turn.
async fn scan_opened<T: Send + 'static>(
    store: Arc<dyn Store>,
    ctx: TenantCtx,
    kind: DocKind,
    window: ListQuery,
    open: impl Fn(Vec<Doc>) -> anyhow::Result<T> + Send + Sync + 'static,
    pages: mpsc::Sender<T>,
) -> anyhow::Result<()> {
    let (docs, received) = mpsc::channel::<Vec<Doc>>(1);
    let opening = tokio::task::spawn_blocking(move || open_pages(received, &pages, &open));
    let scanned = store.scan_docs(&ctx, kind, window, docs).await;
    opening.await.map_err(|e| anyhow::anyhow!("export reader failed: {e}"))??;
    Ok(scanned?)
}

fn open_pages<T: Send>(
    mut received: mpsc::Receiver<Vec<Doc>>,
    pages: &mpsc::Sender<T>,
    open: &(impl Fn(Vec<Doc>) -> anyhow::Result<T> + Sync),
) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for _ in 0..2 {
            let (input, work) = std::sync::mpsc::sync_channel::<Vec<Doc>>(1);
            let (done, output) = std::sync::mpsc::sync_channel::<anyhow::Result<T>>(1);
            scope.spawn(move || {
                for page in work {
                    if done.send(open(page)).is_err() {
                        return;
                    }
                }
            });
            inputs.push(input);
            outputs.push(output);
        }
        // True while the writer still takes pages.
        let forward = |worker: usize| -> anyhow::Result<bool> {
            match outputs[worker].recv() {
                Ok(page) => Ok(pages.blocking_send(page?).is_ok()),
                Err(_) => anyhow::bail!("an export thread stopped"),
            }
        };
        let mut sent = 0_usize;
        while let Some(page) = received.blocking_recv() {
            if inputs[sent % 2].send(page).is_err() {
                anyhow::bail!("an export thread stopped");
            }
            sent += 1;
            // The page before this one is ready first, or soon: collect it while this one opens.
            if sent >= 2 && !forward(sent % 2)? {
                return Ok(());
            }
        }
        if sent >= 1 {
            forward((sent - 1) % 2)?;
        }
        Ok(())
    })
}

/// The sessions with their events in position order.
pub async fn journeys(store: &dyn Store, ctx: &TenantCtx, sessions: Vec<Session>) -> StoreResult<Vec<Journey>> {
    let ids: Vec<Value> = sessions.iter().map(|s| Value::Uuid(s.id.into_uuid())).collect();
    let mut by_session: HashMap<Uuid, Vec<Event>> = HashMap::with_capacity(sessions.len());
    let mut query = ListQuery { limit: PAGE, any_of: Some(("session_id", ids)), ..ListQuery::default() };
    loop {
        let events: Vec<Event> = store.list(ctx, &query).await?;
        let full = events.len() == PAGE as usize;
        query.after = events.last().map(|e| e.id.into_uuid());
        for event in events {
            by_session.entry(event.session_id.into_uuid()).or_default().push(event);
        }
        if !full {
            break;
        }
    }
    Ok(sessions
        .into_iter()
        .map(|session| {
            let mut events = by_session.remove(&session.id.into_uuid()).unwrap_or_default();
            events.sort_by_key(|e| (e.position, e.occurred_at));
            Journey { session, events }
        })
        .collect())
}

/// What to export: the format and the period of `created_at` (`to` exclusive).
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub format: Format,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl ExportRequest {
    pub fn from_uri(uri: &Uri) -> Result<Self, ApiError> {
        let mut request = Self { format: Format::Csv, from: None, to: None };
        for (key, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "format" => {
                    request.format = Format::parse(&value)
                        .ok_or_else(|| ApiError::bad_query("format", "must be one of csv, json, ndjson, xlsx"))?;
                }
                "from" => request.from = Some(time("from", &value)?),
                "to" => request.to = Some(time("to", &value)?),
                other => return Err(ApiError::bad_query(other, "is not known here; use format, from, to")),
            }
        }
        if let (Some(from), Some(to)) = (request.from, request.to)
            && from >= to
        {
            return Err(ApiError::bad_query("to", "must be later than from"));
        }
        Ok(request)
    }

    pub fn window(&self) -> ListQuery {
        ListQuery { created_from: self.from, created_to: self.to, ..ListQuery::default() }
    }
}

fn time(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse(text).map_err(|e| ApiError::bad_query(field, e.to_string()))
}

/// Streams one dataset in the asked format. CSV, JSON and NDJSON start at once; XLSX is sent
/// when complete. Without `from` and `to` the whole dataset is exported. Refused with
/// `export-too-large` when `from`–`to` spans more than the configured days (366) or the data
/// would pass the configured size (512 MiB): use an export job (`POST /api/v1/exports`) for those.
#[utoipa::path(
    get, path = "/api/v1/exports/{dataset}", tag = "exports",
    params(
        ("dataset" = String, Path, description = "leads, visitor-profiles, journeys, organizations, reports (every report by day; by default the last 30 days) or audit-log (entries in sequence order; from and to apply to their time)"),
        ("format" = Option<Format>, Query, description = "csv (default), json, ndjson or xlsx"),
        ("from" = Option<String>, Query, format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-", description = "RFC 3339 (years 1970 to 9999); records created at or after"),
        ("to" = Option<String>, Query, format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-", description = "RFC 3339 (years 1970 to 9999); records created before"),
    ),
    responses(
        (status = 200, description = "The export; `Content-Disposition` names the file", content(
            (String = "text/csv"),
            (Vec<serde_json::Value> = "application/json"),
            (String = "application/x-ndjson"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 401, description = "Missing or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks `export` or the dataset's read scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Past the period or size limit of streamed exports", body = Problem, content_type = "application/problem+json"),
    ),
    security(("oauth2" = ["export"]))
)]
pub async fn stream_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataset): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let name = DatasetName::parse(&dataset).ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no dataset {dataset:?}; export leads, visitor-profiles, journeys, organizations, reports or audit-log"
        ))
    })?;
    let request = ExportRequest::from_uri(&uri)?;
    let acting = Acting {
        actor: Actor { kind: ActorKind::Client, id: Some(caller.client_id.to_string()) },
        ip_network: caller.ip_network,
    };
    let result = match caller.require(Scope::Export).and_then(|()| caller.require(read_scope(name))) {
        Err(refused) => Err(refused),
        Ok(()) => stream_dataset(&state, caller.ctx, &acting, name, &request).await,
    };
    // A refusal by scope or limit is audited: who tried to take what out, and why not.
    if let Err(error @ (ApiError::Forbidden { .. } | ApiError::ExportTooLarge(_))) = &result {
        audit_refusal(&state, &caller.ctx, &acting, name, &request, &error.to_string()).await?;
    }
    result
}

/// The scope a client needs to read a dataset (besides `export` to take it out).
pub(crate) fn read_scope(dataset: DatasetName) -> Scope {
    match dataset {
        DatasetName::Leads => Scope::LeadsRead,
        DatasetName::Organizations => Scope::OrganizationsRead,
        DatasetName::VisitorProfiles | DatasetName::Journeys => Scope::VisitorsRead,
        DatasetName::Reports => Scope::ReportsRead,
        DatasetName::AuditLog => Scope::AuditRead,
    }
}

/// Audits a refused export as `export.refused` with the reason.
pub(crate) async fn audit_refusal(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    name: DatasetName,
    request: &ExportRequest,
    reason: &str,
) -> Result<(), ApiError> {
    let mut detail = audit_detail(name, request, None, false);
    detail["reason"] = serde_json::Value::String(reason.to_string());
    let target = Target { kind: name.to_string(), count: 0, ids: Vec::new() };
    audit::record(state, ctx, acting.draft(state.clock.now(), "export.refused", target, detail)).await?;
    Ok(())
}

/// Streams one dataset for whoever is acting (an API client or a console user), whose right to
/// it was checked by the caller; refused with `export-too-large` past the limits. The API and
/// the console both export through here, so both apply the same limits and audit the same way.
pub(crate) async fn stream_dataset(
    state: &AppState,
    ctx: TenantCtx,
    acting: &Acting,
    name: DatasetName,
    request: &ExportRequest,
) -> Result<Response, ApiError> {
    let (state, acting, request) = (state.clone(), acting.clone(), request.clone());
    match name {
        DatasetName::Leads => stream::<Lead>(state, ctx, acting, request).await,
        DatasetName::Organizations => stream::<Organization>(state, ctx, acting, request).await,
        DatasetName::VisitorProfiles => stream::<VisitorProfile>(state, ctx, acting, request).await,
        DatasetName::Journeys => stream::<Journey>(state, ctx, acting, request).await,
        DatasetName::Reports => {
            let response = super::reports::stream(state.clone(), &ctx, request.clone()).await?;
            let detail = audit_detail(name, &request, None, true);
            let target = Target { kind: name.to_string(), count: 0, ids: Vec::new() };
            audit::record(&state, &ctx, acting.draft(state.clock.now(), "export.streamed", target, detail)).await?;
            Ok(response)
        }
        DatasetName::AuditLog => stream::<AuditEntry>(state, ctx, acting, request).await,
    }
}

/// What an export entry of the audit log says: dataset, format, period, rows, completion.
pub fn audit_detail(
    name: DatasetName,
    request: &ExportRequest,
    rows: Option<u64>,
    completed: bool,
) -> serde_json::Value {
    serde_json::json!({
        "dataset": name.to_string(),
        "format": request.format.as_str(),
        "from": request.from,
        "to": request.to,
        "rows": rows,
        "completed": completed,
    })
}

/// Audits a streamed export once it has ended, whole or not.
async fn audit_streamed<R: Exportable>(
    state: &AppState,
    ctx: &TenantCtx,
    acting: &Acting,
    request: &ExportRequest,
    rows: u64,
    completed: bool,
) {
    let name = R::NAME;
    let detail = audit_detail(name, request, Some(rows), completed);
    let target = Target { kind: name.to_string(), count: rows, ids: Vec::new() };
    // `record` logs a failure; the response is already on its way.
    let _ = audit::record(state, ctx, acting.draft(state.clock.now(), "export.streamed", target, detail)).await;
}

async fn stream<R: Exportable>(
    state: AppState,
    ctx: TenantCtx,
    acting: Acting,
    request: ExportRequest,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    check_limits::<R>(&state, &ctx, &request).await?;
    tracing::info!(dataset = %R::NAME, format = %request.format, "export started");
    let format = request.format;
    let filename = format!("{}-{}.{}", R::NAME, state.clock.now().as_datetime().date(), format.as_str());
    let body = if request.format.streams() {
        let (chunks, receiver) = mpsc::channel::<std::io::Result<Bytes>>(8);
        tokio::spawn(async move {
            let sink = ChunkSink { chunks: chunks.clone(), buffer: Vec::with_capacity(CHUNK) };
            let rows = Arc::new(AtomicU64::new(0));
            let result = run::<R, _>(store, ctx, request.window(), request.format, sink, rows.clone()).await;
            let written = rows.load(Ordering::Relaxed);
            audit_streamed::<R>(&state, &ctx, &acting, &request, written, result.is_ok()).await;
            if let Err(error) = result {
                tracing::warn!(error = %error, "export aborted");
                let _ = chunks.send(Err(std::io::Error::other(error.to_string()))).await;
            }
        });
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
    } else {
        let file = tempfile::tempfile().map_err(|e| ApiError::Internal(e.into()))?;
        let rows = Arc::new(AtomicU64::new(0));
        let result = run::<R, _>(store, ctx, request.window(), request.format, file, rows.clone()).await;
        audit_streamed::<R>(&state, &ctx, &acting, &request, rows.load(Ordering::Relaxed), result.is_ok()).await;
        let file = result.map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
        let mut file = tokio::fs::File::from_std(file);
        tokio::io::AsyncSeekExt::rewind(&mut file).await.map_err(|e| ApiError::Internal(e.into()))?;
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, CHUNK))
    };
    Ok(attachment(body, format, &filename))
}

/// An export as a download: the format's media type, the file name, never cached.
pub(crate) fn attachment(body: Body, format: Format, filename: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why a streamed export is refused: its period or its size is past the configured limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exceeded {
    Period { days: i64, first: Timestamp, last: Timestamp, max_days: u32 },
    Size { rows: u64, mib: u64, max_mib: u64 },
}

/// Checks a streamed export against the configured period and size.
pub(crate) async fn exceeded<R: Exportable>(
    state: &AppState,
    ctx: &TenantCtx,
    request: &ExportRequest,
) -> StoreResult<Option<Exceeded>> {
    let limits = &state.settings.exports;
    let window = request.window();
    // The period limit bounds the window asked for; without from and to the whole dataset is
    // asked for, and only the size limit applies.
    let first = match (request.from, request.to) {
        (None, None) => None,
        (Some(from), _) => Some(from),
        (None, Some(_)) => R::first_created(state.store.as_ref(), ctx, &window).await?,
    };
    let last = request.to.unwrap_or_else(|| state.clock.now());
    if let Some(first) = first {
        let days = (last.as_datetime() - first.as_datetime()).whole_days();
        if days > i64::from(limits.console_max_days) {
            return Ok(Some(Exceeded::Period { days, first, last, max_days: limits.console_max_days }));
        }
    }
    let (rows, bytes) = R::measure(state.store.as_ref(), ctx, &window).await?;
    if bytes > limits.console_max_bytes {
        return Ok(Some(Exceeded::Size {
            rows,
            mib: bytes.div_ceil(1 << 20),
            max_mib: limits.console_max_bytes >> 20,
        }));
    }
    Ok(None)
}

/// Refuses a streamed export past the configured period or size, saying what to do instead.
pub(crate) async fn check_limits<R: Exportable>(
    state: &AppState,
    ctx: &TenantCtx,
    request: &ExportRequest,
) -> Result<(), ApiError> {
    match exceeded::<R>(state, ctx, request).await? {
        None => Ok(()),
        Some(Exceeded::Period { days, first, last, max_days }) => Err(ApiError::ExportTooLarge(format!(
            "this export covers {days} days ({first} to {last}); a streamed export covers at most {max_days} days. \
             Pass from and to at most {max_days} days apart, or start an export job with POST /api/v1/exports, which has no period limit"
        ))),
        Some(Exceeded::Size { rows, mib, max_mib }) => Err(ApiError::ExportTooLarge(format!(
            "this export of {rows} rows would be about {mib} MiB, above the {max_mib} MiB limit of streamed exports. \
             Narrow it with from and to, or start an export job with POST /api/v1/exports, which has no size limit"
        ))),
    }
}

/// [`exceeded`] for a dataset by name (reports have their own period limit and no size limit).
pub(crate) async fn exceeded_by_name(
    state: &AppState,
    ctx: &TenantCtx,
    name: DatasetName,
    request: &ExportRequest,
) -> StoreResult<Option<Exceeded>> {
    match name {
        DatasetName::Leads => exceeded::<Lead>(state, ctx, request).await,
        DatasetName::Organizations => exceeded::<Organization>(state, ctx, request).await,
        DatasetName::VisitorProfiles => exceeded::<VisitorProfile>(state, ctx, request).await,
        DatasetName::Journeys => exceeded::<Journey>(state, ctx, request).await,
        DatasetName::AuditLog => exceeded::<AuditEntry>(state, ctx, request).await,
        DatasetName::Reports => Ok(None),
    }
}

/// Reads every page of the window and writes it to `out` on a blocking thread, counting the
/// rows written in `rows`.
pub async fn run<R: Exportable, W: Write + Send + 'static>(
    store: Arc<dyn Store>,
    ctx: TenantCtx,
    window: ListQuery,
    format: Format,
    out: W,
    rows: Arc<AtomicU64>,
) -> anyhow::Result<W> {
    if format == Format::Csv && R::json_columns().is_some() {
        // Rows rendered from the stored JSON on the opening threads; here they are only copied.
        let (pages, mut receiver) = mpsc::channel::<(Vec<u8>, u64)>(1);
        let writer = tokio::task::spawn_blocking(move || -> anyhow::Result<W> {
            let mut writer = Writer::<W, R>::new(format, out)?;
            while let Some((bytes, count)) = receiver.blocking_recv() {
                writer.write_csv_rows(&bytes, count)?;
                rows.fetch_add(count, Ordering::Relaxed);
            }
            Ok(writer.finish()?)
        });
        let read_result = R::scan_csv(store, ctx, window, Audience::Export, pages).await;
        let written = writer.await.map_err(|e| anyhow::anyhow!("export writer failed: {e}"))?;
        read_result?;
        return written;
    }
    let (pages, mut receiver) = mpsc::channel::<Vec<R>>(1);
    let writer = tokio::task::spawn_blocking(move || -> anyhow::Result<W> {
        let mut writer = Writer::<W, R>::new(format, out)?;
        while let Some(page) = receiver.blocking_recv() {
            for record in &page {
                writer.write(record)?;
            }
            rows.fetch_add(page.len() as u64, Ordering::Relaxed);
        }
        Ok(writer.finish()?)
    });
    // When the writer stops early (the client went away), the scan ends and its error tells why.
    let read_result = R::scan(store, ctx, window, Audience::Export, pages).await;
    let written = writer.await.map_err(|e| anyhow::anyhow!("export writer failed: {e}"))?;
    read_result?;
    written
}

/// A `Write` that hands 64 KiB chunks to the response body; fails once the client is gone.
struct ChunkSink {
    chunks: mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChunkSink {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK)));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client closed the connection"))
    }
}

impl Write for ChunkSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
