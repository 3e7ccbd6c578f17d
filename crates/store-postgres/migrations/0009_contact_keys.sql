-- Keyed hashes of every person an organization names (its contacts' lead ids and emails, its own
-- email and phone), space-separated: data-subject requests, erasure and retention find every
-- organization holding a copy of a person through them, without clear values. Rows stored
-- before this migration hold NULL until the first search projects them from their bodies.

ALTER TABLE organizations ADD COLUMN contact_keys TEXT;
