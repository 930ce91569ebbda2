-- What a phone holds of a folder, behind each sync token (sync/state.rs).
CREATE TABLE mailbox_sync_states (
    token TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    folder TEXT NOT NULL,
    issued_ms BIGINT NOT NULL,
    state BLOB NOT NULL
);
CREATE INDEX mailbox_sync_states_scope
    ON mailbox_sync_states (tenant_id, account_id, folder, issued_ms);
