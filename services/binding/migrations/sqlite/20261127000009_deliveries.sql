-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE deliveries (
    event_id         TEXT PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id       BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    channel          TEXT NOT NULL,
    status           TEXT NOT NULL,
    detail           TEXT NOT NULL,
    sequence         INTEGER NOT NULL,
    at_ms            INTEGER NOT NULL
) STRICT;
CREATE INDEX deliveries_by_account ON deliveries (tenant_id, account_id, at_ms DESC, event_id DESC);
CREATE INDEX deliveries_by_age ON deliveries (at_ms);
