-- The tenant's audit log: append-only, each entry chained to the one before by SHA-256 over its
-- stored bytes (see steward_store::audit). `body` is sealed with the tenant's key.

CREATE TABLE audit_log (
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    id          UUID NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    action      TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    body        BYTEA NOT NULL,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_log_at ON audit_log (tenant_id, at);
CREATE INDEX audit_log_action ON audit_log (tenant_id, action);

-- Entries are never changed. (Removal stays possible for the tenant's own erasure; the chain
-- shows a removal in the middle.)
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
