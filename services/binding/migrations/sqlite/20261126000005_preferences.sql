-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE preferences (
    binding_id        BLOB PRIMARY KEY REFERENCES bindings (id) ON DELETE CASCADE,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    content_level     TEXT NOT NULL CHECK (content_level IN ('notice', 'subject_sender', 'subject_sender_snippet')),
    max_push_bytes    INTEGER NOT NULL CHECK (max_push_bytes BETWEEN 64 AND 1048576),
    attachments       INTEGER NOT NULL,
    quiet_start_min   INTEGER CHECK (quiet_start_min BETWEEN 0 AND 1439),
    quiet_end_min     INTEGER CHECK (quiet_end_min BETWEEN 0 AND 1439),
    quiet_zone        TEXT,
    black_list        TEXT NOT NULL,
    white_list        TEXT NOT NULL,
    signature         TEXT NOT NULL CHECK (length(signature) <= 2000),
    updated_at_ms     INTEGER NOT NULL
) STRICT;
