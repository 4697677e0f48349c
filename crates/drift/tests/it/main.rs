//! Drift detection on the shop-shaped data of recops-testkit: a year of steady traffic
//! (a historical window 50 times longer than the new one) is not drift; the injected
//! drifts are found.
#![allow(clippy::unwrap_used)]

use recops_core::DriftSettings;
use recops_drift::{DriftInput, Severity, detect_drift};
use recops_testkit::{DriftOptions, GenConfig, generate};

fn input(drift: DriftOptions) -> DriftInput {
    let ds = generate(&GenConfig {
        users: 3_000,
        products: 300,
        interactions: 150_000,
        drift,
        ..GenConfig::default()
    })
    .unwrap();
    let rows = &ds.interactions;
    DriftInput::from_columns(
        rows.iter().map(|r| r.user_id).collect(),
        rows.iter().map(|r| r.product_id).collect(),
        rows.iter().map(|r| r.rating).collect(),
        rows.iter().map(|r| r.cmt_date).collect(),
    )
}

/// The spec's top-100 Jaccard needs enough weekly traffic per product: with 300
/// products and ~2,900 interactions a week, ranks 60-100 hold a handful of interactions
/// each and sampling noise alone moves them (Jaccard ~0.64 while rank-biased overlap,
/// which weighs the top, stays ~0.95). `drift.top_k` scales the rule to the traffic: the top 10 here.
#[test]
fn steady_shop_traffic_is_not_drift() {
    let settings = DriftSettings {
        top_k: 10,
        ..DriftSettings::default()
    };
    let r = detect_drift(&input(DriftOptions::default()), &settings);
    assert!(
        r.popularity_drift.rank_biased_overlap > 0.9,
        "{:?}",
        r.popularity_drift
    );
    assert!(!r.windows.insufficient_data);
    assert!(r.windows.historical_days > 300.0, "{:?}", r.windows);
    assert!(!r.rating_drift.drift_detected, "{:?}", r.rating_drift);
    assert!(
        !r.interaction_drift.drift_detected,
        "{:?}",
        r.interaction_drift
    );
    assert!(
        !r.popularity_drift.shift_detected,
        "{:?}",
        r.popularity_drift
    );
    assert_eq!(r.overall_severity, Severity::Low);
}

#[test]
fn injected_rating_shift_trending_items_and_volume_are_detected() {
    let r = detect_drift(
        &input(DriftOptions {
            rating_shift: -1.5,
            new_items: 40,
            trending_share: 0.5,
            volume_factor: 2.0,
            ..DriftOptions::default()
        }),
        &DriftSettings::default(),
    );
    assert!(r.rating_drift.drift_detected, "{:?}", r.rating_drift);
    assert_eq!(r.rating_drift.severity, Severity::High);
    assert!(r.rating_drift.chi_square_p_value.unwrap() < 1e-6);
    assert!(
        r.popularity_drift.shift_detected,
        "{:?}",
        r.popularity_drift
    );
    assert!(!r.popularity_drift.new_trending.is_empty());
    assert!(
        r.interaction_drift.drift_detected,
        "{:?}",
        r.interaction_drift
    );
    assert!(r.interaction_drift.volume_change_pct > 50.0);
    assert_eq!(r.overall_severity, Severity::High);
    assert_eq!(r.recommendations.len(), 3);
}
