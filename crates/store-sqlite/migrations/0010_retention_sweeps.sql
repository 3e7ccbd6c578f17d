-- The last retention sweep of each tenant, whoever ran it (a node's background sweeper or
-- `steward retention sweep` in another process): `GET /api/v1/retention-policies` shows it and
-- `/readyz` reports a failed one on every node until a later sweep of that tenant succeeds.
-- `report` is the sweep's JSON report: counts, days, cutoffs and store errors, nothing personal.

CREATE TABLE retention_sweeps (
    tenant_id    BLOB PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    finished_at  INTEGER NOT NULL,
    failed       INTEGER NOT NULL,
    report       TEXT NOT NULL
);
CREATE INDEX retention_sweeps_failed ON retention_sweeps (failed, finished_at);
