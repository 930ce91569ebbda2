-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE devices (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    msisdn           TEXT NOT NULL CHECK (msisdn GLOB '+[1-9]*' AND length(msisdn) BETWEEN 9 AND 16),
    label            TEXT NOT NULL CHECK (length(label) <= 100),
    has_push_client  INTEGER NOT NULL,
    revoked_at_ms    INTEGER,
    created_at_ms    INTEGER NOT NULL
) STRICT;
CREATE INDEX devices_by_msisdn ON devices (tenant_id, msisdn);
