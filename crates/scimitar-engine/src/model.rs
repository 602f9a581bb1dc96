//! What the engine works with: objects read from a source, and what a
//! source returns for one read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use scimitar_store::ObjectKind as Kind;

/// A user or group as a source returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceObject {
    pub kind: Kind,
    /// The source's stable id: LDAP `entryUUID`, a file's key column, a
    /// SCIM source's `id`. Never a name that can change (a DN).
    pub anchor: String,
    /// How other objects refer to this one (LDAP: its DN; files and SCIM
    /// sources: the anchor itself).
    pub source_ref: String,
    /// Attribute name → value (a string, a number, a boolean, or an array of
    /// strings for multi-valued attributes), with the source's own names.
    pub attrs: Map<String, Value>,
    /// Users: the manager's source reference.
    pub manager: Option<String>,
    /// Groups: the members' source references.
    pub members: Vec<String>,
    /// The source says the account is disabled (Entra's `accountEnabled`
    /// false, an HR status, a configured LDAP attribute).
    pub disabled: bool,
}

/// What one read of a source returns.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    /// A complete snapshot: every object the source holds. Objects the job
    /// knows that are missing from it were deleted.
    pub full: bool,
    /// New or changed objects (all objects when `full`).
    pub objects: Vec<SourceObject>,
    /// Anchors deleted from the source (reported by sources that can say so
    /// without a full read, e.g. LDAP content synchronisation).
    pub deleted: Vec<(Kind, String)>,
    /// Every anchor the source holds now, when it can list them without
    /// reading every object (LDAP's periodic `entryUUID` scan, content
    /// synchronisation's "present" set): anchors the job knows that are not
    /// in it were deleted. `None`: the source says nothing about deletions
    /// beyond `deleted` (and `full`).
    pub present: Option<Vec<(Kind, String)>>,
    /// Where the next incremental read starts; stored when the cycle ends.
    pub watermark: Value,
}

impl SourceObject {
    /// A stable hash of everything a cycle looks at: attributes, references
    /// and the disabled flag. Equal hashes mean nothing to re-evaluate.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut members = self.members.clone();
        members.sort();
        let canonical = serde_json::json!({
            "attrs": sorted(&Value::Object(self.attrs.clone())),
            "manager": self.manager,
            "members": members,
            "disabled": self.disabled,
            "ref": self.source_ref,
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// The display name for logs: userName-ish attributes first.
    pub fn display_name(&self) -> String {
        for k in [
            "displayName",
            "userPrincipalName",
            "mail",
            "cn",
            "uid",
            "userName",
            "name",
        ] {
            if let Some(s) = self.attrs.get(k).and_then(Value::as_str) {
                return s.to_string();
            }
        }
        self.anchor.clone()
    }
}

/// A JSON value with its object keys sorted (serde_json keeps insertion
/// order here), so that equal content hashes equally.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by_key(|(k, _)| *k);
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}
