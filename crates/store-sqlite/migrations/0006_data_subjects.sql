-- Data-subject rights and retention: restriction flags, requests, legal holds, the erasure ledger.

ALTER TABLE leads ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE visitor_profiles ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
CREATE INDEX leads_restricted ON leads (tenant_id, id) WHERE restricted = 1;
CREATE INDEX visitor_profiles_restricted ON visitor_profiles (tenant_id, id) WHERE restricted = 1;

CREATE TABLE subject_requests (
    tenant_id   BLOB NOT NULL,
    id          BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    status      TEXT,
    email_key   BLOB,
    phone_key   BLOB,
    contact_key BLOB,
    visitor_key BLOB,
    body        BLOB NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX subject_requests_created ON subject_requests (tenant_id, created_at);
CREATE INDEX subject_requests_status ON subject_requests (tenant_id, status);
CREATE INDEX subject_requests_email ON subject_requests (tenant_id, email_key) WHERE email_key IS NOT NULL;
CREATE INDEX subject_requests_phone ON subject_requests (tenant_id, phone_key) WHERE phone_key IS NOT NULL;
CREATE INDEX subject_requests_contact ON subject_requests (tenant_id, contact_key) WHERE contact_key IS NOT NULL;
CREATE INDEX subject_requests_visitor ON subject_requests (tenant_id, visitor_key) WHERE visitor_key IS NOT NULL;

CREATE TABLE legal_holds (
    tenant_id   BLOB NOT NULL,
    id          BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    record_id   BLOB,
    body        BLOB NOT NULL,
    UNIQUE (tenant_id, id)
);

-- Keyed hashes only: the ledger names no one to whoever reads the database.
CREATE TABLE erasure_ledger (
    tenant_id   BLOB NOT NULL,
    id          BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    subject_key BLOB,
    body        BLOB NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX erasure_ledger_key ON erasure_ledger (tenant_id, subject_key);
