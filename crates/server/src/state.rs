//! What every handler shares: the store, the settings and the clock.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use steward_domain::Timestamp;
use steward_store::{MasterKey, Store, StoreError, Vault, VaultError};

use crate::collect::SiteCache;
use crate::collect::edge::Edge;
use crate::collect::pipeline::Collector;
use crate::config::Settings;
use crate::files::{FileStore, LocalFiles};
use crate::ratelimit::{Limiter, Limiters};

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub limiter: Limiter,
    /// Limits of `/oauth/*` and `/collect`, which come without a token.
    pub limits: Limiters,
    pub files: Arc<dyn FileStore>,
    /// The writer of collected journeys and captured leads.
    pub collector: Collector,
    pub edge: Arc<Edge>,
    pub sites: Arc<SiteCache>,
    /// What this process could not save about retention sweeps (the rest is in the database).
    pub sweeps: Arc<crate::retention::SweepStatus>,
    /// The bound on password hashes computed at once (console sign-ins).
    pub passwords: Arc<crate::console::security::PasswordChecks>,
    /// The address [`crate::serve`] listens on, once it does: the tracker's default origin.
    pub listening: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
    /// Collected events per tenant, for `collect.max_events_per_tenant`.
    pub quotas: Arc<crate::collect::TenantQuotas>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Self {
        Self::with_clock(store, settings, Clock::system())
    }

    /// With a clock of the caller's (tests move a fixed one by hand).
    pub fn with_clock(store: Arc<dyn Store>, settings: Settings, clock: Clock) -> Self {
        let limiter = Limiter::new("per-client", settings.api.rate_limit_per_minute, clock.clone());
        let limits = Limiters::new(&settings, &clock);
        let files = Arc::new(LocalFiles::new(settings.files_dir()));
        let collector = Collector::new(store.clone(), clock.clone());
        let edge = Arc::new(Edge::new(&settings.collect).unwrap_or_else(|error| {
            // `steward serve` checks this before it gets here; a library user is told instead.
            tracing::error!(error = %error, "collection runs without GeoIP");
            let without_geoip =
                crate::config::CollectSettings { geoip_database: String::new(), ..settings.collect.clone() };
            Edge::new(&without_geoip).unwrap_or_else(|_| {
                #[allow(clippy::expect_used)]
                Edge::new(&crate::config::CollectSettings::default()).expect("the default settings name no file")
            })
        }));
        let passwords = Arc::new(crate::console::security::PasswordChecks::new(
            settings.console.hashes_at_once(),
            std::time::Duration::from_millis(settings.console.password_hash_wait_ms),
        ));
        Self {
            passwords,
            store,
            settings: Arc::new(settings),
            clock,
            limiter,
            limits,
            files,
            collector,
            edge,
            sites: Arc::default(),
            sweeps: Arc::default(),
            listening: Arc::default(),
            quotas: Arc::default(),
        }
    }
}

/// Wall time, or a fixed time that tests move by hand (token expiry, retention, switching).
#[derive(Clone)]
pub struct Clock {
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { fixed: None }
    }

    pub fn fixed(at: Timestamp) -> Self {
        Self { fixed: Some(Arc::new(AtomicI64::new(at.unix_micros()))) }
    }

    pub fn now(&self) -> Timestamp {
        match &self.fixed {
            Some(micros) => {
                Timestamp::from_unix_micros(micros.load(Ordering::SeqCst)).unwrap_or_else(|_| Timestamp::now())
            }
            None => Timestamp::now(),
        }
    }

    /// Moves a fixed clock forward; a system clock ignores it.
    pub fn advance(&self, by: time::Duration) {
        if let Some(micros) = &self.fixed {
            let delta = i64::try_from(by.whole_microseconds()).unwrap_or(i64::MAX);
            micros.fetch_add(delta, Ordering::SeqCst);
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fixed.is_some() { write!(f, "Clock(fixed at {})", self.now()) } else { f.write_str("Clock(system)") }
    }
}

/// The vault of tenant data keys: the master key from `STEWARD_MASTER_KEY` or its file.
pub fn open_vault(settings: &Settings) -> Result<Arc<Vault>, OpenError> {
    let master = match &settings.master_key {
        Some(key) => MasterKey::from_base64(key.expose())?,
        None => {
            let path = settings.master_key_file();
            if !path.exists() {
                tracing::warn!(
                    path = %path.display(),
                    "creating a new master key; back it up apart from the database, without it no data can be read"
                );
            }
            MasterKey::load_or_create(&path)?
        }
    };
    Ok(Arc::new(Vault::open(settings.keys_dir(), master)?))
}

/// Opens the backend the settings' URL names (`sqlite:` or `postgres:`/`postgresql:`) with the
/// vault.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, OpenError> {
    let vault = open_vault(settings)?;
    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(steward_store_sqlite::SqliteStore::open(&url, vault).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(steward_store_postgres::PgStore::open(&url, vault).await?))
    } else {
        Err(OpenError::Scheme)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the database URL must start with sqlite:// or postgres://")]
    Scheme,
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot open the key vault: {0}")]
    Vault(#[from] VaultError),
}
