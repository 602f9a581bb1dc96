-- What each event cost a write: its payload converted to jsonb (nothing
-- queries inside it; it is read back as text), a B-tree entry on `time`
-- (read only by the hourly retention and the activity page's link), and
-- an entry in `events_by_seq` while still unnumbered (seq NULL, which no
-- reader asks for). Payloads are now kept as json (checked, stored as
-- sent); `time` has a BRIN index (events are appended in time order,
-- which is what BRIN needs, and it costs an insert next to nothing); and
-- `events_by_seq` holds numbered events only, which is all it is read for.
ALTER TABLE events ALTER COLUMN data TYPE json USING data::json;
DROP INDEX events_by_time;
CREATE INDEX events_by_time ON events USING brin (time);
DROP INDEX events_by_seq;
CREATE UNIQUE INDEX events_by_seq ON events (tenant_id, seq) WHERE seq IS NOT NULL;
