-- Sends already made, by the phone's idempotency key (sends.rs): a
-- repeated Send with the same key sends nothing again.
CREATE TABLE mailbox_sends (
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    client_send_id TEXT NOT NULL,
    rfc_message_id TEXT NOT NULL,
    sent_message_id TEXT NOT NULL,
    sent_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, client_send_id)
);
CREATE INDEX mailbox_sends_age ON mailbox_sends (sent_ms);
