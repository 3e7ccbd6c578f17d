-- Tenants, sites, API clients, tokens, and the document tables of the data model.
-- Ids are UUIDv7; times are timestamptz (microsecond precision, UTC).

CREATE TABLE tenants (
    id          UUID PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    settings    TEXT NOT NULL
);

CREATE TABLE sites (
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          UUID NOT NULL,
    domain      TEXT NOT NULL,
    site_key    TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, domain)
);

CREATE TABLE api_clients (
    id          UUID PRIMARY KEY NOT NULL,
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_clients_tenant ON api_clients (tenant_id);

CREATE TABLE access_tokens (
    token_hash  BYTEA PRIMARY KEY NOT NULL,
    client_id   UUID NOT NULL REFERENCES api_clients (id) ON DELETE CASCADE,
    tenant_id   UUID NOT NULL,
    scopes      TEXT NOT NULL,
    issued_at   TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE leads (
    tenant_id           UUID NOT NULL,
    id                  UUID NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    visitor_profile_id  UUID,
    organization_id     UUID,
    status              TEXT,
    email_key           BYTEA,
    phone_key           BYTEA,
    contact_key         BYTEA,
    body                BYTEA NOT NULL,
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
    tenant_id   UUID NOT NULL,
    id          UUID NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    domain      TEXT,
    body        BYTEA NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX organizations_created ON organizations (tenant_id, created_at);
CREATE INDEX organizations_updated ON organizations (tenant_id, updated_at);
CREATE INDEX organizations_domain ON organizations (tenant_id, domain) WHERE domain IS NOT NULL;

CREATE TABLE visitor_profiles (
    tenant_id       UUID NOT NULL,
    id              UUID NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    organization_id UUID,
    contact_key     BYTEA,
    body            BYTEA NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX visitor_profiles_created ON visitor_profiles (tenant_id, created_at);
CREATE INDEX visitor_profiles_updated ON visitor_profiles (tenant_id, updated_at);
CREATE INDEX visitor_profiles_contact ON visitor_profiles (tenant_id, contact_key) WHERE contact_key IS NOT NULL;

CREATE TABLE sessions (
    tenant_id           UUID NOT NULL,
    id                  UUID NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    visitor_profile_id  UUID NOT NULL,
    body                BYTEA NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX sessions_created ON sessions (tenant_id, created_at);
CREATE INDEX sessions_visitor ON sessions (tenant_id, visitor_profile_id, created_at);

CREATE TABLE events (
    tenant_id           UUID NOT NULL,
    id                  UUID NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    session_id          UUID NOT NULL,
    visitor_profile_id  UUID NOT NULL,
    position            BIGINT NOT NULL,
    body                BYTEA NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX events_created ON events (tenant_id, created_at);
CREATE INDEX events_session ON events (tenant_id, session_id, position);
CREATE INDEX events_visitor ON events (tenant_id, visitor_profile_id);
