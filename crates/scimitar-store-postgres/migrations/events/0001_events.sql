-- Change events (the outbox): written unsequenced (seq NULL) in the
-- transaction of their change; numbered per tenant after they committed,
-- in insertion order (pk), under the tenant's `event_counters` row lock,
-- by whoever reads them first. Readers see numbered events only, so no
-- event becomes visible below a number already read.
CREATE TABLE events (
    pk BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    seq BIGINT,
    id TEXT NOT NULL,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    data JSONB NOT NULL
);
CREATE UNIQUE INDEX events_by_seq ON events (tenant_id, seq);
CREATE INDEX events_pending ON events (tenant_id, pk) WHERE seq IS NULL;
CREATE INDEX events_by_time ON events (time);
CREATE TABLE event_counters (
    tenant_id BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);
