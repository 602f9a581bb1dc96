//! SCIM `password` values (RFC 7643 §4.1.1: "the cleartext or hashed
//! password value … SHALL NOT be returnable"): hashed with argon2id on
//! arrival, with the parameters of console passwords, and stored only as
//! the PHC string. A value that already is an argon2 PHC string is stored
//! as given (an identity provider moving hashes across).
//!
//! Hashing is here, not in the protocol crate (which has no randomness)
//! nor in store closures (which may run on SQLite's single writer thread,
//! and more than once). argon2id takes 19 MiB and tens of milliseconds per
//! hash, so hashes run on tokio's blocking pool, at most as many at once as
//! the machine has cores: a tenant sending a thousand passwords queues, it
//! does not take the memory of a thousand hashes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use scimitar_auth::password::is_phc;
use scimitar_protocol::ScimError;
use scimitar_protocol::filter::parse_patch_path;
use scimitar_protocol::patch::PatchOperation;
use scimitar_protocol::schema::{ResourceType, urn};
use scimitar_store::{Kind, ModifyFn, Mutation, StoreError, TenantId};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::{Actor, App, scim_error};

/// The attribute, in the core User schema.
const PASSWORD: &str = "password";

/// Bounds the hashes running at once in this process.
pub(crate) struct Hasher {
    permits: Arc<Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Hasher {
            permits: Arc::new(Semaphore::new(cores.max(1))),
        }
    }
}

/// The text a client's `password` value stands for, as the protocol crate
/// would store it (a string, or an integer or boolean as text, possibly in
/// a one-element array); `None` for anything it would not store as a
/// password (no value, or a value it refuses with its own error).
fn cleartext(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && !s.contains('\0') => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) if items.len() == 1 => items.first().and_then(cleartext),
        _ => None,
    }
}

/// Whether a PATCH path (or a path-less value's key) names the core
/// User's `password`.
fn names_password(rt: &ResourceType, path: &str) -> bool {
    let Ok(p) = parse_patch_path(path) else {
        return false; // the PATCH itself reports it
    };
    if p.sub.is_some() || p.filter.is_some() {
        return false;
    }
    rt.resolve(p.urn.as_deref(), &p.name, None)
        .is_some_and(|r| !r.extension && r.schema == Some(urn::CORE_USER) && r.attr.name == PASSWORD)
}

/// The last guard before a write: a `password` a change sets is a PHC
/// string. Every path that can set one hashes it first; should one be
/// missed, the write is refused rather than a cleartext stored. (A value
/// left as it was is not checked: one stored before hashing existed is
/// the migration's to hash.)
pub(crate) fn check_hashed(old: &Map<String, Value>, new: &Map<String, Value>) -> Result<(), ScimError> {
    match new.get(PASSWORD) {
        Some(v) if old.get(PASSWORD) != Some(v) && !v.as_str().is_some_and(is_phc) => Err(ScimError::invalid_value(
            "'password' must be a string, sent on its own (path \"password\") or in a value object",
        )),
        _ => Ok(()),
    }
}

