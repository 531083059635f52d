-- Facts about this installation (install id, schema notes), one row per key.
CREATE TABLE server_meta (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
