-- Accounts that can log in, and tokens ended by logout before they expire.
-- Times are Unix epoch seconds.
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    last_login    BIGINT
);

CREATE TABLE revoked_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
