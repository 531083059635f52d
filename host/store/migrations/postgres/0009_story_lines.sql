-- Conversation lines that belong to the story (narration, console entries, sidebar inserts)
-- name the node they are about. A story line reveals its node (spec story-export §1.10); a
-- rewind removes the story lines of the nodes it hides. Lines written before this migration
-- are character chats and interactions, never story lines.
ALTER TABLE scene_conversations ADD COLUMN node_id TEXT;
ALTER TABLE scene_conversations ADD COLUMN story INTEGER NOT NULL DEFAULT 0;
CREATE INDEX scene_conversations_story ON scene_conversations (scene_id, story, node_id);
