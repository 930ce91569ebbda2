-- The platform's own store (local/): the mailbox of forwarded, webhook
-- and POP3 accounts, whose messages are in the blob store.
CREATE TABLE mailbox_local_folders (
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    folder TEXT NOT NULL,
    uid_validity BIGINT NOT NULL,
    next_uid BIGINT NOT NULL,
    modseq BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, folder)
);
CREATE TABLE mailbox_local_messages (
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    folder TEXT NOT NULL,
    uid BIGINT NOT NULL,
    flags BIGINT NOT NULL,
    blob_ref TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, folder, uid)
);
CREATE INDEX mailbox_local_messages_age ON mailbox_local_messages (tenant_id, received_ms);
-- Arrival keys filed: a redelivered event files nothing twice, even after
-- the phone moved or deleted the message.
CREATE TABLE mailbox_local_arrivals (
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    arrival_key TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, arrival_key)
);
CREATE INDEX mailbox_local_arrivals_age ON mailbox_local_arrivals (tenant_id, received_ms);
