-- Before stories existed, the interaction routes kept a scene's story progress in its
-- settings document (`story_progress`). That value moves here, out of the settings, and
-- becomes the starting progress of the scene's story when the story is made.
CREATE TABLE story_progress_carry (
    scene_id TEXT PRIMARY KEY NOT NULL,
    progress BIGINT NOT NULL
);
INSERT INTO story_progress_carry (scene_id, progress)
    SELECT id, CAST(json_extract(settings, '$.story_progress') AS INTEGER) FROM scenes
    WHERE json_valid(settings)
      AND CAST(json_extract(settings, '$.story_progress') AS INTEGER) > 0;
UPDATE scenes SET settings = json_remove(settings, '$.story_progress')
    WHERE json_valid(settings) AND json_type(settings, '$.story_progress') IS NOT NULL;
