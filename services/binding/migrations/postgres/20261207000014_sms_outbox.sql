-- The SMS outbox (`sms_outbox.enabled`: standalone, where no SMS centre
-- exists): every SMS the platform sent, as text (a WAP Push read back to
-- its indication text and URL), for the portal and the REST API. One row
-- per SMS event; a tenant's rows go with it. Pruned by age and count.
CREATE TABLE sms_outbox (
    id          TEXT PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    msisdn      TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    url         TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);
CREATE INDEX sms_outbox_by_tenant ON sms_outbox (tenant_id, at_ms DESC, id DESC);
CREATE INDEX sms_outbox_by_age ON sms_outbox (at_ms DESC, id DESC);
