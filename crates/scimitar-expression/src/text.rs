//! String functions whose rules come from .NET or VBA: case mapping with
//! cultures, PCase (ToTitleCase), NormalizeDiacritics, InStr, Word,
//! RandomString and Guid.

use unicode_normalization::char::{decompose_canonical, is_combining_mark, is_public_assigned};

/// Cultures with their own `i` rules: Turkish and Azeri map `i`↔`İ` and
/// `ı`↔`I`. Every other culture (and none) is the invariant culture.
fn is_turkic(culture: Option<&str>) -> bool {
    culture.is_some_and(|c| {
        let lang = c.split(['-', '_']).next().unwrap_or("");
        lang.eq_ignore_ascii_case("tr") || lang.eq_ignore_ascii_case("az")
    })
}

/// .NET maps case one character to one character (simple case mapping):
/// `ß` stays `ß` in upper case, `İ` becomes `i`, and `Σ` always `σ`.
fn lower_char(c: char, turkic: bool) -> char {
    match c {
        'I' if turkic => 'ı',
        'İ' => 'i',
        _ => single(c.to_lowercase()).unwrap_or(c),
    }
}

fn upper_char(c: char, turkic: bool) -> char {
    match c {
        'i' if turkic => 'İ',
        _ => single(c.to_uppercase())
            .or_else(|| iota_subscript_upper(c))
            .unwrap_or(c),
    }
}

/// The one character of a case mapping, if it is one character.
fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let c = it.next()?;
    if it.next().is_some() { None } else { Some(c) }
}

/// Greek letters with iota subscript, whose full upper case is two
/// characters but whose simple upper case is the title-case letter.
fn iota_subscript_upper(c: char) -> Option<char> {
    let u = u32::from(c);
    let mapped = match u {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => u + 8,
        0x1FB3 => 0x1FBC,
        0x1FC3 => 0x1FCC,
        0x1FF3 => 0x1FFC,
        _ => return None,
    };
    char::from_u32(mapped)
}

/// The title case of a letter: Unicode's digraphs have their own title
/// forms (`ǆ` → `ǅ`); everything else is its upper case.
fn title_char(c: char) -> char {
    match c {
        'Ǆ' | 'ǅ' | 'ǆ' => 'ǅ',
        'Ǉ' | 'ǈ' | 'ǉ' => 'ǈ',
        'Ǌ' | 'ǋ' | 'ǌ' => 'ǋ',
        'Ǳ' | 'ǲ' | 'ǳ' => 'ǲ',
        _ => upper_char(c, false),
    }
}

pub(crate) fn to_lower(s: &str, culture: Option<&str>) -> String {
    let turkic = is_turkic(culture);
    s.chars().map(|c| lower_char(c, turkic)).collect()
}

pub(crate) fn to_upper(s: &str, culture: Option<&str>) -> String {
    let turkic = is_turkic(culture);
    s.chars().map(|c| upper_char(c, turkic)).collect()
}

/// A letter (general category L*), as .NET's ToTitleCase sees one.
fn is_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_numeric() && !is_combining_mark(c)
}

/// .NET's word separators for ToTitleCase: the categories Zs Zl Zp Cc Cf
/// Pc Pd Ps Pe Pi Pf Po Sm Sc Sk So. The standard library has no category
/// table, so this is their complement among assigned characters: not a
/// letter, mark or number (private-use and unassigned characters are not
/// separators either).
fn is_word_separator(c: char) -> bool {
    !(c.is_alphanumeric() || is_combining_mark(c)) && is_public_assigned(c)
}

