//! `steward-bench`: the Rust side of `scripts/bench-exports`. Seeds a data dir with leads from
//! the demo generator, and times the export writers alone (no database, no HTTP) as the
//! baseline the HTTP exports are compared with; also the collection load and the retention
//! sweep against their raw SQL baselines. Prints one JSON object per command.

use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};

mod collect;
mod retention;
mod soak;
mod subjects;
use serde_json::json;
use steward_domain::{Lead, Scopes, Timestamp};
use steward_export::{Format, Writer};
use steward_server::{Settings, admin};
use steward_store::{StoreExt, TenantCtx};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates a tenant with an API client and `--leads` generated leads in `--data-dir`.
    Seed {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        leads: usize,
    },
    /// Times decoding stored lead bodies (JSON to typed leads), the export's per-row cost.
    Decode {
        #[arg(long)]
        leads: usize,
    },
    /// Writes `--leads` generated leads with the export writer straight to `--out`.
    Write {
        #[arg(long)]
        leads: usize,
        #[arg(long)]
        format: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Posts batches of `--batch` events to `/collect` from `--connections` clients for
    /// `--seconds`; prints events/s and latency percentiles.
    CollectLoad {
        #[arg(long)]
        url: String,
        #[arg(long)]
        site_key: String,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 50)]
        batch: usize,
        #[arg(long, default_value_t = 200)]
        visitors_per_connection: usize,
    },
    /// Inserts `--rows` event rows as collection stores them into a fresh SQLite database in
    /// `--data-dir`, one prepared statement in transactions of 10,000: the baseline.
    CollectRaw {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        rows: usize,
    },
    /// Fills a fresh SQLite tenant in `--data-dir` with `--events` events and `--subjects`
    /// people, then times the erasure of each person (data-subject request, every store).
    Erase {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 5)]
        subjects: usize,
    },
    /// Times one retention sweep of a tenant with `--expired` expired events (and their
    /// sessions) and `--fresh` recent ones in a temporary SQLite database, against one unbounded
    /// `DELETE` of the expired events on a copy; prints durations, rows/s and peak RSS.
    RetentionSweep {
        #[arg(long, default_value_t = 1_000_000)]
        expired: usize,
        #[arg(long, default_value_t = 100_000)]
        fresh: usize,
    },
    /// Builds the tenant archive (Data Act) of a tenant with `--events` events and `--leads`
    /// leads in a temporary SQLite database; prints duration, size and peak memory growth.
    Archive {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 100_000)]
        leads: usize,
    },
    /// Ingest, reads and exports against a running server at once for `--seconds`, sampling
    /// the resident memory of its process `--pid`; prints throughput, errors and the samples.
    Soak {
        #[arg(long)]
        url: String,
        #[arg(long)]
        site_key: String,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        client_secret: String,
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 180)]
        seconds: u64,
        #[arg(long, default_value_t = 10)]
        sample_seconds: u64,
        #[arg(long, default_value_t = 60)]
        warm_up_seconds: u64,
    },
}

const BATCH: usize = 10_000;

fn leads(count: usize) -> impl Iterator<Item = Lead> {
    steward_demo::lead_stream(&steward_demo::DemoConfig::demo(Timestamp::now()), count)
}

/// The same allocator as the `steward` binary, so the baselines run on equal terms.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed { data_dir, leads: count } => {
            let settings = Settings { data_dir, ..Settings::default() };
            let store = steward_server::open_store(&settings).await?;
            let now = Timestamp::now();
            let tenant = admin::create_tenant(store.as_ref(), "Bench Oy", now).await?;
            let ctx = TenantCtx::new(tenant.id);
            let (client, secret) = admin::create_client(store.as_ref(), &ctx, "bench", Scopes::all(), now).await?;
            let started = Instant::now();
            let mut batch = Vec::with_capacity(BATCH);
            for lead in leads(count) {
                batch.push(lead);
                if batch.len() == BATCH {
                    store.insert(&ctx, &batch).await?;
                    batch.clear();
                }
            }
            store.insert(&ctx, &batch).await?;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{}",
                json!({"tenant_id": tenant.id.to_string(), "client_id": client.id.to_string(), "client_secret": secret,
                    "leads": count, "seconds": seconds, "rows_per_s": count as f64 / seconds})
            );
        }
        Command::Decode { leads: count } => {
            let bodies: Vec<Vec<u8>> = leads(count).map(|lead| serde_json::to_vec(&lead)).collect::<Result<_, _>>()?;
            let started = Instant::now();
            for body in &bodies {
                let _: Lead = steward_domain::trust::trusted(|| serde_json::from_slice(body))?;
            }
            let seconds = started.elapsed().as_secs_f64();
            println!("{}", json!({"rows": count, "seconds": seconds, "rows_per_s": count as f64 / seconds}));
        }
        Command::Write { leads: count, format, out } => {
            let format = Format::parse(&format).ok_or_else(|| anyhow::anyhow!("unknown format {format}"))?;
            let records: Vec<Lead> = leads(count).collect();
            let started = Instant::now();
            let file = BufWriter::with_capacity(64 * 1024, std::fs::File::create(&out)?);
            let mut writer = Writer::<_, Lead>::new(format, file)?;
            for record in &records {
                writer.write(record)?;
            }
            writer.finish()?;
            let seconds = started.elapsed().as_secs_f64();
            println!("{}", json!({"rows": count, "seconds": seconds, "rows_per_s": count as f64 / seconds}));
        }
        Command::CollectLoad { url, site_key, seconds, connections, batch, visitors_per_connection } => {
            let load = collect::Load { url, site_key, seconds, connections, batch, visitors_per_connection };
            println!("{}", collect::load(load).await?);
        }
        Command::CollectRaw { data_dir, rows } => println!("{}", collect::raw(data_dir, rows).await?),
        Command::Erase { data_dir, events, subjects: count } => {
            println!("{}", subjects::erase(data_dir, events, count).await?);
        }
        Command::RetentionSweep { expired, fresh } => println!("{}", retention::sweep(expired, fresh).await?),
        Command::Archive { events, leads } => println!("{}", retention::archive(events, leads).await?),
        Command::Soak { url, site_key, client_id, client_secret, pid, seconds, sample_seconds, warm_up_seconds } => {
            let soak =
                soak::Soak { url, site_key, client_id, client_secret, pid, seconds, sample_seconds, warm_up_seconds };
            println!("{}", soak::run(soak).await?);
        }
    }
    Ok(())
}
