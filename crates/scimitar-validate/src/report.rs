//! The report of a run and its four forms: a compact table for a terminal
//! (coloured only on a TTY), JSON, JUnit XML for CI systems, and a
//! self-contained HTML page. Pure.

use serde::Serialize;
use serde_json::Value;

use crate::catalogue::Category;
use crate::discovery::Discovery;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One request and its answer, as the report shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<Value>,
    /// `None`: no answer (see `error`).
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The answer's body as text (cut at 4,000 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

/// Why a test failed, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub message: String,
    /// The request the verdict is about, with its answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
    /// What Entra would log (entra-provisioning.md §3.7).
    pub entra_error: String,
    pub entra_reason: String,
    /// What to change on the endpoint.
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    pub id: String,
    pub name: String,
    pub category: Category,
    pub status: Status,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// A note on a pass (the load check's numbers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub requests: usize,
    pub duration_ms: u64,
}

/// The load check's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What the run created and removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cleanup {
    /// `--keep`: nothing was deleted.
    pub kept: bool,
    pub deleted: usize,
    /// What is left behind: `Users/{id} (userName)`, by `--keep` or
    /// because its deletion failed.
    pub left: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub url: String,
    pub dialect: String,
    pub groups: bool,
    /// The prefix of everything the run created.
    pub prefix: String,
    pub started: String,
    pub duration_ms: u64,
    pub discovery: Discovery,
    pub tests: Vec<TestResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
    pub cleanup: Cleanup,
    /// Stopped by Ctrl-C: the tests not run are missing.
    pub interrupted: bool,
    pub summary: Summary,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Report {
    pub fn summarise(&mut self) {
        let n = |s: Status| self.tests.iter().filter(|t| t.status == s).count();
        self.summary = Summary {
            passed: n(Status::Pass),
            failed: n(Status::Fail),
            skipped: n(Status::Skip),
        };
    }

    /// 0 when no test failed; 1 when one did; 130 when interrupted.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            130
        } else if self.summary.failed > 0 {
            1
        } else {
            0
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Characters of an answer's body kept in a report.
pub const BODY_LIMIT: usize = 4000;

pub fn cut(s: &str, limit: usize) -> String {
    if s.chars().count() <= limit {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(limit).collect();
        out.push_str("… (cut)");
        out
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The answer's body, pretty when it is JSON.
fn shown_body(b: &str) -> String {
    match serde_json::from_str::<Value>(b) {
        Ok(v) => pretty(&v),
        Err(_) => b.to_string(),
    }
}

/// The exchange as text: the request line and body, then the answer.
pub fn exchange_text(e: &Exchange) -> (String, String) {
    let mut req = format!("{} {}", e.method, e.url);
    if let Some(b) = &e.request_body {
        req.push('\n');
        req.push_str(&pretty(b));
    }
    let resp = match (e.status, &e.error) {
        (Some(s), _) => {
            let mut r = format!("{s}");
            if let Some(ct) = &e.content_type {
                r.push_str(&format!(" ({ct})"));
            }
            if let Some(b) = e.response_body.as_deref().filter(|b| !b.is_empty()) {
                r.push('\n');
                r.push_str(&shown_body(b));
            }
            r
        }
        (None, Some(err)) => format!("no answer: {err}"),
        (None, None) => "no answer".to_string(),
    };
    (req, resp)
}

/// Text from an endpoint made safe for a terminal: control characters
/// (escape sequences, carriage returns) become `\u{FFFD}`; lines and tabs
/// stay.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// The terminal table: one line per test, then each failure in detail.
/// What the endpoint answered is shown without its control characters.
pub fn terminal(r: &Report, colour: bool) -> String {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    out.push_str(&format!(
        "scimitar validate {} ({}{})\n\n",
        r.url,
        r.dialect,
        if r.groups { ", groups" } else { "" }
    ));
    let width = r.tests.iter().map(|t| t.name.chars().count()).max().unwrap_or(10);
    for t in &r.tests {
        let (label, code) = match t.status {
            Status::Pass => ("PASS", "32"),
            Status::Fail => ("FAIL", "31;1"),
            Status::Skip => ("SKIP", "33"),
        };
        let note = match t.status {
            Status::Fail => t.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default(),
            Status::Skip => t.skipped.clone().unwrap_or_default(),
            Status::Pass => t.note.clone().unwrap_or_default(),
        };
        let note = printable(&cut(note.lines().next().unwrap_or_default(), 100));
        out.push_str(&format!(
            "{}  {:<width$}  {}\n",
            paint(code, label),
            t.name,
            paint("2", &note)
        ));
    }
    let failures: Vec<&TestResult> = r.tests.iter().filter(|t| t.status == Status::Fail).collect();
    for t in &failures {
        let Some(f) = &t.failure else { continue };
        out.push_str(&format!("\n{} {}\n", paint("31;1", "✗"), paint("1", &t.name)));
        out.push_str(&format!("  {}\n", printable(&f.message).replace('\n', "\n  ")));
        if let Some(e) = &f.exchange {
            let (req, resp) = exchange_text(e);
            let (req, resp) = (printable(&req), printable(&resp));
            out.push_str(&format!(
                "  sent:     {}\n",
                cut(&req, 1500).replace('\n', "\n            ")
            ));
            out.push_str(&format!(
                "  answered: {}\n",
                cut(&resp, 1500).replace('\n', "\n            ")
            ));
        }
        out.push_str(&format!("  Entra logs: {} — {}\n", f.entra_error, f.entra_reason));
        out.push_str(&format!("  Fix: {}\n", f.fix));
    }
    out.push('\n');
    if !r.discovery.left_out.is_empty() {
        out.push_str(&format!(
            "Not in /Schemas, so not sent: {}\n",
            r.discovery.left_out.join(", ")
        ));
    }
    if r.cleanup.kept {
        out.push_str(&format!(
            "Kept (--keep), prefix {}: {}\n",
            r.prefix,
            r.cleanup.left.join(", ")
        ));
    } else if !r.cleanup.left.is_empty() {
        out.push_str(&paint(
            "31",
            &format!(
                "Could not delete what the run created: {}\n",
                printable(&r.cleanup.left.join(", "))
            ),
        ));
    }
    if r.interrupted {
        out.push_str(&paint(
            "33",
            "Interrupted: the tests not shown did not run; what the run created was deleted.\n",
        ));
    }
    let s = r.summary;
    let line = format!(
        "{} passed, {} failed, {} skipped in {:.1} s",
        s.passed,
        s.failed,
        s.skipped,
        r.duration_ms as f64 / 1000.0
    );
    out.push_str(&if s.failed > 0 {
        paint("31;1", &line)
    } else {
        paint("32;1", &line)
    });
    out.push('\n');
    out
}

pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 cannot carry.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The failure's details as text (JUnit's body).
fn failure_text(f: &Failure) -> String {
    let mut s = f.message.clone();
    if let Some(e) = &f.exchange {
        let (req, resp) = exchange_text(e);
        s.push_str(&format!("\n\nSent:\n{req}\n\nAnswered:\n{resp}"));
    }
    s.push_str(&format!(
        "\n\nEntra logs: {} ({})\nFix: {}",
        f.entra_error, f.entra_reason, f.fix
    ));
    s
}

/// JUnit XML: one testsuite per category.
pub fn junit(r: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"scimitar validate\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
        r.tests.len(),
        r.summary.failed,
        r.summary.skipped,
        r.duration_ms as f64 / 1000.0
    ));
    for cat in [Category::Validator, Category::Preview, Category::Onboarding] {
        let tests: Vec<&TestResult> = r.tests.iter().filter(|t| t.category == cat).collect();
        if tests.is_empty() {
            continue;
        }
        let failed = tests.iter().filter(|t| t.status == Status::Fail).count();
        let skipped = tests.iter().filter(|t| t.status == Status::Skip).count();
        out.push_str(&format!(
            "  <testsuite name=\"scimitar.validate.{}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\">\n",
            cat.as_str(),
            tests.len()
        ));
        for t in tests {
            out.push_str(&format!(
                "    <testcase classname=\"scimitar.validate.{}\" name=\"{}\" time=\"{:.3}\"",
                cat.as_str(),
                xml_escape(&t.name),
                t.duration_ms as f64 / 1000.0
            ));
            match (t.status, &t.failure) {
                (Status::Fail, Some(f)) => {
                    out.push_str(&format!(
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                        xml_escape(&f.message),
                        xml_escape(&f.entra_error),
                        xml_escape(&failure_text(f))
                    ));
                }
                (Status::Skip, _) => {
                    out.push_str(&format!(
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        xml_escape(t.skipped.as_deref().unwrap_or_default())
                    ));
                }
                _ => out.push_str("/>\n"),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1f24}\
h1{font-size:1.4rem;margin:0 0 .3rem}.meta{color:#57606a;margin:0 0 1rem}\
.sum{display:flex;gap:.6rem;margin:1rem 0}.sum span{padding:.3rem .7rem;border-radius:.3rem;font-weight:600}\
.p{background:#dafbe1;color:#116329}.f{background:#ffebe9;color:#a40e26}.s{background:#fff8c5;color:#7d4e00}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}\
th{background:#f6f8fa}td.st{font-weight:700;width:4rem}tr.fail td.st{color:#a40e26}tr.pass td.st{color:#116329}tr.skip td.st{color:#7d4e00}\
.note{color:#57606a}details{margin:.3rem 0}pre{background:#f6f8fa;padding:.6rem;overflow:auto;max-height:22rem;font-size:13px;white-space:pre-wrap}\
code{font-size:13px}.k{font-weight:600}section.failure{border-left:4px solid #cf222e;padding:.2rem 1rem;margin:1.2rem 0}";

/// A self-contained HTML page (no script, no external resource).
pub fn html(r: &Report) -> String {
    let e = xml_escape;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str(&format!("<title>SCIM validation of {}</title>", e(&r.url)));
    out.push_str(&format!("<style>{CSS}</style></head><body>\n"));
    out.push_str(&format!(
        "<h1>Is this SCIM endpoint ready for Microsoft Entra ID?</h1>\n<p class=\"meta\"><code>{}</code> · dialect {} · {} · {} · prefix <code>{}</code></p>\n",
        e(&r.url),
        e(&r.dialect),
        if r.groups { "users and groups" } else { "users" },
        e(&r.started),
        e(&r.prefix)
    ));
    let s = r.summary;
    out.push_str(&format!(
        "<div class=\"sum\"><span class=\"p\">{} passed</span><span class=\"f\">{} failed</span><span class=\"s\">{} skipped</span></div>\n",
        s.passed, s.failed, s.skipped
    ));
    if r.interrupted {
        out.push_str("<p class=\"f\">Interrupted: the tests not listed did not run.</p>\n");
    }
    out.push_str("<table><thead><tr><th>Result</th><th>Test</th><th>Details</th></tr></thead><tbody>\n");
    for t in &r.tests {
        let note = match t.status {
            Status::Fail => t.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default(),
            Status::Skip => t.skipped.clone().unwrap_or_default(),
            Status::Pass => t.note.clone().unwrap_or_default(),
        };
        let name = if t.status == Status::Fail {
            format!("<a href=\"#{}\">{}</a>", e(&t.id), e(&t.name))
        } else {
            e(&t.name)
        };
        out.push_str(&format!(
            "<tr class=\"{}\"><td class=\"st\">{}</td><td>{name}</td><td class=\"note\">{}</td></tr>\n",
            t.status.as_str(),
            t.status.as_str().to_uppercase(),
            e(&note)
        ));
    }
    out.push_str("</tbody></table>\n");
    for t in r.tests.iter().filter(|t| t.status == Status::Fail) {
        let Some(f) = &t.failure else { continue };
        out.push_str(&format!(
            "<section class=\"failure\" id=\"{}\"><h2>{}</h2><p>{}</p>\n",
            e(&t.id),
            e(&t.name),
            e(&f.message)
        ));
        if let Some(x) = &f.exchange {
            let (req, resp) = exchange_text(x);
            out.push_str(&format!(
                "<p class=\"k\">Request sent</p><pre>{}</pre><p class=\"k\">Answer received</p><pre>{}</pre>\n",
                e(&req),
                e(&resp)
            ));
        }
        out.push_str(&format!(
            "<p><span class=\"k\">Entra would log:</span> <code>{}</code> — {}</p><p><span class=\"k\">What to change:</span> {}</p></section>\n",
            e(&f.entra_error),
            e(&f.entra_reason),
            e(&f.fix)
        ));
    }
    let d = &r.discovery;
    out.push_str("<h2>Discovery</h2><ul>");
    out.push_str(&format!(
        "<li>/ServiceProviderConfig: {}</li>",
        if d.service_provider_config {
            "served"
        } else {
            "not served"
        }
    ));
    out.push_str(&format!(
        "<li>/ResourceTypes: {}</li>",
        e(&if d.resource_types.is_empty() {
            "none".to_string()
        } else {
            d.resource_types.join(", ")
        })
    ));
    out.push_str(&format!(
        "<li>/Schemas: {}</li>",
        e(&match (&d.schemas, &d.schemas_problem) {
            (Some(s), _) => s.join(", "),
            (None, Some(p)) => format!("not usable ({p}); Entra's default attributes assumed"),
            (None, None) => "not read".to_string(),
        })
    ));
    if !d.left_out.is_empty() {
        out.push_str(&format!(
            "<li>Not declared, so not sent: {}</li>",
            e(&d.left_out.join(", "))
        ));
    }
    out.push_str("</ul>\n");
    if !r.cleanup.left.is_empty() {
        out.push_str(&format!(
            "<p>{}: {}</p>\n",
            if r.cleanup.kept {
                "Kept (--keep)"
            } else {
                "Could not delete"
            },
            e(&r.cleanup.left.join(", "))
        ));
    }
    out.push_str(&format!(
        "<p class=\"meta\">Generated by <code>scimitar validate</code> in {:.1} s. What Entra sends and expects: Scimitar's docs/validate.md.</p>\n</body></html>\n",
        r.duration_ms as f64 / 1000.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report {
            url: "http://h/scim".into(),
            dialect: "entra-compliant".into(),
            groups: false,
            prefix: "scv-1".into(),
            started: "2026-01-01T00:00:00Z".into(),
            duration_ms: 1200,
            discovery: Discovery::default(),
            tests: vec![
                TestResult {
                    id: "a".into(),
                    name: "Test <A> & co".into(),
                    category: Category::Validator,
                    status: Status::Fail,
                    skipped: None,
                    note: None,
                    failure: Some(Failure {
                        message: "expected 409, got 201".into(),
                        exchange: Some(Exchange {
                            method: "POST".into(),
                            url: "http://h/scim/Users".into(),
                            request_body: Some(serde_json::json!({"userName": "x"})),
                            status: Some(201),
                            content_type: Some("application/scim+json".into()),
                            response_body: Some("{\"id\":\"1\"}".into()),
                            error: None,
                            elapsed_ms: 3,
                        }),
                        entra_error: "DuplicateTargetEntries".into(),
                        entra_reason: "two".into(),
                        fix: "refuse it".into(),
                    }),
                    requests: 2,
                    duration_ms: 5,
                },
                TestResult {
                    id: "b".into(),
                    name: "B".into(),
                    category: Category::Preview,
                    status: Status::Skip,
                    skipped: Some("no groups".into()),
                    note: None,
                    failure: None,
                    requests: 0,
                    duration_ms: 0,
                },
            ],
            load: None,
            cleanup: Cleanup::default(),
            interrupted: false,
            summary: Summary::default(),
        };
        r.summarise();
        r
    }

    #[test]
    fn every_form_carries_the_failure_and_escapes() {
        let r = sample();
        assert_eq!(r.exit_code(), 1);
        let t = terminal(&r, false);
        assert!(t.contains("FAIL  Test <A> & co"), "{t}");
        assert!(
            t.contains("DuplicateTargetEntries") && t.contains("refuse it") && t.contains("POST http://h/scim/Users")
        );
        assert!(!t.contains("\x1b["), "no colour without a TTY");
        assert!(terminal(&r, true).contains("\x1b[31;1mFAIL"));
        let j = junit(&r);
        assert!(j.contains("name=\"Test &lt;A&gt; &amp; co\""), "{j}");
        assert!(j.contains("<failure message=\"expected 409, got 201\" type=\"DuplicateTargetEntries\">"));
        assert!(j.contains("<skipped message=\"no groups\"/>"));
        let h = html(&r);
        assert!(h.contains("Test &lt;A&gt; &amp; co") && !h.contains("<A>"));
        assert!(h.contains("<pre>POST http://h/scim/Users"));
        assert!(!h.contains("<script") && !h.contains("src=\"http"));
        let v = r.to_json();
        assert_eq!(v["summary"]["failed"], 1);
        assert_eq!(v["tests"][0]["failure"]["entra_error"], "DuplicateTargetEntries");
    }
}
