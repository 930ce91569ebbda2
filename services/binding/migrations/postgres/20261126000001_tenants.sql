-- Tenants: an enterprise, or the carrier's consumer brand. The API key is
-- stored only as its SHA-256 (keys are 256-bit random, so a fast hash is
-- enough and lookups stay an index probe).
CREATE TABLE tenants (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    api_key_hash  TEXT NOT NULL UNIQUE,
    max_accounts  BIGINT NOT NULL CHECK (max_accounts >= 0),
    sms_per_day   BIGINT NOT NULL CHECK (sms_per_day >= 0),
    created_at_ms BIGINT NOT NULL
);
