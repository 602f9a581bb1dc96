//! dateTime values (RFC 7643 §2.3.5: xsd:dateTime, written as RFC 3339).
//!
//! What a client writes is stored in one canonical form: UTC, an upper-case
//! `T` and `Z`, the fraction of a second with as many digits as it needs
//! (none for a whole second, at most nine), e.g. `2024-05-01T10:30:00Z` or
//! `2024-05-01T10:30:00.25Z`. A value that has no such form is refused:
//! an instant before year 1 or after 9999 in UTC (PostgreSQL cannot read
//! year 0, and four digits are what RFC 3339 writes).
//!
//! Filters read their literals more leniently (a date alone, or a
//! date-time without offset, is UTC), and compare instants, never text.
//! [`instant_key`] is the text form whose order is the instants' order.

use time::format_description::well_known::Rfc3339;
use time::macros::time;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Parses RFC 3339 with a `T`, `t` or space between date and time, an
/// offset or `Z`/`z`, and any number of fraction digits.
fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    // The parser of `time` takes any character as separator; RFC 3339
    // allows `T`, `t` and (in its note) a space.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn in_range(t: OffsetDateTime) -> Option<OffsetDateTime> {
    let utc = t.checked_to_offset(UtcOffset::UTC)?;
    (1..=9999).contains(&utc.year()).then_some(utc)
}

/// The canonical form of a client's dateTime, or `None` if it is not one
/// (or names an instant outside years 1–9999 in UTC).
pub fn canonical(s: &str) -> Option<String> {
    let utc = in_range(parse_rfc3339(s)?)?;
    utc.format(&Rfc3339).ok()
}

/// A filter's dateTime literal as an instant: RFC 3339, or a date alone
/// (midnight UTC), or a date-time without offset (UTC).
pub fn filter_instant(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Some(t) = parse_rfc3339(s) {
        return in_range(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if s.len() == 10 {
        let d = Date::parse(s, &date_format).ok()?;
        return in_range(PrimitiveDateTime::new(d, time!(0:00)).assume_utc());
    }
    in_range(parse_rfc3339(&format!("{s}Z"))?)
}

/// A stored value as text that sorts as the instants do: UTC, fixed width,
/// nine fraction digits (`2024-05-01T10:30:00.250000000Z`). Reads whatever
/// RFC 3339 form was stored, including values written before they were
/// normalised; `None` for what is not a dateTime (compared as absent).
pub fn instant_key(s: &str) -> Option<String> {
    let t = parse_rfc3339(s).or_else(|| filter_instant(s))?;
    key_of(t)
}

/// [`instant_key`] of an instant.
pub fn key_of(t: OffsetDateTime) -> Option<String> {
    let u = t.checked_to_offset(UtcOffset::UTC)?;
    if !(0..=9999).contains(&u.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        u.year(),
        u8::from(u.month()),
        u.day(),
        u.hour(),
        u.minute(),
        u.second(),
        u.nanosecond()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let cases: &[(&str, Option<&str>)] = &[
            ("2024-05-01T12:00:00Z", Some("2024-05-01T12:00:00Z")),
            ("2024-05-01t12:00:00z", Some("2024-05-01T12:00:00Z")),
            ("2024-05-01 12:00:00Z", Some("2024-05-01T12:00:00Z")),
            ("2024-05-01T14:30:00+02:00", Some("2024-05-01T12:30:00Z")),
            ("2024-05-01T00:00:00+14:00", Some("2024-04-30T10:00:00Z")),
            ("2024-05-01T23:30:00-23:59", Some("2024-05-02T23:29:00Z")),
            ("2024-05-01T12:00:00.120Z", Some("2024-05-01T12:00:00.12Z")),
            ("2024-05-01T12:00:00.000Z", Some("2024-05-01T12:00:00Z")),
            (
                "2024-05-01T12:00:00.123456789123Z",
                Some("2024-05-01T12:00:00.123456789Z"),
            ),
            ("2016-12-31T23:59:60Z", Some("2016-12-31T23:59:59.999999999Z")),
            ("0001-01-01T00:00:00Z", Some("0001-01-01T00:00:00Z")),
            ("9999-12-31T23:59:59Z", Some("9999-12-31T23:59:59Z")),
            ("0000-06-01T00:00:00Z", None),
            ("0001-01-01T00:30:00+01:00", None),
            ("9999-12-31T23:30:00-01:00", None),
            ("2024-05-01T12:00:00", None),
            ("2024-05-01", None),
            ("2024-05-01X12:00:00Z", None),
            ("2024-02-30T12:00:00Z", None),
            ("2024-05-01T12:00:00+24:00", None),
            ("", None),
            ("é", None),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input).as_deref(), *want, "{input}");
        }
    }

    #[test]
    fn keys_sort_as_instants() {
        let mut values = vec![
            "2020-01-01T12:00:00Z",
            "2020-01-01T00:00:00+14:00",
            "2020-01-01t05:00:00z",
            "2020-01-01T05:00:00.5Z",
            "2020-01-01 05:00:00.25Z",
            "2020-01-02T00:00:00+23:59",
        ];
        values.sort_by_key(|v| instant_key(v));
        assert_eq!(
            values,
            [
                "2020-01-01T00:00:00+14:00",
                "2020-01-02T00:00:00+23:59",
                "2020-01-01t05:00:00z",
                "2020-01-01 05:00:00.25Z",
                "2020-01-01T05:00:00.5Z",
                "2020-01-01T12:00:00Z",
            ]
        );
        assert_eq!(
            instant_key("2020-01-01").as_deref(),
            Some("2020-01-01T00:00:00.000000000Z")
        );
        assert_eq!(
            instant_key("0000-06-01T00:00:00Z").as_deref(),
            Some("0000-06-01T00:00:00.000000000Z")
        );
        assert_eq!(instant_key("not a date"), None);
        assert_eq!(
            filter_instant("2020-01-01T10:00:00").map(key_of),
            Some(instant_key("2020-01-01T10:00:00Z"))
        );
    }
}
