-- Tenants, their Secret Tokens (hashes only) and their resources.
-- Portable SQL on purpose: no extensions (citext), no advisory locks, no
-- LISTEN/NOTIFY, so CockroachDB and YugabyteDB can run it too.
CREATE TABLE tenants (
    id      BIGSERIAL PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);

CREATE TABLE tokens (
    id        TEXT PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    label     TEXT NOT NULL,
    hint      TEXT NOT NULL,
    hash      BYTEA NOT NULL UNIQUE,
    created   TEXT NOT NULL,
    last_used TEXT,
    revoked   TEXT
);
CREATE INDEX tokens_by_tenant ON tokens(tenant_id);

-- One row per User or Group. userName and Group displayName are copied,
-- lower-cased, into shadow columns: unique indexes on them give
-- case-insensitive uniqueness without citext. `seq` is the insertion order
-- for paging and sort ties. Timestamps stay TEXT (RFC 3339, exactly as
-- returned) and are cast to timestamptz only for comparisons.
CREATE TABLE resources (
    seq             BIGSERIAL PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
    id              TEXT NOT NULL,
    user_name_ci    TEXT,
    display_name_ci TEXT,
    external_id     TEXT,
    version         BIGINT NOT NULL,
    created         TEXT NOT NULL,
    modified        TEXT NOT NULL,
    doc             JSONB NOT NULL
);
CREATE UNIQUE INDEX resources_id ON resources(tenant_id, id);
CREATE UNIQUE INDEX users_user_name ON resources(tenant_id, user_name_ci) WHERE kind = 'User';
CREATE UNIQUE INDEX groups_display_name ON resources(tenant_id, display_name_ci) WHERE kind = 'Group';
CREATE INDEX resources_external_id ON resources(tenant_id, kind, external_id);
CREATE INDEX resources_kind_seq ON resources(tenant_id, kind, seq);

-- Group membership, one row per member: adding or removing a member is one
-- indexed write whatever the size of the group.
CREATE TABLE members (
    tenant_id   BIGINT NOT NULL,
    group_id    TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    member_type TEXT NOT NULL,
    display     TEXT,
    PRIMARY KEY (tenant_id, group_id, member_id)
);
CREATE INDEX members_by_member ON members(tenant_id, member_id);
