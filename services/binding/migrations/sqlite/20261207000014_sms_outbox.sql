-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE sms_outbox (
    id          TEXT PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    msisdn      TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    url         TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    at_ms       INTEGER NOT NULL
) STRICT;
CREATE INDEX sms_outbox_by_tenant ON sms_outbox (tenant_id, at_ms DESC, id DESC);
CREATE INDEX sms_outbox_by_age ON sms_outbox (at_ms DESC, id DESC);
