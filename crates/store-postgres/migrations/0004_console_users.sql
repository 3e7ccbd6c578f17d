-- Console users, their one-time recovery codes and their sessions. `email` and `totp_secret`
-- are sealed with the tenant's key; `email_key` is a keyed blind index; `password_hash` is an
-- argon2id PHC string; recovery codes and session tokens are stored as keyed or SHA-256 hashes.

CREATE TABLE users (
    tenant_id        UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               UUID NOT NULL,
    email_key        BYTEA NOT NULL,
    email            BYTEA NOT NULL,
    role             TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    totp_secret      BYTEA,
    totp_enrolled_at TIMESTAMPTZ,
    totp_last_step   BIGINT,
    failed_attempts  INTEGER NOT NULL DEFAULT 0,
    locked_until     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email_key)
);

CREATE TABLE user_recovery_codes (
    tenant_id   UUID NOT NULL,
    user_id     UUID NOT NULL,
    code_hash   BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE console_sessions (
    token_hash  BYTEA PRIMARY KEY NOT NULL,
    tenant_id   UUID NOT NULL,
    user_id     UUID NOT NULL,
    mfa_passed  BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Sign-in names the tenant by its slug.
CREATE INDEX tenants_slug ON tenants (slug);
