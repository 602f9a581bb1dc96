//! The filters of the provisioning activity log (`scimitar activity` and
//! the admin API's `…/activity`): checked here, once for both, so that a
//! mistake is refused with the valid forms instead of returning nothing.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::ScimError;

/// Every action an activity entry can have.
pub const ACTIONS: &[&str] = &[
    "create",
    "update",
    "update-members",
    "add-member",
    "remove-member",
    "disable",
    "enable",
    "delete",
];

/// Every outcome an activity entry can have.
pub const OUTCOMES: &[&str] = &["success", "failure"];

/// The stored form of times: RFC 3339 UTC with milliseconds, which
/// compares as text.
const STORED: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// A time filter (`since`, `until`) in the stored form: a duration before
/// `now` (`30m`, `1h`, `7d`; also `s` and `w`) or an RFC 3339 timestamp.
pub fn parse_time(name: &str, value: &str, now: OffsetDateTime) -> Result<String, ScimError> {
    let invalid = || {
        ScimError::invalid_value(format!(
            "{name} '{value}' is neither a duration (a number and s, m, h, d or w, e.g. 30m, 1h, 7d) \
             nor an RFC 3339 timestamp (e.g. 2026-11-26T00:00:00Z)"
        ))
    };
    let v = value.trim();
    let t = if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        t
    } else {
        let unit_at = v.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
        let (n, unit) = v.split_at(unit_at);
        let n: i64 = n.parse().map_err(|_| invalid())?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(invalid()),
        };
        n.checked_mul(seconds)
            .and_then(|s| now.checked_sub(Duration::seconds(s)))
            .ok_or_else(invalid)?
    };
    t.to_offset(UtcOffset::UTC).format(STORED).map_err(|_| invalid())
}

/// An action filter: one of [`ACTIONS`].
pub fn parse_action(value: &str) -> Result<String, ScimError> {
    one_of("action", value, ACTIONS)
}

/// An outcome filter: one of [`OUTCOMES`].
pub fn parse_outcome(value: &str) -> Result<String, ScimError> {
    one_of("outcome", value, OUTCOMES)
}

fn one_of(name: &str, value: &str, valid: &[&str]) -> Result<String, ScimError> {
    let v = value.trim().to_ascii_lowercase();
    if valid.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(ScimError::invalid_value(format!(
            "{name} '{value}' is not one of: {}",
            valid.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;

    #[test]
    fn times_are_durations_before_now_or_timestamps() {
        let now = OffsetDateTime::parse("2026-12-01T12:00:00Z", &Rfc3339).unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            ("30m", Some("2026-12-01T11:30:00.000Z")),
            ("1h", Some("2026-12-01T11:00:00.000Z")),
            ("7d", Some("2026-11-24T12:00:00.000Z")),
            ("2w", Some("2026-11-17T12:00:00.000Z")),
            ("90s", Some("2026-12-01T11:58:30.000Z")),
            (" 1h ", Some("2026-12-01T11:00:00.000Z")),
            ("2026-11-26T00:00:00Z", Some("2026-11-26T00:00:00.000Z")),
            ("2026-11-26T01:00:00+01:00", Some("2026-11-26T00:00:00.000Z")),
            ("2026-11-26T00:00:00.5Z", Some("2026-11-26T00:00:00.500Z")),
            ("garbage", None),
            ("", None),
            ("1", None),
            ("h", None),
            ("1y", None),
            ("-1h", None),
            ("1.5h", None),
            ("2026-11-26", None),
            ("99999999999999999d", None),
        ];
        for (value, want) in cases {
            match (parse_time("since", value, now), want) {
                (Ok(got), Some(want)) => assert_eq!(got, *want, "{value}"),
                (Err(e), None) => {
                    assert_eq!(e.status, 400, "{value}");
                    assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{value}");
                    assert!(e.detail.contains("7d") && e.detail.contains("RFC 3339"), "{}", e.detail);
                }
                (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn actions_and_outcomes_are_checked() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("action", "create", Some("create")),
            ("action", "Remove-Member", Some("remove-member")),
            ("action", "update-members", Some("update-members")),
            ("action", "patch", None),
            ("action", "", None),
            ("outcome", "success", Some("success")),
            ("outcome", "FAILURE", Some("failure")),
            ("outcome", "bogus", None),
        ];
        for (name, value, want) in cases {
            let got = if *name == "action" {
                parse_action(value)
            } else {
                parse_outcome(value)
            };
            match (got, want) {
                (Ok(got), Some(want)) => assert_eq!(got, *want, "{value}"),
                (Err(e), None) => {
                    assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{value}");
                    let valid = if *name == "action" { ACTIONS } else { OUTCOMES };
                    for v in valid {
                        assert!(e.detail.contains(v), "{v} missing from {}", e.detail);
                    }
                }
                (got, want) => panic!("{name} {value}: got {got:?}, want {want:?}"),
            }
        }
    }
}
