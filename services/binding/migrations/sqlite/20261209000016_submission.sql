-- See migrations/postgres for the reasons; same shape, SQLite types.
ALTER TABLE accounts ADD COLUMN submission_host TEXT;
ALTER TABLE accounts ADD COLUMN submission_port INTEGER CHECK (submission_port BETWEEN 1 AND 65535);
ALTER TABLE accounts ADD COLUMN submission_tls TEXT CHECK (submission_tls IN ('none', 'starttls', 'implicit'));
ALTER TABLE accounts ADD COLUMN submission_username TEXT;
