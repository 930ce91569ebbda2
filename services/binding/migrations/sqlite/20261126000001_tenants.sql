-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE tenants (
    id            BLOB PRIMARY KEY,
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    api_key_hash  TEXT NOT NULL UNIQUE,
    max_accounts  INTEGER NOT NULL CHECK (max_accounts >= 0),
    sms_per_day   INTEGER NOT NULL CHECK (sms_per_day >= 0),
    created_at_ms INTEGER NOT NULL
) STRICT;
