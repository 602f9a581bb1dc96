//! Dates: Entra's text form, CDate's parser, VBA's DateAdd/DateDiff, AD
//! ticks, and .NET custom format strings for FormatDateTime.
//!
//! Every DateTime value is UTC. The Entra service runs in UTC, so where
//! .NET would convert to "local time" we convert to UTC, and where it
//! would print the local offset we print `+00:00`.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// .NET's DateTime range: years 1 to 9999.
pub(crate) fn check_range(dt: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if (1..=9999).contains(&dt.year()) {
        Ok(dt)
    } else {
        Err(format!("the date is outside years 1 to 9999 (year {})", dt.year()))
    }
}

/// `M/d/yyyy h:mm:ss tt` in the invariant culture, e.g. `3/16/2020 7:00:00 AM`.
pub fn format_entra(dt: OffsetDateTime) -> String {
    let dt = dt.checked_to_offset(UtcOffset::UTC).unwrap_or(dt);
    let (h12, ampm) = twelve_hour(dt.hour());
    format!(
        "{}/{}/{:04} {}:{:02}:{:02} {}",
        u8::from(dt.month()),
        dt.day(),
        dt.year(),
        h12,
        dt.minute(),
        dt.second(),
        ampm
    )
}

fn twelve_hour(hour: u8) -> (u8, &'static str) {
    let ampm = if hour < 12 { "AM" } else { "PM" };
    let h = hour % 12;
    (if h == 0 { 12 } else { h }, ampm)
}

/// A cursor over ASCII date text.
struct Scan<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn new(s: &'a str) -> Self {
        Scan { s: s.as_bytes(), i: 0 }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_ci(&mut self, word: &str) -> bool {
        let end = self.i + word.len();
        match self.s.get(self.i..end) {
            Some(w) if w.eq_ignore_ascii_case(word.as_bytes()) => {
                self.i = end;
                true
            }
            _ => false,
        }
    }
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn spaces(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
        self.i > start
    }
    /// `min..=max` ASCII digits as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut v: u32 = 0;
        while self.i - start < max
            && let Some(b) = self.peek().filter(u8::is_ascii_digit)
        {
            v = v.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
            self.i += 1;
        }
        if self.i - start < min {
            self.i = start;
            return None;
        }
        Some(v)
    }
    /// Fraction digits (1 to 9) as nanoseconds.
    fn fraction(&mut self) -> Option<u32> {
        let start = self.i;
        let v = self.digits(1, 9)?;
        let n = self.i - start;
        Some(v * 10u32.pow(9 - n as u32))
    }
    /// `Z`, `±HH:mm`, `±HHmm` or `±HH`.
    fn zone(&mut self) -> Option<Option<UtcOffset>> {
        if self.eat(b'Z') || self.eat(b'z') {
            return Some(Some(UtcOffset::UTC));
        }
        let sign: i8 = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return Some(None);
        };
        let h = self.digits(2, 2)?;
        let m = if self.eat(b':') {
            self.digits(2, 2)?
        } else {
            self.digits(2, 2).unwrap_or(0)
        };
        if h > 14 || m > 59 {
            return None;
        }
        let off = UtcOffset::from_hms(sign * h as i8, sign * m as i8, 0).ok()?;
        Some(Some(off))
    }
}

fn build(
    year: u32,
    month: u32,
    day: u32,
    hms: (u32, u32, u32, u32),
    zone: Option<UtcOffset>,
) -> Option<OffsetDateTime> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let (h, m, s, ns) = hms;
    let time = Time::from_hms_nano(u8::try_from(h).ok()?, u8::try_from(m).ok()?, u8::try_from(s).ok()?, ns).ok()?;
    // No offset: the value is taken as UTC, as the Entra service (which
    // runs in UTC) reads it.
    let dt = PrimitiveDateTime::new(date, time)
        .assume_offset(zone.unwrap_or(UtcOffset::UTC))
        .checked_to_offset(UtcOffset::UTC)?;
    check_range(dt).ok()
}

/// CDate's parser: the forms Entra's examples and sources use.
/// - ISO 8601: `yyyy-MM-dd`, optionally `T` or a space and
///   `HH:mm[:ss[.fffffff]]`, optionally `Z`/`±HH:mm`/`±HHmm`/`±HH`, which
///   may follow the date directly (`2020-03-16-07:00`, Workday's form);
/// - `M/d/yyyy[ h:mm[:ss[.f]][ AM|PM]]` (Entra's own output, `Now()`),
///   and `yyyy/M/d[ …]`, each optionally followed by a zone.
///
/// Leading and trailing whitespace is ignored. No offset means UTC.
pub fn parse_date(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    parse_iso(text).or_else(|| parse_slashed(text))
}

fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    let mut sc = Scan::new(text);
    let year = sc.digits(4, 4)?;
    if !sc.eat(b'-') {
        return None;
    }
    let month = sc.digits(1, 2)?;
    if !sc.eat(b'-') {
        return None;
    }
    let day = sc.digits(1, 2)?;
    let mut hms = (0, 0, 0, 0);
    let save = sc.i;
    if sc.eat(b'T') || sc.eat(b't') || sc.eat(b' ') {
        match time_of_day(&mut sc, false) {
            Some(t) => hms = t,
            None => sc.i = save,
        }
    }
    sc.spaces();
    let zone = sc.zone()?;
    sc.spaces();
    if !sc.at_end() {
        return None;
    }
    build(year, month, day, hms, zone)
}

fn parse_slashed(text: &str) -> Option<OffsetDateTime> {
    let mut sc = Scan::new(text);
    let first_start = sc.i;
    let first = sc.digits(1, 4)?;
    let year_first = sc.i - first_start == 4;
    if !sc.eat(b'/') {
        return None;
    }
    let second = sc.digits(1, 2)?;
    if !sc.eat(b'/') {
        return None;
    }
    let (year, month, day) = if year_first {
        (first, second, sc.digits(1, 2)?)
    } else {
        (sc.digits(4, 4)?, first, second)
    };
    let mut hms = (0, 0, 0, 0);
    let save = sc.i;
    if sc.spaces() || sc.eat(b'T') {
        match time_of_day(&mut sc, true) {
            Some(t) => hms = t,
            None => sc.i = save,
        }
    }
    sc.spaces();
    let zone = sc.zone()?;
    sc.spaces();
    if !sc.at_end() {
        return None;
    }
    build(year, month, day, hms, zone)
}

/// `H:mm[:ss[.f]]`, and with `ampm` an optional ` AM`/` PM`.
fn time_of_day(sc: &mut Scan<'_>, ampm: bool) -> Option<(u32, u32, u32, u32)> {
    let mut h = sc.digits(1, 2)?;
    if !sc.eat(b':') {
        return None;
    }
    let m = sc.digits(2, 2)?;
    let (mut s, mut ns) = (0, 0);
    if sc.eat(b':') {
        s = sc.digits(2, 2)?;
        if sc.eat(b'.') || sc.eat(b',') {
            ns = sc.fraction()?;
        }
    }
    if ampm {
        let save = sc.i;
        sc.spaces();
        if sc.eat_ci("AM") {
            if !(1..=12).contains(&h) {
                return None;
            }
            h %= 12;
        } else if sc.eat_ci("PM") {
            if !(1..=12).contains(&h) {
                return None;
            }
            h = h % 12 + 12;
        } else {
            sc.i = save;
        }
    }
    Some((h, m, s, ns))
}

/// Adds `n` months, keeping the day unless the month is shorter (then its
/// last day), as .NET's AddMonths does.
fn add_months(dt: OffsetDateTime, n: i64) -> Option<OffsetDateTime> {
    let total = i64::from(dt.year())
        .checked_mul(12)?
        .checked_add(i64::from(u8::from(dt.month())) - 1)?
        .checked_add(n)?;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = dt.day().min(month.length(year));
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(dt.replace_date(date))
}

fn add_seconds(dt: OffsetDateTime, n: i64, unit: i64) -> Option<OffsetDateTime> {
    dt.checked_add(time::Duration::seconds(n.checked_mul(unit)?))
}

/// VBA's DateAdd: `yyyy` years, `q` quarters, `m` months, `y`/`d`/`w` days,
/// `ww` weeks, `h` hours, `n` minutes, `s` seconds (case-insensitive).
pub fn date_add(interval: &str, n: i64, dt: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let result = match interval.to_ascii_lowercase().as_str() {
        "yyyy" => n.checked_mul(12).and_then(|m| add_months(dt, m)),
        "q" => n.checked_mul(3).and_then(|m| add_months(dt, m)),
        "m" => add_months(dt, n),
        "y" | "d" | "w" => add_seconds(dt, n, 86_400),
        "ww" => add_seconds(dt, n, 7 * 86_400),
        "h" => add_seconds(dt, n, 3_600),
        "n" => add_seconds(dt, n, 60),
        "s" => add_seconds(dt, n, 1),
        _ => return Err(unknown_interval(interval)),
    };
    match result {
        Some(dt) => check_range(dt),
        None => Err("the result is outside years 1 to 9999".into()),
    }
}

