//! Who performs an operation: it decides what the activity and audit logs
//! say about it.

use std::net::IpAddr;

/// The author of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A SCIM client (an identity provider) with a Secret Token.
    Token { id: String, label: String },
    /// A client of the tenant administration API with an `admin` token.
    AdminApi { token_id: String, ip: Option<IpAddr> },
    /// An administrator signed in to the console.
    Console { email: String, ip: Option<IpAddr> },
    /// The command line, run by an operating-system user.
    Cli,
    /// The server itself (e.g. creating the first tenant of a fresh install).
    Server,
}

impl Actor {
    /// Who, in the audit log: an account's email, `cli:<user>`, or `token:<id>`.
    pub fn audit_actor(&self) -> String {
        match self {
            Actor::Token { id, .. } | Actor::AdminApi { token_id: id, .. } => format!("token:{id}"),
            Actor::Console { email, .. } => email.clone(),
            Actor::Cli => cli_user(),
            Actor::Server => "scimitar".to_string(),
        }
    }

    /// Where from, in the audit log: `console`, `admin-api`, `cli`, with the
    /// client address when there is one.
    pub fn audit_source(&self) -> String {
        let with_ip = |what: &str, ip: &Option<IpAddr>| match ip {
            Some(ip) => format!("{what} {ip}"),
            None => what.to_string(),
        };
        match self {
            Actor::Token { .. } => "scim".to_string(),
            Actor::AdminApi { ip, .. } => with_ip("admin-api", ip),
            Actor::Console { ip, .. } => with_ip("console", ip),
            Actor::Cli => "cli".to_string(),
            Actor::Server => "serve".to_string(),
        }
    }

    /// The token id and label an activity entry shows for this actor.
    pub fn activity_token(&self) -> (Option<String>, Option<String>) {
        match self {
            Actor::Token { id, label } => (Some(id.clone()), Some(label.clone())),
            Actor::AdminApi { token_id, .. } => (Some(token_id.clone()), None),
            Actor::Console { email, .. } => (None, Some(email.clone())),
            Actor::Cli => (None, Some(cli_user())),
            Actor::Server => (None, Some("scimitar".to_string())),
        }
    }
}

/// `cli:<user>` for the operating-system user, or `cli`.
fn cli_user() -> String {
    std::env::var("USER")
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".into())
}
