-- A tenant's outbound relay: the SMTP server that mail from the phones of
-- its forwarded and webhook accounts is sent through (those accounts have
-- no login of their own), with SMTP AUTH. The password is sealed with the
-- credentials key to the tenant's row, as account passwords are to theirs.
CREATE TABLE submission_relays (
    tenant_id        UUID PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    host             TEXT NOT NULL,
    port             INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls              TEXT NOT NULL CHECK (tls IN ('none', 'starttls', 'implicit')),
    username         TEXT NOT NULL CHECK (username <> ''),
    sealed_password  BYTEA NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);
