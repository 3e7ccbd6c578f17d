//! Settings: defaults, then an optional TOML file, then `STEWARD_…` environment variables.
//! `steward config default` prints [`DEFAULT_TOML`], which a test keeps equal to the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The documented configuration file, every setting at its default.
pub const DEFAULT_TOML: &str = r#"# Steward configuration. Every setting here is the default; any can also be set with an
# environment variable: STEWARD_ plus the key in upper case, with __ between section and key
# (e.g. STEWARD_LISTEN, STEWARD_DATABASE_URL, STEWARD_API__RATE_LIMIT_PER_MINUTE).

# Address and port the HTTP server listens on.
listen = "127.0.0.1:8080"

# Folder for the embedded database and stored files.
data_dir = "./steward-data"

# Database URL: sqlite://PATH for the embedded database (created on first start), or
# postgres://USER@HOST:PORT/DB for PostgreSQL. Empty means sqlite://<data_dir>/steward.db.
database_url = ""

# The master key that wraps every tenant's data key, base64 of 32 bytes. Read from this file,
# created with a new key on first start when missing; empty means <data_dir>/master.key. The
# environment variable STEWARD_MASTER_KEY, when set, is used instead of any file. Keep it out
# of database backups: destroying a tenant's key must make every copy of its data unreadable.
master_key_file = ""

# Folder of the tenants' wrapped data keys; empty means <data_dir>/keys.
keys_dir = ""

# Log format: "text" for people, "json" for log collectors. Logs never carry personal data.
log_format = "text"

[server]
# The address browsers reach Steward at, e.g. "https://steward.example" (a path is allowed
# behind a proxy that serves Steward under one). The tracker script (/tracker.js) tells
# browsers to send events to <public_url>/collect. Empty: taken from the request only when it
# comes from one of collect.trusted_proxies (X-Forwarded-Host or Host, X-Forwarded-Proto),
# else the address Steward listens on (http://127.0.0.1:8080 by default; with 0.0.0.0 or ::,
# localhost). The Host header of anyone else is never reflected. Set it in production.
# Environment: STEWARD_SERVER__PUBLIC_URL.
public_url = ""
# Seconds a client has to send a complete request head (request line and headers), counted
# from the connection's start or from the first byte of the next request on it; a client that
# sends half a header is disconnected after this.
header_read_timeout_seconds = 10
# Seconds a kept-alive connection may sit idle between requests before it is closed.
idle_timeout_seconds = 60
# Connections open at once (HTTP and HTTPS, idle ones included); past this a new connection is
# closed at once, and a warning is logged. Keep it under the process's open-file limit.
max_connections = 4096

[api]
# Lifetime of an OAuth 2.0 access token, in seconds.
token_ttl_seconds = 3600
# Requests per minute each API client may make.
rate_limit_per_minute = 500
# Largest request body accepted, in bytes.
max_body_bytes = 1048576
# Requests a minute to /oauth/token, /oauth/revoke and /oauth/introspect per presented client
# id, known or not, whatever the secret: past it the answer is 429 with Retry-After. A client
# needs a token an hour; this stops guessing secrets.
token_requests_per_minute = 30
# The same per client network (the address masked like privacy.ipv4_prefix/ipv6_prefix, behind
# collect.trusted_proxies the forwarded client's): stops guessing across made-up client ids.
token_requests_per_minute_per_network = 300

[console]
# Password checks (argon2id: about 19 MiB and tens of milliseconds each) that run at once in this
# process; 0 means one per CPU. Sign-ins past it wait up to password_hash_wait_ms, then are
# answered 503 with Retry-After, so a flood of sign-ins cannot take the node's memory. Unknown
# organizations and users cost a check too, so they wait in the same line.
# Environment: STEWARD_CONSOLE__PASSWORD_HASHES_AT_ONCE.
password_hashes_at_once = 0
# How long a sign-in waits for its turn before it is refused, in milliseconds.
password_hash_wait_ms = 2000

