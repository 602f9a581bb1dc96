//! Invite links for a tenant's customer administrator (what hosted
//! services call an admin portal): a one-time, expiring link that lets the
//! customer's IT admin create their own Admin account for that tenant. The
//! code is shown once; the store keeps its keyed hash (like tokens). Made
//! and used, each audited.

use std::time::Duration;

use scimitar_protocol::ScimError;
use scimitar_store::{ConsoleAdmin, Tenant};

use crate::accounts::{NewAccount, check_account};
use crate::{Actor, App, scim_error};

/// How long an invite works unless told otherwise.
pub const DEFAULT_INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest an invite may work.
pub const MAX_INVITE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A new invite: the link (shown once) and until when it works.
pub struct Invite {
    pub link: String,
    pub expires: String,
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invite")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Reads a duration such as `7d`, `12h`, `30m` (at least a minute, at most
/// [`MAX_INVITE_TTL`]).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("'{t}' is not a duration like 7d, 12h or 30m");
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: u64 = t
        .get(..t.len() - unit.len_utf8())
        .unwrap_or("")
        .parse()
        .map_err(|_| bad())?;
    let secs = match unit {
        'd' => n.checked_mul(86_400),
        'h' => n.checked_mul(3600),
        'm' => n.checked_mul(60),
        _ => None,
    }
    .ok_or_else(bad)?;
    let d = Duration::from_secs(secs);
    if d < Duration::from_secs(60) || d > MAX_INVITE_TTL {
        return Err(format!("an invite works for a minute to 30 days, not '{t}'"));
    }
    Ok(d)
}

fn hash(code: &str) -> [u8; 32] {
    scimitar_auth::hash(code.trim())
}

/// Why an invite could not be used.
#[derive(Debug)]
pub enum InviteError {
    /// Unknown, expired or already used.
    Dead,
    /// The email or password is not acceptable (the invite still works).
    Invalid(ScimError),
    /// An account with this email exists (the invite still works).
    Taken,
    Failed(ScimError),
}

impl App {
    /// Makes an invite link for `tenant`, working once for `ttl`.
    pub async fn create_invite(&self, actor: &Actor, tenant: &Tenant, ttl: Duration) -> Result<Invite, ScimError> {
        if ttl > MAX_INVITE_TTL {
            return Err(ScimError::invalid_value("an invite works for 30 days at most"));
        }
        let bytes = scimitar_auth::random_key().map_err(|e| ScimError::new(500, None, e.to_string()))?;
        let code: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let expires = scimitar_store::utc_in(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        self.store
            .put_invite(tenant.id, &hash(&code), &expires)
            .await
            .map_err(scim_error)?;
        self.audit_detail(
            actor,
            Some(tenant.id),
            "tenant.invite-created",
            Some(&tenant.name),
            Some(format!("until {expires}")),
        )
        .await;
        Ok(Invite {
            link: format!("{}/invite?code={code}", self.config.public_url),
            expires,
        })
    }

    /// The tenant an unused, unexpired invite is for.
    pub async fn invite_tenant(&self, code: &str) -> Result<Option<Tenant>, ScimError> {
        let now = scimitar_store::now_utc();
        match self.store.invite(&hash(code), &now).await.map_err(scim_error)? {
            Some((id, _)) => self.tenant_by_id(id).await,
            None => Ok(None),
        }
    }

    async fn tenant_by_id(&self, id: scimitar_store::TenantId) -> Result<Option<Tenant>, ScimError> {
        Ok(self
            .store
            .list_tenants()
            .await
            .map_err(scim_error)?
            .into_iter()
            .find(|t| t.id == id))
    }

    /// Uses an invite: creates the customer's Admin account for the
    /// invite's tenant. The invite works once; if the account cannot be
    /// made (a taken email), it still works.
    pub async fn accept_invite(
        &self,
        who: &Actor,
        code: &str,
        email: &str,
        password: String,
    ) -> Result<(ConsoleAdmin, Tenant), InviteError> {
        let Some(tenant) = self.invite_tenant(code).await.map_err(InviteError::Failed)? else {
            return Err(InviteError::Dead);
        };
        let account = NewAccount {
            tenant: Some(&tenant),
            email: email.trim(),
            role: "admin",
            password,
        };
        check_account(&account).map_err(InviteError::Invalid)?;
        let now = scimitar_store::now_utc();
        let h = hash(code);
        let Some((_, expires)) = self
            .store
            .take_invite(&h, &now)
            .await
            .map_err(|e| InviteError::Failed(scim_error(e)))?
        else {
            return Err(InviteError::Dead);
        };
        match self.create_account(who, account).await {
            Ok(a) => {
                self.audit(who, Some(tenant.id), "tenant.invite-used", Some(&a.email))
                    .await;
                Ok((a, tenant))
            }
            Err(e) => {
                // Not used after all: the link works again.
                let _ = self.store.put_invite(tenant.id, &h, &expires).await;
                Err(if e.status == 409 {
                    InviteError::Taken
                } else {
                    InviteError::Failed(e)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn invite_durations() {
        let table: [(&str, Option<u64>); 10] = [
            ("7d", Some(7 * 86_400)),
            ("30d", Some(30 * 86_400)),
            ("12h", Some(12 * 3600)),
            ("1m", Some(60)),
            ("31d", None),
            ("0d", None),
            ("7", None),
            ("d", None),
            ("7w", None),
            ("99999999999999999999d", None),
        ];
        for (text, secs) in table {
            assert_eq!(parse_ttl(text).ok().map(|d| d.as_secs()), secs, "{text}");
        }
    }
}
