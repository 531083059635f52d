-- Server settings as JSON documents (one row per section name; today only `providers`:
-- the active LLM/vision/video providers, their options and their AES-256-GCM encrypted keys).
-- One row per save keeps a change atomic: every section is written or none.
CREATE TABLE settings (
    name       TEXT PRIMARY KEY NOT NULL,
    document   TEXT NOT NULL,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
