-- The tenant's audit log: append-only, each entry chained to the one before by SHA-256 over its
-- stored bytes (see steward_store::audit). `body` is sealed with the tenant's key. Times are
-- microseconds since the Unix epoch (UTC).

CREATE TABLE audit_log (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    id          BLOB NOT NULL,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    body        BLOB NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_log_at ON audit_log (tenant_id, at);
CREATE INDEX audit_log_action ON audit_log (tenant_id, action);

-- Entries are never changed. (Removal stays possible for the tenant's own erasure; the chain
-- shows a removal in the middle.)
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
