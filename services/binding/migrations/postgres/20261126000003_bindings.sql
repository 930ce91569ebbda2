-- MSISDN bindings: one number may bind several accounts and one account
-- several numbers. The one-time code lives on the row as an HMAC only.
CREATE TABLE bindings (
    id                  UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id          UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    msisdn              TEXT NOT NULL CHECK (msisdn ~ '^\+[1-9][0-9]{7,14}$'),
    state               TEXT NOT NULL CHECK (state IN ('pending', 'verified', 'revoked')),
    code_mac            TEXT,
    code_expires_at_ms  BIGINT,
    code_attempts       INTEGER NOT NULL DEFAULT 0,
    code_used           BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at_ms       BIGINT NOT NULL
);
-- At most one live (pending or verified) binding per account and number.
CREATE UNIQUE INDEX bindings_live ON bindings (account_id, msisdn) WHERE state <> 'revoked';
CREATE INDEX bindings_by_tenant ON bindings (tenant_id, account_id);
CREATE INDEX bindings_by_msisdn ON bindings (msisdn) WHERE state = 'verified';
