-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE app_passwords (
    id                  BLOB PRIMARY KEY,
    tenant_id           BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id          BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id           BLOB NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    msisdn              TEXT NOT NULL,
    label               TEXT NOT NULL CHECK (length(label) <= 100),
    lookup              TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    client_device_id    TEXT,
    client_device_type  TEXT,
    device_model        TEXT,
    device_os           TEXT,
    device_name         TEXT,
    device_user_agent   TEXT,
    device_operator     TEXT,
    created_at_ms       INTEGER NOT NULL,
    last_used_at_ms     INTEGER,
    policy_key          INTEGER,
    policy_digest       TEXT,
    pending_policy_key  INTEGER,
    revoked_at_ms       INTEGER,
    UNIQUE (account_id, lookup)
) STRICT;
CREATE INDEX app_passwords_by_account ON app_passwords (tenant_id, account_id);
