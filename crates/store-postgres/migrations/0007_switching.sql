-- Data Act switching requests (Regulation (EU) 2023/2854, Chapter VI): periods, timeline, archive.

CREATE TABLE switching_requests (
    tenant_id   UUID NOT NULL,
    id          UUID NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    status      TEXT,
    body        BYTEA NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX switching_requests_status ON switching_requests (tenant_id, status);
