//! The API's request budget: per client, GCRA (governor), `api.rate_limit_per_minute` requests
//! a minute with the same burst. Every authenticated API response says where the client stands
//! (`RateLimit-Policy`, `RateLimit`, draft-ietf-httpapi-ratelimit-headers); past the budget the
//! answer is 429 with `Retry-After` and problem+json.
//!
//! The limiter is in-process: several Steward nodes each keep their own budget (a shared
//! Redis-backed limiter is the scale-out step DESIGN.md names).

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

type Keyed = RateLimiter<ClientId, DashMapStateStore<ClientId>, Clock, StateInformationMiddleware>;

/// Where a client stands after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the budget is full again (or, when refused, until the next request).
    pub reset: u64,
}

#[derive(Clone)]
pub struct Limiter {
    limiter: Arc<Keyed>,
    clock: Clock,
    per_minute: u32,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Limiter({}/min)", self.per_minute)
    }
}

impl Limiter {
    pub fn new(per_minute: u32, clock: Clock) -> Self {
        let per_minute = per_minute.max(1);
        let burst = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(burst).allow_burst(burst);
        let limiter =
            RateLimiter::dashmap_with_clock(quota, clock.clone()).with_middleware::<StateInformationMiddleware>();
        Self { limiter: Arc::new(limiter), clock, per_minute }
    }

    /// Spends one request of `client`'s budget, or says how long to wait.
    pub fn check(&self, client: ClientId) -> Result<Budget, Budget> {
        let seconds_per_request = 60.0 / f64::from(self.per_minute);
        match self.limiter.check_key(&client) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let spent = f64::from(self.per_minute - remaining.min(self.per_minute));
                Ok(Budget { limit: self.per_minute, remaining, reset: (spent * seconds_per_request).ceil() as u64 })
            }
            Err(not_until) => {
                let now = governor::clock::Clock::now(&self.clock);
                let wait = not_until.wait_time_from(now);
                Err(Budget { limit: self.per_minute, remaining: 0, reset: wait.as_secs_f64().ceil().max(1.0) as u64 })
            }
        }
    }
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
        let policy = format!("\"per-client\";q={};w=60", budget.limit);
        let state = format!("\"per-client\";r={};t={}", budget.remaining, budget.reset);
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
    ApiError::RateLimited {
        detail: format!(
            "this client has used its {} requests a minute; retry in {} s (see Retry-After)",
            budget.limit, budget.reset
        ),
        retry_after: budget.reset,
    }
}
