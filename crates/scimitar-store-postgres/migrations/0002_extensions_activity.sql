-- Token scopes: `scim` for provisioning clients, `admin` for the tenant
-- administration API.
ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'scim';

-- Server-wide secrets shared by every node (e.g. the cursor signing key).
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Custom schema extensions registered by a tenant. The definition is kept
-- as text so /Schemas shows it with its keys in the order given.
CREATE TABLE extensions (
    tenant_id     BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    urn           TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    required      BOOLEAN NOT NULL DEFAULT FALSE,
    schema        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, urn)
);

-- The provisioning activity log: one row per write or failed request.
CREATE TABLE activity (
    id            BIGSERIAL PRIMARY KEY,
    tenant_id     BIGINT NOT NULL,
    time          TEXT NOT NULL,
    token_id      TEXT,
    token_label   TEXT,
    action        TEXT NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    name          TEXT,
    changes       TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    status        INTEGER NOT NULL,
    error         TEXT,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL
);
CREATE INDEX activity_by_tenant ON activity(tenant_id, id);
CREATE INDEX activity_by_time ON activity(time);

-- Reads are counted per tenant and hour, not logged one by one.
CREATE TABLE read_counts (
    tenant_id BIGINT NOT NULL,
    hour      TEXT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, hour)
);