[exports]
# Largest file a streamed export (console or GET /api/v1/exports/{dataset}) may produce, in
# bytes (512 MiB). Export jobs have no limit.
console_max_bytes = 536870912
# Longest period (from-to) a streamed export may cover, in days.
console_max_days = 366
# Folder for export files of jobs; empty means <data_dir>/files.
files_dir = ""
# Days an export job's file stays downloadable.
file_days = 7
# Run export jobs in this process. Turn off on nodes that should only serve requests.
worker = true

[imports]
# Largest file one import (a CSV to POST /api/v1/imports/{dataset}, a tenant archive to
# POST /api/v1/imports/archive) accepts, in bytes (512 MiB);
# past it the upload is refused with 413. `steward import` reads local files without this limit.
# Environment: STEWARD_IMPORTS__MAX_BYTES.
max_bytes = 536870912

[reports]
# Groups (a period, or a page, source or organization within it) counting fewer distinct people
# (visitors, or leads without a visitor profile) than this are left out of reports and exports of
# reports, so that no row points at one person; responses say how many were left out.
# 0 or 1 turns this off. Environment: STEWARD_REPORTS__MIN_GROUP_SIZE.
min_group_size = 5
# Longest period (from-to) one report covers, in days. Environment: STEWARD_REPORTS__MAX_DAYS.
max_days = 366

[retention]
# Retention sweeps delete what the tenants' policies (GET/PUT /api/v1/retention-policies) no
# longer keep, except what a legal hold keeps. Minutes between sweeps in this process; the first
# runs five minutes after start (or after one interval, if shorter), so a node that restarts
# often still sweeps. 0 turns the sweeper off here (`steward retention sweep` still runs one).
# Environment: STEWARD_RETENTION__SWEEP_INTERVAL_MINUTES.
sweep_interval_minutes = 60
# Most rows one delete statement removes (1 to 50000): a sweep deletes batch after batch, so no
# statement holds locks, journal or memory for more than one batch.
batch_size = 10000

[switching]
# Data Act switching (Regulation (EU) 2023/2854, Chapter VI; POST /api/v1/switching-requests).
# Days the service runs unchanged after the customer's chosen start (the transitional period):
# 1 to 30, the Act's maximum. Environment: STEWARD_SWITCHING__TRANSITIONAL_DAYS.
transitional_days = 30
# Days the archive stays downloadable after the transitional period (the retrieval period): at
# least 30, the Act's minimum. The tenant is erased the day after. Environment:
# STEWARD_SWITCHING__RETRIEVAL_DAYS.
retrieval_days = 30
# Minutes between passes of the switching state machine in this process (archives, removal,
# erasure, each when it falls due); the first runs one interval after start. 0 turns it off here
# (`steward switching advance` still runs one pass).
advance_interval_minutes = 5

[tls]
# A PEM certificate chain and its private key: with both set Steward serves HTTPS itself (rustls)
# and sends Strict-Transport-Security. Empty: plain HTTP, e.g. behind a proxy that ends TLS and
# says so in X-Forwarded-Proto.
cert = ""
key = ""

[collect]
# Website event collection (the tracker's POST /collect).
# Largest body of one collection request, in bytes.
max_body_bytes = 65536
# Most events one collection request may carry.
max_events = 500
# Reverse proxies and load balancers in front of Steward, as addresses or CIDR networks (e.g.
# ["10.0.0.0/8", "2001:db8:1::/48"]). Only when the connecting peer is one of these are its
# Forwarded / X-Forwarded-For headers read, taking the right-most address that is not itself a
# trusted proxy; otherwise the peer's own address is the visitor's. Set this list here: as an
# environment variable it is STEWARD_COLLECT__TRUSTED_PROXIES='["10.0.0.0/8", "192.0.2.1"]'
# (brackets and quotes as shown).
trusted_proxies = []
# A header in which a trusted proxy or CDN states the visitor's country as an ISO 3166-1 code
# (e.g. "CF-IPCountry" behind Cloudflare). Read only from trusted proxies; empty: not used.
country_header = ""
# A MaxMind-format country or city database (.mmdb, e.g. GeoLite2-City.mmdb), read into memory
# at start, giving country, region and city. Empty: no lookup; the country header alone, if any.
geoip_database = ""
# Events older than this many hours (by the tracker's timestamp) are refused.
max_event_age_hours = 24
# Collection requests a minute per site (its site key is public, in every page): past it the
# answer is 429 with Retry-After.
requests_per_minute_per_site = 12000
# Collection requests a minute per client network (the address masked to privacy's /24 or /48;
# behind collect.trusted_proxies the forwarded client's).
requests_per_minute_per_network = 1200
# Most collected events one tenant may store (all its sites, until retention deletes them):
# past it collection is refused with 507 naming this setting, and a warning is logged, instead
# of filling the disk. 0: no quota.
max_events_per_tenant = 50000000

