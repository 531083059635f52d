-- A scene and everything that belongs to it. Documents are the JSON the API returns; the
-- columns beside them are what queries filter and order by. Writes of one scene happen in
-- one transaction; deleting a scene deletes its rows in every table here.
CREATE TABLE scenes (
    id            TEXT PRIMARY KEY NOT NULL,
    owner         TEXT NOT NULL,
    document      TEXT NOT NULL,
    settings      TEXT NOT NULL,
    original_text TEXT,
    segments      TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX scenes_owner ON scenes (owner, created_at);

-- Characters in extraction order (`position`).
CREATE TABLE scene_characters (
    scene_id TEXT NOT NULL,
    id       TEXT NOT NULL,
    position INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (scene_id, id)
);

CREATE TABLE scene_items (
    scene_id   TEXT NOT NULL,
    id         TEXT NOT NULL,
    document   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scene_id, id)
);

-- Conversation lines in append order (`seq`).
CREATE TABLE scene_conversations (
    seq        BIGSERIAL PRIMARY KEY,
    scene_id   TEXT NOT NULL,
    id         TEXT NOT NULL,
    document   TEXT NOT NULL
);
CREATE INDEX scene_conversations_scene ON scene_conversations (scene_id, seq);
