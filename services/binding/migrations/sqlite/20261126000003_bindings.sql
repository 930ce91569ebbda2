-- See migrations/postgres for the reasons; same shape, SQLite types (the
-- E.164 shape is checked by the service; SQLite has no regex by default).
CREATE TABLE bindings (
    id                  BLOB PRIMARY KEY,
    tenant_id           BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id          BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    msisdn              TEXT NOT NULL CHECK (msisdn GLOB '+[1-9]*' AND length(msisdn) BETWEEN 9 AND 16),
    state               TEXT NOT NULL CHECK (state IN ('pending', 'verified', 'revoked')),
    code_mac            TEXT,
    code_expires_at_ms  INTEGER,
    code_attempts       INTEGER NOT NULL DEFAULT 0,
    code_used           INTEGER NOT NULL DEFAULT 0,
    updated_at_ms       INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX bindings_live ON bindings (account_id, msisdn) WHERE state <> 'revoked';
CREATE INDEX bindings_by_tenant ON bindings (tenant_id, account_id);
CREATE INDEX bindings_by_msisdn ON bindings (msisdn) WHERE state = 'verified';