[privacy]
# How much of a visitor's IP address is kept. These can only be made coarser (smaller), never
# finer than /24 and /48.
ipv4_prefix = 24
ipv6_prefix = 48
"#;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub master_key_file: String,
    /// Only from the environment (`STEWARD_MASTER_KEY`); never printed.
    #[serde(default, skip_serializing)]
    pub master_key: Option<Redacted>,
    pub keys_dir: String,
    pub log_format: LogFormat,
    pub server: ServerSettings,
    pub api: ApiSettings,
    pub console: ConsoleSettings,
    pub exports: ExportSettings,
    pub imports: ImportSettings,
    pub reports: ReportSettings,
    pub privacy: PrivacySettings,
    pub tls: TlsSettings,
    pub collect: CollectSettings,
    pub retention: RetentionSweepSettings,
    pub switching: SwitchingSettings,
}

/// The console's sign-in work (see [`crate::console::security::PasswordChecks`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Password hashes computed at once; 0: one per CPU.
    pub password_hashes_at_once: usize,
    /// How long a sign-in waits for a turn before it is refused with 503.
    pub password_hash_wait_ms: u64,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self { password_hashes_at_once: 0, password_hash_wait_ms: 2_000 }
    }
}

impl ConsoleSettings {
    /// The bound in force: the setting, or the CPUs this process may use.
    pub fn hashes_at_once(&self) -> usize {
        match self.password_hashes_at_once {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        }
    }
}

/// The periods of Data Act switching and how often its state machine runs (see
/// [`crate::switching`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchingSettings {
    /// 1 to [`steward_domain::switching::MAX_TRANSITIONAL_DAYS`].
    pub transitional_days: u32,
    /// At least [`steward_domain::switching::MIN_RETRIEVAL_DAYS`].
    pub retrieval_days: u32,
    /// 0: no background passes in this process.
    pub advance_interval_minutes: u32,
}

impl Default for SwitchingSettings {
    fn default() -> Self {
        Self { transitional_days: 30, retrieval_days: 30, advance_interval_minutes: 5 }
    }
}

impl SwitchingSettings {
    pub fn periods(&self) -> steward_domain::switching::SwitchingPeriods {
        steward_domain::switching::SwitchingPeriods::new(self.transitional_days, self.retrieval_days)
    }
}

/// When and how the retention sweeper runs (see [`crate::retention`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSweepSettings {
    /// 0: no background sweeps in this process.
    pub sweep_interval_minutes: u32,
    /// Rows per delete statement, 1 to [`steward_store::doc::MAX_DELETE`].
    pub batch_size: u32,
}

impl Default for RetentionSweepSettings {
    fn default() -> Self {
        Self { sweep_interval_minutes: 60, batch_size: 10_000 }
    }
}

/// How the HTTP server presents itself and treats connections (see [`crate::connection`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Where browsers reach Steward (scheme, host, optional port and path); empty: see
    /// [`crate::collect::public_origin`].
    pub public_url: String,
    pub header_read_timeout_seconds: u32,
    pub idle_timeout_seconds: u32,
    pub max_connections: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_connections: 4096,
        }
    }
}

