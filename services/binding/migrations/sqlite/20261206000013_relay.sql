-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE relay_credentials (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    description    TEXT NOT NULL CHECK (length(description) <= 200),
    created_at_ms  INTEGER NOT NULL,
    revoked_at_ms  INTEGER
) STRICT;
CREATE INDEX relay_credentials_by_tenant ON relay_credentials (tenant_id, id);
CREATE TABLE relay_policies (
    tenant_id           BLOB PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    allowed_sources     TEXT NOT NULL,
    client_cert_sha256  TEXT NOT NULL,
    updated_at_ms       INTEGER NOT NULL
) STRICT;
