-- See migrations/postgres for the reasons; same shape, SQLite types.
ALTER TABLE app_passwords ADD COLUMN wipe_kind TEXT CHECK (wipe_kind IN ('device', 'account'));
ALTER TABLE app_passwords ADD COLUMN wipe_ordered_at_ms INTEGER;
ALTER TABLE app_passwords ADD COLUMN wipe_done_at_ms INTEGER;
