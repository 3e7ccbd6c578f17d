-- Tenants, sites, API clients, tokens, and the document tables of the data model.
-- Ids are 16-byte UUIDv7 blobs; times are microseconds since the Unix epoch (UTC).

CREATE TABLE tenants (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    settings    TEXT NOT NULL
);

CREATE TABLE sites (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          BLOB NOT NULL,
    domain      TEXT NOT NULL,
    site_key    TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, domain)
);

CREATE TABLE api_clients (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX api_clients_tenant ON api_clients (tenant_id);

CREATE TABLE access_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    client_id   BLOB NOT NULL REFERENCES api_clients (id) ON DELETE CASCADE,
    tenant_id   BLOB NOT NULL,
    scopes      TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE leads (
    tenant_id           BLOB NOT NULL,
    id                  BLOB NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    visitor_profile_id  BLOB,
    organization_id     BLOB,
    status              TEXT,
    email_key           BLOB,
    phone_key           BLOB,
    contact_key         BLOB,
    body                BLOB NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX leads_created ON leads (tenant_id, created_at);
CREATE INDEX leads_updated ON leads (tenant_id, updated_at);
CREATE INDEX leads_visitor ON leads (tenant_id, visitor_profile_id) WHERE visitor_profile_id IS NOT NULL;
CREATE INDEX leads_organization ON leads (tenant_id, organization_id) WHERE organization_id IS NOT NULL;
CREATE INDEX leads_email ON leads (tenant_id, email_key) WHERE email_key IS NOT NULL;
CREATE INDEX leads_phone ON leads (tenant_id, phone_key) WHERE phone_key IS NOT NULL;
CREATE INDEX leads_contact ON leads (tenant_id, contact_key) WHERE contact_key IS NOT NULL;

CREATE TABLE organizations (
    tenant_id   BLOB NOT NULL,
    id          BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    domain      TEXT,
    body        BLOB NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX organizations_created ON organizations (tenant_id, created_at);
CREATE INDEX organizations_updated ON organizations (tenant_id, updated_at);
CREATE INDEX organizations_domain ON organizations (tenant_id, domain) WHERE domain IS NOT NULL;

CREATE TABLE visitor_profiles (
    tenant_id       BLOB NOT NULL,
    id              BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    organization_id BLOB,
    contact_key     BLOB,
    body            BLOB NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX visitor_profiles_created ON visitor_profiles (tenant_id, created_at);
CREATE INDEX visitor_profiles_updated ON visitor_profiles (tenant_id, updated_at);
CREATE INDEX visitor_profiles_contact ON visitor_profiles (tenant_id, contact_key) WHERE contact_key IS NOT NULL;

CREATE TABLE sessions (
    tenant_id           BLOB NOT NULL,
    id                  BLOB NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    visitor_profile_id  BLOB NOT NULL,
    body                BLOB NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX sessions_created ON sessions (tenant_id, created_at);
CREATE INDEX sessions_visitor ON sessions (tenant_id, visitor_profile_id, created_at);

CREATE TABLE events (
    tenant_id           BLOB NOT NULL,
    id                  BLOB NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    session_id          BLOB NOT NULL,
    visitor_profile_id  BLOB NOT NULL,
    position            INTEGER NOT NULL,
    body                BLOB NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX events_created ON events (tenant_id, created_at);
CREATE INDEX events_session ON events (tenant_id, session_id, position);
CREATE INDEX events_visitor ON events (tenant_id, visitor_profile_id);
