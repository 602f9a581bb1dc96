//! Leases in SQLite: several processes may share the file (a server and
//! the CLI, or servers on one machine), and the writer's transaction
//! decides between them.

use async_trait::async_trait;
use rusqlite::params;
use scimitar_store::StoreResult;
use scimitar_store::lease::Leases;

use crate::{SqliteStore, internal};

#[async_trait]
impl Leases for SqliteStore {
    async fn try_lease(&self, name: &str, holder: &str, now: &str, expires: &str) -> StoreResult<bool> {
        let (name, holder, now, expires) = (
            name.to_string(),
            holder.to_string(),
            now.to_string(),
            expires.to_string(),
        );
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO leases (name, holder, expires) VALUES (?, '', '') ON CONFLICT (name) DO NOTHING",
                params![name],
            )
            .map_err(internal)?;
            let n = tx
                .execute(
                    "UPDATE leases SET holder = ?1, expires = ?2 WHERE name = ?3 AND (expires < ?4 OR holder = ?1)",
                    params![holder, expires, name, now],
                )
                .map_err(internal)?;
            Ok(n == 1)
        })
        .await
    }

    async fn lease_holder(&self, name: &str) -> StoreResult<Option<(String, String)>> {
        use rusqlite::OptionalExtension;
        let name = name.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT holder, expires FROM leases WHERE name = ? AND holder <> ''",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(internal)
        })
        .await
    }
}
