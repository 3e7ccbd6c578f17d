//! The retention benchmark: one sweep of a tenant holding a million expired events (and their
//! sessions) beside fresh ones, against the single unbounded `DELETE` a simpler sweeper would
//! run, each on its own copy of the same database. Peak memory is the process's `VmHWM`, reset
//! before each side (`/proc/self/clear_refs`), so each peak is its own.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};
use steward_domain::journey::{Hit, HitContext};
use steward_domain::visitor::{Device, DeviceType};
use steward_domain::{EventType, IpNetwork, Timestamp, VisitorId, WebUrl};
use steward_server::{AppState, Settings, admin, open_store};
use steward_store::{DocRow, Record, StoreExt, TenantCtx, TenantKeys};

/// Events per visit, 15 seconds apart.
const EVENTS_PER_SESSION: usize = 50;
/// Rows per `insert_docs` while seeding: large, so seeding takes seconds, not minutes.
const SEED_CHUNK: usize = 50_000;

/// A line of `/proc/self/status` in KiB (`VmHWM`, `VmRSS`); 0 where there is none.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?.strip_prefix(':')?.trim().trim_end_matches("kB").trim().parse().ok()
            })
        })
        .unwrap_or(0)
}

/// Resets `VmHWM` to the current RSS (Linux 4.0+); false where that is not possible.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map(|m| mib(m.len() / 1024)).unwrap_or(0.0)
}

/// Sessions and events of `events` page views from `start` on, sealed as collection stores
/// them, inserted in large chunks.
async fn seed(
    store: &dyn steward_store::Store,
    ctx: &TenantCtx,
    keys: &TenantKeys,
    start: Timestamp,
    events: usize,
) -> anyhow::Result<()> {
    let context = HitContext {
        device: Device {
            kind: DeviceType::Desktop,
            os: Some("Windows".into()),
            browser: Some("Chrome".into()),
            language: Some("fi-FI".into()),
        },
        location: Default::default(),
        ip_network: IpNetwork::parse("203.0.113.0/24").ok(),
    };
    let (mut sessions, mut rows): (Vec<DocRow>, Vec<DocRow>) = (Vec::new(), Vec::with_capacity(SEED_CHUNK));
    for visit in 0..events.div_ceil(EVENTS_PER_SESSION) {
        let base = start.checked_add(time::Duration::seconds(visit as i64)).unwrap_or(start);
        let hits: Vec<Hit> = (0..EVENTS_PER_SESSION.min(events - visit * EVENTS_PER_SESSION))
            .map(|i| Hit {
                id: steward_domain::EventId::new(),
                occurred_at: base.checked_add(time::Duration::seconds(i as i64 * 15)).unwrap_or(base),
                kind: EventType::PageView,
                url: WebUrl::parse(&format!("https://shop.example/products/{}?utm_source=bench", i % 17)).ok(),
                page_title: Some(format!("Product {}", i % 17)),
                referrer_url: WebUrl::parse("https://www.google.com/").ok(),
                properties: Default::default(),
                context: context.clone(),
            })
            .collect();
        let placement = steward_domain::journey::place(VisitorId::new(), None, Default::default(), hits);
        for session in &placement.sessions_inserted {
            sessions.push(session.to_row(ctx, keys)?);
        }
        for event in &placement.events_inserted {
            rows.push(event.to_row(ctx, keys)?);
        }
        if rows.len() >= SEED_CHUNK {
            store.insert_docs(ctx, steward_store::DocKind::Event, &rows).await?;
            rows.clear();
        }
        if sessions.len() >= SEED_CHUNK {
            store.insert_docs(ctx, steward_store::DocKind::Session, &sessions).await?;
            sessions.clear();
        }
    }
    store.insert_docs(ctx, steward_store::DocKind::Event, &rows).await?;
    store.insert_docs(ctx, steward_store::DocKind::Session, &sessions).await?;
    Ok(())
}

