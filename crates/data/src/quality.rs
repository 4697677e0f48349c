//! The comment quality score of the spec's `score_comments_with_ai`: a keyword
//! heuristic over Vietnamese comments, on Unicode-NFC-normalised lowercase text.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
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
        .build(patterns)
        .ok()
});

/// Lowercases `text` and puts it in Unicode NFC, so composed (`ấ`) and decomposed
/// (`a` + U+0302 + U+0301) spellings compare equal. Borrows when nothing changes.
pub fn normalize_comment(text: &str) -> Cow<'_, str> {
    let lowered: Cow<'_, str> = if text.chars().any(char::is_uppercase) {
        Cow::Owned(text.to_lowercase())
    } else {
        Cow::Borrowed(text)
    };
    if lowered.is_ascii() || is_nfc_quick(lowered.chars()) == IsNormalized::Yes {
        lowered
    } else {
        Cow::Owned(lowered.nfc().collect())
    }
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
    let normalized = normalize_comment(text);
    let mut seen = 0u32;
    for m in ac.find_overlapping_iter(normalized.as_ref()) {
        seen |= 1 << m.pattern().as_u32();
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

    proptest! {
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
                prop_assert_eq!(score, spec_score(&text));
            }
        }
    }
}
