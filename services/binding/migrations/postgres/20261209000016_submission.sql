-- An account's own submission server (SMTP, 587 STARTTLS or 465 implicit
-- TLS): where the mailbox service sends mail from the phone, logging in
-- with the account's sealed credentials. All NULL when none is set; an
-- empty username means the same login as server_username.
ALTER TABLE accounts ADD COLUMN submission_host TEXT;
ALTER TABLE accounts ADD COLUMN submission_port INTEGER CHECK (submission_port BETWEEN 1 AND 65535);
ALTER TABLE accounts ADD COLUMN submission_tls TEXT CHECK (submission_tls IN ('none', 'starttls', 'implicit'));
ALTER TABLE accounts ADD COLUMN submission_username TEXT;
