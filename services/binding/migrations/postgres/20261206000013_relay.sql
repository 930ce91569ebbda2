-- SMTP relay credentials of a tenant's mail servers: a platform-unique
-- generated username and an argon2id hash (PHC string) of a generated
-- password. Revoked rows stay (revoked_at_ms) for the listing.
CREATE TABLE relay_credentials (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    description    TEXT NOT NULL CHECK (length(description) <= 200),
    created_at_ms  BIGINT NOT NULL,
    revoked_at_ms  BIGINT
);
CREATE INDEX relay_credentials_by_tenant ON relay_credentials (tenant_id, id);
-- Where a tenant's inbound mail may come from: JSON arrays of CIDRs and
-- client-certificate SHA-256 fingerprints, validated by the service.
CREATE TABLE relay_policies (
    tenant_id           UUID PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    allowed_sources     TEXT NOT NULL,
    client_cert_sha256  TEXT NOT NULL,
    updated_at_ms       BIGINT NOT NULL
);
