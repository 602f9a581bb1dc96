//! HR files: CSV with a header row, or JSON lines.

use std::path::Path;

/// The column names of a users or groups file (CSV header, or the keys of
/// the first JSON line).
pub fn columns(path: &Path) -> Result<Vec<String>, String> {
    let is_json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "jsonl" | "ndjson" | "json"));
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if is_json {
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("{}");
        let v: serde_json::Value =
            serde_json::from_str(first).map_err(|e| format!("{}: line 1 is not JSON: {e}", path.display()))?;
        return Ok(v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default());
    }
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: no CSV header row: {e}", path.display()))?;
    Ok(headers.iter().map(|h| h.trim().to_string()).collect())
}
