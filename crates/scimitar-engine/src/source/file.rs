//! HR files: a users file and optionally a groups file, each CSV with a
//! header row or JSON lines. A key column is the anchor. A file is a
//! snapshot: each read is complete (`Delta::full`) and the engine sends
//! only what changed by comparing each object's content hash with the last
//! run's; a file whose bytes did not change is not parsed at all.

use std::path::Path;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::job::FileSpec;
use crate::model::{Delta, Kind, SourceObject};
use crate::source::{Source, SourceError};

/// The column names of a users or groups file (CSV header, or the keys of
/// the first JSON line).
pub fn columns(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if is_json(path) {
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("{}");
        let v: Value =
            serde_json::from_str(first).map_err(|e| format!("{}: line 1 is not JSON: {e}", path.display()))?;
        return Ok(v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default());
    }
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: no CSV header row: {e}", path.display()))?;
    Ok(headers.iter().map(|h| h.trim().to_string()).collect())
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "jsonl" | "ndjson" | "json"))
}

/// A row of a file: its line number and its cells by column.
type Row = (usize, Map<String, Value>);

/// The rows of a file as JSON objects, with their line numbers.
fn rows(path: &Path, text: &str) -> Result<Vec<Row>, SourceError> {
    let err = |line: usize, m: String| SourceError::new(format!("{} line {line}: {m}", path.display()));
    let mut out = Vec::new();
    if is_json(path) {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line).map_err(|e| err(i + 1, format!("not JSON: {e}")))?;
            match v {
                Value::Object(o) => out.push((i + 1, o)),
                _ => return Err(err(i + 1, "not a JSON object".into())),
            }
        }
        return Ok(out);
    }
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| err(1, format!("no header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| err(i + 2, e.to_string()))?;
        let mut o = Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            if v.is_empty() {
                continue;
            }
            o.insert(h.clone(), Value::String(v.to_string()));
        }
        out.push((i + 2, o));
    }
    Ok(out)
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub struct FileSource {
    spec: FileSpec,
}

impl FileSource {
    pub fn new(spec: &FileSpec) -> Self {
        FileSource { spec: spec.clone() }
    }

    fn disabled(&self, row: &Map<String, Value>) -> bool {
        let s = &self.spec;
        match &s.disabled_column {
            Some(c) => {
                text_of(row.get(c)).is_some_and(|v| s.disabled_values.iter().any(|d| d.eq_ignore_ascii_case(&v)))
            }
            // Entra's own attribute, when the file has it.
            None => text_of(row.get("accountEnabled")).is_some_and(|v| v.eq_ignore_ascii_case("false")),
        }
    }

    fn members(&self, v: Option<&Value>) -> Vec<String> {
        match v {
            Some(Value::Array(a)) => a.iter().filter_map(|x| text_of(Some(x))).collect(),
            Some(Value::String(s)) => s
                .split(self.spec.separator.as_str())
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn hash_files(paths: &[&Path]) -> Result<(String, Vec<String>), SourceError> {
    let mut h = Sha256::new();
    let mut texts = Vec::new();
    for p in paths {
        let text =
            std::fs::read_to_string(p).map_err(|e| SourceError::new(format!("cannot read {}: {e}", p.display())))?;
        h.update(p.display().to_string().as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        texts.push(text);
    }
    Ok((h.finalize().iter().map(|b| format!("{b:02x}")).collect(), texts))
}

#[async_trait]
impl Source for FileSource {
    async fn read(&mut self, watermark: Option<&Value>) -> Result<Delta, SourceError> {
        let s = &self.spec;
        let mut paths: Vec<&Path> = vec![s.users.as_path()];
        if let Some(g) = &s.groups {
            paths.push(g.as_path());
        }
        let (hash, texts) = hash_files(&paths)?;
        let watermark_json = json!({"sha256": hash});
        if watermark.and_then(|w| w.get("sha256")).and_then(Value::as_str) == Some(hash.as_str()) {
            // Not a byte changed: nothing to read.
            return Ok(Delta {
                watermark: watermark_json,
                ..Delta::default()
            });
        }
        let mut objects = Vec::new();
        let mut seen: std::collections::HashMap<(Kind, String), usize> = std::collections::HashMap::new();
        let users_text = texts.first().map(String::as_str).unwrap_or_default();
        for (line, row) in rows(&s.users, users_text)? {
            let key = text_of(row.get(&s.key)).ok_or_else(|| {
                SourceError::new(format!(
                    "{} line {line}: no value in the key column '{}'",
                    s.users.display(),
                    s.key
                ))
            })?;
            if let Some(first) = seen.insert((Kind::User, key.clone()), line) {
                return Err(SourceError::new(format!(
                    "{}: the key '{key}' is on lines {first} and {line} (DuplicateSourceEntries)",
                    s.users.display()
                )));
            }
            objects.push(SourceObject {
                kind: Kind::User,
                anchor: key.clone(),
                source_ref: key,
                manager: s.manager_column.as_ref().and_then(|c| text_of(row.get(c))),
                members: Vec::new(),
                disabled: self.disabled(&row),
                attrs: row,
            });
        }
        if let (Some(groups), Some(text)) = (&s.groups, texts.get(1)) {
            for (line, row) in rows(groups, text)? {
                let key = text_of(row.get(&s.group_key)).ok_or_else(|| {
                    SourceError::new(format!(
                        "{} line {line}: no value in the key column '{}'",
                        groups.display(),
                        s.group_key
                    ))
                })?;
                if let Some(first) = seen.insert((Kind::Group, key.clone()), line) {
                    return Err(SourceError::new(format!(
                        "{}: the key '{key}' is on lines {first} and {line} (DuplicateSourceEntries)",
                        groups.display()
                    )));
                }
                let members = self.members(row.get(&s.members_column));
                let mut attrs = row;
                attrs.remove(&s.members_column);
                objects.push(SourceObject {
                    kind: Kind::Group,
                    anchor: key.clone(),
                    source_ref: key,
                    attrs,
                    manager: None,
                    members,
                    disabled: false,
                });
            }
        }
        Ok(Delta {
            full: true,
            objects,
            deleted: Vec::new(),
            present: None,
            watermark: watermark_json,
        })
    }
}
