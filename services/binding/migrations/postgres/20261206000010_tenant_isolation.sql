-- An address that mail reaches by address alone (a forwarded account,
-- resolved by ResolveRecipient for SMTP/LMTP) routes to exactly one account
-- on the platform: `route` holds a forwarded account's address and is
-- unique across tenants, so a race cannot create two and the second
-- create changes nothing. Where two tenants already hold one forwarded
-- address, the oldest account keeps the route (the one mail reached before
-- the duplicate broke delivery); the later ones keep their rows and route
-- nothing. Expand-only: `address` and its per-tenant uniqueness stay.
ALTER TABLE accounts ADD COLUMN route TEXT;
UPDATE accounts SET route = address
WHERE kind = 'enterprise_forwarded'
  AND NOT EXISTS (
    SELECT 1 FROM accounts o
    WHERE o.kind = 'enterprise_forwarded' AND o.address = accounts.address
      AND (o.created_at_ms < accounts.created_at_ms
           OR (o.created_at_ms = accounts.created_at_ms AND o.id < accounts.id)));
CREATE UNIQUE INDEX accounts_route ON accounts (route);

-- Mail domains an operator assigned to a tenant: only the owner creates
-- forwarded addresses in the domain or below it.
CREATE TABLE tenant_domains (
    domain         TEXT PRIMARY KEY CHECK (length(domain) BETWEEN 3 AND 253),
    tenant_id      UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at_ms  BIGINT NOT NULL
);
CREATE INDEX tenant_domains_by_tenant ON tenant_domains (tenant_id, domain);
