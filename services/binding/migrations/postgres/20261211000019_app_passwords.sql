-- App passwords: how a phone's own mail app (Exchange ActiveSync) logs in
-- to an account, one per phone. The password's first group is its lookup
-- key, kept in clear beside the argon2id hash (PHC string) of the whole.
-- Each registered a device of the bound number; the phone's own DeviceId
-- and DeviceType are pinned at its first login; what the phone says it is
-- (model, OS, the name its user gave it, user agent, mobile operator; not
-- its IMEI or number) is kept for the portal. The ActiveSync policy key
-- the phone acknowledged (Provision) with a digest of the policy it
-- applied, and the key it was offered and has yet to acknowledge, are kept
-- here too: the device's identity and its
-- provisioning live together. Revoked rows stay for the listing (and keep
-- their lookup key from being issued again).
CREATE TABLE app_passwords (
    id                  UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id          UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id           UUID NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    msisdn              TEXT NOT NULL,
    label               TEXT NOT NULL CHECK (length(label) <= 100),
    lookup              TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    client_device_id    TEXT,
    client_device_type  TEXT,
    device_model        TEXT,
    device_os           TEXT,
    device_name         TEXT,
    device_user_agent   TEXT,
    device_operator     TEXT,
    created_at_ms       BIGINT NOT NULL,
    last_used_at_ms     BIGINT,
    policy_key          BIGINT,
    policy_digest       TEXT,
    pending_policy_key  BIGINT,
    revoked_at_ms       BIGINT,
    UNIQUE (account_id, lookup)
);
CREATE INDEX app_passwords_by_account ON app_passwords (tenant_id, account_id);
