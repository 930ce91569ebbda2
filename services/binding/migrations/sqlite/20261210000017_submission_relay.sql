-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE submission_relays (
    tenant_id        BLOB PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    host             TEXT NOT NULL,
    port             INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls              TEXT NOT NULL CHECK (tls IN ('none', 'starttls', 'implicit')),
    username         TEXT NOT NULL CHECK (username <> ''),
    sealed_password  BLOB NOT NULL,
    updated_at_ms    INTEGER NOT NULL
) STRICT;
