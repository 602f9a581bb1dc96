//! Any SCIM 2.0 server as a source: its users and groups, presented under
//! Entra's attribute names (`userPrincipalName` ← `userName`, `surname` ←
//! `name.familyName`, `mailNickname` ← `externalId`, `objectId` ← `id`, …)
//! so that Entra's default template provisions from it as Entra would.
//!
//! Reads page through `startIndex`/`count`. Incremental reads ask for
//! `meta.lastModified gt` the last read (minus an overlap for clock skew)
//! when the server accepts that filter; deletions are invisible to it, so
//! each incremental read also lists every `id` (`present`, one small page
//! per `page_size` objects): a deletion shows in the next cycle, as Entra's
//! do. A server without the filter is read in full, and the engine compares
//! hashes.

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::{Client, resources};
use crate::dialect::Request;
use crate::job::ScimSourceSpec;
use crate::model::{Delta, Kind, SourceObject};
use crate::source::{Source, SourceError};

/// Seconds subtracted from the last read time (clock skew, same-second writes).
const OVERLAP_SECS: i64 = 120;

pub struct ScimSource {
    spec: ScimSourceSpec,
    client: Option<Client>,
    egress: Option<std::sync::Arc<crate::egress::Policy>>,
}

impl ScimSource {
    pub fn new(spec: &ScimSourceSpec) -> Self {
        ScimSource::limited(spec, None)
    }

    /// With `egress`, names resolve to the addresses the policy permits
    /// only (a job sent through the admin API or the console).
    pub fn limited(spec: &ScimSourceSpec, egress: Option<std::sync::Arc<crate::egress::Policy>>) -> Self {
        ScimSource {
            spec: spec.clone(),
            client: None,
            egress,
        }
    }

    fn client(&mut self) -> Result<&Client, SourceError> {
        if self.client.is_none() {
            let token = self.spec.token.reveal().map_err(SourceError::new)?;
            let client = Client::limited(
                &self.spec.url,
                &token,
                4,
                std::time::Duration::from_secs(30),
                self.egress.clone(),
            )
            .map_err(SourceError::new)?;
            self.client = Some(client);
        }
        self.client
            .as_ref()
            .ok_or_else(|| SourceError::new("the SCIM source has no client"))
    }

    /// Every resource of an endpoint matching `filter`, page by page.
    async fn all(
        &mut self,
        endpoint: &str,
        filter: Option<&str>,
        attributes: Option<&str>,
    ) -> Result<Vec<Value>, SourceError> {
        let page = self.spec.page_size;
        let url = self.spec.url.clone();
        let client = self.client()?;
        let mut out = Vec::new();
        let mut start = 1u64;
        loop {
            let mut path = format!("{endpoint}?startIndex={start}&count={page}");
            if let Some(f) = filter {
                path.push_str("&filter=");
                path.push_str(
                    &percent_encoding::utf8_percent_encode(f, percent_encoding::NON_ALPHANUMERIC).to_string(),
                );
            }
            if let Some(a) = attributes {
                path.push_str("&attributes=");
                path.push_str(a);
            }
            let req = Request {
                method: "GET",
                path,
                body: None,
            };
            let answer = client
                .send(&req, false)
                .await
                .map_err(|e| SourceError::new(format!("reading {url}{endpoint}: {e}")))?;
            let got = resources(&answer.body);
            let n = got.len() as u64;
            out.extend(got.into_iter().cloned());
            let total = answer.body.get("totalResults").and_then(Value::as_u64).unwrap_or(0);
            start += n;
            if n == 0 || start > total {
                break;
            }
        }
        Ok(out)
    }
}

fn get<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut cur = v;
    for p in path {
        cur = cur
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(p))
            .map(|(_, v)| v)?;
    }
    Some(cur)
}

