-- See migrations/postgres for the reasons; same shape, SQLite types.
CREATE TABLE mailbox_checkpoints (
    account_id    BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    mailbox       TEXT NOT NULL CHECK (length(mailbox) BETWEEN 1 AND 255),
    uid_validity  INTEGER NOT NULL,
    last_uid      INTEGER NOT NULL,
    at_ms         INTEGER NOT NULL,
    PRIMARY KEY (account_id, mailbox)
) STRICT;
