//! Leases in PostgreSQL: one conditional `UPDATE` per attempt. Under READ
//! COMMITTED a second node's `UPDATE` of the same row waits for the first
//! to commit and then re-checks the condition against the new row, so at
//! most one node holds an unexpired lease. Serializable engines
//! (CockroachDB) report a conflict as a serialisation failure instead,
//! which is retried.

use async_trait::async_trait;
use scimitar_store::StoreResult;
use scimitar_store::lease::Leases;

use crate::{MAX_ATTEMPTS, PostgresStore, backoff, db_error, internal, retryable};

impl PostgresStore {
    async fn lease_once(
        &self,
        name: &str,
        holder: &str,
        now: &str,
        expires: &str,
    ) -> StoreResult<Result<bool, tokio_postgres::Error>> {
        let client = self.pool.get().await.map_err(internal)?;
        let r = async {
            client
                .execute(
                    "INSERT INTO leases (name, holder, expires) VALUES ($1, '', '') ON CONFLICT (name) DO NOTHING",
                    &[&name],
                )
                .await?;
            let n = client
                .execute(
                    "UPDATE leases SET holder = $1, expires = $2 WHERE name = $3 AND (expires < $4 OR holder = $1)",
                    &[&holder, &expires, &name, &now],
                )
                .await?;
            Ok(n == 1)
        }
        .await;
        Ok(r)
    }
}

#[async_trait]
impl Leases for PostgresStore {
    async fn try_lease(&self, name: &str, holder: &str, now: &str, expires: &str) -> StoreResult<bool> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.lease_once(name, holder, now, expires).await? {
                Err(e) if attempt < MAX_ATTEMPTS && retryable(&e) => tokio::time::sleep(backoff(attempt)).await,
                other => return other.map_err(db_error),
            }
        }
    }

    async fn lease_holder(&self, name: &str) -> StoreResult<Option<(String, String)>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_opt(
                "SELECT holder, expires FROM leases WHERE name = $1 AND holder <> ''",
                &[&name],
            )
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }
}