fn unknown_interval(interval: &str) -> String {
    format!("unknown interval {interval:?}; expected yyyy, q, m, y, d, w, ww, h, n or s")
}

/// VBA's DateDiff: how many interval boundaries lie between `d1` and `d2`
/// (positive when `d2` is later). Calendar units count boundaries, not
/// elapsed time: `yyyy` and `m` compare the calendar fields, `d` the dates,
/// `ww` counts Sundays, `h`/`n`/`s` count hour/minute/second marks. `w` is
/// whole weeks of elapsed days, as in VBA.
pub fn date_diff(interval: &str, d1: OffsetDateTime, d2: OffsetDateTime) -> Result<i64, String> {
    let months = |d: OffsetDateTime| i64::from(d.year()) * 12 + i64::from(u8::from(d.month()));
    let days = |d: OffsetDateTime| i64::from(d.to_julian_day());
    let sunday = |d: OffsetDateTime| days(d) - i64::from(d.weekday().number_days_from_sunday());
    let secs = |d: OffsetDateTime| d.unix_timestamp();
    Ok(match interval.to_ascii_lowercase().as_str() {
        "yyyy" => i64::from(d2.year()) - i64::from(d1.year()),
        "q" => {
            let q = |d: OffsetDateTime| i64::from(d.year()) * 4 + i64::from((u8::from(d.month()) - 1) / 3);
            q(d2) - q(d1)
        }
        "m" => months(d2) - months(d1),
        "y" | "d" => days(d2) - days(d1),
        "w" => (days(d2) - days(d1)) / 7,
        "ww" => (sunday(d2) - sunday(d1)) / 7,
        "h" => secs(d2).div_euclid(3_600) - secs(d1).div_euclid(3_600),
        "n" => secs(d2).div_euclid(60) - secs(d1).div_euclid(60),
        "s" => secs(d2) - secs(d1),
        _ => return Err(unknown_interval(interval)),
    })
}

/// Seconds from 1601-01-01 (the AD/Windows file time epoch) to 1970-01-01.
const EPOCH_1601: i128 = 11_644_473_600;

/// AD's "large integer" time: 100 ns ticks since 1601-01-01 UTC.
pub fn to_ticks(dt: OffsetDateTime) -> Result<i64, String> {
    let ticks = (dt.unix_timestamp_nanos() + EPOCH_1601 * 1_000_000_000).div_euclid(100);
    i64::try_from(ticks).map_err(|_| "the date is out of range for AD ticks".to_string())
}

pub fn from_ticks(ticks: i64) -> Result<OffsetDateTime, String> {
    if ticks < 0 {
        return Err(format!("{ticks} is negative; AD times count from 1601-01-01"));
    }
    let nanos = i128::from(ticks) * 100 - EPOCH_1601 * 1_000_000_000;
    let dt =
        OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| format!("{ticks} is outside years 1 to 9999"))?;
    check_range(dt)
}

// ---- .NET custom date and time format strings ----------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// A specifier letter and how many times it repeats (`yyyy` = ('y', 4)).
    Field(char, usize),
}

const SPECIFIERS: &str = "dfFghHKmMstyz";

/// The invariant culture's standard formats (a one-character format string
/// is a standard format in .NET, not a custom one).
fn standard_format(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "MM/dd/yyyy",
        'D' => "dddd, dd MMMM yyyy",
        'f' => "dddd, dd MMMM yyyy HH:mm",
        'F' | 'U' => "dddd, dd MMMM yyyy HH:mm:ss",
        'g' => "MM/dd/yyyy HH:mm",
        'G' => "MM/dd/yyyy HH:mm:ss",
        'm' | 'M' => "MMMM dd",
        'o' | 'O' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
        'r' | 'R' => "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
        's' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
        't' => "HH:mm",
        'T' => "HH:mm:ss",
        'u' => "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
        'y' | 'Y' => "yyyy MMMM",
        _ => return None,
    })
}

