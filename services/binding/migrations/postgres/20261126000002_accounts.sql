-- Mail accounts. Credentials are sealed by the service (AES-256-GCM bound to
-- the row) before they reach the database; the database never sees them.
CREATE TABLE accounts (
    id                  UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    address             TEXT NOT NULL CHECK (length(address) BETWEEN 3 AND 254),
    kind                TEXT NOT NULL CHECK (kind IN ('external_imap', 'external_pop3', 'enterprise_forwarded', 'webhook')),
    server_host         TEXT,
    server_port         INTEGER CHECK (server_port BETWEEN 1 AND 65535),
    server_tls          TEXT CHECK (server_tls IN ('none', 'starttls', 'implicit')),
    server_username     TEXT,
    sealed_credentials  BYTEA,
    created_at_ms       BIGINT NOT NULL,
    UNIQUE (tenant_id, address)
);
CREATE INDEX accounts_by_tenant ON accounts (tenant_id, id);
