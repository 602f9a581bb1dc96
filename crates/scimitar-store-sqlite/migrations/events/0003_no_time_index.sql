-- Every event paid for a third B-tree (`events_by_time`) that only the
-- hourly retention and the activity page's link read. Events are stored in
-- time order (one writer), so both now find their rows by bisecting `pk`.
DROP INDEX events_by_time;
