-- Every write of a scene or of anything that belongs to it sets `version` from one sequence
-- (so versions only grow, across every server sharing this database) and `updated_at`
-- (unix ms), in the same transaction. Servers compare versions to know a cached view is
-- still current; the scene view reports `updated_at` as its last change.
CREATE SEQUENCE scene_versions;
ALTER TABLE scenes ADD COLUMN version BIGINT NOT NULL DEFAULT nextval('scene_versions');
ALTER TABLE scenes ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE scenes SET updated_at = created_at;