/// Seeds `expired` events past the default journeys retention (395 days) and `fresh` ones from
/// ten days ago, copies the database, then times one `sweep_tenant` on one copy and one
/// `DELETE FROM events WHERE tenant_id = ? AND created_at < ?` on the other.
pub async fn sweep(expired: usize, fresh: usize) -> anyhow::Result<Value> {
    let root = tempfile::tempdir()?;
    let seed_settings = Settings { data_dir: root.path().to_path_buf(), ..Settings::default() };
    let store = open_store(&seed_settings).await?;
    let now = Timestamp::now();
    let tenant = admin::create_tenant(store.as_ref(), "Retention Oy", now).await?;
    let ctx = TenantCtx::new(tenant.id);
    let keys = store.keys(&ctx)?;
    let days_ago = |days: i64| now.checked_sub(time::Duration::days(days)).unwrap_or(now);
    let seeding = Instant::now();
    seed(store.as_ref(), &ctx, &keys, days_ago(420), expired).await?;
    seed(store.as_ref(), &ctx, &keys, days_ago(10), fresh).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    drop(store);

    // Two copies of the one seeded database, written the same way.
    let (swept_db, baseline_db) = (root.path().join("swept.db"), root.path().join("baseline.db"));
    {
        let seeded = rusqlite::Connection::open(root.path().join("steward.db"))?;
        for copy in [&swept_db, &baseline_db] {
            seeded.execute("VACUUM INTO ?1", [copy.display().to_string()])?;
        }
    }
    let db_mib = file_mib(&swept_db);

    let settings = Settings { database_url: format!("sqlite://{}", swept_db.display()), ..seed_settings };
    let state = AppState::new(open_store(&settings).await?, settings);
    let reset = reset_peak();
    let rss_before = status_kib("VmRSS");
    let started = Instant::now();
    let report = steward_server::retention::sweep_tenant(&state, &ctx).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let sweep_seconds = started.elapsed().as_secs_f64();
    let sweep_peak = status_kib("VmHWM");
    let sweep_wal = file_mib(&root.path().join("swept.db-wal"));
    let remaining_events = state.store.count_docs(&ctx, steward_store::DocKind::Event).await?;
    drop(state);

    let baseline = rusqlite::Connection::open(&baseline_db)?;
    baseline.pragma_update(None, "journal_mode", "WAL")?;
    baseline.pragma_update(None, "synchronous", "NORMAL")?;
    // The server's page cache, so both sides keep the same share of the tables in memory.
    baseline.pragma_update(None, "cache_size", "-32768")?;
    let cutoff = report.cutoffs.get("journeys").copied().unwrap_or(now);
    reset_peak();
    let baseline_rss_before = status_kib("VmRSS");
    let started = Instant::now();
    let baseline_rows = baseline.execute(
        "DELETE FROM events WHERE tenant_id = ?1 AND created_at < ?2",
        rusqlite::params![ctx.tenant_id().into_uuid().as_bytes().to_vec(), cutoff.unix_micros()],
    )?;
    let baseline_seconds = started.elapsed().as_secs_f64();
    let baseline_peak = status_kib("VmHWM");
    let baseline_wal = file_mib(&root.path().join("baseline.db-wal"));

    let events = report.deleted.get("events").copied().unwrap_or(0);
    Ok(json!({
        "expired_events": expired, "fresh_events": fresh, "database_mib": db_mib, "seed_seconds": seed_seconds,
        "peak_reset": reset,
        "sweep": {
            "deleted": report.deleted, "batches": report.batches, "seconds": sweep_seconds,
            "rows_per_s": report.total as f64 / sweep_seconds, "events_per_s": events as f64 / sweep_seconds,
            "rss_before_mib": mib(rss_before), "peak_rss_mib": mib(sweep_peak),
            "peak_growth_mib": mib(sweep_peak.saturating_sub(rss_before)), "wal_mib_after": sweep_wal,
            "events_left": remaining_events,
        },
        "baseline_single_delete": {
            "deleted_events": baseline_rows, "seconds": baseline_seconds,
            "rows_per_s": baseline_rows as f64 / baseline_seconds,
            "rss_before_mib": mib(baseline_rss_before), "peak_rss_mib": mib(baseline_peak),
            "peak_growth_mib": mib(baseline_peak.saturating_sub(baseline_rss_before)), "wal_mib_after": baseline_wal,
        },
    }))
}

/// Builds the tenant archive (every dataset in NDJSON and CSV, zipped) of a tenant holding
/// `events` events (with their sessions) and `leads` leads, in a temporary SQLite database;
/// prints its duration, size and the peak memory growth while it is written.
pub async fn archive(events: usize, leads: usize) -> anyhow::Result<Value> {
    let root = tempfile::tempdir()?;
    let settings = Settings { data_dir: root.path().to_path_buf(), ..Settings::default() };
    let store = open_store(&settings).await?;
    let now = Timestamp::now();
    let tenant = admin::create_tenant(store.as_ref(), "Archive Oy", now).await?;
    let ctx = TenantCtx::new(tenant.id);
    let keys = store.keys(&ctx)?;
    let seeding = Instant::now();
    seed(store.as_ref(), &ctx, &keys, now.checked_sub(time::Duration::days(30)).unwrap_or(now), events).await?;
    let generated: Vec<steward_domain::Lead> =
        steward_demo::lead_stream(&steward_demo::DemoConfig::demo(now), leads).collect();
    for chunk in generated.chunks(SEED_CHUNK) {
        store.insert(&ctx, chunk).await?;
    }
    drop(generated);
    let seed_seconds = seeding.elapsed().as_secs_f64();
    let db_mib = file_mib(&root.path().join("steward.db"));
    let state = AppState::new(store, settings);
    let reset = reset_peak();
    let rss_before = status_kib("VmRSS");
    let started = Instant::now();
    let summary = steward_server::tenant_archive::build(&state, &ctx, "archives/bench/archive.zip").await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM");
    let rows: serde_json::Map<String, Value> =
        summary.files.iter().filter_map(|file| Some((file.path.clone(), json!(file.rows?)))).collect();
    Ok(json!({
        "events": events, "leads": leads, "database_mib": db_mib, "seed_seconds": seed_seconds, "peak_reset": reset,
        "archive": {
            "seconds": seconds, "zip_mib": mib(summary.bytes / 1024), "rows": rows,
            "rss_before_mib": mib(rss_before), "peak_rss_mib": mib(peak),
            "peak_growth_mib": mib(peak.saturating_sub(rss_before)),
        },
    }))
}
