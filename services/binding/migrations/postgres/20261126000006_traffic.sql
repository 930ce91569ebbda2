-- Traffic per account per UTC day, added to by upserts.
CREATE TABLE traffic_daily (
    account_id     UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    day            TEXT NOT NULL CHECK (day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
    tenant_id      UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pushed_count   BIGINT NOT NULL DEFAULT 0,
    pushed_bytes   BIGINT NOT NULL DEFAULT 0,
    fetched_count  BIGINT NOT NULL DEFAULT 0,
    fetched_bytes  BIGINT NOT NULL DEFAULT 0,
    sms_count      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day)
);
CREATE INDEX traffic_by_tenant_day ON traffic_daily (tenant_id, day);
