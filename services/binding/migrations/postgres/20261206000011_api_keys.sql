-- Several API keys per tenant, each revocable with a grace period (the key
-- works until expires_at_ms). Keys are stored as SHA-256 (256-bit random
-- keys: a fast hash is enough and a lookup stays an index probe) with a
-- recognisable prefix in clear. The key made with each existing tenant
-- becomes its first key here (id = the tenant's id). Expand-only:
-- tenants.api_key_hash stays, written for new tenants' first keys, and is
-- no longer read.
CREATE TABLE api_keys (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash       TEXT NOT NULL UNIQUE,
    prefix         TEXT NOT NULL,
    description    TEXT NOT NULL CHECK (length(description) <= 200),
    created_at_ms  BIGINT NOT NULL,
    expires_at_ms  BIGINT,
    revoked_at_ms  BIGINT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id);
INSERT INTO api_keys (id, tenant_id, key_hash, prefix, description, created_at_ms)
SELECT id, id, api_key_hash, '', 'made with the tenant', created_at_ms FROM tenants;
