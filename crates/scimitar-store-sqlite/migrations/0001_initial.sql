-- Tenants, their Secret Tokens (hashes only) and their resources.
CREATE TABLE tenants (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);

CREATE TABLE tokens (
    id        TEXT PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    label     TEXT NOT NULL,
    hint      TEXT NOT NULL,
    hash      BLOB NOT NULL UNIQUE,
    created   TEXT NOT NULL,
    last_used TEXT,
    revoked   TEXT
);
CREATE INDEX tokens_by_tenant ON tokens(tenant_id);

-- One row per User or Group. Hot attributes are extracted into indexed
-- columns (userName and Group displayName lower-cased for case-insensitive
-- matching and uniqueness); everything else lives in `doc` (JSON).
-- `seq` gives a stable insertion order for paging and sort ties.
CREATE TABLE resources (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
    id              TEXT NOT NULL,
    user_name_ci    TEXT,
    display_name_ci TEXT,
    external_id     TEXT,
    version         INTEGER NOT NULL,
    created         TEXT NOT NULL,
    modified        TEXT NOT NULL,
    doc             TEXT NOT NULL
);
CREATE UNIQUE INDEX resources_id ON resources(tenant_id, id);
CREATE UNIQUE INDEX users_user_name ON resources(tenant_id, user_name_ci) WHERE kind = 'User';
CREATE UNIQUE INDEX groups_display_name ON resources(tenant_id, display_name_ci) WHERE kind = 'Group';
CREATE INDEX resources_external_id ON resources(tenant_id, kind, external_id);
CREATE INDEX resources_kind_seq ON resources(tenant_id, kind, seq);

-- Group membership, one row per member: adding or removing a member is one
-- indexed write whatever the size of the group.
CREATE TABLE members (
    tenant_id   INTEGER NOT NULL,
    group_id    TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    member_type TEXT NOT NULL,
    display     TEXT,
    PRIMARY KEY (tenant_id, group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX members_by_member ON members(tenant_id, member_id);
