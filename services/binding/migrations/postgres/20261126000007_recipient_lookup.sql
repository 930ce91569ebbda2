-- SMTP/LMTP ingest maps a recipient address to its account on every mail;
-- an address is unique per tenant, so the lookup is by address alone.
CREATE INDEX accounts_by_address ON accounts (address);
-- Dispatch's hot path joins a verified binding to the devices behind its number.
CREATE INDEX devices_live_by_msisdn ON devices (tenant_id, msisdn) WHERE revoked_at_ms IS NULL;
