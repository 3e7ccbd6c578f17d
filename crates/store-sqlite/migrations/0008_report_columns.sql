-- Non-personal values reports count from without opening sealed bodies: whether a visit
-- converted, and the referrer type of a lead's first touch. Rows stored before this migration
-- hold NULL until a report first needs them: it projects them from their bodies then (and a
-- node that does not know the columns yet leaves NULL the same way).

ALTER TABLE sessions ADD COLUMN converted INTEGER;
ALTER TABLE leads ADD COLUMN referrer_type TEXT;
-- Covering indexes: a report's counts (and the search for rows still to project) read them
-- alone, never a row with its sealed body.
CREATE INDEX sessions_tally ON sessions (tenant_id, created_at, visitor_profile_id, converted, id);
CREATE INDEX leads_tally ON leads (tenant_id, created_at, restricted, referrer_type, visitor_profile_id, id);
