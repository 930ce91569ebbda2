-- The tenant's time zone (IANA name): its traffic and SMS-quota days are
-- its own, not UTC's (a Beijing day no longer splits at 08:00).
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
