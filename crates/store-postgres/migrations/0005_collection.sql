-- Collection: per-site tracker settings and the daily salts of cookieless visitor ids.

ALTER TABLE sites ADD COLUMN cookieless BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE sites ADD COLUMN honour_gpc BOOLEAN NOT NULL DEFAULT false;

-- One random salt per UTC day (days since 1970-01-01); older ones are deleted, after which
-- no one can link a cookieless visitor id to an address again.
CREATE TABLE collect_salts (
    day   INTEGER PRIMARY KEY NOT NULL,
    salt  BYTEA NOT NULL
);

CREATE INDEX sessions_visitor_end ON sessions (tenant_id, visitor_profile_id, updated_at);
