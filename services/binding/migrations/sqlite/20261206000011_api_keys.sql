-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE api_keys (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash       TEXT NOT NULL UNIQUE,
    prefix         TEXT NOT NULL,
    description    TEXT NOT NULL CHECK (length(description) <= 200),
    created_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER,
    revoked_at_ms  INTEGER
) STRICT;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id);
INSERT INTO api_keys (id, tenant_id, key_hash, prefix, description, created_at_ms)
SELECT id, id, api_key_hash, '', 'made with the tenant', created_at_ms FROM tenants;
