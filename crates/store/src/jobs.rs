//! Background work as rows: a job is claimed with a lease, renews it while it works, and is
//! claimed again by any node once the lease runs out (a crashed or restarted worker). The job's
//! own state is JSON that only its kind understands; nothing personal goes in it.

use serde::{Deserialize, Serialize};
use steward_domain::{TenantId, Timestamp};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Succeeded, Self::Failed].into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub tenant_id: TenantId,
    pub id: Uuid,
    /// What runs it, e.g. `export`.
    pub kind: String,
    pub status: JobStatus,
    pub created_at: Timestamp,
    /// How many times a worker has claimed it.
    pub attempts: u32,
    pub data: serde_json::Value,
}
