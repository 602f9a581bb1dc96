-- How far the cycle running now has got (objects done of total, when it
-- started), as JSON; NULL when no cycle runs. Written a few times a second
-- at most, read by the console's Synchronization details.
ALTER TABLE engine_jobs ADD COLUMN progress TEXT;