/// Splits a .NET format string into literals and specifiers: quoted text
/// (`'…'` or `"…"`) and `\x` are literal, `%x` is a lone specifier, and any
/// letter that is not a specifier (e.g. `Z` in `yyyyMMddHHmmss.fZ`) is a
/// literal.
fn tokenize(format: &str) -> Result<Vec<Tok>, String> {
    let mut chars = format.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return match standard_format(c) {
            Some(f) => tokenize(f),
            None => Err(format!("{format:?} is not a standard date format")),
        };
    }
    if format.is_empty() {
        return Err("the format is empty".into());
    }
    let mut out = Vec::new();
    let mut it = format.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' | '"' => loop {
                match it.next() {
                    None => return Err(format!("unterminated quote in format {format:?}")),
                    Some(q) if q == c => break,
                    Some('\\') => match it.next() {
                        Some(e) => out.push(Tok::Lit(e)),
                        None => return Err(format!("a format cannot end with '\\': {format:?}")),
                    },
                    Some(l) => out.push(Tok::Lit(l)),
                }
            },
            '\\' => match it.next() {
                Some(e) => out.push(Tok::Lit(e)),
                None => return Err(format!("a format cannot end with '\\': {format:?}")),
            },
            '%' => match it.next() {
                Some(s) if SPECIFIERS.contains(s) => out.push(Tok::Field(s, 1)),
                Some(l) => out.push(Tok::Lit(l)),
                None => return Err(format!("a format cannot end with '%': {format:?}")),
            },
            c if SPECIFIERS.contains(c) => {
                let mut n = 1;
                while it.peek() == Some(&c) {
                    it.next();
                    n += 1;
                }
                if matches!(c, 'f' | 'F') && n > 7 {
                    return Err(format!("at most 7 '{c}' in a format: {format:?}"));
                }
                out.push(Tok::Field(c, n));
            }
            c => out.push(Tok::Lit(c)),
        }
    }
    Ok(out)
}

/// How a parsed time relates to UTC (.NET's DateTimeKind).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Unspecified,
    Utc,
    Local,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn month_name(m: Month) -> &'static str {
    MONTHS.get(usize::from(u8::from(m)) - 1).copied().unwrap_or("")
}

fn day_name(d: Weekday) -> &'static str {
    DAYS.get(usize::from(d.number_days_from_sunday()))
        .copied()
        .unwrap_or("")
}

fn abbr(name: &str) -> &str {
    name.get(..3).unwrap_or(name)
}

fn format_tokens(toks: &[Tok], dt: OffsetDateTime, kind: Kind) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let fraction = format!("{:07}", dt.nanosecond() / 100);
    for t in toks {
        // Writing to a String cannot fail.
        let _ = match *t {
            Tok::Lit(c) => {
                out.push(c);
                Ok(())
            }
            Tok::Field('d', 1) => write!(out, "{}", dt.day()),
            Tok::Field('d', 2) => write!(out, "{:02}", dt.day()),
            Tok::Field('d', 3) => write!(out, "{}", abbr(day_name(dt.weekday()))),
            Tok::Field('d', _) => write!(out, "{}", day_name(dt.weekday())),
            Tok::Field('f', n) => write!(out, "{}", fraction.get(..n).unwrap_or(&fraction)),
            Tok::Field('F', n) => {
                let digits = fraction.get(..n).unwrap_or(&fraction).trim_end_matches('0');
                if digits.is_empty() {
                    // .NET drops the decimal point before an empty `F`.
                    if out.ends_with('.') {
                        out.pop();
                    }
                } else {
                    out.push_str(digits);
                }
                Ok(())
            }
            Tok::Field('g', _) => write!(out, "A.D."),
            Tok::Field('h', n) => {
                let (h, _) = twelve_hour(dt.hour());
                if n == 1 {
                    write!(out, "{h}")
                } else {
                    write!(out, "{h:02}")
                }
            }
            Tok::Field('H', 1) => write!(out, "{}", dt.hour()),
            Tok::Field('H', _) => write!(out, "{:02}", dt.hour()),
            Tok::Field('K', _) => write!(
                out,
                "{}",
                match kind {
                    Kind::Unspecified => "",
                    Kind::Utc => "Z",
                    Kind::Local => "+00:00",
                }
            ),
            Tok::Field('m', 1) => write!(out, "{}", dt.minute()),
            Tok::Field('m', _) => write!(out, "{:02}", dt.minute()),
            Tok::Field('M', 1) => write!(out, "{}", u8::from(dt.month())),
            Tok::Field('M', 2) => write!(out, "{:02}", u8::from(dt.month())),
            Tok::Field('M', 3) => write!(out, "{}", abbr(month_name(dt.month()))),
            Tok::Field('M', _) => write!(out, "{}", month_name(dt.month())),
            Tok::Field('s', 1) => write!(out, "{}", dt.second()),
            Tok::Field('s', _) => write!(out, "{:02}", dt.second()),
            Tok::Field('t', n) => {
                let (_, ampm) = twelve_hour(dt.hour());
                write!(out, "{}", if n == 1 { ampm.get(..1).unwrap_or(ampm) } else { ampm })
            }
            Tok::Field('y', 1) => write!(out, "{}", dt.year() % 100),
            Tok::Field('y', 2) => write!(out, "{:02}", dt.year() % 100),
            Tok::Field('y', n) => write!(out, "{:0width$}", dt.year(), width = n),
            Tok::Field('z', 1) => write!(out, "+0"),
            Tok::Field('z', 2) => write!(out, "+00"),
            Tok::Field('z', _) => write!(out, "+00:00"),
            Tok::Field(c, _) => {
                out.push(c);
                Ok(())
            }
        };
    }
    out
}

