//! `scimitar validate`: Entra's SCIM Validator against any SCIM endpoint
//! (`scimitar-validate`), with its reports on the terminal, in JSON,
//! JUnit and HTML files, and its exit code: 0 when no test failed, 1 when
//! one did, 2 when the endpoint could not be validated at all (a wrong
//! URL or token, not SCIM, no answer), 130 when interrupted (Ctrl-C; what
//! the run created is deleted first).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use scimitar_validate::preflight::PreflightKind;
use scimitar_validate::{Options, report};
use serde_json::json;

#[derive(Args)]
pub struct ValidateArgs {
    /// The Tenant URL: the SCIM base URL under which /Users and /Groups are.
    #[arg(long)]
    url: String,
    /// The Secret Token, sent as `Authorization: Bearer …`. Prefer the environment variable, which keeps it out of the shell history.
    #[arg(long, env = "SCIMITAR_VALIDATE_TOKEN", hide_env_values = true)]
    token: String,
    /// The PATCH shapes to send: Entra with `?aadOptscim062020` (entra-compliant), Entra's default (entra-legacy), or plain RFC 7644 (rfc).
    #[arg(long, default_value = "entra-compliant", value_parser = ["entra-compliant", "entra-legacy", "rfc"])]
    dialect: String,
    /// Run the Group tests too (as the SCIM Validator's "Enable Group Tests").
    #[arg(long)]
    groups: bool,
    /// Only these tests: ids (e.g. `create-user`) or parts of their names.
    #[arg(long, num_args = 1..)]
    only: Vec<String>,
    /// Write a JUnit XML report to this file (for CI systems).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Leave the users and groups the run creates (their names start with the run's prefix).
    #[arg(long)]
    keep: bool,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Seconds the 25-requests-per-second load check runs (0 skips it).
    #[arg(long, default_value_t = 10.0)]
    load_seconds: f64,
}

fn preflight_exit(kind: PreflightKind) -> i32 {
    if kind == PreflightKind::Interrupted { 130 } else { 2 }
}

/// Runs the validation and returns the exit code.
pub async fn validate_cmd(args: ValidateArgs, as_json: bool) -> i32 {
    let bad = |message: String| {
        if as_json {
            out!("{}", json!({"error": {"kind": "bad-input", "message": message}}));
        } else {
            eprintln!("error: {message}");
        }
        2
    };
    let Ok(timeout) = Duration::try_from_secs_f64(args.timeout) else {
        return bad(format!("--timeout {} is not a number of seconds", args.timeout));
    };
    if timeout.is_zero() || !args.load_seconds.is_finite() || args.load_seconds < 0.0 {
        return bad("--timeout must be above 0 and --load-seconds 0 or more".into());
    }
    let mut opts = Options::new(&args.url, &args.token);
    opts.dialect = scimitar_validate::dialect(&args.dialect).unwrap_or(opts.dialect);
    opts.groups = args.groups;
    opts.only = args.only;
    opts.keep = args.keep;
    opts.timeout = timeout;
    opts.load_seconds = args.load_seconds;
    if !as_json && std::io::stderr().is_terminal() {
        eprintln!("Validating {} ({}) …", args.url, args.dialect);
    }
    // Ctrl-C stops the tests and deletes what the run created; a second
    // one (an endpoint that stopped answering makes the cleanup slow)
    // stops that too, leaving the rest behind.
    let cancel = async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("Interrupted: deleting what the run created (Ctrl-C again to stop and leave it) …");
        tokio::spawn(async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!(
                "error: interrupted again: what the run created is left behind (its names start with the prefix scv…)"
            );
            std::process::exit(130);
        });
    };
    let r = match scimitar_validate::validate(&opts, cancel).await {
        Ok(r) => r,
        Err(e) => {
            if as_json {
                out!("{}", json!({"error": e}));
            } else {
                eprintln!("error: {}", e.message);
            }
            return preflight_exit(e.kind);
        }
    };
    for (path, text) in [
        (&args.junit, args.junit.as_ref().map(|_| report::junit(&r))),
        (&args.html, args.html.as_ref().map(|_| report::html(&r))),
    ] {
        if let (Some(path), Some(text)) = (path, text)
            && let Err(e) = std::fs::write(path, text)
        {
            eprintln!("error: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    if as_json {
        out!("{}", serde_json::to_string_pretty(&r.to_json()).unwrap_or_default());
    } else {
        out_raw!("{}", report::terminal(&r, std::io::stdout().is_terminal()));
    }
    r.exit_code()
}

/// The validator of the console's "Validate this tenant" (registered on
/// the `App` of `serve`): users and groups, Entra's compliant dialect,
/// the load check shortened to `load_seconds` so that the page answers
/// within about 20 seconds.
pub struct ConsoleValidator {
    pub load_seconds: f64,
}

impl scimitar_app::validate::TenantValidator for ConsoleValidator {
    fn validate<'a>(
        &'a self,
        url: &'a str,
        token: &'a str,
    ) -> scimitar_app::jobs::JobFuture<'a, scimitar_app::validate::ValidationReport> {
        Box::pin(async move {
            let mut opts = Options::new(url, token);
            opts.groups = true;
            opts.load_seconds = self.load_seconds;
            match scimitar_validate::validate(&opts, std::future::pending()).await {
                Ok(r) => console_report(&r),
                Err(e) => scimitar_app::validate::ValidationReport {
                    url: url.to_string(),
                    error: Some(e.message),
                    ..Default::default()
                },
            }
        })
    }
}

fn console_report(r: &report::Report) -> scimitar_app::validate::ValidationReport {
    use scimitar_app::validate::{ValidationReport, ValidationRow};
    let rows = r
        .tests
        .iter()
        .map(|t| {
            let mut row = ValidationRow {
                name: t.name.clone(),
                status: t.status.as_str().to_string(),
                detail: t.skipped.clone().or_else(|| t.note.clone()).unwrap_or_default(),
                ..Default::default()
            };
            if let Some(f) = &t.failure {
                row.detail = f.message.clone();
                if let Some(x) = &f.exchange {
                    (row.request, row.response) = report::exchange_text(x);
                }
                row.entra = format!("{} — {}", f.entra_error, f.entra_reason);
                row.fix = f.fix.clone();
            }
            row
        })
        .collect();
    ValidationReport {
        url: r.url.clone(),
        error: None,
        passed: r.summary.passed,
        failed: r.summary.failed,
        skipped: r.summary.skipped,
        rows,
        load: r.load.as_ref().map(|l| {
            format!(
                "{} requests in {:.1} s ({:.1}/s), p99 {:.1} ms",
                l.requests, l.seconds, l.per_second, l.p99_ms
            )
        }),
        seconds: format!("{:.1}", r.duration_ms as f64 / 1000.0),
    }
}
