-- Values of extension attributes declared `uniqueness: server` (or
-- `global`), one row per value and resource type, taken in the transaction
-- of the write that sets the value: the primary key makes two writers of
-- one value conflict, however many nodes. The values come folded from the
-- application (scimitar_protocol::unique).
CREATE TABLE unique_values (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    attribute   TEXT NOT NULL,
    value       TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, attribute, value)
) WITHOUT ROWID;
CREATE INDEX unique_values_by_resource ON unique_values(tenant_id, resource_id);

-- Resource types of a tenant whose stored values are yet to be entered in
-- `unique_values` (by the application, which knows the schemas and how
-- values compare): every type with extensions when this table arrives, and
-- a type whose extension is registered again later. Duplicates found then
-- are left in place, never an error: the first resource keeps the value.
CREATE TABLE unique_backfill (
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
) WITHOUT ROWID;

INSERT INTO unique_backfill (tenant_id, kind)
    SELECT DISTINCT tenant_id, resource_type FROM extensions;
