-- Named leases: background work that must run once per cluster (activity
-- retention) runs on the node holding the lease. `expires` is RFC 3339 UTC
-- text, compared as text; '' means never taken.
CREATE TABLE leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    expires TEXT NOT NULL
);
