//! Quarantine, as Entra's provisioning service does it (entra-provisioning.md
//! §3.5): a job whose calls fail as a whole — the target refuses the
//! Secret Token, or does not speak SCIM where it should — stops running
//! every interval and is retried at +6 h, +12 h and +24 h after the first
//! failure, then every 24 h; after 28 days it is disabled. Any successful
//! cycle lifts the quarantine. A cycle held by the deletion threshold
//! quarantines the job too, but is not retried: it waits for an
//! administrator (Allow deletes, or a restart).
//!
//! The state lives in the job's last cycle (`last_cycle.quarantine`) and
//! status (`quarantined`, `disabled`); the rules here are pure functions of
//! it and of the time, so that tests run weeks of them in microseconds.

use std::time::Duration;

use scimitar_store::{JobRecord, Store, TenantId};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cycle::{CycleError, Failure};

/// Why a job is quarantined, under Microsoft Graph's `quarantineReason`
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Invalid credentials, or a target that does not answer as SCIM
    /// requires (`EncounteredQuarantineException`).
    Exception,
    /// A cycle exceeded the deletion threshold (`TooManyDeletes`).
    TooManyDeletes,
    /// Too many objects fail (`EncounteredEscrowProportionThreshold`).
    EscrowThreshold,
}

impl Reason {
    pub fn from_code(code: &str) -> Option<Reason> {
        [Reason::Exception, Reason::TooManyDeletes, Reason::EscrowThreshold]
            .into_iter()
            .find(|r| r.code() == code)
    }

    pub fn code(self) -> &'static str {
        match self {
            Reason::Exception => "EncounteredQuarantineException",
            Reason::TooManyDeletes => "TooManyDeletes",
            Reason::EscrowThreshold => "EncounteredEscrowProportionThreshold",
        }
    }

    /// What an administrator should do about it.
    pub fn recommendation(self) -> &'static str {
        match self {
            Reason::Exception => {
                "Check the Tenant URL and generate a new Secret Token in the application, update the job, and run Test Connection; the job is retried automatically, and any successful cycle ends the quarantine."
            }
            Reason::EscrowThreshold => {
                "Most objects fail: look at the provisioning log's failures (the most frequent error says why: a mapping, a required attribute, a uniqueness conflict), fix it, then restart the job; it is also retried automatically."
            }
            Reason::TooManyDeletes => {
                "Look at the staged deletions in the provisioning log. If they are intended, allow them (scimitar sync allow-deletes); if not, fix the source or the scope and restart the job."
            }
        }
    }
}

/// How long a quarantined job is retried before it is disabled.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(28 * 24 * 3600);

/// The retry after the `retries`-th failed retry: +6 h, +12 h, +24 h after
/// the first failure, then every 24 h.
pub fn retry_offset(retries: u64) -> Duration {
    const HOUR: u64 = 3600;
    Duration::from_secs(match retries {
        0 => 6 * HOUR,
        1 => 12 * HOUR,
        n => 24 * HOUR * (n - 1),
    })
}

/// Which failures quarantine a job, and why.
pub fn reason_of(error: &CycleError) -> Option<Reason> {
    match error {
        CycleError::Connection {
            failure: Failure::Credentials | Failure::NonCompliant,
            ..
        } => Some(Reason::Exception),
        CycleError::DeletionThreshold { .. } => Some(Reason::TooManyDeletes),
        _ => None,
    }
}

/// A quarantined job's state, from its last cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub reason: String,
    pub since: OffsetDateTime,
    pub retries: u64,
    pub previous_status: String,
}

impl State {
    pub fn of(record: &JobRecord) -> Option<State> {
        if record.status != "quarantined" {
            return None;
        }
        let q = record.last_cycle.as_ref()?.get("quarantine")?;
        Some(State {
            reason: q.get("reason")?.as_str()?.to_string(),
            since: q
                .get("since")
                .and_then(Value::as_str)
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            retries: q.get("retries").and_then(Value::as_u64).unwrap_or(0),
            previous_status: q
                .get("previous_status")
                .and_then(Value::as_str)
                .unwrap_or("on")
                .to_string(),
        })
    }

    /// When the job is retried: never automatically for `TooManyDeletes`.
    pub fn next_retry(&self) -> Option<OffsetDateTime> {
        (self.reason != Reason::TooManyDeletes.code()).then(|| self.since + retry_offset(self.retries))
    }

    /// Whether the job has been quarantined long enough to be disabled.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.reason != Reason::TooManyDeletes.code() && now >= self.since + GIVE_UP_AFTER
    }
}

/// The job's quarantine after a failure for `reason` at `now`: a new one
/// (since now, no retries, remembering the status it had), or the same one
/// a retry later. Also says whether the reason is new (the administrator is
/// told again).
pub fn after_failure(record: &JobRecord, reason: Reason, now: OffsetDateTime) -> (State, bool) {
    match State::of(record) {
        Some(q) if q.reason == reason.code() => (
            State {
                retries: q.retries + 1,
                ..q
            },
            false,
        ),
        Some(q) => (
            State {
                reason: reason.code().into(),
                since: now,
                retries: 0,
                previous_status: q.previous_status,
            },
            true,
        ),
        None => (
            State {
                reason: reason.code().into(),
                since: now,
                retries: 0,
                previous_status: if record.status == "disabled" {
                    "on".into()
                } else {
                    record.status.clone()
                },
            },
            true,
        ),
    }
}