/// What ParseExact collected.
#[derive(Default)]
struct Parts {
    year: Option<u32>,
    month: Option<u32>,
    day: Option<u32>,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    pm: Option<bool>,
    zone: Option<UtcOffset>,
    utc_z: bool,
}

/// A cursor over the (Unicode) input of ParseExact.
struct Input<'a> {
    s: &'a str,
    i: usize,
}

impl Input<'_> {
    fn rest(&self) -> &str {
        self.s.get(self.i..).unwrap_or("")
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let mut sc = Scan::new(self.rest());
        let v = sc.digits(min, max)?;
        self.i += sc.i;
        Some(v)
    }
    fn word(&mut self, options: &[&str]) -> Option<usize> {
        let rest = self.rest();
        // Longest first, so "June" is not read as "Jun".
        let mut best: Option<(usize, usize)> = None;
        for (k, w) in options.iter().enumerate() {
            if rest.get(..w.len()).is_some_and(|p| p.eq_ignore_ascii_case(w))
                && best.is_none_or(|(_, len)| w.len() > len)
            {
                best = Some((k, w.len()));
            }
        }
        let (k, len) = best?;
        self.i += len;
        Some(k)
    }
    fn offset(&mut self, n: usize) -> Option<UtcOffset> {
        let sign: i8 = match self.peek() {
            Some('+') => 1,
            Some('-') => -1,
            Some('Z' | 'z') => {
                self.i += 1;
                return Some(UtcOffset::UTC);
            }
            _ => return None,
        };
        self.i += 1;
        let h = self.digits(if n == 1 { 1 } else { 2 }, 2)?;
        let m = if n >= 3 {
            if self.peek() != Some(':') {
                return None;
            }
            self.i += 1;
            self.digits(2, 2)?
        } else {
            0
        };
        if h > 14 || m > 59 {
            return None;
        }
        UtcOffset::from_hms(sign * h as i8, sign * m as i8, 0).ok()
    }
}

fn parse_tokens(toks: &[Tok], text: &str) -> Option<Parts> {
    let mut p = Parts::default();
    let mut inp = Input { s: text, i: 0 };
    let month_abbrs: Vec<&str> = MONTHS.iter().map(|m| abbr(m)).collect();
    let day_abbrs: Vec<&str> = DAYS.iter().map(|d| abbr(d)).collect();
    for t in toks {
        match *t {
            Tok::Lit(c) if c.is_whitespace() => {
                // A space in the format matches a run of whitespace.
                let before = inp.i;
                while let Some(w) = inp.peek().filter(|w| w.is_whitespace()) {
                    inp.i += w.len_utf8();
                }
                if inp.i == before {
                    return None;
                }
            }
            Tok::Lit(c) => {
                if inp.peek() != Some(c) {
                    return None;
                }
                inp.i += c.len_utf8();
            }
            Tok::Field('d', n) if n <= 2 => p.day = Some(inp.digits(n, 2)?),
            Tok::Field('d', 3) => {
                inp.word(&day_abbrs)?;
            }
            Tok::Field('d', _) => {
                inp.word(&DAYS)?;
            }
            Tok::Field('M', n) if n <= 2 => p.month = Some(inp.digits(n, 2)?),
            Tok::Field('M', 3) => p.month = Some(inp.word(&month_abbrs)? as u32 + 1),
            Tok::Field('M', _) => p.month = Some(inp.word(&MONTHS)? as u32 + 1),
            Tok::Field('y', 1) => p.year = Some(two_digit_year(inp.digits(1, 2)?)),
            Tok::Field('y', 2) => p.year = Some(two_digit_year(inp.digits(2, 2)?)),
            Tok::Field('y', n) => p.year = Some(inp.digits(n.min(4), n.max(4))?),
            Tok::Field('h' | 'H', n) => p.hour = inp.digits(n.min(2), 2)?,
            Tok::Field('m', n) => p.minute = inp.digits(n.min(2), 2)?,
            Tok::Field('s', n) => p.second = inp.digits(n.min(2), 2)?,
            Tok::Field(c @ ('f' | 'F'), n) => {
                let start = inp.i;
                let v = inp.digits(if c == 'f' { n } else { 0 }, n)?;
                let len = inp.i - start;
                p.nanos = v * 10u32.pow(9 - len as u32);
            }
            Tok::Field('t', n) => {
                let options: &[&str] = if n == 1 { &["A", "P"] } else { &["AM", "PM"] };
                p.pm = Some(inp.word(options)? == 1);
            }
            Tok::Field('z', n) => p.zone = Some(inp.offset(n)?),
            Tok::Field('K', _) => {
                if matches!(inp.peek(), Some('Z' | 'z')) {
                    inp.i += 1;
                    p.zone = Some(UtcOffset::UTC);
                    p.utc_z = true;
                } else if matches!(inp.peek(), Some('+' | '-')) {
                    p.zone = Some(inp.offset(3)?);
                }
            }
            Tok::Field('g', _) => {
                inp.word(&["A.D.", "AD"]);
            }
            Tok::Field(_, _) => return None,
        }
    }
    if !inp.rest().is_empty() {
        return None;
    }
    Some(p)
}

