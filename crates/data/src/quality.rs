//! The comment quality score of the spec's `score_comments_with_ai`: a keyword
//! heuristic over Vietnamese comments, on Unicode-NFC-normalised lowercase text.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// The spec's positive keywords (each one present adds 0.1).
pub const POSITIVE_KEYWORDS: [&str; 8] = [
    "thấm nhanh",
    "hiệu quả",
    "thơm",
    "mịn",
    "sáng da",
    "dưỡng ẩm",
    "tốt",
    "đẹp",
];

/// The spec's negative keywords (each one present subtracts 0.1).
pub const NEGATIVE_KEYWORDS: [&str; 5] = ["không thích", "dở", "tệ", "kém", "giả"];

/// Both keyword lists in one automaton; pattern ids below `POSITIVE_KEYWORDS.len()`
/// are positive. Keywords are NFC-normalised here, so the score does not depend on how
/// this source file happens to be encoded.
static KEYWORDS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    let patterns: Vec<String> = POSITIVE_KEYWORDS
        .iter()
        .chain(NEGATIVE_KEYWORDS.iter())
        .map(|k| k.nfc().collect())
        .collect();
    AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(patterns)
        .ok()
});

/// The same automaton, ASCII case-insensitive (for text whose only upper-case letters
/// are ASCII).
static KEYWORDS_ASCII_CI: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    let patterns: Vec<String> = POSITIVE_KEYWORDS
        .iter()
        .chain(NEGATIVE_KEYWORDS.iter())
        .map(|k| k.nfc().collect())
        .collect();
    AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .ascii_case_insensitive(true)
        .kind(Some(AhoCorasickKind::DFA))
        .build(patterns)
        .ok()
});

/// Lowercases `text` and puts it in Unicode NFC, so composed (`ấ`) and decomposed
/// (`a` + U+0302 + U+0301) spellings compare equal. Borrows when nothing changes.
pub fn normalize_comment(text: &str) -> Cow<'_, str> {
    let lowered = lowercase(text);
    if surely_nfc(lowered.as_bytes()) || is_nfc_quick(lowered.chars()) == IsNormalized::Yes {
        lowered
    } else {
        Cow::Owned(lowered.nfc().collect())
    }
}

