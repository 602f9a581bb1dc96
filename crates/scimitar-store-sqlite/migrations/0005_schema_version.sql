-- A counter bumped by every change to a tenant's schema extensions, read
-- with the token on every request, so every process sees a change at once.
ALTER TABLE tenants ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 0;
