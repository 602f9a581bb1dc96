//! The tests: every test of Microsoft's SCIM Validator (24, plus its 7
//! preview tests) named as Microsoft names them, and the direct SCIM checks
//! of the Logic-App onboarding validator that need no Entra tenant
//! (entra-provisioning.md §4). Each says what it sends, what it expects,
//! what Entra logs when an endpoint gets it wrong, and what to change.
//! `docs/validate.md` is this table in prose.

use serde::Serialize;

/// Where a test comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Microsoft's SCIM Validator (scimvalidator.microsoft.com).
    Validator,
    /// The SCIM Validator's preview tests.
    Preview,
    /// The direct SCIM tests and onboarding checks of the gallery's
    /// Logic-App validator, and Test Connection.
    Onboarding,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Validator => "validator",
            Category::Preview => "preview",
            Category::Onboarding => "onboarding",
        }
    }
}

/// One test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestInfo {
    /// Short, stable: what `--only` takes.
    pub id: &'static str,
    /// As Microsoft names it.
    pub name: &'static str,
    pub category: Category,
    /// Runs only with `--groups`.
    pub groups: bool,
    pub sends: &'static str,
    pub expects: &'static str,
    /// What Entra logs when the answer is wrong without being an HTTP error
    /// (an HTTP error is logged with the code of its status).
    pub entra: &'static str,
    /// What to change on the endpoint.
    pub fix: &'static str,
}

const INCOMPATIBLE: &str = "SystemForCrossDomainIdentityManagementServiceIncompatible";

