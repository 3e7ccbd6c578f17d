-- Background jobs (exports now; retention, data-subject requests and switching later), claimed
-- with a lease (FOR UPDATE SKIP LOCKED, so several nodes can share the table). `data` is the
-- job's own JSON state and never holds personal data.

CREATE TABLE jobs (
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          UUID NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    data        JSONB NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX jobs_claim ON jobs (kind, status, created_at);
