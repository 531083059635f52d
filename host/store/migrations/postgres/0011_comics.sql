-- A scene's comic: the storyboard analysis, key elements and call metrics (JSON documents
-- written by the domain layer) on the `comics` header row, one prompt per frame, the uploaded
-- reference images and the generated frame images. Image bytes live in the blob store; these
-- rows hold their blob keys and metadata. Times are Unix epoch milliseconds.
--
-- Every write of a comic writes its header row (an upsert that bumps `version`) before its
-- other rows, after a shared lock on the scene row: writes of one comic queue behind each
-- other, and a scene delete (scene row first, then the comic it cascades to) never deadlocks
-- against them. Ids are compared byte-wise (collation "C"), so lists come back in the order
-- the API promises.
CREATE TABLE comics (
    scene_id              TEXT PRIMARY KEY NOT NULL REFERENCES scenes (id) ON DELETE CASCADE,
    analysis              TEXT,
    key_elements          TEXT,
    metrics               TEXT,
    -- When the reference index was last written; NULL: the comic has no index yet.
    references_updated_at BIGINT,
    -- The comic job running for this scene (at most one) and when it claimed the comic.
    job_id                TEXT,
    job_claimed_at        BIGINT,
    version               BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE comic_prompts (
    scene_id   TEXT NOT NULL REFERENCES comics (scene_id) ON DELETE CASCADE,
    frame_id   TEXT COLLATE "C" NOT NULL,
    document   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scene_id, frame_id)
);

CREATE TABLE comic_references (
    scene_id     TEXT NOT NULL REFERENCES comics (scene_id) ON DELETE CASCADE,
    element_id   TEXT COLLATE "C" NOT NULL,
    blob_key     TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    uploaded_at  BIGINT NOT NULL,
    PRIMARY KEY (scene_id, element_id)
);

CREATE TABLE comic_images (
    scene_id     TEXT NOT NULL REFERENCES comics (scene_id) ON DELETE CASCADE,
    frame_id     TEXT COLLATE "C" NOT NULL,
    blob_key     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    -- The resume signature document of the image (JSON), if any.
    signature    TEXT,
    generated_at BIGINT NOT NULL,
    PRIMARY KEY (scene_id, frame_id)
);
