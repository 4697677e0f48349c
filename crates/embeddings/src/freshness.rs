//! `check_embedding_freshness`: how old the product embeddings are, and whether the
//! configured model made them.

use std::path::Path;

use recops_core::{Clock, format_timestamp};
use serde::Serialize;

use crate::error::Result;
use crate::model::ModelIdentity;
use crate::store::read_metadata;

/// Options of [`check_embedding_freshness`].
#[derive(Debug, Clone, Copy)]
pub struct FreshnessOptions<'a> {
    /// The current time.
    pub clock: &'a dyn Clock,
    /// Older than this many days is stale (the spec: 30).
    pub stale_after_days: u32,
    /// The configured model; `None` skips the model comparison.
    pub expected: Option<&'a ModelIdentity>,
}

/// The spec's freshness result, plus what made the vectors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Freshness {
    /// Whole days since the file was written (Python's `timedelta.days`: floored).
    pub age_days: i64,
    /// `age_days > stale_after_days`, or the configured model differs from the one that
    /// made the vectors (their vectors are not comparable).
    pub is_stale: bool,
    /// Number of vectors.
    pub num_embeddings: usize,
    /// Vector length.
    pub embedding_dim: usize,
    /// When the file was written (RFC 3339).
    pub created_at: String,
    /// Name of the model that made the vectors.
    pub model_name: String,
    /// Its variant (`int8` or `fp32`).
    pub model_variant: String,
    /// The configured model, tokenizer, prefix or maximum length differs from the one
    /// that made the vectors.
    pub model_mismatch: bool,
    /// What differs, one phrase each (empty when nothing does).
    pub mismatch_reasons: Vec<String>,
    /// The staleness limit used, in days.
    pub stale_after_days: u32,
}

/// Reads the metadata of the embeddings file at `path` and reports its age, size and
/// whether it is stale. A missing file is [`Error::EmbeddingsMissing`](crate::Error);
/// a damaged one an [`Error::EmbeddingsFile`](crate::Error).
pub fn check_embedding_freshness(path: &Path, options: &FreshnessOptions<'_>) -> Result<Freshness> {
    let meta = read_metadata(path)?;
    let age_seconds = (options.clock.now() - meta.created_at).num_seconds();
    let age_days = age_seconds.div_euclid(86_400);
    let mismatch_reasons = options
        .expected
        .map(|expected| meta.model.differences(expected))
        .unwrap_or_default();
    let model_mismatch = !mismatch_reasons.is_empty();
    Ok(Freshness {
        age_days,
        is_stale: age_days > i64::from(options.stale_after_days) || model_mismatch,
        num_embeddings: meta.num_embeddings,
        embedding_dim: meta.dim,
        created_at: format_timestamp(meta.created_at),
        model_name: meta.model.name,
        model_variant: meta.model.variant,
        model_mismatch,
        mismatch_reasons,
        stale_after_days: options.stale_after_days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::sample;
    use chrono::{Duration, TimeZone, Utc};
    use recops_core::FixedClock;

    #[test]
    fn age_and_staleness_follow_the_fixed_clock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("product_embeddings.safetensors");
        let file = sample(5, 4);
        file.write(&path).unwrap();
        let created = Utc.with_ymd_and_hms(2025, 1, 14, 3, 0, 0).unwrap();
        let clock = FixedClock::new(created + Duration::days(30) + Duration::hours(23));
        let options = FreshnessOptions {
            clock: &clock,
            stale_after_days: 30,
            expected: Some(&file.metadata.model),
        };
        let f = check_embedding_freshness(&path, &options).unwrap();
        assert_eq!(f.age_days, 30);
        assert!(!f.is_stale, "30 days is not more than 30");
        assert_eq!(f.num_embeddings, 5);
        assert_eq!(f.embedding_dim, 4);
        assert!(!f.model_mismatch);
        assert_eq!(f.created_at, "2025-01-14T03:00:00.000000+00:00");

        clock.advance(Duration::hours(1));
        let f = check_embedding_freshness(&path, &options).unwrap();
        assert_eq!(f.age_days, 31);
        assert!(f.is_stale);
    }

    #[test]
    fn another_model_makes_the_vectors_stale_whatever_their_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.safetensors");
        let file = sample(2, 4);
        file.write(&path).unwrap();
        let clock = FixedClock::new(file.metadata.created_at + Duration::days(1));
        let configured = ModelIdentity {
            model_sha256: "f".repeat(64),
            prefix: "query: ".into(),
            ..file.metadata.model.clone()
        };
        let f = check_embedding_freshness(
            &path,
            &FreshnessOptions {
                clock: &clock,
                stale_after_days: 30,
                expected: Some(&configured),
            },
        )
        .unwrap();
        assert_eq!(f.age_days, 1);
        assert!(f.model_mismatch);
        assert!(f.is_stale);
        assert_eq!(f.mismatch_reasons.len(), 2, "{:?}", f.mismatch_reasons);
        assert!(f.mismatch_reasons[0].starts_with("model changed"));
        // Without a configured model there is nothing to compare.
        let f = check_embedding_freshness(
            &path,
            &FreshnessOptions {
                clock: &clock,
                stale_after_days: 30,
                expected: None,
            },
        )
        .unwrap();
        assert!(!f.model_mismatch && !f.is_stale);
    }

    #[test]
    fn vectors_of_the_other_variant_are_stale_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 0, 0, 0).unwrap());
        let int8 = sample(2, 4).metadata.model;
        let fp32 = ModelIdentity {
            variant: "fp32".into(),
            model_sha256: "f".repeat(64),
            ..int8.clone()
        };
        for (made_by, configured) in [(&int8, &fp32), (&fp32, &int8)] {
            let path = dir.path().join(format!("{}.safetensors", made_by.variant));
            let mut file = sample(2, 4);
            file.metadata.model = made_by.clone();
            file.write(&path).unwrap();
            let check = |expected: &ModelIdentity| {
                check_embedding_freshness(
                    &path,
                    &FreshnessOptions {
                        clock: &clock,
                        stale_after_days: 30,
                        expected: Some(expected),
                    },
                )
                .unwrap()
            };
            let f = check(configured);
            assert!(f.model_mismatch && f.is_stale, "{f:?}");
            let reason = &f.mismatch_reasons[0];
            assert!(
                reason.contains(&format!("{} sha256", made_by.variant)),
                "{reason}"
            );
            assert!(
                reason.contains(&format!("{} sha256", configured.variant)),
                "{reason}"
            );
            let f = check(made_by);
            assert!(!f.model_mismatch && !f.is_stale, "{f:?}");
        }
    }

    #[test]
    fn a_file_from_the_future_has_negative_age_like_python() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.safetensors");
        let file = sample(1, 2);
        file.write(&path).unwrap();
        let clock = FixedClock::new(file.metadata.created_at - Duration::hours(1));
        let f = check_embedding_freshness(
            &path,
            &FreshnessOptions {
                clock: &clock,
                stale_after_days: 30,
                expected: None,
            },
        )
        .unwrap();
        assert_eq!(f.age_days, -1);
        assert!(!f.is_stale);
    }
}