impl ServerSettings {
    /// `public_url` without its trailing slashes, when set.
    pub fn public_url(&self) -> Option<&str> {
        let url = self.public_url.trim().trim_end_matches('/');
        (!url.is_empty()).then_some(url)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert: String,
    pub key: String,
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty() || !self.key.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub token_ttl_seconds: u32,
    pub rate_limit_per_minute: u32,
    pub max_body_bytes: usize,
    pub token_requests_per_minute: u32,
    pub token_requests_per_minute_per_network: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSettings {
    pub console_max_bytes: u64,
    pub console_max_days: u32,
    pub files_dir: String,
    pub file_days: u32,
    pub worker: bool,
}

/// CSV imports (see [`crate::import`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    /// Largest uploaded CSV file, in bytes.
    pub max_bytes: u64,
}

impl Default for ImportSettings {
    fn default() -> Self {
        Self { max_bytes: 512 * 1024 * 1024 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    pub min_group_size: u32,
    pub max_days: u32,
}

/// Public event collection: limits, and how the visitor's address and country are found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectSettings {
    pub max_body_bytes: usize,
    pub max_events: usize,
    /// Addresses or CIDR networks whose forwarding headers are believed.
    pub trusted_proxies: Vec<String>,
    /// Empty: no country header is read.
    pub country_header: String,
    /// Path of a MaxMind-format `.mmdb`; empty: no lookup.
    pub geoip_database: String,
    pub max_event_age_hours: u32,
    pub requests_per_minute_per_site: u32,
    pub requests_per_minute_per_network: u32,
    /// 0: no quota.
    pub max_events_per_tenant: u64,
}

impl Default for CollectSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 65_536,
            max_events: 500,
            trusted_proxies: Vec::new(),
            country_header: String::new(),
            geoip_database: String::new(),
            max_event_age_hours: 24,
            requests_per_minute_per_site: 12_000,
            requests_per_minute_per_network: 1_200,
            max_events_per_tenant: 50_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./steward-data"),
            database_url: String::new(),
            master_key_file: String::new(),
            master_key: None,
            keys_dir: String::new(),
            log_format: LogFormat::Text,
            server: ServerSettings::default(),
            console: ConsoleSettings::default(),
            api: ApiSettings {
                token_ttl_seconds: 3600,
                rate_limit_per_minute: 500,
                max_body_bytes: 1_048_576,
                token_requests_per_minute: 30,
                token_requests_per_minute_per_network: 300,
            },
            exports: ExportSettings {
                console_max_bytes: 512 * 1024 * 1024,
                console_max_days: 366,
                files_dir: String::new(),
                file_days: 7,
                worker: true,
            },
            imports: ImportSettings::default(),
            reports: ReportSettings { min_group_size: 5, max_days: 366 },
            privacy: PrivacySettings { ipv4_prefix: 24, ipv6_prefix: 48 },
            tls: TlsSettings::default(),
            collect: CollectSettings::default(),
            retention: RetentionSweepSettings::default(),
            switching: SwitchingSettings::default(),
        }
    }
}

/// Variables that are read by the command line rather than the settings file.
const COMMAND_LINE_VARIABLES: &[&str] = &["STEWARD_CONFIG", "STEWARD_LOG"];

