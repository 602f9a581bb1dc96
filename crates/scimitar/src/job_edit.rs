//! The console's forms change one part of a job file at a time: the
//! Tenant URL and Secret Token, the settings, one mapping, one scoping
//! clause. Each change is made to the job file's text with `toml_edit`, so
//! that what an administrator wrote by hand (comments, order, layout)
//! stays as it was, and the result is then checked and stored like any job
//! file sent by a tenant's administrator.

use scimitar_app::jobs::{ClauseOutline, JobEdit, JobFileError, JobObject, JobSettingsEdit, MappingOutline};
use scimitar_engine::job::parse_job;
use scimitar_engine::mapping::TargetPath;
use scimitar_protocol::schema::Kind;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value as TomlValue, value};

/// `text` with `edit` made.
pub fn apply(text: &str, edit: &JobEdit) -> Result<String, JobFileError> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| JobFileError {
        line: None,
        key: None,
        message: format!("the job file does not read as TOML: {e}"),
    })?;
    match edit {
        JobEdit::Credentials { url, token } => {
            let target = table(&mut doc, "target")?;
            set(target, "url", url.trim());
            if let Some(t) = token {
                target.remove("token_file");
                target.remove("token_env");
                set(target, "token", t.trim());
            }
        }
        JobEdit::Settings(s) => settings(&mut doc, s)?,
        JobEdit::Mapping { object, mapping } => put_mapping(&mut doc, *object, mapping)?,
        JobEdit::RemoveMapping { object, target } => {
            remove_mapping(&mut doc, *object, target)?;
            // A mapping of the template is removed by `remove = true`; a
            // target the template does not map needs no such entry.
            let mut with_remove = doc.clone();
            mappings(&mut with_remove, *object)?.push(mapping_table(&[
                ("target", value(target.as_str())),
                ("remove", value(true)),
            ]));
            let text = with_remove.to_string();
            let template_maps_it = match parse_job(&text, std::path::Path::new(".")) {
                Err(e) => !e.message.contains("the template does not map"),
                Ok(_) => true,
            };
            if template_maps_it {
                doc = with_remove;
            }
        }
        JobEdit::AddClause { object, filter, clause } => {
            let filters = array_of_tables(table(&mut doc, "scoping")?, object.as_str())?;
            let c = clause_table(clause);
            match filter.and_then(|i| filters.get_mut(i)) {
                Some(f) => match f.get_mut("clauses").and_then(Item::as_array_mut) {
                    Some(a) => a.push(c),
                    None => {
                        let mut a = Array::new();
                        a.push(c);
                        f.insert("clauses", value(a));
                    }
                },
                None => {
                    let mut a = Array::new();
                    a.push(c);
                    let mut t = Table::new();
                    t.insert("clauses", value(a));
                    filters.push(t);
                }
            }
        }
        JobEdit::RemoveClause { object, filter, clause } => {
            let filters = array_of_tables(table(&mut doc, "scoping")?, object.as_str())?;
            let missing = || JobFileError {
                line: None,
                key: Some(format!("scoping.{}", object.as_str())),
                message: format!("there is no clause {} in scoping filter {}", clause + 1, filter + 1),
            };
            let f = filters.get_mut(*filter).ok_or_else(missing)?;
            let clauses = f.get_mut("clauses").and_then(Item::as_array_mut).ok_or_else(missing)?;
            if *clause >= clauses.len() {
                return Err(missing());
            }
            clauses.remove(*clause);
            if clauses.is_empty() {
                filters.remove(*filter);
            }
        }
    }
    Ok(doc.to_string())
}

/// Sets `key` to `v`, keeping the comment and spacing around a value it
/// replaces.
fn set(table: &mut Table, key: &str, v: impl Into<TomlValue>) {
    let mut new: TomlValue = v.into();
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        None => {
            table.insert(key, Item::Value(new));
        }
    }
}

fn shape(key: &str) -> JobFileError {
    JobFileError {
        line: None,
        key: Some(key.to_string()),
        message: format!("`{key}` is not written as a table here; change it in the job file itself"),
    }
}

/// The table `key` of the document, created if missing.
fn table<'a>(doc: &'a mut DocumentMut, key: &str) -> Result<&'a mut Table, JobFileError> {
    let item = doc.as_table_mut().entry(key).or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    item.as_table_mut().ok_or_else(|| shape(key))
}

fn sub_table<'a>(parent: &'a mut Table, key: &str, path: &str) -> Result<&'a mut Table, JobFileError> {
    let item = parent.entry(key).or_insert_with(|| Item::Table(Table::new()));
    item.as_table_mut().ok_or_else(|| shape(path))
}

fn array_of_tables<'a>(parent: &'a mut Table, key: &str) -> Result<&'a mut ArrayOfTables, JobFileError> {
    let item = parent
        .entry(key)
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
    item.as_array_of_tables_mut().ok_or_else(|| shape(key))
}

fn mappings(doc: &mut DocumentMut, object: JobObject) -> Result<&mut ArrayOfTables, JobFileError> {
    array_of_tables(table(doc, "mappings")?, object.as_str())
}

