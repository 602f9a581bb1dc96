-- The provisioning engine's state, per tenant: its jobs, what each job
-- knows of every source object, and the provisioning log. A job's objects
-- and log rows are deleted with it (`delete_job`) and with its tenant
-- (`delete_tenant`) by statements that name the tenant, not by cascades
-- (a foreign key check per object would slow the saving of thousands).

-- One row per job: its configuration (secrets sealed) and run state.
-- `watermark` NULL: the next cycle is a full one.
CREATE TABLE engine_jobs (
    tenant_id  BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    config     JSONB NOT NULL,
    status     TEXT NOT NULL,
    watermark  JSONB,
    last_cycle JSONB,
    created    TEXT NOT NULL,
    updated    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- One row per source object a job knows: its last imported image and hash,
-- whether it is in scope, the target it is linked to (the anchor) and what
-- was last exported to it.
CREATE TABLE engine_objects (
    tenant_id   BIGINT NOT NULL,
    job         TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
    anchor      TEXT NOT NULL,
    source_ref  TEXT,
    source_hash TEXT NOT NULL,
    source      JSONB NOT NULL,
    in_scope    BOOLEAN NOT NULL,
    target_id   TEXT,
    exported    JSONB NOT NULL,
    pending     BOOLEAN NOT NULL,
    updated     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, job, kind, anchor)
);
-- References (`manager`, `member` DNs) are resolved through source_ref.
CREATE INDEX engine_objects_by_source_ref ON engine_objects(tenant_id, job, source_ref);
-- Pending objects are few: the partial index holds only them.
CREATE INDEX engine_objects_pending ON engine_objects(tenant_id, job) WHERE pending;
CREATE INDEX engine_objects_by_target ON engine_objects(tenant_id, job, kind, target_id);

-- The provisioning log (Entra's provisioningObjectSummary), newest first
-- per job; `time` for retention across tenants.
CREATE TABLE engine_log (
    id        BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    job       TEXT NOT NULL,
    cycle_id  TEXT NOT NULL,
    change_id TEXT NOT NULL,
    time      TEXT NOT NULL,
    action    TEXT NOT NULL,
    status    TEXT NOT NULL,
    source_id TEXT,
    target_id TEXT,
    record    JSONB NOT NULL
);
CREATE INDEX engine_log_by_job ON engine_log(tenant_id, job, id);
CREATE INDEX engine_log_by_time ON engine_log(time);
