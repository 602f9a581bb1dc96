-- Change events (the outbox): written in the transaction of their change,
-- numbered per tenant by the single writer (`event_counters`, so that
-- numbers never go back even when retention empties the table).
CREATE TABLE events (
    pk INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX events_by_seq ON events (tenant_id, seq);
CREATE INDEX events_by_time ON events (time);
CREATE TABLE event_counters (
    tenant_id INTEGER PRIMARY KEY,
    last INTEGER NOT NULL
);
