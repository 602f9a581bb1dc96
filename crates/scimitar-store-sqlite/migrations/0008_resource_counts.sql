-- Resources per tenant and kind, kept by triggers in the transaction of
-- every insert and delete (whatever the code path), so that the
-- `totalResults` of an unfiltered list or cursor page is one row read
-- instead of a count over the tenant's index (37 ms at 1,000,000 users).
CREATE TABLE resource_counts (
    tenant_id INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind)
) WITHOUT ROWID;

INSERT INTO resource_counts (tenant_id, kind, n)
    SELECT tenant_id, kind, count(*) FROM resources GROUP BY tenant_id, kind;

CREATE TRIGGER resource_counts_insert AFTER INSERT ON resources BEGIN
    INSERT INTO resource_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, NEW.kind, 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER resource_counts_delete AFTER DELETE ON resources BEGIN
    UPDATE resource_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND kind = OLD.kind;
END;
