//! Built-in mappings. For SCIM and file sources: Entra's default "scim"
//! template (provisioning-engine.md §2), over Entra's source attribute names
//! (`userPrincipalName`, `surname`, `mailNickname`…), so that a SCIM source
//! or an HR file with those columns provisions exactly as Entra does. For
//! LDAP (`inetOrgPerson` / `groupOfNames`): the same targets, from LDAP's
//! attributes. A job overrides any of them (docs/engine.md).

use crate::job::SourceSpec;
use crate::mapping::{Apply, Mapping, MappingSource, TargetPath};
use crate::model::Kind;

/// `active` from Entra's computed soft-delete flag.
const ACTIVE: &str = r#"Switch([IsSoftDeleted], , "False", "True", "True", "False")"#;

/// `(target, source)`: a source starting with `=` is an expression, `&` a
/// reference, anything else a direct attribute. The first row is the
/// matching attribute.
const SCIM_USER: &[(&str, &str)] = &[
    ("userName", "userPrincipalName"),
    (
        "active",
        "=Switch([IsSoftDeleted], , \"False\", \"True\", \"True\", \"False\")",
    ),
    ("displayName", "displayName"),
    ("title", "jobTitle"),
    ("emails[type eq \"work\"].value", "mail"),
    ("preferredLanguage", "preferredLanguage"),
    ("name.givenName", "givenName"),
    ("name.familyName", "surname"),
    ("name.formatted", "=Join(\" \", [givenName], [surname])"),
    ("addresses[type eq \"work\"].formatted", "physicalDeliveryOfficeName"),
    ("addresses[type eq \"work\"].streetAddress", "streetAddress"),
    ("addresses[type eq \"work\"].locality", "city"),
    ("addresses[type eq \"work\"].region", "state"),
    ("addresses[type eq \"work\"].postalCode", "postalCode"),
    ("addresses[type eq \"work\"].country", "country"),
    ("phoneNumbers[type eq \"work\"].value", "telephoneNumber"),
    ("phoneNumbers[type eq \"mobile\"].value", "mobile"),
    ("phoneNumbers[type eq \"fax\"].value", "facsimileTelephoneNumber"),
    ("externalId", "mailNickname"),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        "employeeId",
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "department",
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "&manager",
    ),
];

const SCIM_GROUP: &[(&str, &str)] = &[
    ("displayName", "displayName"),
    ("externalId", "objectId"),
    ("members", "&members"),
];

const LDAP_USER: &[(&str, &str)] = &[
    ("userName", "mail"),
    ("externalId", "uid"),
    (
        "active",
        "=Switch([IsSoftDeleted], , \"False\", \"True\", \"True\", \"False\")",
    ),
    ("displayName", "=Coalesce([displayName], [cn])"),
    ("name.givenName", "givenName"),
    ("name.familyName", "sn"),
    ("emails[type eq \"work\"].value", "mail"),
    ("title", "title"),
    ("phoneNumbers[type eq \"work\"].value", "telephoneNumber"),
    ("phoneNumbers[type eq \"mobile\"].value", "mobile"),
    ("addresses[type eq \"work\"].streetAddress", "street"),
    ("addresses[type eq \"work\"].locality", "l"),
    ("addresses[type eq \"work\"].region", "st"),
    ("addresses[type eq \"work\"].postalCode", "postalCode"),
    ("addresses[type eq \"work\"].country", "c"),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        "employeeNumber",
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "departmentNumber",
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "&manager",
    ),
];

const LDAP_GROUP: &[(&str, &str)] = &[
    ("displayName", "cn"),
    ("externalId", "entryUUID"),
    ("members", "&member"),
];

fn build(kind: Kind, rows: &[(&str, &str)]) -> Vec<Mapping> {
    rows.iter()
        .enumerate()
        .filter_map(|(i, (target, source))| {
            let target = TargetPath::parse(kind, target).ok()?;
            let source = if let Some(e) = source.strip_prefix('=') {
                MappingSource::Expression(Box::new(scimitar_expression::parse(e).ok()?))
            } else {
                MappingSource::Direct(source.trim_start_matches('&').to_string())
            };
            Some(Mapping {
                reference: target.is_reference(),
                target,
                source,
                default: None,
                apply: Apply::Always,
                matching: (i == 0).then_some(1),
            })
        })
        .collect()
}

