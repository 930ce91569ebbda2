-- The delivery log: receipts from pushmail.delivery.v1 (session, dispatch,
-- SMS centres), one row per event, for the portal and the REST API.
-- Pruned after the configured retention.
CREATE TABLE deliveries (
    event_id         TEXT PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id       UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    channel          TEXT NOT NULL,
    status           TEXT NOT NULL,
    detail           TEXT NOT NULL,
    sequence         BIGINT NOT NULL,
    at_ms            BIGINT NOT NULL
);
CREATE INDEX deliveries_by_account ON deliveries (tenant_id, account_id, at_ms DESC, event_id DESC);
CREATE INDEX deliveries_by_age ON deliveries (at_ms);
