-- Non-personal values reports count from without opening sealed bodies: whether a visit
-- converted, and the referrer type of a lead's first touch. Rows stored before this migration
-- hold NULL until a report first needs them: it projects them from their bodies then (and a
-- node that does not know the columns yet leaves NULL the same way).

ALTER TABLE sessions ADD COLUMN converted BIGINT;
ALTER TABLE leads ADD COLUMN referrer_type TEXT;
CREATE INDEX sessions_unprojected ON sessions (tenant_id, id) WHERE converted IS NULL;
CREATE INDEX leads_unprojected ON leads (tenant_id, id) WHERE referrer_type IS NULL;
