-- Console users, their one-time recovery codes and their sessions. Ids are 16-byte UUIDv7
-- blobs; times are microseconds since the Unix epoch (UTC). `email` and `totp_secret` are
-- sealed with the tenant's key; `email_key` is a keyed blind index; `password_hash` is an
-- argon2id PHC string; recovery codes and session tokens are stored as keyed or SHA-256 hashes.

CREATE TABLE users (
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               BLOB NOT NULL,
    email_key        BLOB NOT NULL,
    email            BLOB NOT NULL,
    role             TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    totp_secret      BLOB,
    totp_enrolled_at INTEGER,
    totp_last_step   INTEGER,
    failed_attempts  INTEGER NOT NULL DEFAULT 0,
    locked_until     INTEGER,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email_key)
);

CREATE TABLE user_recovery_codes (
    tenant_id   BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    code_hash   BLOB NOT NULL,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE console_sessions (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    mfa_passed  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Sign-in names the tenant by its slug.
CREATE INDEX tenants_slug ON tenants (slug);