/// Every test, in the order they run.
pub const TESTS: &[TestInfo] = &[
    TestInfo {
        id: "test-connection",
        name: "Test Connection",
        category: Category::Onboarding,
        groups: false,
        sends: "GET /Users?filter=userName eq \"<random GUID>\" (and, with --groups, GET /Groups?excludedAttributes=members&filter=displayName eq \"<random GUID>\"), exactly as Entra's Test Connection",
        expects: "200 with an empty ListResponse (totalResults 0)",
        entra: INCOMPATIBLE,
        fix: "Answer a filter that matches nothing with 200 and {\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\"totalResults\":0,\"Resources\":[]}; never 404.",
    },
    TestInfo {
        id: "schemas-discoverable",
        name: "/Schemas lists every mapped attribute",
        category: Category::Onboarding,
        groups: false,
        sends: "GET /Schemas (after /ServiceProviderConfig and /ResourceTypes)",
        expects: "a ListResponse of schemas naming every attribute of Entra's default mapping (compared case-insensitively), Group's too with --groups",
        entra: "SchemaAttributeNotFound",
        fix: "Serve /Schemas (RFC 7643 §7) with every attribute the endpoint accepts, sub-attributes included, the enterprise extension's in its own schema.",
    },
    TestInfo {
        id: "create-user",
        name: "POST /Users - Create a new User",
        category: Category::Validator,
        groups: false,
        sends: "POST /Users with Entra's default mapping's attributes (those /Schemas declares), then GET /Users?filter=userName eq \"…\"",
        expects: "201 with an id; the filter finds exactly that user, with every value as sent",
        entra: INCOMPATIBLE,
        fix: "Answer a create with 201 and the resource with its id; store every attribute exactly as sent and return it (Entra diffs what it reads against what it sent).",
    },
    TestInfo {
        id: "create-duplicate-user",
        name: "POST /Users - Create a duplicate User",
        category: Category::Validator,
        groups: false,
        sends: "POST /Users twice with the same userName",
        expects: "409 for the second (scimType uniqueness is what RFC 7644 asks; only the status is judged)",
        entra: "DuplicateTargetEntries",
        fix: "Refuse a userName that is taken (compared case-insensitively) with 409 and scimType \"uniqueness\".",
    },
    TestInfo {
        id: "filter-user",
        name: "GET /Users?filter - Filter for an existing user",
        category: Category::Validator,
        groups: false,
        sends: "GET /Users?filter=userName eq \"<userName>\"",
        expects: "200, a ListResponse with exactly that user",
        entra: "EntryConflict",
        fix: "Support the filter userName eq \"…\" (Entra's matching query) and return the matching user.",
    },
    TestInfo {
        id: "filter-user-none",
        name: "GET /Users?filter - Filter for a non-existing user",
        category: Category::Validator,
        groups: false,
        sends: "GET /Users?filter=userName eq \"<a userName nobody has>\"",
        expects: "200 with an empty ListResponse",
        entra: INCOMPATIBLE,
        fix: "Answer a filter that matches nothing with 200 and an empty ListResponse; a 404 quarantines the job.",
    },
    TestInfo {
        id: "filter-user-case",
        name: "GET /Users?filter - Filter for an existing user with a different case",
        category: Category::Validator,
        groups: false,
        sends: "GET /Users?filter=userName eq \"<userName in upper case>\"",
        expects: "200 with the user (userName is caseExact false in RFC 7643)",
        entra: "EntryConflict",
        fix: "Compare userName case-insensitively in filters.",
    },
    TestInfo {
        id: "patch-user-replace",
        name: "PATCH /Users/Id - Patch User - Replace Attributes Verbose",
        category: Category::Validator,
        groups: false,
        sends: "PATCH /Users/{id} changing every mapped single-valued and filtered attribute (displayName, title, name.*, emails[type eq \"work\"].value, addresses, phoneNumbers, externalId, the enterprise extension), shaped by the dialect",
        expects: "200 or 204; a GET returns every new value",
        entra: "(no error: Entra sends the same PATCH again every cycle, as the values never match)",
        fix: "Apply every operation of the PATCH, including filtered paths (emails[type eq \"work\"].value) and, in the compliant dialect, path-less replace values with dotted and URN keys.",
    },
    TestInfo {
        id: "patch-user-username",
        name: "PATCH /Users/Id - Update User userName",
        category: Category::Validator,
        groups: false,
        sends: "PATCH /Users/{id} replacing userName",
        expects: "200 or 204; a GET and a filter by the new userName return it",
        entra: "(no error: Entra renames the user again every cycle)",
        fix: "Let userName be replaced by PATCH.",
    },
    TestInfo {
        id: "patch-user-disable",
        name: "PATCH /Users/Id - Patch User - Disable User",
        category: Category::Validator,
        groups: false,
        sends: "PATCH /Users/{id} replacing active with false (entra-legacy: the string \"False\")",
        expects: "200 or 204; a later GET by filter returns the user with active false",
        entra: "(no error: the user stays enabled in the application; Entra disables it again every cycle)",
        fix: "Apply active=false (accept the strings \"True\"/\"False\" too) and keep returning disabled users from GET and filters.",
    },
    TestInfo {
        id: "patch-user-manager-add",
        name: "PATCH /Users/Id - Patch User - Add Manager",
        category: Category::Validator,
        groups: false,
        sends: "PATCH /Users/{id} adding urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager = \"<manager id>\" (a bare id in the Entra dialects)",
        expects: "200 or 204; a GET returns manager.value = the manager's id",
        entra: "(no error: Entra sets the manager again every cycle)",
        fix: "Accept the manager as a bare string, {\"value\":…} or [{\"value\":…}], and return it as {\"value\":…}.",
    },
    TestInfo {
        id: "patch-user-manager-replace",
        name: "PATCH /Users/Id - Patch User - Replace Manager",
        category: Category::Validator,
        groups: false,
        sends: "PATCH /Users/{id} replacing the manager with another user's id",
        expects: "200 or 204; a GET returns the new manager",
        entra: "(no error: Entra sets the manager again every cycle)",
        fix: "Let replace change the manager.",
    },
    TestInfo {
        id: "patch-user-manager-remove",
        name: "PATCH /Users/Id - Patch User - Remove Manager",
        category: Category::Validator,
        groups: false,
        sends: "PATCH /Users/{id} replacing the manager with {\"value\":\"\"} (rfc: remove)",
        expects: "200 or 204; a GET returns no manager (or an empty one)",
        entra: "(no error: the manager stays)",
        fix: "Treat a manager of {\"value\":\"\"} (and \"\" or null) as removing it.",
    },
    TestInfo {
        id: "delete-user",
        name: "DELETE /Users/Id - Delete a User",
        category: Category::Validator,
        groups: false,
        sends: "DELETE /Users/{id}, then GET /Users/{id}",
        expects: "204 (200 passes, with a note: Entra accepts any 2xx), then 404",
        entra: "(no error: the user is left in the application)",
        fix: "Delete the user for good on DELETE and answer 204; answer 404 for it afterwards.",
    },
    TestInfo {
        id: "patch-null-empty",
        name: "PATCH with null and empty values",
        category: Category::Onboarding,
        groups: false,
        sends: "PATCH /Users/{id} replacing an optional attribute with \"\", then with null",
        expects: "200 or 204 each time; the attribute reads back empty or absent",
        entra: "SchemaPropertyCanOnlyAcceptValue",
        fix: "Treat \"\" and null in a PATCH as clearing the attribute.",
    },
    TestInfo {
        id: "user-pagination",
        name: "User pagination (startIndex/count=5)",
        category: Category::Onboarding,
        groups: false,
        sends: "6 users, then GET /Users?startIndex=1&count=5, startIndex=6, … across the pages",
        expects: "pages of at most 5, startIndex as asked, no user twice, every user once",
        entra: INCOMPATIBLE,
        fix: "Honour startIndex (1-based) and count, and report totalResults, startIndex and itemsPerPage.",
    },
    TestInfo {
        id: "empty-filters",
        name: "Filters on matching attributes with no match",
        category: Category::Onboarding,
        groups: false,
        sends: "GET /Users?filter=externalId eq \"<GUID>\" (with --groups, GET /Groups?filter=externalId eq \"<GUID>\")",
        expects: "200 with an empty ListResponse",
        entra: INCOMPATIBLE,
        fix: "Support eq filters on every matching attribute (userName, externalId; displayName for groups) and answer no match with 200 and an empty ListResponse.",
    },
    TestInfo {
        id: "preview-user-multiple-ops",
        name: "PATCH /Users/Id - Multiple ops on different attributes",
        category: Category::Preview,
        groups: false,
        sends: "one PATCH /Users/{id} with operations on several attributes (displayName replaced, nickName added, title replaced)",
        expects: "200 or 204; a GET returns every new value",
        entra: "(no error: Entra sends the same PATCH again every cycle)",
        fix: "Apply every operation of a PATCH, in order.",
    },
    TestInfo {
        id: "preview-user-same-attribute",
        name: "PATCH /Users/Id - Multiple ops on the same attribute",
        category: Category::Preview,
        groups: false,
        sends: "one PATCH /Users/{id} replacing the same attribute twice",
        expects: "200 or 204; a GET returns the last value",
        entra: "(no error: Entra sends the same PATCH again every cycle)",
        fix: "Apply the operations of a PATCH in order; the last one wins.",
    },
    TestInfo {
        id: "preview-delete-user-missing",
        name: "DELETE /Users/Id - Delete a non-existent User",
        category: Category::Preview,
        groups: false,
        sends: "DELETE /Users/<an id that does not exist>",
        expects: "404",
        entra: "(no error, but the application's answer is ambiguous)",
        fix: "Answer 404 for an id that does not exist.",
    },
    TestInfo {
        id: "preview-delete-user-twice",
        name: "DELETE /Users/Id - Delete the same User twice",
        category: Category::Preview,
        groups: false,
        sends: "DELETE /Users/{id} twice",
        expects: "204 (200 passes, with a note: Entra accepts any 2xx), then 404",
        entra: "(no error, but the application's answer is ambiguous)",
        fix: "Answer 404 for a user that was deleted.",
    },
    TestInfo {
        id: "create-group",
        name: "POST /Groups - Create a new Group",
        category: Category::Validator,
        groups: true,
        sends: "POST /Groups with displayName and externalId (the Entra dialects add Microsoft's ADSCIM Group schema and meta)",
        expects: "201 with an id; a filter by displayName finds it",
        entra: INCOMPATIBLE,
        fix: "Answer a create with 201 and the group with its id; tolerate the extra Microsoft schema URI.",
    },
    TestInfo {
        id: "create-duplicate-group",
        name: "POST /Groups - Create a duplicate Group",
        category: Category::Validator,
        groups: true,
        sends: "POST /Groups twice with the same displayName",
        expects: "409 for the second",
        entra: "DuplicateTargetEntries",
        fix: "Refuse a displayName that is taken with 409 and scimType \"uniqueness\".",
    },
    TestInfo {
        id: "get-group-excluding-members",
        name: "GET /Groups/Id - Get group by id excluding members",
        category: Category::Validator,
        groups: true,
        sends: "GET /Groups/{id}?excludedAttributes=members (of a group with a member)",
        expects: "200 with the group and no members",
        entra: "SystemForCrossDomainIdentityManagementMultipleEntriesInResponse",
        fix: "Honour excludedAttributes=members.",
    },
    TestInfo {
        id: "filter-group-excluding-members",
        name: "GET /Groups?filter - Filter for an existing group excluding members",
        category: Category::Validator,
        groups: true,
        sends: "GET /Groups?excludedAttributes=members&filter=displayName eq \"…\" (Entra's matching query)",
        expects: "200 with exactly that group, without members",
        entra: "SystemForCrossDomainIdentityManagementMultipleEntriesInResponse",
        fix: "Support displayName eq filters and honour excludedAttributes=members in lists.",
    },
    TestInfo {
        id: "filter-group",
        name: "GET /Groups?filter - Filter for an existing group",
        category: Category::Validator,
        groups: true,
        sends: "GET /Groups?filter=displayName eq \"…\"",
        expects: "200 with exactly that group",
        entra: "EntryConflict",
        fix: "Support displayName eq filters on Groups.",
    },
    TestInfo {
        id: "filter-group-none",
        name: "GET /Groups?filter - Filter for a non-existing group",
        category: Category::Validator,
        groups: true,
        sends: "GET /Groups?filter=displayName eq \"<a name nobody has>\"",
        expects: "200 with an empty ListResponse",
        entra: INCOMPATIBLE,
        fix: "Answer a filter that matches nothing with 200 and an empty ListResponse.",
    },
    TestInfo {
        id: "filter-group-case",
        name: "GET /Groups?filter - Filter for an existing group with a different case",
        category: Category::Validator,
        groups: true,
        sends: "GET /Groups?filter=displayName eq \"<displayName in upper case>\"",
        expects: "200 with the group",
        entra: "EntryConflict",
        fix: "Compare displayName case-insensitively in filters.",
    },
    TestInfo {
        id: "patch-group-replace",
        name: "PATCH /Groups/Id - Patch Group - Replace Attributes",
        category: Category::Validator,
        groups: true,
        sends: "PATCH /Groups/{id} replacing externalId (entra-compliant: a path-less replace)",
        expects: "200 or 204; a GET returns the new value",
        entra: "(no error: Entra sends the same PATCH again every cycle)",
        fix: "Apply replace operations on groups, path-less ones too.",
    },
    TestInfo {
        id: "patch-group-displayname",
        name: "PATCH /Groups/Id - Update Group displayName",
        category: Category::Validator,
        groups: true,
        sends: "PATCH /Groups/{id} replacing displayName",
        expects: "200 or 204; a GET returns the new displayName",
        entra: "(no error: Entra renames the group again every cycle)",
        fix: "Let displayName be replaced by PATCH.",
    },
    TestInfo {
        id: "patch-group-add-member",
        name: "PATCH /Groups/Id - Patch Group - Add Member",
        category: Category::Validator,
        groups: true,
        sends: "PATCH /Groups/{id} with {\"op\":\"replace\",\"path\":\"members\",\"value\":[{\"value\":\"<user id>\"}]} (the SCIM Validator's shape)",
        expects: "200 or 204; a GET of the group lists the member",
        entra: "(no error: the membership is missing in the application; Entra adds it again every cycle)",
        fix: "Apply member PATCH operations (add, replace with a value array).",
    },
    TestInfo {
        id: "patch-group-remove-member",
        name: "PATCH /Groups/Id - Patch Group - Remove Member",
        category: Category::Validator,
        groups: true,
        sends: "PATCH /Groups/{id} with {\"op\":\"remove\",\"path\":\"members[value eq \\\"<user id>\\\"]\"}",
        expects: "200 or 204; a GET of the group no longer lists the member",
        entra: "(no error: the membership stays in the application)",
        fix: "Support remove with a members[value eq \"…\"] path.",
    },
    TestInfo {
        id: "delete-group",
        name: "DELETE /Groups/Id - Delete a Group",
        category: Category::Validator,
        groups: true,
        sends: "DELETE /Groups/{id}, then GET /Groups/{id}",
        expects: "204 (200 passes, with a note: Entra accepts any 2xx), then 404",
        entra: "(no error: the group is left in the application)",
        fix: "Delete the group on DELETE and answer 204; 404 afterwards.",
    },
    TestInfo {
        id: "multi-member-patch",
        name: "Multi-member group PATCH",
        category: Category::Onboarding,
        groups: true,
        sends: "one PATCH adding two members (Entra's add, shaped by the dialect), then one removing both (entra-legacy: remove with a value list; the others: one remove per members[value eq …])",
        expects: "200 or 204 each time; both members present, then both gone",
        entra: "(no error: memberships are missing or stay; Entra sends them again every cycle)",
        fix: "Accept several members in one PATCH; read entra-legacy's remove with a value list as removing those members only.",
    },
    TestInfo {
        id: "group-pagination",
        name: "Group pagination (startIndex/count=5)",
        category: Category::Onboarding,
        groups: true,
        sends: "6 groups, then GET /Groups?startIndex=1&count=5, startIndex=6, … across the pages",
        expects: "pages of at most 5, startIndex as asked, no group twice, every group once",
        entra: INCOMPATIBLE,
        fix: "Honour startIndex and count on /Groups.",
    },
    TestInfo {
        id: "preview-group-same-attribute",
        name: "PATCH /Groups/Id - Multiple ops on the same attribute",
        category: Category::Preview,
        groups: true,
        sends: "one PATCH /Groups/{id} adding two members and removing one of them",
        expects: "200 or 204; a GET lists only the member not removed",
        entra: "(no error: memberships are wrong in the application)",
        fix: "Apply the operations of a PATCH in order.",
    },
    TestInfo {
        id: "preview-delete-group-missing",
        name: "DELETE /Groups/Id - Delete a non-existent Group",
        category: Category::Preview,
        groups: true,
        sends: "DELETE /Groups/<an id that does not exist>",
        expects: "404",
        entra: "(no error, but the application's answer is ambiguous)",
        fix: "Answer 404 for an id that does not exist.",
    },
    TestInfo {
        id: "preview-delete-group-twice",
        name: "DELETE /Groups/Id - Delete the same Group twice",
        category: Category::Preview,
        groups: true,
        sends: "DELETE /Groups/{id} twice",
        expects: "204 (200 passes, with a note: Entra accepts any 2xx), then 404",
        entra: "(no error, but the application's answer is ambiguous)",
        fix: "Answer 404 for a group that was deleted.",
    },
    TestInfo {
        id: "load",
        name: "Sustains 25 requests per second",
        category: Category::Onboarding,
        groups: false,
        sends: "25 requests per second for 10 seconds (--load-seconds): Entra's matching query and GET /Users/{id}, alternately",
        expects: "every answer 200 and at least 25 answers per second; the p99 latency is reported",
        entra: "TooManyRequests",
        fix: "Sustain at least 25 requests per second per tenant (a gallery requirement) without 429 or 5xx.",
    },
];