/// The value of the element of a multi-valued attribute of a type (the
/// primary one, else the first, when `kind` is `None`).
fn typed<'v>(v: &'v Value, attr: &str, kind: Option<&str>, sub: &str) -> Option<&'v Value> {
    let items = get(v, &[attr])?.as_array()?;
    let elem = match kind {
        Some(k) => items.iter().find(|i| {
            get(i, &["type"])
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(k))
        })?,
        None => items
            .iter()
            .find(|i| get(i, &["primary"]) == Some(&Value::Bool(true)))
            .or_else(|| items.first())?,
    };
    get(elem, &[sub])
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A SCIM User under Entra's names.
pub fn user_object(v: &Value) -> Option<SourceObject> {
    let id = get(v, &["id"])?.as_str()?.to_string();
    let mut a = Map::new();
    let mut put = |k: &str, x: Option<&Value>| {
        if let Some(x) = x.filter(|x| !x.is_null()) {
            a.insert(k.to_string(), x.clone());
        }
    };
    put("objectId", get(v, &["id"]));
    put("userPrincipalName", get(v, &["userName"]));
    put("mailNickname", get(v, &["externalId"]));
    put("displayName", get(v, &["displayName"]));
    put("givenName", get(v, &["name", "givenName"]));
    put("surname", get(v, &["name", "familyName"]));
    put(
        "mail",
        typed(v, "emails", Some("work"), "value").or_else(|| typed(v, "emails", None, "value")),
    );
    put("jobTitle", get(v, &["title"]));
    put("preferredLanguage", get(v, &["preferredLanguage"]));
    put("department", get(v, &[ENTERPRISE, "department"]));
    put("employeeId", get(v, &[ENTERPRISE, "employeeNumber"]));
    put("telephoneNumber", typed(v, "phoneNumbers", Some("work"), "value"));
    put("mobile", typed(v, "phoneNumbers", Some("mobile"), "value"));
    put(
        "facsimileTelephoneNumber",
        typed(v, "phoneNumbers", Some("fax"), "value"),
    );
    put(
        "physicalDeliveryOfficeName",
        typed(v, "addresses", Some("work"), "formatted"),
    );
    put("streetAddress", typed(v, "addresses", Some("work"), "streetAddress"));
    put("city", typed(v, "addresses", Some("work"), "locality"));
    put("state", typed(v, "addresses", Some("work"), "region"));
    put("postalCode", typed(v, "addresses", Some("work"), "postalCode"));
    put("country", typed(v, "addresses", Some("work"), "country"));
    let active = get(v, &["active"]).and_then(|x| match x {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(!s.eq_ignore_ascii_case("false")),
        _ => None,
    });
    a.insert("accountEnabled".into(), Value::Bool(active.unwrap_or(true)));
    let manager = get(v, &[ENTERPRISE, "manager"]).and_then(|m| match m {
        Value::String(s) => Some(s.clone()),
        other => get(other, &["value"]).and_then(Value::as_str).map(str::to_string),
    });
    if let Some(m) = &manager {
        a.insert("manager".into(), Value::String(m.clone()));
    }
    Some(SourceObject {
        kind: Kind::User,
        anchor: id.clone(),
        source_ref: id,
        attrs: a,
        manager,
        members: Vec::new(),
        disabled: active == Some(false),
    })
}

/// A SCIM Group under Entra's names.
pub fn group_object(v: &Value) -> Option<SourceObject> {
    let id = get(v, &["id"])?.as_str()?.to_string();
    let mut a = Map::new();
    a.insert("objectId".into(), Value::String(id.clone()));
    for (entra, scim) in [("displayName", "displayName"), ("mailNickname", "externalId")] {
        if let Some(x) = get(v, &[scim]).filter(|x| !x.is_null()) {
            a.insert(entra.into(), x.clone());
        }
    }
    let members: Vec<String> = get(v, &["members"])
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| get(x, &["value"]).and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some(SourceObject {
        kind: Kind::Group,
        anchor: id.clone(),
        source_ref: id,
        attrs: a,
        manager: None,
        members,
        disabled: false,
    })
}

#[async_trait]
impl Source for ScimSource {
    async fn read(&mut self, watermark: Option<&Value>) -> Result<Delta, SourceError> {
        let now = OffsetDateTime::now_utc();
        let since = watermark
            .and_then(|w| w.get("since"))
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
        let cycle = watermark
            .and_then(|w| w.get("cycle"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let stamp = now.format(&Rfc3339).unwrap_or_default();
        if let Some(since) = since {
            let from = (since - time::Duration::seconds(OVERLAP_SECS))
                .format(&Rfc3339)
                .unwrap_or_default();
            let filter = format!("meta.lastModified gt \"{from}\"");
            let users = self.all("/Users", Some(&filter), None).await;
            let groups = self.all("/Groups", Some(&filter), None).await;
            if let (Ok(users), Ok(groups)) = (users, groups) {
                let mut objects: Vec<SourceObject> = users.iter().filter_map(user_object).collect();
                objects.extend(groups.iter().filter_map(group_object));
                let mut present: Vec<(Kind, String)> = Vec::new();
                for (kind, endpoint) in [(Kind::User, "/Users"), (Kind::Group, "/Groups")] {
                    for r in self.all(endpoint, None, Some("id")).await? {
                        if let Some(id) = r.get("id").and_then(Value::as_str) {
                            present.push((kind, id.to_string()));
                        }
                    }
                }
                return Ok(Delta {
                    full: false,
                    objects,
                    deleted: Vec::new(),
                    present: Some(present),
                    watermark: json!({"mode": "lastModified", "since": stamp, "cycle": cycle + 1}),
                });
            }
            // The server does not filter on meta.lastModified: read everything.
        }
        let users = self.all("/Users", None, None).await?;
        let groups = self.all("/Groups", None, None).await?;
        let mut objects: Vec<SourceObject> = users.iter().filter_map(user_object).collect();
        objects.extend(groups.iter().filter_map(group_object));
        Ok(Delta {
            full: true,
            objects,
            deleted: Vec::new(),
            present: None,
            watermark: json!({"mode": "lastModified", "since": stamp, "cycle": 0}),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::job::Secret;

    /// A limited SCIM source resolves names through the egress policy at
    /// connection time: `localhost` (checked as public or not when the
    /// cycle starts) cannot turn into a loopback connection during the
    /// read, and nothing reaches the listener.
    #[tokio::test]
    async fn a_limited_source_never_connects_to_a_refused_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let spec = ScimSourceSpec {
            url: format!("http://localhost:{port}/scim/v2"),
            token: Secret::Inline("t".into()),
            page_size: 10,
        };
        let mut source = ScimSource::limited(&spec, Some(Arc::new(crate::egress::Policy::default())));
        let err = source.read(None).await.unwrap_err();
        assert!(err.message.contains("no public address"), "{err}");
        assert!(listener.accept().is_err(), "nothing connected");
    }
}
