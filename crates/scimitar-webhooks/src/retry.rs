//! When a failed delivery is tried again: pure functions of the attempt
//! number, the time since the first attempt, the receiver's `Retry-After`
//! and a random number.
//!
//! The schedule after the first failed attempt: 5 s, 30 s, 2 min, 10 min,
//! 30 min, 1 h, then every 2 h, each delay ±20 % (jitter, so that receivers
//! coming back are not hit by every sender at once). An event is marked
//! failed (and set aside for replay) when an attempt fails and at least
//! [`GIVE_UP_AFTER`] (24 h) have passed since its first attempt: about 17
//! attempts. A `429` or `503` with `Retry-After` (seconds, or an HTTP date)
//! is waited for instead of the schedule, within [`RETRY_AFTER_MIN`] and
//! [`RETRY_AFTER_MAX`].

use std::time::Duration;

/// The delays after the 1st, 2nd, … failed attempt; the last repeats.
pub const SCHEDULE: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
];

/// How long an event is retried before it is marked failed.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The shortest and longest `Retry-After` honoured.
pub const RETRY_AFTER_MIN: Duration = Duration::from_secs(1);
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(60 * 60);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this long.
    Retry(Duration),
    /// Give up: mark the event failed, keep it for replay.
    Fail,
}

/// The delay after the `failed`-th failed attempt (1-based), without jitter.
pub fn base_delay(failed: u32) -> Duration {
    let i = usize::try_from(failed.saturating_sub(1)).unwrap_or(usize::MAX);
    SCHEDULE
        .get(i)
        .or(SCHEDULE.last())
        .copied()
        .unwrap_or(Duration::from_secs(60))
}

/// `delay` scaled by a factor between 0.8 and 1.2 picked by `random`
/// (`0.0 ..= 1.0`).
pub fn jittered(delay: Duration, random: f64) -> Duration {
    let r = if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        0.5
    };
    delay.mul_f64(0.8 + 0.4 * r)
}

/// What to do after the `failed`-th failed attempt of an event whose first
/// attempt was `since_first` ago. `retry_after`: what the receiver asked
/// for with a 429 or 503.
pub fn next(failed: u32, since_first: Duration, retry_after: Option<Duration>, random: f64) -> Next {
    if since_first >= GIVE_UP_AFTER {
        return Next::Fail;
    }
    match retry_after {
        Some(wait) => Next::Retry(wait.clamp(RETRY_AFTER_MIN, RETRY_AFTER_MAX)),
        None => Next::Retry(jittered(base_delay(failed), random)),
    }
}

/// Reads a `Retry-After` value: a number of seconds, or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) compared with `now` (Unix seconds).
/// A date in the past is zero; anything else unreadable is `None`.
pub fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(v, &format).ok()?.assume_utc();
    let secs = at.unix_timestamp().saturating_sub(now).max(0);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;
    const HOUR: u64 = 60 * MIN;

    #[test]
    fn the_schedule() {
        let table = [
            (1, 5),
            (2, 30),
            (3, 2 * MIN),
            (4, 10 * MIN),
            (5, 30 * MIN),
            (6, HOUR),
            (7, 2 * HOUR),
            (8, 2 * HOUR),
            (30, 2 * HOUR),
            (u32::MAX, 2 * HOUR),
            (0, 5),
        ];
        for (failed, secs) in table {
            assert_eq!(base_delay(failed), Duration::from_secs(secs), "after attempt {failed}");
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let d = Duration::from_secs(100);
        let table = [
            (0.0, 80.0),
            (0.5, 100.0),
            (1.0, 120.0),
            (-3.0, 80.0),
            (7.0, 120.0),
            (f64::NAN, 100.0),
        ];
        for (r, secs) in table {
            assert!((jittered(d, r).as_secs_f64() - secs).abs() < 1e-6, "{r}");
        }
    }

    /// The retries of an event that always fails add up to at least 24
    /// hours, whatever the jitter, and not much more.
    #[test]
    fn an_event_is_retried_for_at_least_a_day() {
        for random in [0.0, 0.5, 1.0] {
            let mut elapsed = Duration::ZERO;
            let mut failed = 0;
            loop {
                failed += 1;
                match next(failed, elapsed, None, random) {
                    Next::Retry(d) => elapsed += d,
                    Next::Fail => break,
                }
            }
            assert!(elapsed >= GIVE_UP_AFTER, "{random}: {elapsed:?}");
            assert!(
                elapsed < GIVE_UP_AFTER + Duration::from_secs(3 * HOUR),
                "{random}: {elapsed:?}"
            );
            assert!((14..=22).contains(&failed), "{random}: {failed} attempts");
        }
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let table = [
            (Some(0), 1),
            (Some(1), 1),
            (Some(42), 42),
            (Some(3600), 3600),
            (Some(86_400), 3600),
        ];
        for (asked, waited) in table {
            assert_eq!(
                next(1, Duration::ZERO, asked.map(Duration::from_secs), 0.5),
                Next::Retry(Duration::from_secs(waited)),
                "{asked:?}"
            );
        }
        assert_eq!(next(3, GIVE_UP_AFTER, Some(Duration::from_secs(5)), 0.5), Next::Fail);
    }

    #[test]
    fn retry_after_values() {
        // 1994-11-06T08:49:37Z
        let now = 784_111_777;
        let table: [(&str, Option<u64>); 8] = [
            ("120", Some(120)),
            (" 7 ", Some(7)),
            ("0", Some(0)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(0)),
            ("Sun, 06 Nov 1994 08:51:37 GMT", Some(120)),
            ("Sat, 05 Nov 1994 08:49:37 GMT", Some(0)),
            ("-5", None),
            ("soon", None),
        ];
        for (value, want) in table {
            assert_eq!(parse_retry_after(value, now), want.map(Duration::from_secs), "{value}");
        }
    }
}
