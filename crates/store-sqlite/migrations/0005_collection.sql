-- Collection: per-site tracker settings and the daily salts of cookieless visitor ids.

ALTER TABLE sites ADD COLUMN cookieless INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN honour_gpc INTEGER NOT NULL DEFAULT 0;

-- One random salt per UTC day (days since 1970-01-01); older ones are deleted, after which
-- no one can link a cookieless visitor id to an address again.
CREATE TABLE collect_salts (
    day   INTEGER PRIMARY KEY NOT NULL,
    salt  BLOB NOT NULL
);

CREATE INDEX sessions_visitor_end ON sessions (tenant_id, visitor_profile_id, updated_at);
