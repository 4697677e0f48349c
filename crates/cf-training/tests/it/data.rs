//! Seeded synthetic data with user taste clusters, and config helpers.

use std::collections::HashMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use recops_cf_training::{AlsConfig, BprConfig, DEFAULT_ALS_CONFIG, DEFAULT_BPR_CONFIG};
use recops_core::{ConfigFormat, FixedClock, parse_config};
use recops_data::{RawInteraction, Split, temporal_split};

/// A small deterministic generator (SplitMix64).
pub(crate) struct TestRng(u64);

impl TestRng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `users` users in `clusters` taste clusters; each has ~`per_user` interactions, 85 % in
/// its cluster's items (popular ones more often), the rest anywhere.
pub(crate) fn clustered(
    seed: u64,
    users: i64,
    items: i64,
    clusters: i64,
    per_user: usize,
) -> Vec<RawInteraction> {
    let mut rng = TestRng(seed);
    let mut rows = Vec::new();
    for u in 0..users {
        let c = u % clusters;
        for t in 0..per_user {
            let item = if rng.below(100) < 85 {
                // Items of cluster c are c, c + clusters, ...; lower ones are more popular.
                let n = items / clusters;
                let r = rng.below(n as u64) as i64;
                let r = r.min(rng.below(n as u64) as i64);
                c + clusters * r
            } else {
                rng.below(items as u64) as i64
            };
            rows.push(RawInteraction {
                user_id: 1000 + u,
                item_id: 5000 + item,
                rating: 3.0 + rng.below(3) as f32,
                timestamp: 1_700_000_000 + (t as i64) * 3600 + rng.below(1000) as i64,
            });
        }
    }
    rows
}

pub(crate) fn split() -> Split {
    temporal_split(&clustered(7, 200, 80, 4, 20))
}

pub(crate) fn clock() -> FixedClock {
    FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap())
}

fn parse<T: serde::de::DeserializeOwned + recops_core::Validate>(text: &str) -> T {
    parse_config(
        text,
        Path::new("test.yaml"),
        ConfigFormat::Yaml,
        &HashMap::<String, String>::new(),
    )
    .unwrap()
}

/// The shipped ALS config made small: 16 factors, no BERT init, 1 thread.
pub(crate) fn als_config() -> AlsConfig {
    let mut c: AlsConfig = parse(DEFAULT_ALS_CONFIG);
    c.model.factors = 16;
    c.training.bert_init = false;
    c.training.threads = 1;
    c
}

/// The shipped BPR config made small: 16 factors, lr 0.05, 40 epochs, 2 threads.
pub(crate) fn bpr_config() -> BprConfig {
    let mut c: BprConfig = parse(DEFAULT_BPR_CONFIG);
    c.model.factors = 16;
    c.model.learning_rate = 0.05;
    c.model.iterations = 40;
    c.training.bert_init = false;
    c.training.threads = 2;
    c
}