impl Settings {
    /// Defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(SettingsError(format!("configuration file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only variables naming a setting are read; the others (typos, test-harness variables)
        // are reported by `unknown_environment_variables` instead of failing the start.
        let known = Self::known_variables();
        let env = Env::prefixed("STEWARD_").filter(move |key| {
            let name = format!("STEWARD_{}", key.as_str().replace('.', "__")).to_uppercase();
            known.contains(&name) && !COMMAND_LINE_VARIABLES.contains(&name.as_str())
        });
        figment = figment.merge(env.split("__"));
        let settings: Settings = figment.extract().map_err(|e| SettingsError(e.to_string()))?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        steward_domain::MaskPolicy::new(self.privacy.ipv4_prefix, self.privacy.ipv6_prefix)
            .map_err(|e| SettingsError(format!("privacy: the IP mask {e}")))?;
        let api = &self.api;
        if [
            api.rate_limit_per_minute,
            api.token_ttl_seconds,
            api.token_requests_per_minute,
            api.token_requests_per_minute_per_network,
        ]
        .contains(&0)
        {
            return Err(SettingsError("api: rate limits and token lifetime must be above zero".into()));
        }
        if self.collect.requests_per_minute_per_site == 0 || self.collect.requests_per_minute_per_network == 0 {
            return Err(SettingsError(
                "collect: requests_per_minute_per_site and _per_network must be above zero".into(),
            ));
        }
        if self.imports.max_bytes == 0 {
            return Err(SettingsError("imports: max_bytes must be above zero".into()));
        }
        if self.reports.max_days == 0 {
            return Err(SettingsError("reports: max_days must be above zero".into()));
        }
        let server = &self.server;
        if server.header_read_timeout_seconds == 0 || server.idle_timeout_seconds == 0 || server.max_connections == 0 {
            return Err(SettingsError(
                "server: header_read_timeout_seconds, idle_timeout_seconds and max_connections must be above zero"
                    .into(),
            ));
        }
        if let Some(public) = self.server.public_url() {
            let parsed = url::Url::parse(public).ok().filter(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none()
                    && url.username().is_empty()
                    && url.password().is_none()
            });
            if parsed.is_none() {
                return Err(SettingsError(format!(
                    "server: public_url {public:?} is not an http(s) URL without query or credentials \
                     (e.g. \"https://steward.example\")"
                )));
            }
        }
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            return Err(SettingsError("tls: set both cert and key (PEM files), or neither for plain HTTP".into()));
        }
        for entry in &self.collect.trusted_proxies {
            if crate::collect::edge::parse_trusted_proxy(entry).is_none() {
                return Err(SettingsError(format!(
                    "collect: trusted_proxies entry {entry:?} is not an IP address or CIDR network (e.g. \"10.0.0.0/8\")"
                )));
            }
        }
        let header = self.collect.country_header.trim();
        if !header.is_empty() && axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            return Err(SettingsError(format!("collect: country_header {header:?} is not a valid HTTP header name")));
        }
        if self.collect.max_events == 0 || self.collect.max_body_bytes == 0 {
            return Err(SettingsError("collect: max_events and max_body_bytes must be above zero".into()));
        }
        let max_batch = steward_store::doc::MAX_DELETE;
        if !(1..=max_batch).contains(&self.retention.batch_size) {
            return Err(SettingsError(format!("retention: batch_size must be from 1 to {max_batch}")));
        }
        let max_transitional = steward_domain::switching::MAX_TRANSITIONAL_DAYS;
        if !(1..=max_transitional).contains(&self.switching.transitional_days) {
            return Err(SettingsError(format!(
                "switching: transitional_days must be from 1 to {max_transitional} (the Data Act's maximum)"
            )));
        }
        let min_retrieval = steward_domain::switching::MIN_RETRIEVAL_DAYS;
        if self.switching.retrieval_days < min_retrieval {
            return Err(SettingsError(format!(
                "switching: retrieval_days must be at least {min_retrieval} (the Data Act's minimum)"
            )));
        }
        Ok(())
    }

    /// The database URL, defaulting to the SQLite file in the data folder.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("steward.db").display())
        } else {
            self.database_url.clone()
        }
    }

    pub fn master_key_file(&self) -> PathBuf {
        if self.master_key_file.is_empty() {
            self.data_dir.join("master.key")
        } else {
            PathBuf::from(&self.master_key_file)
        }
    }

    pub fn files_dir(&self) -> PathBuf {
        if self.exports.files_dir.is_empty() {
            self.data_dir.join("files")
        } else {
            PathBuf::from(&self.exports.files_dir)
        }
    }

    pub fn keys_dir(&self) -> PathBuf {
        if self.keys_dir.is_empty() { self.data_dir.join("keys") } else { PathBuf::from(&self.keys_dir) }
    }

    /// The `STEWARD_…` variable of every setting.
    fn known_variables() -> Vec<String> {
        serde_json::to_value(Settings::default())
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|fields| {
                fields
                    .iter()
                    .flat_map(|(key, value)| match value.as_object() {
                        Some(nested) => nested.keys().map(|n| format!("STEWARD_{key}__{n}")).collect::<Vec<_>>(),
                        None => vec![format!("STEWARD_{key}")],
                    })
                    .map(|name| name.to_uppercase())
                    .chain(std::iter::once("STEWARD_MASTER_KEY".to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `STEWARD_…` variables that match no setting: likely typos, worth a warning.
    pub fn unknown_environment_variables() -> Vec<String> {
        let known = Self::known_variables();
        std::env::vars()
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("STEWARD_"))
            .filter(|name| !known.contains(name) && !COMMAND_LINE_VARIABLES.contains(&name.as_str()))
            .filter(|name| !name.starts_with("STEWARD_TEST_"))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

/// A secret setting: its `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_states_exactly_the_defaults() {
        let parsed: Settings = Figment::from(Toml::string(DEFAULT_TOML)).extract().unwrap();
        assert_eq!(parsed, Settings::default());
    }

    #[test]
    fn a_public_url_must_be_an_http_url_without_query() {
        let mut settings = Settings::default();
        for bad in ["steward.example", "ftp://steward.example", "https://steward.example/?a=1", "https://u:p@s.example"]
        {
            settings.server.public_url = bad.into();
            assert!(settings.check().unwrap_err().to_string().contains("public_url"), "{bad}");
        }
        settings.server.public_url = "https://steward.example/analytics/".into();
        assert!(settings.check().is_ok());
        assert_eq!(settings.server.public_url(), Some("https://steward.example/analytics"));
    }

    #[test]
    fn a_mask_finer_than_24_is_refused() {
        let mut settings = Settings::default();
        settings.privacy.ipv4_prefix = 32;
        assert!(settings.check().is_err());
    }

    #[test]
    fn a_trusted_proxy_that_is_not_an_address_is_refused_by_name() {
        let mut settings = Settings::default();
        settings.collect.trusted_proxies = vec!["10.0.0.0/8".into(), "2001:db8::1".into(), "10.0.0.0/33".into()];
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("\"10.0.0.0/33\""), "{error}");
        settings.collect.trusted_proxies.pop();
        assert!(settings.check().is_ok());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own Jail signature
    fn trusted_proxies_can_be_set_as_a_bracketed_list_in_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STEWARD_COLLECT__TRUSTED_PROXIES", r#"["10.0.0.0/8", "2001:db8::/32"]"#);
            jail.set_env("STEWARD_COLLECT__COUNTRY_HEADER", "CF-IPCountry");
            let settings = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(settings.collect.trusted_proxies, ["10.0.0.0/8", "2001:db8::/32"]);
            assert_eq!(settings.collect.country_header, "CF-IPCountry");
            let unknown = Settings::unknown_environment_variables();
            assert!(!unknown.iter().any(|name| name.starts_with("STEWARD_COLLECT__")), "{unknown:?}");
            Ok(())
        });
    }

    #[test]
    fn switching_periods_stay_within_the_data_act() {
        let mut settings = Settings::default();
        settings.switching.transitional_days = 31;
        assert!(settings.check().unwrap_err().to_string().contains("1 to 30"));
        settings.switching.transitional_days = 30;
        settings.switching.retrieval_days = 29;
        assert!(settings.check().unwrap_err().to_string().contains("at least 30"));
        settings.switching.retrieval_days = 60;
        assert!(settings.check().is_ok());
    }

    #[test]
    fn the_database_defaults_to_sqlite_in_the_data_dir() {
        let settings = Settings { data_dir: PathBuf::from("/var/lib/steward"), ..Settings::default() };
        assert_eq!(settings.database_url(), "sqlite:///var/lib/steward/steward.db");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own Jail signature
    fn variables_override_settings_and_unknown_ones_are_reported_not_fatal() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STEWARD_API__RATE_LIMIT_PER_MINUTE", "42");
            jail.set_env("STEWARD_LISTEN", "127.0.0.1:9999");
            jail.set_env("STEWARD_LISTN", "typo");
            jail.set_env("STEWARD_TEST_BACKEND", "sqlite");
            let settings = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(settings.api.rate_limit_per_minute, 42);
            assert_eq!(settings.listen.port(), 9999);
            let unknown = Settings::unknown_environment_variables();
            assert!(unknown.contains(&"STEWARD_LISTN".to_string()), "{unknown:?}");
            assert!(!unknown.iter().any(|name| name.starts_with("STEWARD_TEST_") || name == "STEWARD_LISTEN"));
            Ok(())
        });
    }
}
