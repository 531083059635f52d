-- Before stories existed, the interaction routes kept a scene's story progress in its
-- settings document (`story_progress`). That value moves here, out of the settings, and
-- becomes the starting progress of the scene's story when the story is made.
CREATE TABLE story_progress_carry (
    scene_id TEXT PRIMARY KEY NOT NULL,
    progress BIGINT NOT NULL
);
INSERT INTO story_progress_carry (scene_id, progress)
    SELECT id, (settings::jsonb ->> 'story_progress')::bigint FROM scenes
    WHERE settings::jsonb ? 'story_progress'
      AND jsonb_typeof(settings::jsonb -> 'story_progress') = 'number'
      AND (settings::jsonb ->> 'story_progress')::numeric > 0;
UPDATE scenes SET settings = (settings::jsonb - 'story_progress')::text
    WHERE settings::jsonb ? 'story_progress';
