-- The audit log of administrative actions (tokens, tenants, schemas,
-- console accounts and sign-ins), kept apart from the provisioning
-- activity log. Append-only: nothing updates or deletes rows here.
CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    time      TEXT NOT NULL,
    tenant_id BIGINT,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT,
    detail    TEXT,
    source    TEXT
);
CREATE INDEX audit_by_tenant ON audit(tenant_id, id);
