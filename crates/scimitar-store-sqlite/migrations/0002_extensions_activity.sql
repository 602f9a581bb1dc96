-- Token scopes: `scim` for provisioning clients, `admin` for the tenant
-- administration API.
ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'scim';

-- Server-wide secrets shared by every node (e.g. the cursor signing key).
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- Custom schema extensions registered by a tenant.
CREATE TABLE extensions (
    tenant_id     INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    urn           TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    required      INTEGER NOT NULL DEFAULT 0,
    schema        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, urn)
);

-- The provisioning activity log: one row per write or failed request.
CREATE TABLE activity (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     INTEGER NOT NULL,
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
    tenant_id INTEGER NOT NULL,
    hour      TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, hour)
) WITHOUT ROWID;
