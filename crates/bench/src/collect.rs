//! The collection benchmark's two sides: a load process posting batches to `/collect` over
//! loopback, and the raw batched insert of the same event rows into SQLite as the baseline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_domain::journey::{Hit, HitContext};
use steward_domain::visitor::{Device, DeviceType};
use steward_domain::{EventType, IpNetwork, Timestamp, VisitorId, WebUrl};
use steward_store::{DocKind, Record, StoreExt, TenantCtx};

/// A visit every 43.5 minutes per visitor (50 events 15 s apart, then a pause of more than
/// 30 minutes), so every batch is one new session of a returning visitor, as on a real site.
const EVENT_STEP: i64 = 15;
const VISIT_STEP: i64 = 50 * EVENT_STEP + 31 * 60;

pub struct Load {
    pub url: String,
    pub site_key: String,
    pub seconds: u64,
    pub connections: usize,
    pub batch: usize,
    pub visitors_per_connection: usize,
}

pub fn body(site_key: &str, visitor: &str, base: Timestamp, visit: i64, batch: usize) -> String {
    let events: Vec<Value> = (0..batch as i64)
        .map(|i| {
            let at = base.checked_add(time::Duration::seconds(visit * VISIT_STEP + i * EVENT_STEP)).unwrap_or(base);
            json!({"type": "page_view", "occurred_at": at.to_rfc3339(), "title": format!("Product {}", i % 17),
                "url": format!("https://shop.example/products/{}?utm_source=bench", i % 17),
                "referrer": "https://www.google.com/"})
        })
        .collect();
    json!({"site_key": site_key, "visitor_id": visitor, "language": "fi-FI", "events": events}).to_string()
}

/// Posts batches from `connections` concurrent clients for `seconds`; prints events/s and
/// latency percentiles. Each client cycles through visitors of its own.
pub async fn load(load: Load) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(load.connections).build()?;
    // Far enough back that a whole run of visits stays in the accepted 24 hours.
    let base = Timestamp::now().checked_sub(time::Duration::hours(23)).unwrap_or(Timestamp::now());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..load.connections {
        let (http, stop, url) = (http.clone(), stop.clone(), format!("{}/collect", load.url));
        let (site_key, batch, visitors) = (load.site_key.clone(), load.batch, load.visitors_per_connection);
        tasks.push(tokio::spawn(async move {
            let ids: Vec<String> = (0..visitors).map(|_| VisitorId::new().to_string()).collect();
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut round = 0i64;
            'run: loop {
                for id in &ids {
                    if stop.load(Ordering::Relaxed) {
                        break 'run;
                    }
                    let payload = body(&site_key, id, base, round, batch);
                    let sent = Instant::now();
                    let response = http.post(&url).header("content-type", "text/plain").body(payload).send().await;
                    let ok = matches!(&response, Ok(r) if r.status() == 200);
                    if let Ok(response) = response {
                        let _ = response.bytes().await;
                    }
                    if ok { latencies.push(sent.elapsed()) } else { errors += 1 }
                }
                round += 1;
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(load.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut own, failed) = task.await?;
        latencies.append(&mut own);
        errors += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1_000.0)
    };
    let requests = latencies.len();
    Ok(json!({
        "requests": requests, "errors": errors, "seconds": elapsed,
        "events_per_s": (requests * load.batch) as f64 / elapsed,
        "p50_ms": percentile(0.50), "p99_ms": percentile(0.99), "max_ms": percentile(1.0),
    }))
}

/// The rows collection writes for page views, encoded and sealed as collection does, inserted
/// with one prepared statement in transactions of 10,000: the fastest way into the same table.
pub async fn raw(data_dir: std::path::PathBuf, rows: usize) -> anyhow::Result<Value> {
    let settings = steward_server::Settings { data_dir: data_dir.clone(), ..steward_server::Settings::default() };
    let store = steward_server::open_store(&settings).await?;
    let tenant = steward_server::admin::create_tenant(store.as_ref(), "Raw Oy", Timestamp::now()).await?;
    let ctx = TenantCtx::new(tenant.id);
    let keys = store.keys(&ctx)?;
    let base = Timestamp::now().checked_sub(time::Duration::hours(23)).unwrap_or(Timestamp::now());
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
    let mut encoded = Vec::with_capacity(rows);
    let visitors = rows.div_ceil(50);
    for visitor in 0..visitors {
        let hits: Vec<Hit> = (0..50.min(rows - visitor * 50))
            .map(|i| Hit {
                id: steward_domain::EventId::new(),
                occurred_at: base.checked_add(time::Duration::seconds(i as i64 * EVENT_STEP)).unwrap_or(base),
                kind: EventType::PageView,
                url: WebUrl::parse(&format!("https://shop.example/products/{}?utm_source=bench", i % 17)).ok(),
                page_title: Some(format!("Product {}", i % 17)),
                referrer_url: WebUrl::parse("https://www.google.com/").ok(),
                properties: Default::default(),
                context: context.clone(),
            })
            .collect();
        let placement = steward_domain::journey::place(VisitorId::new(), None, Default::default(), hits);
        for event in &placement.events_inserted {
            encoded.push(event.to_row(&ctx, &keys)?);
        }
    }
    drop(store);
    let mut connection = rusqlite::Connection::open(data_dir.join("steward.db"))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    // The server's page cache, so both sides keep the same share of the indexes in memory.
    connection.pragma_update(None, "cache_size", "-32768")?;
    let columns: Vec<&str> = DocKind::Event.columns().iter().map(|(name, _)| *name).collect();
    let sql = format!(
        "INSERT INTO events (tenant_id, id, created_at, updated_at, {}, body) VALUES (?, ?, ?, ?, {}, ?)",
        columns.join(", "),
        vec!["?"; columns.len()].join(", ")
    );
    let tenant_id = ctx.tenant_id().into_uuid();
    let started = Instant::now();
    for chunk in encoded.chunks(10_000) {
        let transaction = connection.transaction()?;
        {
            let mut statement = transaction.prepare_cached(&sql)?;
            for row in chunk {
                use rusqlite::types::ValueRef;
                let (created, updated) = (row.created_at.unix_micros(), row.updated_at.unix_micros());
                let mut params: Vec<ValueRef<'_>> = vec![
                    ValueRef::Blob(tenant_id.as_bytes()),
                    ValueRef::Blob(row.id.as_bytes()),
                    ValueRef::Integer(created),
                    ValueRef::Integer(updated),
                ];
                for value in &row.columns {
                    params.push(match value {
                        steward_store::Value::Uuid(id) => ValueRef::Blob(id.as_bytes()),
                        steward_store::Value::Int(n) => ValueRef::Integer(*n),
                        steward_store::Value::Text(text) => ValueRef::Text(text.as_bytes()),
                        steward_store::Value::Bytes(bytes) => ValueRef::Blob(bytes),
                        steward_store::Value::Time(at) => ValueRef::Integer(at.unix_micros()),
                        steward_store::Value::Null | steward_store::Value::NullOf(_) => ValueRef::Null,
                    });
                }
                params.push(ValueRef::Blob(&row.body));
                statement.execute(rusqlite::params_from_iter(
                    params.into_iter().map(rusqlite::types::ToSqlOutput::Borrowed),
                ))?;
            }
        }
        transaction.commit()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes: usize = encoded.iter().map(|row| row.body.len()).sum();
    Ok(
        json!({"rows": rows, "seconds": seconds, "rows_per_s": rows as f64 / seconds, "body_bytes_avg": bytes / rows.max(1)}),
    )
}
