-- A change's activity entry and its events share the change's id, so that
-- the activity page links each change to its events. Looked up with a time
-- window (events_by_time), so no index of its own: writes stay as cheap.
ALTER TABLE events ADD COLUMN change_id TEXT;
ALTER TABLE activity ADD COLUMN change_id TEXT;
