-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE otp_sends (
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    msisdn           TEXT NOT NULL,
    day              TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    sent             INTEGER NOT NULL DEFAULT 0,
    wrong            INTEGER NOT NULL DEFAULT 0,
    last_sent_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, msisdn, day)
) STRICT;
CREATE INDEX otp_sends_by_tenant_day ON otp_sends (tenant_id, day);
ALTER TABLE tenants ADD COLUMN codes_per_day INTEGER CHECK (codes_per_day >= 0);
