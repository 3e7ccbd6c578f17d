-- Background jobs (exports now; retention, data-subject requests and switching later), claimed
-- with a lease. Times are microseconds since the Unix epoch (UTC). `data` is the job's own
-- JSON state and never holds personal data.

CREATE TABLE jobs (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          BLOB NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,
    data        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX jobs_claim ON jobs (kind, status, created_at);
