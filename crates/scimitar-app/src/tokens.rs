//! Secret Tokens: generation (shown once), revocation, expiry.

use scimitar_protocol::ScimError;
use scimitar_store::{NewEvent, NewTokenRecord, Tenant, TokenInfo};

use crate::{Actor, App, scim_error};

/// What to generate.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub label: String,
    /// `scim` (an identity provider) or `admin` (the tenant administration API).
    pub scope: String,
    /// The token stops working after this many days; `None` is never.
    pub expires_in_days: Option<u32>,
}

/// A generated token: the secret exists only here, to be shown once.
pub struct GeneratedToken {
    pub info: TokenInfo,
    pub secret: String,
}

impl std::fmt::Debug for GeneratedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedToken")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The event of a token created or revoked: its id, label and scope,
/// never its secret.
fn token_event(event_type: &str, id: &str, label: &str, scope: &str) -> NewEvent {
    NewEvent::new(
        event_type,
        Some(id),
        serde_json::json!({"token": {"id": id, "label": label, "scope": scope}}),
    )
}

impl App {
    /// Generates a token for the tenant, stores its keyed hash, records who
    /// created it and audits it.
    pub async fn generate_token(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        req: TokenRequest,
    ) -> Result<GeneratedToken, ScimError> {
        if !matches!(req.scope.as_str(), "scim" | "admin" | "events") {
            return Err(ScimError::invalid_value(format!(
                "unknown token scope '{}' (scim, admin or events)",
                req.scope
            )));
        }
        // Zero days would make a token that is expired when it is shown.
        if req.expires_in_days == Some(0) {
            return Err(ScimError::invalid_value(
                "a token's expiry must be at least 1 day; leave it out for a token that never expires",
            ));
        }
        let expires = req
            .expires_in_days
            .map(|d| scimitar_store::utc_in(i64::from(d) * 86_400));
        self.store_new_token(actor, tenant, req.label, req.scope, expires).await
    }

    /// Generates and stores a token expiring at `expires` (RFC 3339), records
    /// who created it and audits it (`token.generated`).
    pub(crate) async fn store_new_token(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        label: String,
        scope: String,
        expires: Option<String>,
    ) -> Result<GeneratedToken, ScimError> {
        let new = scimitar_auth::generate().map_err(|e| ScimError::internal(e.to_string()))?;
        let event = token_event("tenant.token_created", &new.id, &label, &scope);
        let info = self
            .store
            .create_token_with_events(
                tenant.id,
                NewTokenRecord {
                    id: new.id.clone(),
                    label,
                    hint: new.hint.clone(),
                    scope,
                    hash: new.hash,
                    expires,
                },
                vec![event],
            )
            .await
            .map_err(scim_error)?;
        if let Actor::Console { email, .. } = actor {
            self.store
                .set_token_creator(tenant.id, &info.id, email)
                .await
                .map_err(scim_error)?;
        }
        self.events_committed();
        self.audit(actor, Some(tenant.id), "token.generated", Some(&info.id))
            .await;
        Ok(GeneratedToken {
            info,
            secret: new.secret,
        })
    }

    /// Revokes a live token of the tenant (404 if it has none with this id);
    /// requests with it are refused from the next one on, on every node.
    pub async fn revoke_token(&self, actor: &Actor, tenant: &Tenant, id: &str) -> Result<(), ScimError> {
        let known = self.store.list_tokens(tenant.id).await.map_err(scim_error)?;
        let (label, scope) = known
            .iter()
            .find(|t| t.id == id)
            .map(|t| (t.label.as_str(), t.scope.as_str()))
            .unwrap_or_default();
        let event = token_event("tenant.token_revoked", id, label, scope);
        let revoked = self
            .store
            .revoke_token_with_events(tenant.id, id, vec![event])
            .await
            .map_err(scim_error)?;
        if !revoked {
            return Err(ScimError::not_found(format!("no active token with id '{id}'")));
        }
        self.events_committed();
        self.audit(actor, Some(tenant.id), "token.revoked", Some(id)).await;
        Ok(())
    }

    /// Revokes a token named by its id alone (the command line's way);
    /// returns the token as it was.
    pub async fn revoke_token_by_id(&self, actor: &Actor, id: &str) -> Result<TokenInfo, ScimError> {
        let found = self.store.find_token(id).await.map_err(scim_error)?;
        let info = found
            .filter(|t| t.revoked.is_none())
            .ok_or_else(|| ScimError::not_found(format!("no active token with id '{id}'")))?;
        let tenant = Tenant {
            id: info.tenant_id,
            name: info.tenant.clone(),
            created: String::new(),
            schema_version: info.schema_version,
        };
        self.revoke_token(actor, &tenant, id).await?;
        Ok(info)
    }
}
