-- How far the cycle running now has got (objects done of total, when it
-- started); NULL when no cycle runs. Written about once a second at most,
-- read by the console's Synchronization details.
ALTER TABLE engine_jobs ADD COLUMN progress JSONB;
