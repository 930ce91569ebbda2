-- The folders an IMAP account has watched besides INBOX: a JSON array of
-- raw server names ('[]': INBOX only), read by ingest's watchers.
ALTER TABLE accounts ADD COLUMN watched_folders TEXT NOT NULL DEFAULT '[]';
