//! The last retention sweep of each tenant, kept in the database so that every process sees it:
//! the node that serves `/readyz`, another node, and `steward retention sweep` run by hand.
//! The report is the sweep's own JSON (counts, days, cutoffs, store errors); nothing personal.

use steward_domain::{TenantId, Timestamp};

#[derive(Debug, Clone, PartialEq)]
pub struct SweepRecord {
    pub tenant_id: TenantId,
    pub finished_at: Timestamp,
    /// Some part of the sweep failed; the report's failures say which.
    pub failed: bool,
    pub report: serde_json::Value,
}

/// What `/readyz` needs from every tenant's last sweep, in one read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SweepOverview {
    /// The latest end of any tenant's last sweep; `None` when no sweep has run anywhere.
    pub last_finished_at: Option<Timestamp>,
    /// Tenants whose last sweep failed, oldest failure first, at most [`MAX_FAILED`] of them.
    pub failed: Vec<SweepRecord>,
}

/// How many failed sweeps an overview lists: enough to act on, bounded for a health check.
pub const MAX_FAILED: u32 = 50;