/// .NET's two-digit year window (TwoDigitYearMax = 2049).
fn two_digit_year(yy: u32) -> u32 {
    if yy <= 49 { 2000 + yy } else { 1900 + yy }
}

/// The DateTimeStyles FormatDateTime honours. Leading and trailing white
/// space are always allowed (the default), and a space in the format
/// matches any run of white space.
#[derive(Default)]
struct Styles {
    adjust_to_universal: bool,
    assume_universal: bool,
    assume_local: bool,
    no_current_date_default: bool,
}

fn parse_styles(styles: Option<&str>) -> Result<Styles, String> {
    let mut s = Styles::default();
    let Some(text) = styles else {
        return Ok(s);
    };
    for name in text.split([',', '|']).map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "none" | "allowleadingwhite" | "allowtrailingwhite" | "allowinnerwhite" | "allowwhitespaces"
            | "roundtripkind" => {}
            "adjusttouniversal" => s.adjust_to_universal = true,
            "assumeuniversal" => s.assume_universal = true,
            "assumelocal" => s.assume_local = true,
            "nocurrentdatedefault" => s.no_current_date_default = true,
            _ => return Err(format!("unknown DateTimeStyles value {name:?}")),
        }
    }
    Ok(s)
}

/// FormatDateTime: reads `source` with the .NET custom (or one-letter
/// standard) format `input` and writes it with `output`. A parsed offset
/// converts the time to UTC (RoundtripKind on a UTC server); missing date
/// parts default to `now`'s date (all missing) or to 1 (some missing).
pub fn format_date_time(
    source: &str,
    styles: Option<&str>,
    input: &str,
    output: &str,
    now: OffsetDateTime,
) -> Result<String, String> {
    let styles = parse_styles(styles)?;
    let in_toks = tokenize(input)?;
    let out_toks = tokenize(output)?;
    let parts = parse_tokens(&in_toks, source.trim())
        .ok_or_else(|| format!("{source:?} does not match the format {input:?}"))?;
    let now = now.checked_to_offset(UtcOffset::UTC).unwrap_or(now);
    let no_date = parts.year.is_none() && parts.month.is_none() && parts.day.is_none();
    let (year, month, day) = if no_date && !styles.no_current_date_default {
        (
            now.year() as u32,
            u32::from(u8::from(now.month())),
            u32::from(now.day()),
        )
    } else {
        let year = parts.year.unwrap_or(if styles.no_current_date_default {
            1
        } else {
            now.year() as u32
        });
        (year, parts.month.unwrap_or(1), parts.day.unwrap_or(1))
    };
    let mut hour = parts.hour;
    if let Some(pm) = parts.pm {
        if !(1..=12).contains(&hour) {
            return Err(format!("hour {hour} does not go with AM/PM in {source:?}"));
        }
        hour = if pm { hour % 12 + 12 } else { hour % 12 };
    }
    let dt = build(
        year,
        month,
        day,
        (hour, parts.minute, parts.second, parts.nanos),
        parts.zone,
    )
    .ok_or_else(|| format!("{source:?} is not a valid date and time"))?;
    let mut kind = match (parts.zone, parts.utc_z) {
        (None, _) => Kind::Unspecified,
        (Some(_), true) => Kind::Utc,
        (Some(_), false) => Kind::Local,
    };
    if kind == Kind::Unspecified {
        if styles.assume_universal {
            kind = Kind::Utc;
        } else if styles.assume_local {
            kind = Kind::Local;
        }
    }
    if styles.adjust_to_universal && kind == Kind::Local {
        kind = Kind::Utc;
    }
    Ok(format_tokens(&out_toks, dt, kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn entra_text_form() {
        assert_eq!(format_entra(datetime!(2020-03-16 07:00 UTC)), "3/16/2020 7:00:00 AM");
        assert_eq!(format_entra(datetime!(2021-06-29 16:00 UTC)), "6/29/2021 4:00:00 PM");
        assert_eq!(
            format_entra(datetime!(2021-06-29 00:05:09 UTC)),
            "6/29/2021 12:05:09 AM"
        );
        assert_eq!(format_entra(datetime!(2021-06-29 12:00 UTC)), "6/29/2021 12:00:00 PM");
        assert_eq!(format_entra(datetime!(0999-01-02 03:04:05 UTC)), "1/2/0999 3:04:05 AM");
    }

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("2020-03-16-07:00", datetime!(2020-03-16 07:00 UTC)),
            ("2021-06-30+08:00", datetime!(2021-06-29 16:00 UTC)),
            ("2009-06-15T01:45:30-07:00", datetime!(2009-06-15 08:45:30 UTC)),
            ("8/25/2021 5:41:18 PM", datetime!(2021-08-25 17:41:18 UTC)),
            ("2021-08-24", datetime!(2021-08-24 00:00 UTC)),
            ("2012-01-01T23:00:00Z", datetime!(2012-01-01 23:00 UTC)),
            ("2020-12-31 23:59:59-08:00", datetime!(2021-01-01 07:59:59 UTC)),
            ("  2020-12-31T01:02:03.5+0100 ", datetime!(2020-12-31 00:02:03.5 UTC)),
            ("2021/8/25 17:41", datetime!(2021-08-25 17:41 UTC)),
            ("12/31/2020", datetime!(2020-12-31 00:00 UTC)),
            ("1/1/2012 12:00:00 AM", datetime!(2012-01-01 00:00 UTC)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_date(text), Some(want), "{text}");
        }
        for bad in [
            "",
            "tomorrow",
            "2021-13-01",
            "2021-02-30",
            "2021-08-24T25:00",
            "8/25/2021 13:00 PM",
            "2021-08-24+15:00",
            "2021-08-24 junk",
            "0000-01-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn months_clamp_like_dotnet() {
        let jan31 = datetime!(2021-01-31 10:00 UTC);
        assert_eq!(date_add("m", 1, jan31), Ok(datetime!(2021-02-28 10:00 UTC)));
        assert_eq!(date_add("M", 13, jan31), Ok(datetime!(2022-02-28 10:00 UTC)));
        assert_eq!(date_add("m", -2, jan31), Ok(datetime!(2020-11-30 10:00 UTC)));
        assert_eq!(
            date_add("yyyy", 1, datetime!(2020-02-29 00:00 UTC)),
            Ok(datetime!(2021-02-28 00:00 UTC))
        );
        assert_eq!(
            date_add("q", 1, datetime!(2020-11-30 00:00 UTC)),
            Ok(datetime!(2021-02-28 00:00 UTC))
        );
        assert!(date_add("yyyy", 8000, jan31).is_err());
        assert!(date_add("s", i64::MAX, jan31).is_err());
        assert!(date_add("x", 1, jan31).is_err());
    }

    #[test]
    fn diff_counts_boundaries() {
        let a = datetime!(2021-08-24 23:59:59 UTC);
        let b = datetime!(2021-08-25 00:00:01 UTC);
        assert_eq!(date_diff("d", a, b), Ok(1));
        assert_eq!(date_diff("h", a, b), Ok(1));
        assert_eq!(date_diff("n", a, b), Ok(1));
        assert_eq!(date_diff("s", a, b), Ok(2));
        assert_eq!(
            date_diff("yyyy", datetime!(2020-12-31 00:00 UTC), datetime!(2021-01-01 00:00 UTC)),
            Ok(1)
        );
        // Saturday to Sunday crosses a week boundary; Sunday to Saturday does not.
        let sat = datetime!(2021-08-28 00:00 UTC);
        let sun = datetime!(2021-08-29 00:00 UTC);
        let next_sat = datetime!(2021-09-04 00:00 UTC);
        assert_eq!(date_diff("ww", sat, sun), Ok(1));
        assert_eq!(date_diff("ww", sun, next_sat), Ok(0));
        assert_eq!(date_diff("w", sun, next_sat), Ok(0));
        assert_eq!(date_diff("ww", sun, sat), Ok(-1));
        assert_eq!(
            date_diff("q", datetime!(2021-03-31 00:00 UTC), datetime!(2021-04-01 00:00 UTC)),
            Ok(1)
        );
    }

    #[test]
    fn ticks_round_trip() {
        let dt = datetime!(2012-01-01 23:00 UTC);
        assert_eq!(to_ticks(dt), Ok(129_699_324_000_000_000));
        assert_eq!(from_ticks(129_699_324_000_000_000), Ok(dt));
        assert_eq!(from_ticks(0), Ok(datetime!(1601-01-01 00:00 UTC)));
        assert!(from_ticks(-1).is_err());
        assert!(from_ticks(i64::MAX).is_err());
    }

    #[test]
    fn dotnet_formats() {
        let now = datetime!(2024-05-06 07:08:09 UTC);
        let f = |src: &str, styles: Option<&str>, i: &str, o: &str| format_date_time(src, styles, i, o, now);
        assert_eq!(
            f("20150123105347.1Z", None, "yyyyMMddHHmmss.fZ", "yyyy-MM-dd").as_deref(),
            Ok("2015-01-23")
        );
        assert_eq!(
            f("2020-12-31-08:00", None, "yyyy-MM-ddzzz", "yyyy-MM-dd").as_deref(),
            Ok("2020-12-31")
        );
        assert_eq!(
            f("2020-12-31-08:00", None, "yyyy-MM-ddzzz", "yyyy-MM-ddTHH:mm:sszzz").as_deref(),
            Ok("2020-12-31T08:00:00+00:00")
        );
        assert_eq!(
            f(
                "12/31/2020 11:30:00 PM",
                None,
                "M/d/yyyy hh:mm:ss tt",
                "yyyy-MM-dd HH:mm"
            )
            .as_deref(),
            Ok("2020-12-31 23:30")
        );
        assert_eq!(
            f("31 Dec 2020", None, "dd MMM yyyy", "dddd, MMMM d, yy").as_deref(),
            Ok("Thursday, December 31, 20")
        );
        assert_eq!(
            f("14:05", None, "HH:mm", "yyyy-MM-dd h:mm tt").as_deref(),
            Ok("2024-05-06 2:05 PM")
        );
        assert_eq!(f("2021", None, "yyyy", "MM/dd").as_deref(), Ok("01/01"));
        assert_eq!(
            f("2021-01-02", None, "yyyy-MM-dd", "'Year' yyyy \\d\\a\\y d \"at\" H").as_deref(),
            Ok("Year 2021 day 2 at 0")
        );
        assert_eq!(
            f("2021-01-02T03:04:05Z", None, "yyyy-MM-ddTHH:mm:ssK", "o").as_deref(),
            Ok("2021-01-02T03:04:05.0000000Z")
        );
        assert_eq!(
            f("2021-01-02 03:04:05", None, "yyyy-MM-dd HH:mm:ss", "o").as_deref(),
            Ok("2021-01-02T03:04:05.0000000")
        );
        assert_eq!(
            f(
                "2021-01-02 03:04:05",
                Some("AssumeUniversal"),
                "yyyy-MM-dd HH:mm:ss",
                "'at' s'|'K"
            )
            .as_deref(),
            Ok("at 5|Z")
        );
        assert_eq!(
            f(
                "2021-01-02 03:04:05.120",
                None,
                "yyyy-MM-dd HH:mm:ss.fff",
                "ss.FFF|ss.ff"
            )
            .as_deref(),
            Ok("05.12|05.12")
        );
        assert_eq!(
            f("2021-01-02 03:04:05.000", None, "yyyy-MM-dd HH:mm:ss.fff", "ss.FFF").as_deref(),
            Ok("05")
        );
        assert!(f("2021-01-02", None, "yyyy-MM-dd", "'unterminated").is_err());
        assert!(f("2021-01-02", None, "yyyy-MM-dd", "Q").is_err());
        assert!(f("2021-01-02", Some("Sometimes"), "yyyy-MM-dd", "d").is_err());
        assert!(f("2021-02-30", None, "yyyy-MM-dd", "d").is_err());
        assert!(f("2021-01-02x", None, "yyyy-MM-dd", "d").is_err());
        assert!(f("21-01-02", None, "yyyy-MM-dd", "d").is_err());
    }
}
