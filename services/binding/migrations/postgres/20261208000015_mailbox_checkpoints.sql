-- Where ingest stands in each watched mailbox: the durable copy of its
-- marks (which live in Redis), read when those are lost so a mailbox is
-- neither announced again from the start nor skipped. Written once per
-- catch-up that moved; an older checkpoint never replaces a newer one.
CREATE TABLE mailbox_checkpoints (
    account_id    UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    mailbox       TEXT NOT NULL CHECK (length(mailbox) BETWEEN 1 AND 255),
    uid_validity  BIGINT NOT NULL,
    last_uid      BIGINT NOT NULL,
    at_ms         BIGINT NOT NULL,
    PRIMARY KEY (account_id, mailbox)
);
