-- A scene's branching story. `stories` holds the header document (intro, main objective,
-- stage, progress) and a version that every write bumps: a write names the version it read
-- and fails if another write came first (optimistic concurrency; each write is one
-- transaction). The story's parts are rows of their own, in story order (`position`):
-- nodes know their parent, choices the node they created, objectives their task.
CREATE TABLE stories (
    scene_id   TEXT PRIMARY KEY NOT NULL,
    document   TEXT NOT NULL,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE story_nodes (
    scene_id  TEXT NOT NULL,
    id        TEXT NOT NULL,
    parent_id TEXT,
    position  INTEGER NOT NULL,
    document  TEXT NOT NULL,
    PRIMARY KEY (scene_id, id)
);
CREATE INDEX story_nodes_parent ON story_nodes (scene_id, parent_id);

CREATE TABLE story_choices (
    scene_id     TEXT NOT NULL,
    node_id      TEXT NOT NULL,
    id           TEXT NOT NULL,
    position     INTEGER NOT NULL,
    next_node_id TEXT,
    document     TEXT NOT NULL,
    PRIMARY KEY (scene_id, node_id, id)
);

CREATE TABLE story_tasks (
    scene_id TEXT NOT NULL,
    id       TEXT NOT NULL,
    position INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (scene_id, id)
);

CREATE TABLE story_objectives (
    scene_id TEXT NOT NULL,
    task_id  TEXT NOT NULL,
    id       TEXT NOT NULL,
    position INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (scene_id, task_id, id)
);

CREATE TABLE story_locations (
    scene_id TEXT NOT NULL,
    id       TEXT NOT NULL,
    position INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (scene_id, id)
);
