//! The API's request budget: per client, GCRA (governor), `api.rate_limit_per_minute` requests
//! a minute with the same burst. Every authenticated API response says where the client stands
//! (`RateLimit-Policy`, `RateLimit`, draft-ietf-httpapi-ratelimit-headers); past the budget the
//! answer is 429 with `Retry-After` and problem+json.
//!
//! The same limiter, keyed otherwise, guards the doors without a token: `/oauth/token` (and
//! revocation and introspection) per presented client id, known or not, and per client network;
//! `/collect` per site and per client network (see [`Limiters`]).
//!
//! The limiters are in-process: several Steward nodes each keep their own budget (a shared
//! Redis-backed limiter is the scale-out step DESIGN.md names).

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use steward_domain::ClientId;

use crate::error::ApiError;
use crate::state::Clock;

const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const STATE: HeaderName = HeaderName::from_static("ratelimit");

impl governor::clock::Clock for Clock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let micros = u64::try_from(Clock::now(self).unix_micros()).unwrap_or(0);
        Nanos::from(micros.saturating_mul(1_000))
    }
}

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, Clock, StateInformationMiddleware>;

/// Keys a limiter remembers before it forgets those whose budget is full again.
const MAX_KEYS: usize = 100_000;

/// Where a client stands after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The policy's name in the `RateLimit` headers (`per-client`, `per-site`, …).
    pub policy: &'static str,
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the budget is full again (or, when refused, until the next request).
    pub reset: u64,
}

/// The API's budget per client.
pub type Limiter = KeyedLimiter<ClientId>;

/// `per_minute` requests a minute per key, with the same burst.
#[derive(Clone)]
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: Arc<Keyed<K>>,
    clock: Clock,
    per_minute: u32,
    policy: &'static str,
}

impl<K: Hash + Eq + Clone> std::fmt::Debug for KeyedLimiter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Limiter({} {}/min)", self.policy, self.per_minute)
    }
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(policy: &'static str, per_minute: u32, clock: Clock) -> Self {
        let per_minute = per_minute.max(1);
        let burst = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(burst).allow_burst(burst);
        let limiter =
            RateLimiter::dashmap_with_clock(quota, clock.clone()).with_middleware::<StateInformationMiddleware>();
        Self { limiter: Arc::new(limiter), clock, per_minute, policy }
    }

    /// Spends one request of `key`'s budget, or says how long to wait.
    pub fn check(&self, key: &K) -> Result<Budget, Budget> {
        if self.limiter.len() > MAX_KEYS {
            // Keys made up by a client (unknown ids) must not grow the map without end.
            self.limiter.retain_recent();
        }
        let seconds_per_request = 60.0 / f64::from(self.per_minute);
        let (limit, policy) = (self.per_minute, self.policy);
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let spent = f64::from(self.per_minute - remaining.min(self.per_minute));
                Ok(Budget { policy, limit, remaining, reset: (spent * seconds_per_request).ceil() as u64 })
            }
            Err(not_until) => {
                let now = governor::clock::Clock::now(&self.clock);
                let wait = not_until.wait_time_from(now);
                Err(Budget { policy, limit, remaining: 0, reset: wait.as_secs_f64().ceil().max(1.0) as u64 })
            }
        }
    }
}

/// The limits of the doors without a token (see the module documentation).
#[derive(Debug, Clone)]
pub struct Limiters {
    /// `/oauth/*` per presented client id (at most 64 characters of it).
    pub token_client: KeyedLimiter<String>,
    pub token_network: KeyedLimiter<steward_domain::IpNetwork>,
    pub collect_site: KeyedLimiter<steward_domain::SiteId>,
    pub collect_network: KeyedLimiter<steward_domain::IpNetwork>,
}

impl Limiters {
    pub fn new(settings: &crate::config::Settings, clock: &Clock) -> Self {
        let (api, collect) = (&settings.api, &settings.collect);
        Self {
            token_client: KeyedLimiter::new("per-client-id", api.token_requests_per_minute, clock.clone()),
            token_network: KeyedLimiter::new("per-network", api.token_requests_per_minute_per_network, clock.clone()),
            collect_site: KeyedLimiter::new("per-site", collect.requests_per_minute_per_site, clock.clone()),
            collect_network: KeyedLimiter::new("per-network", collect.requests_per_minute_per_network, clock.clone()),
        }
    }
}

/// Spends one request of each budget in turn; the first refusal ends it. The budget with the
/// fewest requests left (or the refusal) goes into `slot` for the `RateLimit` headers.
pub fn spend(
    slot: Option<&BudgetSlot>,
    checks: &mut dyn Iterator<Item = Result<Budget, Budget>>,
) -> Result<(), ApiError> {
    let mut tightest: Option<Budget> = None;
    for check in checks {
        match check {
            Ok(budget) => {
                if tightest.is_none_or(|t| budget.remaining < t.remaining) {
                    tightest = Some(budget);
                }
            }
            Err(refusal) => {
                if let Some(slot) = slot {
                    slot.set(refusal);
                }
                return Err(refused(refusal));
            }
        }
    }
    if let (Some(slot), Some(budget)) = (slot, tightest) {
        slot.set(budget);
    }
    Ok(())
}

/// Filled by the bearer-token extractor, read by [`headers`] on the way out.
#[derive(Debug, Clone, Default)]
pub struct BudgetSlot(Arc<Mutex<Option<Budget>>>);

impl BudgetSlot {
    pub fn set(&self, budget: Budget) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(budget);
        }
    }

    fn get(&self) -> Option<Budget> {
        self.0.lock().ok().and_then(|slot| *slot)
    }
}

/// Adds the rate-limit headers to every response of an authenticated API call.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let slot = BudgetSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(budget) = slot.get() {
        let headers = response.headers_mut();
        let policy = format!("\"{}\";q={};w=60", budget.policy, budget.limit);
        let state = format!("\"{}\";r={};t={}", budget.policy, budget.remaining, budget.reset);
        for (name, value) in [(POLICY, policy), (STATE, state)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    response
}

/// The refusal past the budget.
pub fn refused(budget: Budget) -> ApiError {
    let whose = match budget.policy {
        "per-client" => "this client has used its",
        "per-client-id" => "this client id has been presented",
        "per-site" => "this site has sent its",
        "per-network" => "your network has sent its",
        _ => "past the",
    };
    let setting = match budget.policy {
        "per-client" => "api.rate_limit_per_minute",
        "per-client-id" => "api.token_requests_per_minute",
        "per-site" => "collect.requests_per_minute_per_site",
        _ => "the per-network limit",
    };
    ApiError::RateLimited {
        detail: format!(
            "{whose} {} requests a minute ({setting}); retry in {} s (see Retry-After)",
            budget.limit, budget.reset
        ),
        retry_after: budget.reset,
    }
}
