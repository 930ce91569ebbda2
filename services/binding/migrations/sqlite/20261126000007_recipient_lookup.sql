-- See migrations/postgres for the reasons; same shape.
CREATE INDEX accounts_by_address ON accounts (address);
CREATE INDEX devices_live_by_msisdn ON devices (tenant_id, msisdn) WHERE revoked_at_ms IS NULL;
