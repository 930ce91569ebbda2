-- Resumable uploads (uploads/): what each has received, chunk by chunk,
-- until it is complete and its bytes are one blob.
CREATE TABLE mailbox_uploads (
    upload_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    total_bytes BIGINT NOT NULL,
    received_bytes BIGINT NOT NULL,
    blob_ref TEXT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX mailbox_uploads_owner ON mailbox_uploads (tenant_id, account_id);
CREATE INDEX mailbox_uploads_expiry ON mailbox_uploads (expires_ms);
CREATE TABLE mailbox_upload_chunks (
    upload_id TEXT NOT NULL,
    offset_bytes BIGINT NOT NULL,
    length_bytes BIGINT NOT NULL,
    file TEXT NOT NULL,
    PRIMARY KEY (upload_id, offset_bytes)
);
