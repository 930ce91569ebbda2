-- Per-tenant push rate: notifications per minute dispatch sends for the
-- tenant before holding the rest for the next minute; 0 is no limit.
ALTER TABLE tenants ADD COLUMN push_per_minute INTEGER NOT NULL DEFAULT 0 CHECK (push_per_minute >= 0);
