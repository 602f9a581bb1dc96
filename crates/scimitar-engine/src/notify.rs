//! Notification email, as Entra sends it (entra-provisioning.md §3.5): one
//! message to the job's `notification_email` when the job enters
//! quarantine, another when the reason changes (the deletion threshold is
//! one such reason), and one when a job is disabled after four weeks of
//! quarantine. Plain text and HTML, with the job, the reason, the
//! recommended action and a link to the console.
//!
//! Whether the administrator was told is kept with the quarantine
//! (`notified`), so a message is sent once per reason whichever node runs
//! the job, and a refused message (an SMTP server that is down or refuses
//! the sender) is tried again after the next cycle, its error recorded
//! (`notify_error`) for `sync jobs` to show.

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use scimitar_store::{Store, TenantId};
use serde_json::Value;

use crate::job::JobSpec;

/// An SMTP server to send through.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The server's public URL: links in messages point at its console.
    public_url: String,
}

impl Mailer {
    /// `smtp_url`: `smtp://host:port` (plain, e.g. a local relay),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host` (TLS); `from`: the sender address. The
    /// error never repeats the URL (it may hold a password).
    pub fn new(smtp_url: &str, from: &str, public_url: &str) -> Result<Mailer, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| {
                format!(
                    "the SMTP URL is not valid ({e}); e.g. smtp://127.0.0.1:2525 or smtps://user:pass@mail.example.com"
                )
            })?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("the sender address '{from}' is not valid: {e}"))?;
        Ok(Mailer {
            transport,
            from,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }

    async fn send(&self, to: &str, notice: &Notice) -> Result<(), String> {
        let to = to
            .parse::<Mailbox>()
            .map_err(|e| format!("the notification address '{to}' is not valid: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&notice.subject)
            .multipart(MultiPart::alternative_plain_html(
                notice.text.clone(),
                notice.html.clone(),
            ))
            .map_err(|e| format!("the message could not be built: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("the SMTP server did not accept the message: {e}"))
    }
}

/// A message: subject, plain text, HTML.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The message for a job's state: `quarantine` or `disabled` as recorded in
/// its last cycle.
pub fn notice(tenant: &str, job: &str, last_cycle: &Value, disabled: bool, public_url: &str) -> Notice {
    let q = last_cycle.get("quarantine").unwrap_or(&Value::Null);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let reason = s(q, "reason");
    // The job's Provisioning page in the console.
    let segment = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let link = format!(
        "{public_url}/console/t/{}/applications/{}",
        segment(tenant),
        segment(job)
    );
    let (subject, headline, action) = if disabled {
        (
            format!("Provisioning job '{job}' of tenant '{tenant}' was disabled"),
            format!(
                "The provisioning job '{job}' has been in quarantine ({reason}) since {} without a successful retry, and was disabled after 28 days.",
                s(q, "since")
            ),
            "Fix the cause, then restart the job (scimitar sync restart).".to_string(),
        )
    } else {
        (
            format!("Provisioning job '{job}' of tenant '{tenant}' is in quarantine: {reason}"),
            format!("The provisioning job '{job}' of tenant '{tenant}' is in quarantine ({reason})."),
            s(q, "recommendation"),
        )
    };
    let error = s(last_cycle, "error");
    let mut facts: Vec<(&str, String)> = vec![
        ("Tenant", tenant.to_string()),
        ("Job", job.to_string()),
        ("Reason", reason.clone()),
        ("Error", error),
        ("Quarantined since", s(q, "since")),
    ];
    if !disabled && let Some(next) = q.get("next_retry").and_then(Value::as_str) {
        facts.push(("Next retry", next.to_string()));
    }
    let mut text = format!("{headline}\n\n");
    for (k, v) in &facts {
        text += &format!("{k}: {v}\n");
    }
    text += &format!("\nWhat to do: {action}\n\nConsole: {link}\n");
    let mut html = format!("<p>{}</p>\n<table>\n", escape(&headline));
    for (k, v) in &facts {
        html += &format!("<tr><th align=\"left\">{}</th><td>{}</td></tr>\n", escape(k), escape(v));
    }
    html += &format!(
        "</table>\n<p><strong>What to do:</strong> {}</p>\n<p><a href=\"{}\">Open the console</a></p>\n",
        escape(&action),
        escape(&link)
    );
    Notice { subject, text, html }
}

/// Tells the job's `notification_email` what an administrator must know
/// about its state, if it has not been told yet: a quarantine (once per
/// reason), a disable (once). Without a notification address, nothing; with
/// one but no SMTP server configured, the reason is recorded.
pub async fn after_cycle(
    store: &dyn Store,
    tenant: TenantId,
    tenant_name: &str,
    spec: &JobSpec,
    mailer: Option<&Mailer>,
) {
    let Some(to) = spec.settings.notification_email.as_deref() else {
        return;
    };
    let Ok(Some(record)) = store.job(tenant, &spec.name).await else {
        return;
    };
    let Some(mut last) = record.last_cycle.clone() else {
        return;
    };
    let (disabled, key) = match record.status.as_str() {
        "quarantined" => (false, "/quarantine"),
        "disabled" => (true, "/disabled"),
        _ => return,
    };
    let reason = last
        .pointer("/quarantine/reason")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let told = last.pointer(&format!("{key}/notified")).and_then(Value::as_str) == Some(reason.as_str());
    if told {
        return;
    }
    let outcome = match mailer {
        None => Err("no SMTP server is configured (--smtp-url / SCIMITAR_SMTP_URL)".to_string()),
        Some(m) => {
            let n = notice(tenant_name, &spec.name, &last, disabled, &m.public_url);
            m.send(to, &n).await
        }
    };
    let Some(state) = last.pointer_mut(key).and_then(Value::as_object_mut) else {
        return;
    };
    match outcome {
        Ok(()) => {
            state.insert("notified".into(), Value::String(reason));
            state.remove("notify_error");
            tracing::info!(job = %spec.name, to, "sent the notification email");
        }
        Err(e) => {
            tracing::warn!(job = %spec.name, error = %e, "could not send the notification email");
            state.insert("notify_error".into(), Value::String(e));
        }
    }
    if let Err(e) = store.set_last_cycle(tenant, &spec.name, &last).await {
        tracing::warn!(job = %spec.name, error = %e, "could not record the notification");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_say_the_job_the_reason_what_to_do_and_where() {
        let last = json!({"error": "the target refused the Secret Token (401) <b>",
            "quarantine": {"reason": "EncounteredQuarantineException", "since": "2030-01-01T00:00:00.000Z",
                "next_retry": "2030-01-01T06:00:00.000Z", "recommendation": "Generate a new token."}});
        let n = notice("acme", "hr", &last, false, "https://scim.example.com");
        assert_eq!(
            n.subject,
            "Provisioning job 'hr' of tenant 'acme' is in quarantine: EncounteredQuarantineException"
        );
        for want in [
            "Error: the target refused the Secret Token (401) <b>",
            "Next retry: 2030-01-01T06:00:00.000Z",
            "What to do: Generate a new token.",
            "Console: https://scim.example.com/console/t/acme/applications/hr",
        ] {
            assert!(n.text.contains(want), "{want} in {}", n.text);
        }
        assert!(n.html.contains("(401) &lt;b&gt;"), "escaped: {}", n.html);
        assert!(!n.html.contains("<b>"), "{}", n.html);
        let d = notice("acme", "hr", &last, true, "https://scim.example.com");
        assert!(d.subject.ends_with("was disabled"), "{}", d.subject);
        assert!(d.text.contains("restart the job"), "{}", d.text);
        assert!(!d.text.contains("Next retry"), "{}", d.text);
    }
}
