-- Per-user profile document (profile, preferences, items, skills) as JSON.
-- `version` makes concurrent read-modify-write safe across servers (optimistic locking).
CREATE TABLE user_profiles (
    user_id    TEXT PRIMARY KEY NOT NULL,
    document   TEXT NOT NULL,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
