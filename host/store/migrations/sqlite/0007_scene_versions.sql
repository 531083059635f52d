-- Every write of a scene or of anything that belongs to it bumps `version` and sets
-- `updated_at` (unix ms) in the same transaction: read caches key on the version, and the
-- scene view reports `updated_at` as its last change.
ALTER TABLE scenes ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE scenes ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE scenes SET updated_at = created_at;
