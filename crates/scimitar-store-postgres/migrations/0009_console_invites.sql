-- One-time invite links for a tenant's customer administrator: the SHA-256
-- of the code, the tenant, and until when it works. Used once (deleted).
CREATE TABLE console_invites (
    hash      BYTEA PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    expires   TEXT NOT NULL,
    created   TEXT NOT NULL
);