impl App {
    /// The argon2id PHC string of a password.
    pub(crate) async fn hash_password(&self, clear: String) -> Result<String, ScimError> {
        let _permit = self
            .hasher
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ScimError::internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || scimitar_auth::password::hash(&clear))
            .await
            .map_err(|e| ScimError::internal(e.to_string()))?
            .map_err(ScimError::internal)
    }

    /// `value` hashed if it is a cleartext password, else unchanged.
    async fn hashed_value(&self, value: &mut Value) -> Result<(), ScimError> {
        if let Some(clear) = cleartext(value)
            && !is_phc(&clear)
        {
            *value = Value::String(self.hash_password(clear).await?);
        }
        Ok(())
    }

    /// Hashes the `password` of a normalised User document (POST, PUT,
    /// import).
    pub(crate) async fn hash_password_in(&self, kind: Kind, doc: &mut Map<String, Value>) -> Result<(), ScimError> {
        if kind != Kind::User {
            return Ok(());
        }
        if let Some(v) = doc.get_mut(PASSWORD) {
            self.hashed_value(v).await?;
        }
        Ok(())
    }

    /// Rewrites PATCH operations so that every password value in them is
    /// already hashed (`path: password`, or a path-less value object with a
    /// `password` key in any case or URN form); the pure PATCH code then
    /// stores the PHC string as it is.
    pub(crate) async fn hash_passwords_in_patch(
        &self,
        rt: &ResourceType,
        ops: &mut [PatchOperation],
    ) -> Result<(), ScimError> {
        if !rt.is_user() {
            return Ok(());
        }
        for op in ops.iter_mut() {
            match (&op.path, op.value.as_mut()) {
                (Some(path), Some(v)) if names_password(rt, path) => self.hashed_value(v).await?,
                (None, Some(Value::Object(values))) => {
                    for (key, v) in values.iter_mut() {
                        if names_password(rt, key) {
                            self.hashed_value(v).await?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Hashes the SCIM passwords that were stored in clear before passwords
    /// were hashed on arrival, in every tenant; returns how many. Run by
    /// `scimitar migrate` and in the background at `serve` start-up.
    ///
    /// Idempotent, and safe on several nodes at once: a value is replaced
    /// only if it is still the one read (inside the store's write
    /// transaction). The users keep their `meta.lastModified` (nothing a
    /// client sees changed) but take a new version. No activity entries (no
    /// identity provider did anything); one audit entry per tenant where
    /// something was hashed.
    pub async fn hash_stored_passwords(&self, actor: &Actor) -> Result<u64, ScimError> {
        let mut total = 0;
        for tenant in self.store.list_tenants().await.map_err(scim_error)? {
            let n = self.hash_tenant_passwords(tenant.id).await?;
            if n > 0 {
                tracing::info!(tenant = %tenant.name, hashed = n, "hashed stored passwords");
                self.audit(actor, Some(tenant.id), "passwords.hashed", Some(&n.to_string()))
                    .await;
            }
            total += n;
        }
        Ok(total)
    }

    async fn hash_tenant_passwords(&self, tenant: TenantId) -> Result<u64, ScimError> {
        const PAGE: usize = 100;
        let (mut after, mut hashed) = (0, 0);
        loop {
            let page = self
                .store
                .cleartext_passwords(tenant, after, PAGE)
                .await
                .map_err(scim_error)?;
            let Some(last) = page.last() else {
                return Ok(hashed);
            };
            after = last.seq;
            for rec in page {
                let Some(read) = rec.doc.get(PASSWORD).cloned() else {
                    continue;
                };
                let Some(clear) = cleartext(&read) else {
                    continue;
                };
                let phc = Value::String(self.hash_password(clear).await?);
                // Whether the last run of the closure (it may run more than
                // once) replaced the value.
                let replaced = Arc::new(AtomicBool::new(false));
                let flag = replaced.clone();
                let f: ModifyFn = Arc::new(move |current, _| {
                    let mut doc = current.doc.clone();
                    let still = doc.get(PASSWORD) == Some(&read);
                    if still {
                        doc.insert(PASSWORD.into(), phc.clone());
                    }
                    flag.store(still, Ordering::SeqCst);
                    Ok(Mutation {
                        doc,
                        member_ops: vec![],
                        activity: None,
                        unique: Default::default(),
                        events: Default::default(),
                    })
                });
                match self
                    .store
                    .modify(tenant, Kind::User, &rec.id, None, &rec.last_modified, f)
                    .await
                {
                    Ok(_) if replaced.load(Ordering::SeqCst) => hashed += 1,
                    Ok(_) | Err(StoreError::NotFound) => {}
                    Err(e) => return Err(scim_error(e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cleartext_is_what_would_be_stored() {
        let cases = [
            (json!("Secr3t!"), Some("Secr3t!")),
            (json!(12345), Some("12345")),
            (json!(true), Some("true")),
            (json!(["one"]), Some("one")),
            (json!(""), None),
            (json!(null), None),
            (json!(1.5), None),
            (json!(["a", "b"]), None),
            (json!({"value": "x"}), None),
            (json!("nul\u{0}"), None),
        ];
        for (v, want) in cases {
            assert_eq!(cleartext(&v).as_deref(), want, "{v}");
        }
    }

    #[test]
    fn password_paths_in_every_spelling() {
        let rts = scimitar_protocol::schema::builtin_resource_types();
        let user = rts.iter().find(|r| r.is_user()).unwrap();
        for (path, want) in [
            ("password", true),
            ("PASSWORD", true),
            ("urn:ietf:params:scim:schemas:core:2.0:User:password", true),
            ("urn:ietf:params:scim:schemas:core:2.0:User:Password", true),
            ("passwords", false),
            ("title", false),
            ("emails[type eq \"work\"].value", false),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:password",
                false,
            ),
            ("((", false),
        ] {
            assert_eq!(names_password(user, path), want, "{path}");
        }
    }
}
