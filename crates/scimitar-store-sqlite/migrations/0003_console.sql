-- The admin console: accounts (operators have no tenant), sessions (by the
-- SHA-256 of the cookie), who created each token, and the one-time setup
-- code of a fresh install (its hash).
CREATE TABLE console_admins (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    email_ci      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer', 'operator')),
    password_hash TEXT NOT NULL,
    created       TEXT NOT NULL
);
CREATE INDEX console_admins_by_tenant ON console_admins(tenant_id);

CREATE TABLE console_sessions (
    hash      BLOB PRIMARY KEY,
    admin_id  INTEGER NOT NULL REFERENCES console_admins(id) ON DELETE CASCADE,
    csrf      TEXT NOT NULL,
    created   TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX console_sessions_by_last_seen ON console_sessions(last_seen);

CREATE TABLE console_token_creators (
    token_id   TEXT PRIMARY KEY REFERENCES tokens(id) ON DELETE CASCADE,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    created_by TEXT NOT NULL
);
CREATE INDEX console_token_creators_by_tenant ON console_token_creators(tenant_id);

CREATE TABLE console_setup (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    hash    BLOB NOT NULL,
    expires TEXT NOT NULL
);