fn mapping_table(pairs: &[(&str, Item)]) -> Table {
    let mut t = Table::new();
    for (k, v) in pairs {
        t.insert(k, v.clone());
    }
    t
}

fn clause_table(c: &ClauseOutline) -> TomlValue {
    let mut t = InlineTable::new();
    t.insert("attribute", c.attribute.trim().into());
    t.insert("operator", c.operator.trim().into());
    if !c.value.is_empty() {
        t.insert("value", c.value.as_str().into());
    }
    TomlValue::InlineTable(t)
}

fn kind(object: JobObject) -> Kind {
    match object {
        JobObject::User => Kind::User,
        JobObject::Group => Kind::Group,
    }
}

/// The canonical key of a target path (as the parser compares them), or
/// the text itself when it does not parse (the parser then says why).
fn target_key(object: JobObject, text: &str) -> String {
    TargetPath::parse(kind(object), text).map_or_else(|_| text.trim().to_string(), |t| t.key())
}

/// The index of the job file's mapping of `target`, if it has one.
fn mapping_index(list: &ArrayOfTables, object: JobObject, target: &str) -> Option<usize> {
    let key = target_key(object, target);
    list.iter().position(|t| {
        t.get("target")
            .and_then(Item::as_str)
            .is_some_and(|s| target_key(object, s).eq_ignore_ascii_case(&key))
    })
}

fn put_mapping(doc: &mut DocumentMut, object: JobObject, m: &MappingOutline) -> Result<(), JobFileError> {
    let mut pairs: Vec<(&str, Item)> = vec![("target", value(m.target.trim()))];
    match m.kind.as_str() {
        "direct" => pairs.push(("source", value(m.source.trim()))),
        "constant" => pairs.push(("constant", value(m.source.as_str()))),
        "expression" => pairs.push(("expression", value(m.source.trim()))),
        "none" => pairs.push(("none", value(true))),
        other => {
            return Err(JobFileError {
                line: None,
                key: Some(format!("mappings.{}", object.as_str())),
                message: format!("unknown mapping type '{other}': direct, constant, expression or none"),
            });
        }
    }
    if let Some(d) = m.default.as_deref().filter(|d| !d.is_empty()) {
        pairs.push(("default", value(d)));
    }
    if m.apply == "create" {
        pairs.push(("apply", value("create")));
    }
    if let Some(p) = m.matching {
        pairs.push(("matching", value(i64::from(p))));
    }
    let list = mappings(doc, object)?;
    let new = mapping_table(&pairs);
    match mapping_index(list, object, &m.target) {
        Some(i) => {
            if let Some(t) = list.get_mut(i) {
                *t = new;
            }
        }
        None => list.push(new),
    }
    Ok(())
}

fn remove_mapping(doc: &mut DocumentMut, object: JobObject, target: &str) -> Result<(), JobFileError> {
    let list = mappings(doc, object)?;
    if let Some(i) = mapping_index(list, object, target) {
        list.remove(i);
    }
    Ok(())
}

