-- Webhook endpoints per tenant, their delivery state, log and failed
-- events. Deleted with the endpoint (`delete_webhook`) and with the tenant
-- (`delete_tenant`) by statements that name the tenant.

-- One row per endpoint. `secret` and `previous_secret` are sealed
-- (scimitar_auth::seal). `types` is a JSON array ([]: every type).
-- `cursor`: the sequence number of the last event done (NULL: not started);
-- `attempts`, `first_attempt`, `next_attempt`, `last_error`: the event after it.
CREATE TABLE webhook_endpoints (
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    url             TEXT NOT NULL,
    types           TEXT NOT NULL,
    enabled         INTEGER NOT NULL,
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  TEXT,
    created         TEXT NOT NULL,
    cursor          INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    first_attempt   TEXT,
    next_attempt    TEXT,
    last_error      TEXT,
    PRIMARY KEY (tenant_id, id)
);

-- The delivery log, the newest rows per endpoint kept.
CREATE TABLE webhook_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     INTEGER NOT NULL,
    endpoint_id   TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    event_type    TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    latency_ms    INTEGER NOT NULL,
    response_code INTEGER,
    error         TEXT,
    time          TEXT NOT NULL
);
CREATE INDEX webhook_log_endpoint ON webhook_log (tenant_id, endpoint_id, id);

-- Events that failed for 24 hours, with their body, kept for replay.
CREATE TABLE webhook_failed (
    tenant_id   INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    body        TEXT NOT NULL,
    failed_at   TEXT NOT NULL,
    error       TEXT,
    replay      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, endpoint_id, seq)
);