fn rows(source: &SourceSpec, kind: Kind) -> &'static [(&'static str, &'static str)] {
    match (source, kind) {
        (SourceSpec::Ldap(_), Kind::User) => LDAP_USER,
        (SourceSpec::Ldap(_), Kind::Group) => LDAP_GROUP,
        (_, Kind::User) => SCIM_USER,
        (_, Kind::Group) => SCIM_GROUP,
    }
}

pub fn user_mappings(source: &SourceSpec) -> Vec<Mapping> {
    build(Kind::User, rows(source, Kind::User))
}

pub fn group_mappings(source: &SourceSpec) -> Vec<Mapping> {
    build(Kind::Group, rows(source, Kind::Group))
}

/// Attributes an LDAP source reads (inetOrgPerson, organizationalPerson,
/// person, groupOfNames, and what identifies an entry).
pub const LDAP_ATTRIBUTES: &[&str] = &[
    "entryUUID",
    "dn",
    "objectClass",
    "cn",
    "sn",
    "givenName",
    "displayName",
    "initials",
    "uid",
    "mail",
    "title",
    "description",
    "telephoneNumber",
    "mobile",
    "facsimileTelephoneNumber",
    "homePhone",
    "pager",
    "street",
    "postalAddress",
    "postalCode",
    "postOfficeBox",
    "l",
    "st",
    "c",
    "co",
    "o",
    "ou",
    "physicalDeliveryOfficeName",
    "roomNumber",
    "employeeNumber",
    "employeeType",
    "departmentNumber",
    "businessCategory",
    "manager",
    "secretary",
    "preferredLanguage",
    "labeledURI",
    "carLicense",
    "member",
    "uniqueMember",
    "owner",
    "modifyTimestamp",
    "createTimestamp",
];

/// Entra's names for a user's and a group's attributes: what a SCIM
/// source presents (docs/engine.md lists where each comes from).
pub const ENTRA_ATTRIBUTES: &[&str] = &[
    "objectId",
    "userPrincipalName",
    "mailNickname",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "jobTitle",
    "department",
    "employeeId",
    "preferredLanguage",
    "telephoneNumber",
    "mobile",
    "facsimileTelephoneNumber",
    "physicalDeliveryOfficeName",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
    "accountEnabled",
    "manager",
    "members",
    "proxyAddresses",
];

/// What the engine computes for every object.
pub const COMPUTED: &[&str] = &["IsSoftDeleted"];

/// The attributes mappings and scoping filters may read from this source.
pub fn source_attributes(source: &SourceSpec) -> Vec<String> {
    let mut out: Vec<String> = COMPUTED.iter().map(|s| s.to_string()).collect();
    match source {
        SourceSpec::Ldap(l) => {
            out.extend(LDAP_ATTRIBUTES.iter().map(|s| s.to_string()));
            out.extend(l.extra_attributes.iter().cloned());
        }
        SourceSpec::File(f) => {
            out.extend(f.user_columns.iter().cloned());
            out.extend(f.group_columns.iter().cloned());
        }
        SourceSpec::Scim(_) => out.extend(ENTRA_ATTRIBUTES.iter().map(|s| s.to_string())),
    }
    out.sort();
    out.dedup();
    out
}

/// Entra's default "scim" mappings of `kind` as `(target, source)` text:
/// a source starting with `=` is an expression, `&` a reference. The first
/// row is the matching attribute. (`scimitar validate` builds its test
/// users from these targets.)
pub fn entra_default_rows(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::User => SCIM_USER,
        Kind::Group => SCIM_GROUP,
    }
}

/// The default `active` mapping's expression (for docs and tests).
pub fn active_expression() -> &'static str {
    ACTIVE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_row_builds() {
        for (kind, rows) in [
            (Kind::User, SCIM_USER),
            (Kind::Group, SCIM_GROUP),
            (Kind::User, LDAP_USER),
            (Kind::Group, LDAP_GROUP),
        ] {
            let built = build(kind, rows);
            assert_eq!(built.len(), rows.len(), "{rows:?}");
            assert_eq!(built.iter().filter(|m| m.matching == Some(1)).count(), 1);
        }
        let manager = build(Kind::User, LDAP_USER);
        assert!(manager.iter().any(|m| m.reference && m.target.is_manager()));
        let members = build(Kind::Group, SCIM_GROUP);
        assert!(members.iter().any(|m| m.reference && m.target.is_members()));
        assert!(scimitar_expression::parse(active_expression()).is_ok());
    }
}
