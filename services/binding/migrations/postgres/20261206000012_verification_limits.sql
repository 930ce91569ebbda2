-- Verification codes sent per tenant, number and UTC day, with the wrong
-- answers given that day: the resend cooldown, the per-number daily cap,
-- the tenant's code budget and the number's guess budget all read here.
-- A tenant's older days for a number are deleted when it is sent a code.
CREATE TABLE otp_sends (
    tenant_id        UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    msisdn           TEXT NOT NULL,
    day              TEXT NOT NULL CHECK (day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
    sent             BIGINT NOT NULL DEFAULT 0,
    wrong            BIGINT NOT NULL DEFAULT 0,
    last_sent_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, msisdn, day)
);
CREATE INDEX otp_sends_by_tenant_day ON otp_sends (tenant_id, day);
-- The tenant's own code budget per day, apart from sms_per_day (NULL: the
-- platform default).
ALTER TABLE tenants ADD COLUMN codes_per_day BIGINT CHECK (codes_per_day >= 0);