/// The test with this id.
pub fn by_id(id: &str) -> Option<&'static TestInfo> {
    TESTS.iter().find(|t| t.id == id)
}

/// The tests `--only` selects: each name is an id, or part of a test's
/// name (case-insensitive). Err names what matched nothing.
pub fn select(only: &[String]) -> Result<Vec<&'static TestInfo>, String> {
    if only.is_empty() {
        return Ok(TESTS.iter().collect());
    }
    let mut chosen: Vec<&'static TestInfo> = Vec::new();
    for want in only {
        let w = want.trim().to_lowercase();
        let matched: Vec<&'static TestInfo> = TESTS
            .iter()
            .filter(|t| t.id == w || (!w.is_empty() && t.name.to_lowercase().contains(&w)))
            .collect();
        if matched.is_empty() {
            return Err(format!(
                "no test is named '{want}'; the tests are: {}",
                TESTS.iter().map(|t| t.id).collect::<Vec<_>>().join(", ")
            ));
        }
        for t in matched {
            if !chosen.iter().any(|c| c.id == t.id) {
                chosen.push(t);
            }
        }
    }
    // In the catalogue's order.
    chosen.sort_by_key(|t| TESTS.iter().position(|x| x.id == t.id));
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_has_24_tests_and_7_previews() {
        let count = |c: Category| TESTS.iter().filter(|t| t.category == c).count();
        assert_eq!(count(Category::Validator), 24);
        assert_eq!(count(Category::Preview), 7);
        let mut ids: Vec<&str> = TESTS.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TESTS.len(), "ids are unique");
    }

    #[test]
    fn only_takes_ids_and_parts_of_names() {
        let ids = |v: &[&str]| {
            select(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map(|ts| ts.iter().map(|t| t.id).collect::<Vec<_>>())
        };
        assert_eq!(ids(&["delete-user"]), Ok(vec!["delete-user"]));
        assert_eq!(
            ids(&["manager"]),
            Ok(vec![
                "patch-user-manager-add",
                "patch-user-manager-replace",
                "patch-user-manager-remove"
            ])
        );
        assert!(ids(&["nonsense"]).is_err_and(|e| e.contains("'nonsense'")));
        assert_eq!(ids(&[]).map(|v| v.len()), Ok(TESTS.len()));
    }
}
