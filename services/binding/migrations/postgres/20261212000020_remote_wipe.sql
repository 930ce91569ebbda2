-- Remote wipe of a lost phone, ordered from the portal for one app
-- password: `device` erases the whole phone (ActiveSync RemoteWipe),
-- `account` only what the account put on it (AccountOnlyRemoteWipe,
-- protocol 16.1). The order waits for the phone's next request; its
-- acknowledgement is `wipe_done_at_ms`, which also revokes the password.
-- A later order may change the kind until then, never after.
ALTER TABLE app_passwords
    ADD COLUMN wipe_kind TEXT CHECK (wipe_kind IN ('device', 'account')),
    ADD COLUMN wipe_ordered_at_ms BIGINT,
    ADD COLUMN wipe_done_at_ms BIGINT;
