-- A counter bumped by every change to a tenant's schema extensions, read
-- with the token on every request, so every node sees a change at once.
ALTER TABLE tenants ADD COLUMN schema_version BIGINT NOT NULL DEFAULT 0;