fn settings(doc: &mut DocumentMut, s: &JobSettingsEdit) -> Result<(), JobFileError> {
    let root = doc.as_table_mut();
    set(root, "interval", s.interval.trim());
    let threshold = i64::try_from(s.deletion_threshold).map_err(|_| JobFileError {
        line: None,
        key: Some("deletion_threshold".into()),
        message: "too large".into(),
    })?;
    set(root, "deletion_threshold", threshold);
    if s.notification_email.trim().is_empty() {
        root.remove("notification_email");
    } else {
        set(root, "notification_email", s.notification_email.trim());
    }
    let scope = table(doc, "scope")?;
    set(scope, "mode", s.scope_mode.as_str());
    let actions = table(doc, "actions")?;
    for (object, flags) in [("user", s.user_actions), ("group", s.group_actions)] {
        let t = sub_table(actions, object, &format!("actions.{object}"))?;
        for (k, v) in ["create", "update", "delete"].into_iter().zip(flags) {
            set(t, k, v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    const JOB: &str = r#"# the HR directory into the CRM
name = "crm"
interval = "40m"

[source]
kind = "scim"
url = "https://hr.example.com/scim/v2"
token = "(sealed)"

[target]
url = "https://crm.example.com/scim/v2"  # the Tenant URL
token = "(sealed)"

[[mappings.user]]
target = "title"
expression = 'ToUpper([jobTitle])'
"#;

    fn parses(text: &str) -> scimitar_engine::job::JobSpec {
        parse_job(text, std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn mapping(target: &str, kind: &str, source: &str) -> MappingOutline {
        MappingOutline {
            target: target.into(),
            kind: kind.into(),
            source: source.into(),
            apply: "always".into(),
            ..MappingOutline::default()
        }
    }

    /// Each edit as a table: the edit, then what the edited file says.
    #[test]
    fn edits_change_one_thing_and_keep_the_rest() {
        type Check = fn(&str, &scimitar_engine::job::JobSpec);
        let cases: Vec<(JobEdit, Check)> = vec![
            (
                JobEdit::Credentials {
                    url: "https://crm2.example.com/scim/v2".into(),
                    token: None,
                },
                |text, spec| {
                    assert_eq!(spec.target.url, "https://crm2.example.com/scim/v2");
                    assert!(text.contains("token = \"(sealed)\""), "the token is kept");
                    assert!(text.contains("# the Tenant URL"), "comments stay");
                },
            ),
            (
                JobEdit::Credentials {
                    url: "https://crm.example.com/scim/v2".into(),
                    token: Some("new-secret".into()),
                },
                |text, _| assert!(text.contains("token = \"new-secret\"")),
            ),
            (
                JobEdit::Settings(JobSettingsEdit {
                    scope_mode: "all".into(),
                    interval: "5s".into(),
                    deletion_threshold: 3,
                    notification_email: "it@example.com".into(),
                    user_actions: [true, true, false],
                    group_actions: [true, false, false],
                }),
                |_, spec| {
                    assert_eq!(spec.settings.interval.as_secs(), 5);
                    assert_eq!(spec.settings.deletion_threshold, 3);
                    assert_eq!(spec.settings.notification_email.as_deref(), Some("it@example.com"));
                    assert!(spec.users.actions.create && !spec.users.actions.delete);
                    assert!(!spec.groups.actions.update);
                },
            ),
            (
                JobEdit::Mapping {
                    object: JobObject::User,
                    mapping: mapping("title", "constant", "Staff"),
                },
                |text, spec| {
                    assert_eq!(text.matches("[[mappings.user]]").count(), 1, "replaced, not added");
                    let m = spec.users.mappings.iter().find(|m| m.target.key() == "title").unwrap();
                    assert_eq!(
                        m.source,
                        scimitar_engine::mapping::MappingSource::Constant("Staff".into())
                    );
                },
            ),
            (
                JobEdit::Mapping {
                    object: JobObject::User,
                    mapping: MappingOutline {
                        default: Some("nobody".into()),
                        apply: "create".into(),
                        matching: Some(2),
                        ..mapping("nickName", "expression", "Join(\".\", [givenName], [surname])")
                    },
                },
                |_, spec| {
                    let m = spec
                        .users
                        .mappings
                        .iter()
                        .find(|m| m.target.key() == "nickName")
                        .unwrap();
                    assert_eq!(m.matching, Some(2));
                    assert_eq!(m.default.as_deref(), Some("nobody"));
                    assert_eq!(m.apply, scimitar_engine::mapping::Apply::CreateOnly);
                },
            ),
            (
                JobEdit::RemoveMapping {
                    object: JobObject::User,
                    target: "title".into(),
                },
                |text, spec| {
                    // The job's own mapping goes, and the template's too.
                    assert!(spec.users.mappings.iter().all(|m| m.target.key() != "title"));
                    assert!(text.contains("remove = true"));
                },
            ),
            (
                JobEdit::RemoveMapping {
                    object: JobObject::User,
                    target: "nickName".into(),
                },
                |text, _| assert!(!text.contains("remove"), "nothing to remove: no entry"),
            ),
            (
                JobEdit::AddClause {
                    object: JobObject::User,
                    filter: None,
                    clause: ClauseOutline {
                        attribute: "department".into(),
                        operator: "EQUALS".into(),
                        value: "Sales".into(),
                    },
                },
                |_, spec| {
                    assert_eq!(spec.users.scoping.len(), 1);
                    assert_eq!(spec.users.scoping[0].clauses[0].value, "Sales");
                },
            ),
        ];
        for (edit, check) in cases {
            let text = apply(JOB, &edit).unwrap();
            check(&text, &parses(&text));
        }
    }

    #[test]
    fn clauses_are_added_to_a_filter_and_removed_with_it() {
        let clause = |a: &str| ClauseOutline {
            attribute: a.into(),
            operator: "IS NOT NULL".into(),
            value: String::new(),
        };
        let add = |text: &str, filter, a: &str| {
            apply(
                text,
                &JobEdit::AddClause {
                    object: JobObject::Group,
                    filter,
                    clause: clause(a),
                },
            )
            .unwrap()
        };
        let t = add(JOB, None, "displayName");
        let t = add(&t, Some(0), "mailNickname");
        let t = add(&t, Some(7), "displayName");
        let spec = parses(&t);
        assert_eq!(spec.groups.scoping.len(), 2, "a filter past the last is a new one");
        assert_eq!(spec.groups.scoping[0].clauses.len(), 2);
        let remove = |text: &str, filter, clause| {
            apply(
                text,
                &JobEdit::RemoveClause {
                    object: JobObject::Group,
                    filter,
                    clause,
                },
            )
        };
        let t = remove(&t, 1, 0).unwrap();
        assert_eq!(parses(&t).groups.scoping.len(), 1, "its last clause took the filter");
        let e = remove(&t, 0, 5).unwrap_err();
        assert!(e.message.contains("no clause 6"), "{e}");
    }

    #[test]
    fn a_mapping_of_an_unknown_type_is_refused() {
        let e = apply(
            JOB,
            &JobEdit::Mapping {
                object: JobObject::User,
                mapping: mapping("title", "magic", "x"),
            },
        )
        .unwrap_err();
        assert!(e.message.contains("unknown mapping type 'magic'"));
    }
}