/// PCase: lower-case everything, then upper-case the first letter of each
/// word. Without separators the words are .NET ToTitleCase's: a word starts
/// at a letter and runs over letters, marks, digits and apostrophes up to a
/// separator (so `o'neil` → `O'neil`, `3rd` → `3Rd`, as in .NET). With
/// separators, only those characters split words and each word's first
/// character is upper-cased.
///
/// Lower-casing first is needed for the doc's own example
/// (`PABLO GONSALVES` → `Pablo Gonsalves`): plain ToTitleCase keeps
/// all-capital words as they are.
pub(crate) fn pcase(s: &str, separators: Option<&str>) -> String {
    let lowered = to_lower(s, None);
    let mut out = String::with_capacity(lowered.len());
    match separators {
        Some(seps) => {
            let mut word_start = true;
            for c in lowered.chars() {
                if seps.contains(c) {
                    word_start = true;
                    out.push(c);
                } else if word_start {
                    word_start = false;
                    out.push(title_char(c));
                } else {
                    out.push(c);
                }
            }
        }
        None => {
            let mut in_word = false;
            for c in lowered.chars() {
                if in_word {
                    if is_letter(c) || c == '\'' || !is_word_separator(c) {
                        out.push(c);
                        continue;
                    }
                    in_word = false;
                    out.push(c);
                } else if is_letter(c) {
                    in_word = true;
                    out.push(title_char(c));
                } else {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// NormalizeDiacritics: the doc's table. A letter in the table (on its own
/// or with combining marks, precomposed or not) loses its marks; the
/// letters without a decomposition are mapped explicitly (`æ` → `ae`,
/// `ø` → `oe`, `ß` → `ss`, `ł` → `l`, `ı` → `i`, …). `œ` is in the table
/// only with a macron (`œ̄` → `oe`). Anything else (`đ`, `ħ`, `ŵ`, a bare `œ`)
/// is left as it is.
pub(crate) fn normalize_diacritics(s: &str) -> String {
    const BASES: &str = "aAcCdDeEgGiIlLnNoOrRsStTuUyYzZ";
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        // The cluster: c and the combining marks that follow it.
        let mut marks = Vec::new();
        while let Some(&m) = chars.peek() {
            if !is_combining_mark(m) {
                break;
            }
            marks.push(m);
            chars.next();
        }
        let mut decomposed = Vec::with_capacity(4);
        decompose_canonical(c, |d| decomposed.push(d));
        let base = decomposed.first().copied().unwrap_or(c);
        let has_marks = decomposed.len() > 1 || !marks.is_empty();
        let replacement: Option<&str> = match base {
            'æ' => Some("ae"),
            'Æ' => Some("AE"),
            'ø' => Some("oe"),
            'Ø' => Some("OE"),
            'œ' if has_marks => Some("oe"),
            'Œ' if has_marks => Some("OE"),
            'ß' => Some("ss"),
            'ı' => Some("i"),
            'ł' => Some("l"),
            'Ł' => Some("L"),
            b if BASES.contains(b) && has_marks => {
                out.push(b);
                continue;
            }
            _ => None,
        };
        match replacement {
            Some(r) => out.push_str(r),
            None => {
                out.push(c);
                out.extend(marks);
            }
        }
    }
    out
}

/// InStr: the 1-based character position of `needle` in `haystack` at or
/// after `start`, 0 when absent; `start` past the end gives 0 and an empty
/// needle gives `start`, as in VBA. `text_compare` ignores case (by simple
/// lower-casing, which keeps character positions).
pub(crate) fn instr(haystack: &str, needle: &str, start: usize, text_compare: bool) -> usize {
    if haystack.is_empty() {
        return 0;
    }
    let len = haystack.chars().count();
    if start > len {
        return 0;
    }
    if needle.is_empty() {
        return start;
    }
    let (hay, nee) = if text_compare {
        (to_lower(haystack, None), to_lower(needle, None))
    } else {
        (haystack.to_string(), needle.to_string())
    };
    let Some((from, _)) = hay.char_indices().nth(start.saturating_sub(1)) else {
        return 0;
    };
    match hay.get(from..).and_then(|rest| rest.find(&nee)) {
        Some(at) => hay.get(..from + at).map_or(0, |before| before.chars().count() + 1),
        None => 0,
    }
}

/// Word: the n-th (1-based) word, words being separated by any of the
/// delimiter characters; runs of delimiters do not make empty words.
pub(crate) fn word(s: &str, n: i64, delimiters: &str) -> String {
    let Ok(n) = usize::try_from(n) else {
        return String::new();
    };
    if n == 0 {
        return String::new();
    }
    s.split(|c: char| delimiters.contains(c))
        .filter(|w| !w.is_empty())
        .nth(n - 1)
        .unwrap_or("")
        .to_string()
}

/// A uniformly chosen index below `n` (Lemire's multiply-shift; the bias
/// for n ≤ 256 is below 2⁻⁵⁶, and there is no rejection loop that a
/// constant generator could spin in).
fn pick(rng: &mut dyn FnMut() -> u64, n: usize) -> usize {
    ((u128::from(rng()) * n as u128) >> 64) as usize
}

/// A v4 GUID, lower case, from 128 random bits.
pub(crate) fn guid(rng: &mut dyn FnMut() -> u64) -> String {
    let mut v = (u128::from(rng()) << 64) | u128::from(rng());
    v = (v & !(0xF << 76)) | (0x4 << 76); // version 4
    v = (v & !(0x3 << 62)) | (0x2 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        v >> 96,
        (v >> 80) & 0xFFFF,
        (v >> 64) & 0xFFFF,
        (v >> 48) & 0xFFFF,
        v & 0xFFFF_FFFF_FFFF
    )
}

/// The special characters of Windows' password-complexity rules.
pub const SPECIAL_CHARACTERS: &str = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";
pub const MAX_RANDOM_LENGTH: i64 = 256;

/// RandomString: `length` characters with at least the given numbers of
/// digits, special characters, capitals and lower-case letters, none of
/// them in `avoid`. The rest is drawn from all four classes together, and
/// the whole is shuffled.
pub(crate) fn random_string(
    length: i64,
    minima: [i64; 4],
    avoid: &str,
    rng: &mut dyn FnMut() -> u64,
) -> Result<String, String> {
    if !(0..=MAX_RANDOM_LENGTH).contains(&length) {
        return Err(format!(
            "length must be between 0 and {MAX_RANDOM_LENGTH}, got {length}"
        ));
    }
    const NAMES: [&str; 4] = ["numbers", "special characters", "capitals", "lower-case letters"];
    let classes: [String; 4] = [
        ('0'..='9').filter(|c| !avoid.contains(*c)).collect(),
        SPECIAL_CHARACTERS.chars().filter(|c| !avoid.contains(*c)).collect(),
        ('A'..='Z').filter(|c| !avoid.contains(*c)).collect(),
        ('a'..='z').filter(|c| !avoid.contains(*c)).collect(),
    ];
    let mut total: i64 = 0;
    for (min, name) in minima.iter().zip(NAMES) {
        if *min < 0 {
            return Err(format!("the minimum of {name} is negative ({min})"));
        }
        total = total.saturating_add(*min);
    }
    if total > length {
        return Err(format!("the minima add up to {total}, more than the length {length}"));
    }
    let mut out: Vec<char> = Vec::new();
    for ((min, class), name) in minima.iter().zip(&classes).zip(NAMES) {
        let pool: Vec<char> = class.chars().collect();
        if *min > 0 && pool.is_empty() {
            return Err(format!("every one of the {name} is in the characters to avoid"));
        }
        for _ in 0..*min {
            if let Some(&c) = pool.get(pick(rng, pool.len())) {
                out.push(c);
            }
        }
    }
    let all: Vec<char> = classes.iter().flat_map(|c| c.chars()).collect();
    let rest = length - total;
    if rest > 0 && all.is_empty() {
        return Err("every allowed character is in the characters to avoid".into());
    }
    for _ in 0..rest {
        if let Some(&c) = all.get(pick(rng, all.len())) {
            out.push(c);
        }
    }
    // Fisher-Yates, so that the required characters are not always first.
    for i in (1..out.len()).rev() {
        let j = pick(rng, i + 1);
        out.swap(i, j);
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_mapping_is_simple_and_cultured() {
        assert_eq!(to_upper("straße", None), "STRAßE");
        assert_eq!(to_lower("İSTANBUL", None), "istanbul");
        assert_eq!(to_lower("ΟΔΟΣ", None), "οδοσ");
        assert_eq!(to_upper("istanbul", Some("tr-TR")), "İSTANBUL");
        assert_eq!(to_lower("ISPARTA", Some("tr")), "ısparta");
        assert_eq!(to_upper("ılık", Some("az-Latn-AZ")), "ILIK");
        assert_eq!(to_upper("istanbul", Some("en-US")), "ISTANBUL");
        assert_eq!(to_upper("ᾳ", None), "ᾼ");
        assert_eq!(to_upper("ﬁ", None), "ﬁ");
    }

    #[test]
    fn pcase_follows_dotnet_words() {
        assert_eq!(pcase("PABLO GONSALVES (SECOND)", None), "Pablo Gonsalves (Second)");
        assert_eq!(pcase("o'neil mcdonald-smith", None), "O'neil Mcdonald-Smith");
        assert_eq!(pcase("3rd street", None), "3Rd Street");
        assert_eq!(pcase("jean\u{2014}luc_picard", None), "Jean\u{2014}Luc_Picard");
        assert_eq!(pcase("élodie ǆemal", None), "Élodie ǅemal");
        assert_eq!(pcase("PINTO-DE'SILVA", Some(" '-")), "Pinto-De'Silva");
        assert_eq!(pcase("a.b c", Some(".")), "A.B c");
        assert_eq!(pcase("", None), "");
    }

    #[test]
    fn diacritics_follow_the_table() {
        assert_eq!(normalize_diacritics("Zoë"), "Zoe");
        assert_eq!(
            normalize_diacritics("Ærøskøbing Straße Łódź İstanbul"),
            "AEroeskoebing Strasse Lodz Istanbul"
        );
        // Letter + combining mark sequences of the table.
        assert_eq!(
            normalize_diacritics("a\u{304}\u{301} e\u{331} œ\u{304} Ø\u{304}"),
            "a e oe OE"
        );
        // Not in the table.
        assert_eq!(normalize_diacritics("đ œ ħ ŵ ĥ"), "đ œ ħ ŵ ĥ");
        assert_eq!(normalize_diacritics("h\u{302}"), "h\u{302}");
        assert_eq!(normalize_diacritics("\u{301}x"), "\u{301}x");
    }

    #[test]
    fn instr_is_vba() {
        assert_eq!(instr("The quick brown fox", "quick", 1, false), 5);
        assert_eq!(instr("repEated", "e", 3, false), 7);
        assert_eq!(instr("repEated", "e", 3, true), 4);
        assert_eq!(instr("abc", "z", 1, false), 0);
        assert_eq!(instr("abc", "", 2, false), 2);
        assert_eq!(instr("abc", "c", 4, false), 0);
        assert_eq!(instr("", "", 1, false), 0);
        assert_eq!(instr("żółw", "w", 1, false), 4);
    }

    #[test]
    fn words() {
        assert_eq!(word("The quick brown fox", 3, " "), "brown");
        assert_eq!(word("This,string!has&many separators", 3, ",!&#"), "has");
        assert_eq!(word("a,,b", 2, ","), "b");
        assert_eq!(word("a b", 0, " "), "");
        assert_eq!(word("a b", -1, " "), "");
        assert_eq!(word("a b", 5, " "), "");
        assert_eq!(word("a b", 1, ""), "a b");
    }

    #[test]
    fn guids_are_v4() {
        let mut n = 0u64;
        let mut rng = || {
            n = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
            n
        };
        let g = guid(&mut rng);
        assert_eq!(g.len(), 36);
        assert_eq!(g.as_bytes()[14], b'4');
        assert!(matches!(g.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{g}");
        assert_eq!(g, g.to_lowercase());
        let mut zero = || 0u64;
        assert_eq!(guid(&mut zero), "00000000-0000-4000-8000-000000000000");
        let mut ones = || u64::MAX;
        assert_eq!(guid(&mut ones), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }

    #[test]
    fn random_string_limits() {
        let mut zero = || 0u64;
        assert!(random_string(257, [0; 4], "", &mut zero).is_err());
        assert!(random_string(-1, [0; 4], "", &mut zero).is_err());
        assert!(random_string(3, [2, 2, 0, 0], "", &mut zero).is_err());
        assert!(random_string(3, [-1, 0, 0, 0], "", &mut zero).is_err());
        assert!(random_string(3, [1, 0, 0, 0], "0123456789", &mut zero).is_err());
        assert_eq!(random_string(0, [0; 4], "", &mut zero).as_deref(), Ok(""));
        assert_eq!(
            random_string(256, [0; 4], "", &mut zero).map(|s| s.chars().count()),
            Ok(256)
        );
        let everything: String = ('0'..='9')
            .chain('A'..='Z')
            .chain('a'..='z')
            .chain(SPECIAL_CHARACTERS.chars())
            .collect();
        assert!(random_string(1, [0; 4], &everything, &mut zero).is_err());
        assert_eq!(SPECIAL_CHARACTERS.chars().count(), 32);
    }
}