/// `char::to_lowercase` applied to every character (Unicode), copying the characters
/// that do not change without a table lookup.
fn lowercase(text: &str) -> Cow<'_, str> {
    let Some(first) = text
        .char_indices()
        .find(|&(_, c)| changes_under_lowercase(c))
        .map(|(i, _)| i)
    else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if changes_under_lowercase(c) {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c.to_lowercase()` differs from `c`: by arithmetic for ASCII, Latin-1,
/// Latin Extended-A, the horn letters and Latin Extended Additional (every precomposed
/// Vietnamese letter: upper case at even code points), by the Unicode tables
/// otherwise. A test checks it against the tables for every character.
fn changes_under_lowercase(c: char) -> bool {
    match c as u32 {
        0..=0x7F => c.is_ascii_uppercase(),
        0x80..=0xBF | 0xD7 | 0xDF..=0xFF => false,
        0xC0..=0xDE => true,
        // Latin Extended-A: pairs with the capital first, or second in 0139–0148
        // and 0179–017E; ĸ, ŉ, ſ have no capital; Ÿ lowers to ÿ.
        0x138 | 0x149 | 0x17F => false,
        0x178 => true,
        v @ (0x139..=0x148 | 0x179..=0x17E) => v % 2 == 1,
        v @ 0x100..=0x17F => v % 2 == 0,
        // Vietnamese horn letters Ơ ơ Ư ư.
        0x1A0 | 0x1AF => true,
        0x1A1 | 0x1B0 => false,
        0x1E96..=0x1E9D | 0x1E9F => false,
        v @ 0x1E00..=0x1EFF => v % 2 == 0,
        _ => !c.to_lowercase().eq(std::iter::once(c)),
    }
}

/// Whether lowercasing `text` changes a non-ASCII character.
fn needs_unicode_lowercase(text: &str) -> bool {
    text.chars()
        .any(|c| !c.is_ascii() && changes_under_lowercase(c))
}

/// A quick sufficient test for NFC: only characters from blocks whose every code
/// point is NFC_Quick_Check=Yes with combining class 0 — ASCII, Latin-1 Supplement,
/// Latin Extended-A/B (U+0080–U+024F), Latin Extended Additional (U+1E00–U+1EFF,
/// Vietnamese precomposed letters) and General Punctuation (U+2000–U+206F). Anything
/// else (combining marks included) goes through the full quick check.
fn surely_nfc(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += match c {
            0x00..=0x7F => 1,
            0xC2..=0xC9 => 2,
            0xE1 if matches!(b.get(i + 1), Some(0xB8..=0xBB)) => 3,
            0xE2 if matches!(b.get(i + 1), Some(0x80..=0x81)) => 3,
            _ => return false,
        };
    }
    true
}

/// The quality score of one comment in [0, 1]: 0.5, plus 0.1 for each positive keyword
/// present, minus 0.1 for each negative keyword present (each keyword counts once, as
/// a substring of the NFC-normalised lowercase text), clamped. An empty, blank or
/// missing comment scores 0.0.
///
/// ```
/// use recops_data::comment_quality;
/// assert_eq!(comment_quality(Some("Kem THẤM NHANH, dưỡng ẩm tốt")), 0.8);
/// assert_eq!(comment_quality(Some("Hàng giả, dở tệ")), 0.2);
/// assert_eq!(comment_quality(None), 0.0);
/// ```
pub fn comment_quality(comment: Option<&str>) -> f32 {
    let Some(text) = comment else {
        return 0.0;
    };
    if text.trim().is_empty() {
        return 0.0;
    }
    let Some(ac) = KEYWORDS.as_ref() else {
        return 0.5;
    };
    let mut seen = 0u32;
    // Usual case: only ASCII letters need lowercasing and the text is NFC already, so
    // an ASCII-case-insensitive search of the text itself gives the same matches.
    match KEYWORDS_ASCII_CI.as_ref() {
        Some(ci) if surely_nfc(text.as_bytes()) && !needs_unicode_lowercase(text) => {
            for m in ci.find_overlapping_iter(text) {
                seen |= 1 << m.pattern().as_u32();
            }
        }
        _ => {
            let normalized = normalize_comment(text);
            for m in ac.find_overlapping_iter(normalized.as_ref()) {
                seen |= 1 << m.pattern().as_u32();
            }
        }
    }
    let positive = (seen & ((1 << POSITIVE_KEYWORDS.len()) - 1)).count_ones() as i32;
    let negative = (seen >> POSITIVE_KEYWORDS.len()).count_ones() as i32;
    // In tenths, so 0.5 + 0.1 + 0.1 is exactly 0.7 (no float drift).
    let tenths = (5 + positive - negative).clamp(0, 10);
    tenths as f32 / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The spec's Python loop, transcribed (substring counts, clamped).
    fn spec_score(comment: &str) -> f32 {
        if comment.is_empty() {
            return 0.0;
        }
        let lower: String = comment.to_lowercase().nfc().collect();
        let mut score = 0.5f64;
        for kw in POSITIVE_KEYWORDS {
            if lower.contains(&kw.nfc().collect::<String>()) {
                score += 0.1;
            }
        }
        for kw in NEGATIVE_KEYWORDS {
            if lower.contains(&kw.nfc().collect::<String>()) {
                score -= 0.1;
            }
        }
        score.clamp(0.0, 1.0) as f32
    }

    #[test]
    fn spec_examples() {
        assert_eq!(comment_quality(Some("Sản phẩm dùng ổn")), 0.5);
        assert_eq!(
            comment_quality(Some("Kem thấm nhanh, hiệu quả, thơm, mịn")),
            0.9
        );
        // Each keyword counts once, however often it appears.
        assert_eq!(comment_quality(Some("tốt tốt tốt tốt")), 0.6);
        // All eight positives: 0.5 + 0.8 clamps to 1.0.
        assert_eq!(comment_quality(Some(&POSITIVE_KEYWORDS.join(" "))), 1.0);
        // All five negatives: 0.5 - 0.5 = 0.0.
        assert_eq!(comment_quality(Some(&NEGATIVE_KEYWORDS.join(" "))), 0.0);
        assert_eq!(comment_quality(Some("thơm nhưng không thích")), 0.5);
        assert_eq!(comment_quality(Some("")), 0.0);
        assert_eq!(comment_quality(Some("   ")), 0.0);
        assert_eq!(comment_quality(None), 0.0);
    }

    #[test]
    fn composed_and_decomposed_diacritics_score_the_same() {
        let composed = "Kem thấm nhanh, dưỡng ẩm rất tốt, không thích mùi";
        let decomposed: String = composed.nfd().collect();
        assert_ne!(composed, decomposed);
        assert_eq!(comment_quality(Some(composed)), 0.7);
        assert_eq!(comment_quality(Some(&decomposed)), 0.7);
        // Upper case, decomposed.
        let shouting: String = composed.to_uppercase().nfd().collect();
        assert_eq!(comment_quality(Some(&shouting)), 0.7);
    }

    #[test]
    fn normalization_borrows_when_nothing_changes() {
        assert!(matches!(normalize_comment("da mịn"), Cow::Borrowed(_)));
        assert_eq!(normalize_comment("DA MỊN"), "da mịn");
        let nfd: String = "mịn".nfd().collect();
        assert_eq!(normalize_comment(&nfd), "mịn");
    }

    #[test]
    fn lowercase_classification_is_exact_for_every_char() {
        for v in 0..=0x10FFFFu32 {
            if let Some(c) = char::from_u32(v) {
                let changes = !c.to_lowercase().eq(std::iter::once(c));
                assert_eq!(changes_under_lowercase(c), changes, "U+{v:04X}");
            }
        }
    }

    #[test]
    fn fast_paths_agree_with_the_full_algorithms() {
        for text in [
            "Kem THẤM NHANH",
            "ĐẸP",
            "đẹp",
            "İstanbul ǅ Σ",
            "abc",
            "",
            "Ω ℃ Ⅻ",
            "giá 100.000đ – “tốt”…",
            "한국어 화장품",
            "ế\u{301}",
            "A\u{30A}",
        ] {
            let lowered: String = text.chars().flat_map(char::to_lowercase).collect();
            assert_eq!(lowercase(text), lowered, "{text:?}");
            if surely_nfc(text.as_bytes()) {
                assert_eq!(text.nfc().collect::<String>(), text, "{text:?}");
            }
        }
        assert!(surely_nfc("Sản phẩm dưỡng ẩm tốt – rất “đẹp”…".as_bytes()));
        assert!(!surely_nfc("mi\u{0323}n".as_bytes()));
    }

    proptest! {
        #[test]
        fn lowercase_and_nfc_fast_paths(s in "\\PC{0,24}") {
            let lowered: String = s.chars().flat_map(char::to_lowercase).collect();
            prop_assert_eq!(lowercase(&s), lowered);
            if surely_nfc(s.as_bytes()) {
                prop_assert_eq!(s.nfc().collect::<String>(), s);
            }
        }

        #[test]
        fn agrees_with_the_spec_loop(words in prop::collection::vec(prop::sample::select(vec![
            "thấm nhanh", "hiệu quả", "thơm", "mịn", "sáng da", "dưỡng ẩm", "tốt", "đẹp",
            "không thích", "dở", "tệ", "kém", "giả", "sản phẩm", "GIAO HÀNG", "ok", "Tốt", "ĐẸP",
            "da", "mua lại", " ", ",",
        ]), 0..12), nfd in any::<bool>()) {
            let text = words.concat();
            let text = if nfd { text.nfd().collect() } else { text };
            let score = comment_quality(Some(&text));
            prop_assert!((0.0..=1.0).contains(&score));
            if !text.trim().is_empty() {
                // The spec's loop adds 0.1 in binary floating point and drifts by a
                // few ulps (0.5 - 5 x 0.1 = 2.8e-17); ours counts in tenths.
                let spec = spec_score(&text);
                prop_assert!((score - spec).abs() < 1e-6, "{} vs the spec's {}", score, spec);
            }
        }
    }
}
