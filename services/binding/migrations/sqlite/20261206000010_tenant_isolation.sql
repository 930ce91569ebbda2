-- See migrations/postgres for the reasons; same shape, SQLite types.
ALTER TABLE accounts ADD COLUMN route TEXT;
UPDATE accounts SET route = address
WHERE kind = 'enterprise_forwarded'
  AND NOT EXISTS (
    SELECT 1 FROM accounts o
    WHERE o.kind = 'enterprise_forwarded' AND o.address = accounts.address
      AND (o.created_at_ms < accounts.created_at_ms
           OR (o.created_at_ms = accounts.created_at_ms AND o.id < accounts.id)));
CREATE UNIQUE INDEX accounts_route ON accounts (route);

CREATE TABLE tenant_domains (
    domain         TEXT PRIMARY KEY CHECK (length(domain) BETWEEN 3 AND 253),
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX tenant_domains_by_tenant ON tenant_domains (tenant_id, domain);
