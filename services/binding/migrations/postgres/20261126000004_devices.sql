-- Devices: phones behind a number. A device may lack a push client (it then
-- gets plain SMS notices). Revoking sets a cut-off: tokens issued before it
-- are void (the session service learns it from BindingChanged).
CREATE TABLE devices (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    msisdn           TEXT NOT NULL CHECK (msisdn ~ '^\+[1-9][0-9]{7,14}$'),
    label            TEXT NOT NULL CHECK (length(label) <= 100),
    has_push_client  BOOLEAN NOT NULL,
    revoked_at_ms    BIGINT,
    created_at_ms    BIGINT NOT NULL
);
CREATE INDEX devices_by_msisdn ON devices (tenant_id, msisdn);
