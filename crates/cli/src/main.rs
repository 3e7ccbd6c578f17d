//! `steward`: serve the API, run the demo, and manage tenants, sites and clients.

mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use steward_domain::tenant::CollectionSettings;
use steward_domain::{Scopes, Timestamp};
use steward_server::config::{DEFAULT_TOML, LogFormat};
use steward_server::{AppState, Settings, admin, console, open_store, retention, switching};
use steward_store::{Store, StoreExt};

#[derive(Debug, Parser)]
#[command(name = "steward", version, about = "A self-hostable data platform for website conversion data")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Process-level options, valid with every command that touches the data.
#[derive(Debug, Args)]
struct Global {
    /// TOML configuration file (see `steward config default`).
    #[arg(long, global = true, env = "STEWARD_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://…
    #[arg(long, global = true, env = "STEWARD_DATABASE_URL")]
    database: Option<String>,
    /// Folder for the embedded database and files.
    #[arg(long, global = true, env = "STEWARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API until SIGTERM or SIGINT, then drain.
    Serve {
        #[arg(long, env = "STEWARD_LISTEN")]
        listen: Option<SocketAddr>,
        /// PEM certificate chain: serve HTTPS (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Seed a demo tenant with realistic data, print where to go and how to sign in, and serve.
    Demo {
        #[arg(long, env = "STEWARD_LISTEN")]
        listen: Option<SocketAddr>,
        /// Scale of the demo data: 1 is a few thousand leads and tens of thousands of events.
        #[arg(long, default_value_t = 1.0)]
        size: f64,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    #[command(subcommand)]
    Tenant(TenantCommand),
    #[command(subcommand)]
    Site(SiteCommand),
    #[command(subcommand)]
    Client(ClientCommand),
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Data-subject requests that reach the service provider.
    #[command(subcommand)]
    Dsr(DsrCommand),
    #[command(subcommand)]
    User(UserCommand),
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Data Act switching (Regulation (EU) 2023/2854, Chapter VI): the operator's side.
    #[command(subcommand)]
    Switching(SwitchingCommand),
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write a consistent copy of the embedded SQLite database to a new file while Steward runs.
    /// Keys are not in it (keep the keys folder and master key apart, in their own backup).
    Backup {
        /// The backup file to create.
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Replace the embedded SQLite database with a backup (stop Steward first), then erase again
    /// what was erased after the backup was taken (the erasure ledger's mirror). Refused with
    /// exit code 3 while a `steward serve` holds the database.
    Restore {
        /// A file made by `steward backup`.
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    #[command(subcommand)]
    Erasure(ErasureCommand),
    /// Import a CSV of leads or organizations from another tool into a tenant, with a column
    /// mapping (the format is in the README and in /openapi.json under imports). Rows are created
    /// as the API creates them; bad rows are reported by line number and the others kept.
    ///
    /// Exit status: 0 when every row was imported, 1 when some rows were rejected (the others
    /// were kept), 2 when nothing was imported (every row rejected, a bad mapping, an unreadable
    /// file or one that is not CSV, an archive).
    Import {
        /// The CSV file (a `.zip` is a Steward archive).
        file: PathBuf,
        /// Tenant id or slug.
        #[arg(long)]
        tenant: String,
        /// leads or organizations.
        #[arg(long)]
        dataset: Option<String>,
        /// The mapping file (JSON); without it the columns must be named like a Steward export.
        #[arg(long)]
        mapping: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ErasureCommand {
    /// Apply the erasure ledger's mirror (kept beside the keys) to the database again: after a
    /// PostgreSQL pg_restore, records of people erased since the dump go again.
    Reapply {
        #[arg(long)]
        json: bool,
    },
}

/// An error that ends the command with a status of its own (not 1).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct ExitWith {
    code: u8,
    message: String,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a console user (e.g. the first admin). The password is read from standard input;
    /// the user sets up an authenticator app (TOTP) at first sign-in, before anything else.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// owner, admin, analyst or viewer.
        #[arg(long)]
        role: String,
        /// Read the password from standard input (never from the command line, where other
        /// users and the shell history would see it). Required.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DsrCommand {
    /// Record a data-subject request the provider received and forward it to the tenant, who
    /// answers it (pending in its API and console). The file holds the request as JSON:
    /// `{"kind": "erasure", "subject": {"email": "…"}, "received_at": "…", "note": "…"}`.
    Forward {
        #[arg(long)]
        tenant: String,
        /// A JSON file, or - for standard input.
        #[arg(long)]
        file: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify a tenant's audit log chain; exits with 1 and names the first broken entry.
    Verify {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        name: String,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SiteCommand {
    /// Register a website of a tenant and print its public site key.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        domain: String,
        /// Keep nothing in visitors' browsers: a visitor is recognised for one day at most.
        #[arg(long)]
        cookieless: bool,
        /// Track nobody whose browser sends Global Privacy Control or Do-Not-Track.
        #[arg(long)]
        honour_gpc: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Create an OAuth 2.0 client; its secret is printed once and never again.
    Create {
        #[arg(long)]
        tenant: String,
        /// Comma- or space-separated scopes; all tenant scopes when omitted.
        #[arg(long)]
        scopes: Option<String>,
        #[arg(long, default_value = "API client")]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's OAuth 2.0 clients (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a client a new secret, printed once; the old one stops working for new tokens.
    /// Tokens already issued stay valid until they expire unless --revoke-tokens.
    RotateSecret {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        client: String,
        /// Also revoke every token the client holds now (for a leaked secret).
        #[arg(long)]
        revoke_tokens: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and revoke every token it holds.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        client: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Delete now what the tenants' retention policies no longer keep (legal holds excepted), as
    /// the server's background sweeper does; exits with 1 if any tenant's sweep failed.
    Sweep {
        /// Only this tenant (id or slug); every tenant when omitted.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SwitchingCommand {
    /// Declare a tenant's transitional period technically infeasible (Art. 25(4)): only within
    /// 14 working days of its request, once, with the reason told to the customer and the end of
    /// an alternative period of at most seven months. Exits with 1 when refused.
    Infeasible {
        #[arg(long)]
        tenant: String,
        /// The switching request's id.
        #[arg(long)]
        request: String,
        /// End of the alternative transitional period: a date (through its end, UTC) or RFC 3339.
        #[arg(long)]
        until: String,
        /// Why 30 days cannot be done; the customer is told.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Run one pass of the switching state machine for every tenant, as `serve` does every few
    /// minutes: archives, their removal, erasure, each when due. Exits with 1 if a tenant failed.
    Advance {
        #[arg(long)]
        json: bool,
    },
    /// Print the signed erasure attestation of an erased tenant (JSON).
    Attestation {
        /// The erased tenant's id.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the documented configuration file with every default.
    Default,
}

/// mimalloc instead of the system allocator: an export allocates and frees a few dozen small
/// strings per row on three threads at once, where glibc's malloc took about a sixth of the
/// time (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A panic's message can quote the input that caused it (a slice of an email, say): only
    // where it happened is written, never the message.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        if tracing::dispatcher::has_been_set() {
            tracing::error!(%location, "internal error (a bug); its message is withheld as it may quote personal data");
        } else {
            eprintln!(
                "error: internal error (a bug) at {location}; its message is withheld as it may quote personal data"
            );
        }
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            match error.downcast_ref::<ExitWith>() {
                Some(exit) => ExitCode::from(exit.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn settings(global: &Global, listen: Option<SocketAddr>) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(global.config.as_deref())?;
    if let Some(dir) = &global.data_dir {
        settings.data_dir = dir.clone();
    }
    if let Some(url) = &global.database {
        settings.database_url = url.clone();
    }
    if let Some(listen) = listen {
        settings.listen = listen;
    }
    Ok(settings)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    for name in Settings::unknown_environment_variables() {
        tracing::warn!(variable = %name, "unknown STEWARD_ environment variable ignored");
    }
}

async fn store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let url = settings.database_url();
    open_store(settings).await.with_context(|| format!("opening the database ({})", redact_url(&url)))
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:[redacted]{}", &url[..scheme + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// Prints `value` as one JSON object, or `human` for people.
fn emit(json_output: bool, value: serde_json::Value, human: String) {
    if json_output {
        println!("{value}");
    } else {
        println!("{human}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let now = Timestamp::now();
    match cli.command {
        Command::Backup { out, json } => {
            let report = steward_server::backup::backup(&settings(&cli.global, None)?, &out).await?;
            emit(
                json,
                serde_json::to_value(&report)?,
                format!("backup written to {} ({} bytes)", report.path.display(), report.bytes),
            );
            Ok(())
        }
        Command::Restore { file, json } => {
            let report = steward_server::backup::restore(&settings(&cli.global, None)?, &file).await.map_err(
                |error| match error.downcast::<steward_server::backup::DatabaseInUse>() {
                    Ok(in_use) => anyhow::Error::from(ExitWith { code: 3, message: in_use.to_string() }),
                    Err(other) => other,
                },
            )?;
            let again: u64 = report.reapplied.iter().flat_map(|t| t.erased.values()).sum();
            let human = format!(
                "restored {} from {}; {again} record(s) of people erased since the backup were erased again",
                report.database.display(),
                report.restored_from.display()
            );
            emit(json, serde_json::to_value(&report)?, human);
            Ok(())
        }
        Command::Erasure(ErasureCommand::Reapply { json }) => {
            let reports = steward_server::backup::reapply(&settings(&cli.global, None)?).await?;
            let again: u64 = reports.iter().flat_map(|t| t.erased.values()).sum();
            emit(json, serde_json::json!({ "tenants": reports }), format!("{again} record(s) erased again"));
            Ok(())
        }
        Command::Config(ConfigCommand::Default) => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Command::Serve { listen, tls_cert, tls_key } => {
            let mut settings = settings(&cli.global, listen)?;
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                settings.tls.cert = cert.display().to_string();
                settings.tls.key = key.display().to_string();
            }
            init_logging(settings.log_format);
            // Held while serving: `steward restore` refuses while any server has the database.
            let _database = steward_server::backup::hold_database(&settings)?;
            let store = store(&settings).await?;
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("listening on {}", settings.listen))?;
            let scheme = if settings.tls.enabled() { "https" } else { "http" };
            tracing::info!(address = %listener.local_addr()?, scheme, database = store.backend(), "serving");
            steward_server::serve(listener, AppState::new(store, settings), shutdown_signal()).await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Demo { listen, size } => {
            let settings = settings(&cli.global, listen)?;
            init_logging(settings.log_format);
            let _database = steward_server::backup::hold_database(&settings)?;
            let store = store(&settings).await?;
            demo::run(store, settings, size).await
        }
        Command::Migrate => {
            let settings = settings(&cli.global, None)?;
            let store = store(&settings).await?;
            println!("database is up to date ({})", store.backend());
            Ok(())
        }
        Command::Tenant(TenantCommand::Create { name, json }) => {
            let store = store(&settings(&cli.global, None)?).await?;
            let tenant = admin::create_tenant(store.as_ref(), &name, now).await?;
            let human = format!("created tenant {} ({})", tenant.name, tenant.id);
            emit(json, json!({"id": tenant.id, "name": tenant.name, "slug": tenant.slug}), human);
            Ok(())
        }
        Command::Tenant(TenantCommand::List { json }) => {
            let store = store(&settings(&cli.global, None)?).await?;
            let tenants = store.list_tenants().await?;
            let human = tenants.iter().map(|t| format!("{}  {}", t.id, t.name)).collect::<Vec<_>>().join("\n");
            let value =
                json!({"tenants": tenants.iter().map(|t| json!({"id": t.id, "name": t.name})).collect::<Vec<_>>()});
            emit(json, value, human);
            Ok(())
        }
        Command::Site(SiteCommand::Add { tenant, domain, cookieless, honour_gpc, json }) => {
            let store = store(&settings(&cli.global, None)?).await?;
            let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
            let collection = CollectionSettings { cookieless, honour_gpc };
            let site = admin::add_site(store.as_ref(), &ctx, &domain, collection, now).await?;
            let human = format!("added {} with site key {}", site.domain.as_str(), site.site_key.as_str());
            let value = json!({"id": site.id, "site_key": site.site_key, "domain": site.domain,
                "cookieless": cookieless, "honour_gpc": honour_gpc});
            emit(json, value, human);
            Ok(())
        }
        Command::Client(ClientCommand::Create { tenant, scopes, name, json }) => {
            let store = store(&settings(&cli.global, None)?).await?;
            let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
            let scopes = match scopes {
                Some(text) => Scopes::parse(&text)?,
                None => Scopes::all(),
            };
            let (client, secret) = admin::create_client(store.as_ref(), &ctx, &name, scopes, now).await?;
            let scope_list: Vec<&str> = client.scopes.iter().map(|s| s.as_str()).collect();
            let human = format!(
                "client_id:     {}\nclient_secret: {secret}\nscopes:        {}\nThe secret is shown only now; store it safely.",
                client.id, client.scopes
            );
            let detail = json!({"name": client.name, "scopes": scope_list});
            store.audit(&ctx, &operator_entry(now, "client.created", client.id, detail)).await?;
            emit(json, json!({"client_id": client.id, "client_secret": secret, "scopes": scope_list}), human);
            Ok(())
        }
        Command::Client(ClientCommand::List { tenant, json }) => {
            let store = store(&settings(&cli.global, None)?).await?;
            let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
            let clients = store.list_clients(&ctx).await?;
            let human = clients
                .iter()
                .map(|c| format!("{}  {}  {}  created {}", c.id, c.name, c.scopes, c.created_at))
                .collect::<Vec<_>>()
                .join("\n");
            let listed: Vec<_> = clients
                .iter()
                .map(|c| {
                    let scopes: Vec<&str> = c.scopes.iter().map(|s| s.as_str()).collect();
                    json!({"client_id": c.id, "name": c.name, "scopes": scopes, "created_at": c.created_at})
                })
                .collect();
            emit(json, json!({"clients": listed}), human);
            Ok(())
        }
        Command::Client(ClientCommand::RotateSecret { tenant, client, revoke_tokens, json }) => {
            let store = store(&settings(&cli.global, None)?).await?;
            let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
            let (id, secret, revoked) =
                admin::rotate_client_secret(store.as_ref(), &ctx, &client, revoke_tokens).await?;
            let detail = json!({"revoke_tokens": revoke_tokens, "tokens_revoked": revoked});
            let audited = store.audit(&ctx, &operator_entry(now, "client.secret_rotated", id, detail)).await;
            let tokens = if revoke_tokens {
                format!("{revoked} token(s) revoked.")
            } else {
                "Tokens already issued stay valid until they expire.".to_string()
            };
            let human = format!(
                "client_id:     {id}\nclient_secret: {secret}\nThe old secret no longer works; {tokens}\nThe secret is shown only now; store it safely."
            );
            // The secret is printed even if the audit entry fails: it exists only here now.
            emit(json, json!({"client_id": id, "client_secret": secret, "tokens_revoked": revoked}), human);
            audited.context("the secret was rotated, but its audit entry could not be written")?;
            Ok(())
        }
        Command::Client(ClientCommand::Revoke { tenant, client, json }) => {
            let store = store(&settings(&cli.global, None)?).await?;
            let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
            let (client, revoked) = admin::delete_client(store.as_ref(), &ctx, &client).await?;
            let detail = json!({"name": client.name, "tokens_revoked": revoked});
            store.audit(&ctx, &operator_entry(now, "client.revoked", client.id, detail)).await?;
            let human = format!("deleted client {} and revoked its {revoked} token(s)", client.id);
            emit(json, json!({"client_id": client.id, "revoked": true, "tokens_revoked": revoked}), human);
            Ok(())
        }
        Command::User(UserCommand::Create { tenant, email, role, password_stdin, json }) => {
            if !password_stdin {
                anyhow::bail!("give the password on standard input with --password-stdin");
            }
            let mut password = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut password).context("reading the password")?;
            let password = password.strip_suffix('\n').map_or(password.as_str(), |p| p.strip_suffix('\r').unwrap_or(p));
            let store = store(&settings(&cli.global, None)?).await?;
            let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
            let operator = steward_store::Actor { kind: steward_store::ActorKind::Operator, id: None };
            let user =
                console::users::create_user(store.as_ref(), &ctx, &email, &role, password, operator, now).await?;
            let human = format!(
                "created {} user {} ({})\nAt the first sign-in (/console/sign-in) they set up an authenticator app before anything else.",
                user.role, user.email, user.id
            );
            emit(json, json!({"id": user.id, "email": user.email.as_str(), "role": user.role.as_str()}), human);
            Ok(())
        }
        Command::Dsr(DsrCommand::Forward { tenant, file, json }) => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("reading {file}: {e}"))?
            };
            let input: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{file} is not JSON: {e}"))?;
            let store = store(&settings(&cli.global, None)?).await?;
            let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
            let request = admin::forward_request(store.as_ref(), &ctx, input, now).await?;
            let human = format!(
                "forwarded {} request {} to tenant {tenant}; due {} (pending until the tenant answers it)",
                request.kind.as_str(),
                request.id,
                request.due_at
            );
            let value = serde_json::json!({
                "id": request.id, "kind": request.kind.as_str(), "status": request.status.as_str(),
                "origin": request.origin.as_str(), "received_at": request.received_at, "due_at": request.due_at,
            });
            emit(json, value, human);
            Ok(())
        }
        Command::Retention(RetentionCommand::Sweep { tenant, json }) => {
            let settings = settings(&cli.global, None)?;
            let store = store(&settings).await?;
            let state = AppState::new(store.clone(), settings);
            let summary = match tenant {
                Some(tenant) => {
                    let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
                    let outcome = retention::TenantOutcome::of(&retention::sweep_tenant(&state, &ctx).await);
                    let deleted = outcome.deleted.values().sum();
                    retention::SweepSummary { tenants: vec![outcome], deleted, error: None }
                }
                None => retention::sweep_all(&state).await,
            };
            emit(json, serde_json::to_value(&summary)?, sweep_lines(&summary));
            if summary.failed() {
                anyhow::bail!("the retention sweep failed; the failures are in the tenants' audit logs");
            }
            Ok(())
        }
        Command::Import { file, tenant, dataset, mapping, json } => {
            let extension = file.extension().and_then(|ext| ext.to_str()).map(str::to_ascii_lowercase);
            match extension.as_deref() {
                // A Steward tenant archive (Data Act switching).
                Some("zip") => import_archive(&cli.global, &file, &tenant, json).await,
                _ => import_csv(&cli.global, &file, &tenant, dataset.as_deref(), mapping.as_deref(), json).await,
            }
        }
        Command::Switching(SwitchingCommand::Infeasible { tenant, request, until, reason, json }) => {
            let settings = settings(&cli.global, None)?;
            let store = store(&settings).await?;
            let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
            let state = AppState::new(store, settings);
            let refuse = |code: &str, message: String| {
                if json {
                    println!("{}", json!({"error": {"code": code, "message": message}}));
                }
                anyhow::anyhow!(message)
            };
            let until = steward_domain::switching::parse_until(&until).map_err(|e| refuse("bad_until", e))?;
            let declared = switching::declare_infeasible(&state, &ctx, &request, until, reason)
                .await
                .map_err(|error| refuse(error.code(), error.to_string()))?;
            let human = format!(
                "switching request {} of tenant {tenant}: the transitional period now ends at {}; retrieval ends at {}",
                declared.id,
                declared.transitional_ends_at,
                declared.retrieval_ends_at.map_or_else(|| "-".to_string(), |at| at.to_string())
            );
            let value = json!({
                "id": declared.id, "status": declared.status.as_str(),
                "transitional_ends_at": declared.transitional_ends_at,
                "retrieval_ends_at": declared.retrieval_ends_at, "erasure_due_at": declared.erasure_due_at,
                "infeasibility": declared.infeasibility,
            });
            emit(json, value, human);
            Ok(())
        }
        Command::Switching(SwitchingCommand::Advance { json }) => {
            let settings = settings(&cli.global, None)?;
            let store = store(&settings).await?;
            let state = AppState::new(store, settings);
            let report = switching::advance(&state).await?;
            let mut lines: Vec<String> = report
                .steps
                .iter()
                .map(|step| format!("{}  request {}  {}", step.tenant_id, step.request_id, step.step))
                .collect();
            lines.extend(
                report.failures.iter().map(|failure| format!("{}  FAILED: {}", failure.tenant_id, failure.error)),
            );
            lines.push(format!("{} step(s) over {} tenant(s)", report.steps.len(), report.tenants));
            emit(json, serde_json::to_value(&report)?, lines.join("\n"));
            if !report.failures.is_empty() {
                anyhow::bail!("switching failed for {} tenant(s); the next pass tries again", report.failures.len());
            }
            Ok(())
        }
        Command::Switching(SwitchingCommand::Attestation { tenant }) => {
            let settings = settings(&cli.global, None)?;
            let store = store(&settings).await?;
            let state = AppState::new(store, settings);
            let id = steward_domain::TenantId::parse(&tenant)
                .map_err(|e| anyhow::anyhow!("--tenant {tenant:?} {e}: give the erased tenant's id"))?;
            let bytes = switching::read_attestation(&state, id)?
                .ok_or_else(|| anyhow::anyhow!("no erasure attestation exists for tenant {tenant}"))?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)?;
            println!("{value}");
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { tenant, json }) => {
            let store = store(&settings(&cli.global, None)?).await?;
            let ctx = admin::tenant_ctx(store.as_ref(), &tenant).await?;
            let verdict = store.verify_audit(&ctx).await?;
            let human = match (&verdict.reason, &verdict.head_seq) {
                (Some(reason), _) => format!("BROKEN: {reason} ({} entries checked)", verdict.entries),
                (None, Some(head)) => format!(
                    "valid: {} entries, newest {head} with hash {}",
                    verdict.entries,
                    verdict.head_hash.as_deref().unwrap_or_default()
                ),
                (None, None) => "valid: the audit log is empty".to_string(),
            };
            emit(json, serde_json::to_value(&verdict)?, human);
            if !verdict.valid {
                anyhow::bail!("the audit log of tenant {tenant} is broken");
            }
            Ok(())
        }
    }
}

/// Loads a Steward tenant archive into an empty tenant; exits 2 when nothing could be loaded.
async fn import_archive(
    global: &Global,
    file: &std::path::Path,
    tenant: &str,
    json_output: bool,
) -> anyhow::Result<()> {
    use steward_server::import::archive::{ImportError, import};
    let nothing = |message: String| anyhow::Error::from(ExitWith { code: 2, message });
    let settings = settings(global, None)?;
    let store = store(&settings).await.map_err(|e| nothing(format!("{e:#}")))?;
    let ctx = admin::tenant_ctx(store.as_ref(), tenant).await.map_err(|e| nothing(format!("{e:#}")))?;
    let state = AppState::new(store, settings);
    let report = import(&state, &ctx, file).await.map_err(|error| match error {
        ImportError::Invalid(message) | ImportError::NotEmpty(message) => nothing(message),
        ImportError::Internal(error) => error,
    })?;
    let counts: Vec<String> = report.imported.iter().map(|(dataset, n)| format!("{dataset} {n}")).collect();
    let human = format!(
        "imported the archive of tenant {} ({}): {}; not imported: {}",
        report.source_tenant,
        report.archive_created_at,
        counts.join(", "),
        report.not_imported.join("; ")
    );
    emit(json_output, serde_json::to_value(&report)?, human);
    Ok(())
}

/// `steward import FILE.csv`: exit 0 when every row was imported, 1 when some were rejected,
/// 2 when nothing was imported.
async fn import_csv(
    global: &Global,
    file: &std::path::Path,
    tenant: &str,
    dataset: Option<&str>,
    mapping: Option<&std::path::Path>,
    json_output: bool,
) -> anyhow::Result<()> {
    use steward_server::import::csv::{Mapping, import};
    let nothing = |message: String| anyhow::Error::from(ExitWith { code: 2, message });
    let dataset = match dataset.map(steward_export::DatasetName::parse) {
        Some(Some(name @ (steward_export::DatasetName::Leads | steward_export::DatasetName::Organizations))) => name,
        _ => return Err(nothing("give --dataset leads or --dataset organizations".into())),
    };
    let mapping = match mapping {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| nothing(format!("reading {}: {e}", path.display())))?;
            let value = serde_json::from_str(&text)
                .map_err(|e| nothing(format!("the mapping {} is not JSON: {e}", path.display())))?;
            Mapping::parse(dataset, Some(value))
        }
        None => Mapping::parse(dataset, None),
    }
    .map_err(|errors| nothing(format!("the mapping cannot be used: {errors}")))?;
    let source = std::fs::File::open(file).map_err(|e| nothing(format!("reading {}: {e}", file.display())))?;
    let settings = settings(global, None)?;
    let store = store(&settings).await.map_err(|e| nothing(format!("{e:#}")))?;
    let ctx = admin::tenant_ctx(store.as_ref(), tenant).await.map_err(|e| nothing(format!("{e:#}")))?;
    let state = AppState::new(store, settings);
    let acting = steward_server::subjects::Acting {
        actor: steward_store::Actor { kind: steward_store::ActorKind::Operator, id: None },
        ip_network: None,
    };
    let summary = import(&state, &ctx, &acting, mapping, source).await.map_err(|error| match error {
        steward_server::error::ApiError::Validation(errors) => {
            nothing(format!("the mapping does not fit {}: {errors}", file.display()))
        }
        other => nothing(other.to_string()),
    })?;
    let mut human = vec![format!(
        "{}: {} rows read, {} created, {} rejected",
        summary.dataset, summary.rows, summary.created, summary.rejected
    )];
    human.extend(summary.rejections.iter().map(|r| {
        let field = match (&r.field, &r.column) {
            (Some(field), Some(column)) => format!("{field} (column {column:?}): "),
            (Some(field), None) => format!("{field}: "),
            _ => String::new(),
        };
        format!("line {}: {field}{}", r.line, r.message)
    }));
    if summary.rejections_total > summary.rejections.len() as u64 {
        human.push(format!("… and {} more problems", summary.rejections_total - summary.rejections.len() as u64));
    }
    emit(json_output, serde_json::to_value(&summary)?, human.join("\n"));
    if summary.rejected > 0 && summary.created == 0 {
        return Err(ExitWith {
            code: 2,
            message: format!("nothing was imported: all {} rows were rejected", summary.rejected),
        }
        .into());
    }
    if summary.rejected > 0 {
        return Err(ExitWith {
            code: 1,
            message: format!("{} of {} rows were rejected", summary.rejected, summary.rows),
        }
        .into());
    }
    Ok(())
}

/// A sweep's outcome for people: one line per tenant.
fn sweep_lines(summary: &retention::SweepSummary) -> String {
    let mut lines: Vec<String> = summary
        .tenants
        .iter()
        .map(|tenant| {
            let counts: Vec<String> = tenant.deleted.iter().map(|(store, n)| format!("{store} {n}")).collect();
            let counts = if counts.is_empty() { "nothing".to_string() } else { counts.join(", ") };
            match (&tenant.error, tenant.held) {
                (Some(error), _) => format!("{}  FAILED: {error} (deleted before: {counts})", tenant.tenant_id),
                (None, true) => format!("{}  kept whole by a legal hold", tenant.tenant_id),
                (None, false) => format!("{}  deleted {counts}", tenant.tenant_id),
            }
        })
        .collect();
    if let Some(error) = &summary.error {
        lines.push(format!("FAILED: {error}"));
    }
    lines.push(format!("{} rows deleted in all", summary.deleted));
    lines.join("\n")
}

/// An audit entry for an operator's change to an API client.
fn operator_entry(
    now: Timestamp,
    action: &str,
    client: steward_domain::ClientId,
    detail: serde_json::Value,
) -> steward_store::AuditDraft {
    steward_store::AuditDraft {
        at: now,
        actor: steward_store::Actor { kind: steward_store::ActorKind::Operator, id: None },
        action: action.into(),
        target: steward_store::Target { kind: "client".into(), count: 1, ids: vec![client.into_uuid()] },
        detail,
        ip_network: None,
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted_in_messages() {
        assert_eq!(
            redact_url("postgres://steward:s3cret@db:5432/steward"),
            "postgres://steward:[redacted]@db:5432/steward"
        );
        assert_eq!(redact_url("sqlite://./steward-data/steward.db"), "sqlite://./steward-data/steward.db");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
