//! The soak: ingest, reads and exports against one running server at the same time, for a
//! bounded number of seconds over loopback, sampling the server's resident memory as it goes.
//! Any answer but the expected one counts as an error, by kind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_domain::{Timestamp, VisitorId};

pub struct Soak {
    pub url: String,
    pub site_key: String,
    pub client_id: String,
    pub client_secret: String,
    /// The server's process, whose VmRSS is sampled.
    pub pid: u32,
    pub seconds: u64,
    pub sample_seconds: u64,
    /// Samples before this many seconds are warm-up: growth is measured from the first one after.
    pub warm_up_seconds: u64,
}

#[derive(Default)]
struct Counters {
    events: AtomicU64,
    collect_requests: AtomicU64,
    reads: AtomicU64,
    exports: AtomicU64,
    export_bytes: AtomicU64,
    errors: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    fn error(&self, kind: String) {
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(kind).or_default() += 1;
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn token(http: &reqwest::Client, soak: &Soak) -> anyhow::Result<String> {
    let response = http
        .post(format!("{}/oauth/token", soak.url))
        .basic_auth(&soak.client_id, Some(&soak.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?;
    let body: Value = response.json().await?;
    body["access_token"].as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("no token: {body}"))
}

/// Runs the soak; the answer holds the totals, the errors by kind and the memory samples.
pub async fn run(soak: Soak) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(8).build()?;
    let bearer = token(&http, &soak).await?;
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let base = Timestamp::now().checked_sub(time::Duration::hours(23)).unwrap_or(Timestamp::now());

    // Two ingest clients, each cycling through visitors of its own.
    for _ in 0..2 {
        let (http, stop, counters) = (http.clone(), stop.clone(), counters.clone());
        let (url, site_key) = (format!("{}/collect", soak.url), soak.site_key.clone());
        tasks.push(tokio::spawn(async move {
            // A new visitor for every batch: every event stays inside the accepted 24 hours
            // however long the soak runs.
            while !stop.load(Ordering::Relaxed) {
                {
                    let id = VisitorId::new().to_string();
                    let payload = crate::collect::body(&site_key, &id, base, 0, 20);
                    match http.post(&url).header("content-type", "text/plain").body(payload).send().await {
                        Ok(response) if response.status() == 200 => {
                            let answer: Value = response.json().await.unwrap_or_default();
                            counters.events.fetch_add(answer["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                            counters.collect_requests.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(response) => counters.error(format!("collect {}", response.status().as_u16())),
                        Err(error) => counters.error(format!("collect: {}", error.without_url())),
                    }
                }
            }
        }));
    }
    // One reader of lists and reports.
    {
        let (http, stop, counters, bearer) = (http.clone(), stop.clone(), counters.clone(), bearer.clone());
        let url = soak.url.clone();
        tasks.push(tokio::spawn(async move {
            let paths = ["/api/v1/leads?limit=100", "/api/v1/visitor-profiles?limit=100", "/api/v1/reports/traffic"];
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let path = paths[n % paths.len()];
                n += 1;
                match http.get(format!("{url}{path}")).bearer_auth(&bearer).send().await {
                    Ok(response) if response.status() == 200 => {
                        let _ = response.bytes().await;
                        counters.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) => counters.error(format!("read {path} {}", response.status().as_u16())),
                    Err(error) => counters.error(format!("read {path}: {}", error.without_url())),
                }
            }
        }));
    }
    // One exporter, streaming whole datasets in turn.
    {
        let (http, stop, counters, bearer) = (http.clone(), stop.clone(), counters.clone(), bearer.clone());
        let url = soak.url.clone();
        tasks.push(tokio::spawn(async move {
            let paths = ["/api/v1/exports/leads?format=csv", "/api/v1/exports/journeys?format=ndjson"];
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let path = paths[n % paths.len()];
                n += 1;
                match http.get(format!("{url}{path}")).bearer_auth(&bearer).send().await {
                    Ok(response) if response.status() == 200 => match response.bytes().await {
                        Ok(bytes) => {
                            counters.export_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                            counters.exports.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => counters.error(format!("export {path} body: {}", error.without_url())),
                    },
                    Ok(response) => counters.error(format!("export {path} {}", response.status().as_u16())),
                    Err(error) => counters.error(format!("export {path}: {}", error.without_url())),
                }
            }
        }));
    }

    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(soak.seconds) {
        tokio::time::sleep(Duration::from_secs(soak.sample_seconds)).await;
        samples.push(json!({
            "second": started.elapsed().as_secs(),
            "rss_mb": rss_kib(soak.pid).unwrap_or(0) as f64 / 1024.0,
            "events": counters.events.load(Ordering::Relaxed),
            "reads": counters.reads.load(Ordering::Relaxed),
            "exports": counters.exports.load(Ordering::Relaxed),
        }));
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after_warm_up: Vec<f64> = samples
        .iter()
        .filter(|s| s["second"].as_u64().unwrap_or(0) >= soak.warm_up_seconds)
        .filter_map(|s| s["rss_mb"].as_f64())
        .collect();
    let growth = match (after_warm_up.first(), after_warm_up.last()) {
        (Some(first), Some(last)) if *first > 0.0 => (last - first) / first,
        _ => 0.0,
    };
    let errors = counters.errors.lock().map(|errors| errors.clone()).unwrap_or_default();
    Ok(json!({
        "seconds": elapsed,
        "events": counters.events.load(Ordering::Relaxed),
        "events_per_s": counters.events.load(Ordering::Relaxed) as f64 / elapsed,
        "collect_requests": counters.collect_requests.load(Ordering::Relaxed),
        "reads": counters.reads.load(Ordering::Relaxed),
        "exports": counters.exports.load(Ordering::Relaxed),
        "export_mb": counters.export_bytes.load(Ordering::Relaxed) as f64 / 1_048_576.0,
        "errors": errors.values().sum::<u64>(),
        "errors_by_kind": errors,
        "rss_growth_after_warm_up": growth,
        "samples": samples,
    }))
}
