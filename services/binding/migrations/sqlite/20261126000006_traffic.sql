-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE traffic_daily (
    account_id     BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    day            TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pushed_count   INTEGER NOT NULL DEFAULT 0,
    pushed_bytes   INTEGER NOT NULL DEFAULT 0,
    fetched_count  INTEGER NOT NULL DEFAULT 0,
    fetched_bytes  INTEGER NOT NULL DEFAULT 0,
    sms_count      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day)
) STRICT;
CREATE INDEX traffic_by_tenant_day ON traffic_daily (tenant_id, day);
