-- Data Act switching requests (Regulation (EU) 2023/2854, Chapter VI): periods, timeline, archive.

CREATE TABLE switching_requests (
    tenant_id   BLOB NOT NULL,
    id          BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    status      TEXT,
    body        BLOB NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX switching_requests_status ON switching_requests (tenant_id, status);