/// A failure that quarantines a job.
pub struct Failed<'a> {
    /// `initial` or `incremental`: the cycle that failed.
    pub kind: &'a str,
    pub reason: Reason,
    /// What went wrong, as the administrator reads it.
    pub error: &'a str,
    /// More facts for `last_cycle.quarantine` (an object), or null.
    pub extra: Value,
    pub now: OffsetDateTime,
}

/// Puts the job in quarantine after a failure (or keeps it there a retry
/// later), recording the failure as its last cycle. Returns the state and
/// whether the reason is new; `None` if the job is gone.
pub async fn enter(
    store: &dyn Store,
    tenant: TenantId,
    job: &str,
    failed: Failed<'_>,
) -> Result<Option<(State, bool)>, scimitar_store::StoreError> {
    let Failed {
        kind,
        reason,
        error,
        extra,
        now,
    } = failed;
    let Some(record) = store.job(tenant, job).await? else {
        return Ok(None);
    };
    let (state, new_reason) = after_failure(&record, reason, now);
    // Whom the administrator was last told about (see `notify`), kept
    // across retries so that the same reason is not mailed twice.
    let notified = record
        .last_cycle
        .as_ref()
        .and_then(|l| l.pointer("/quarantine/notified"))
        .filter(|_| record.status == "quarantined")
        .cloned();
    let mut quarantine = json!({
        "reason": state.reason,
        "since": scimitar_store::format_utc(state.since),
        "retries": state.retries,
        "previous_status": state.previous_status,
        "recommendation": reason.recommendation(),
    });
    if let Some(q) = quarantine.as_object_mut() {
        if let Value::Object(extra) = extra {
            q.extend(extra);
        }
        if let Some(n) = notified {
            q.insert("notified".into(), n);
        }
    }
    if let Some(next) = state.next_retry()
        && let Some(q) = quarantine.as_object_mut()
    {
        q.insert("next_retry".into(), Value::String(scimitar_store::format_utc(next)));
    }
    let last = json!({
        "job": job,
        "kind": kind,
        "error": error,
        "finished": scimitar_store::format_utc(now),
        "quarantine": quarantine,
    });
    store.set_last_cycle(tenant, job, &last).await?;
    store.set_job_status(tenant, job, "quarantined").await?;
    Ok(Some((state, new_reason)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    fn record(status: &str, last: Option<Value>) -> JobRecord {
        JobRecord {
            name: "hr".into(),
            config: Value::Null,
            status: status.into(),
            watermark: None,
            last_cycle: last,
            created: String::new(),
            updated: String::new(),
        }
    }

    #[test]
    fn retries_follow_the_first_failure_then_daily() {
        let since = at("2030-01-01T00:00:00Z");
        let table = [
            (0, "2030-01-01T06:00:00Z"),
            (1, "2030-01-01T12:00:00Z"),
            (2, "2030-01-02T00:00:00Z"),
            (3, "2030-01-03T00:00:00Z"),
            (4, "2030-01-04T00:00:00Z"),
            (28, "2030-01-28T00:00:00Z"),
        ];
        for (retries, want) in table {
            let q = State {
                reason: Reason::Exception.code().into(),
                since,
                retries,
                previous_status: "on".into(),
            };
            assert_eq!(q.next_retry(), Some(at(want)), "after {retries} retries");
        }
        let q = State {
            reason: Reason::Exception.code().into(),
            since,
            retries: 9,
            previous_status: "on".into(),
        };
        assert!(!q.expired(at("2030-01-28T23:59:59Z")));
        assert!(q.expired(at("2030-01-29T00:00:00Z")), "28 days after the first failure");
        let deletes = State {
            reason: Reason::TooManyDeletes.code().into(),
            ..q
        };
        assert_eq!(deletes.next_retry(), None, "waits for an administrator");
        assert!(!deletes.expired(at("2031-01-01T00:00:00Z")));
    }

    #[test]
    fn a_failure_starts_or_continues_a_quarantine() {
        let t0 = at("2030-01-01T00:00:00Z");
        let t1 = at("2030-01-01T06:00:01Z");
        // A job that was on: a new quarantine, the reason is news.
        let (q, news) = after_failure(&record("on", None), Reason::Exception, t0);
        assert_eq!(
            (q.since, q.retries, q.previous_status.as_str(), news),
            (t0, 0, "on", true)
        );
        // Quarantined for the same reason: a retry later, not news.
        let quarantined = record(
            "quarantined",
            Some(json!({"quarantine": {"reason": "EncounteredQuarantineException",
                "since": "2030-01-01T00:00:00Z", "retries": 0, "previous_status": "on"}})),
        );
        let (q, news) = after_failure(&quarantined, Reason::Exception, t1);
        assert_eq!((q.since, q.retries, news), (t0, 1, false));
        // Another reason: a new quarantine, news again; the status before
        // the first quarantine is kept.
        let (q, news) = after_failure(&quarantined, Reason::TooManyDeletes, t1);
        assert_eq!(
            (q.since, q.retries, q.previous_status.as_str(), news),
            (t1, 0, "on", true)
        );
        // A job run by the CLI only (off) returns to off.
        let (q, _) = after_failure(&record("off", None), Reason::TooManyDeletes, t0);
        assert_eq!(q.previous_status, "off");
    }
}
