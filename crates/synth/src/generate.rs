//! The seeded generator of shop data.

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};
use crate::rng::{Rng, Weighted};
use crate::vocab;

/// Drift injected into the last `window_days` of the generated period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftOptions {
    /// Length of the drift window at the end of the period, in days (default 7, the
    /// drift detector's "new data" window).
    pub window_days: u32,
    /// Added to ratings in the window (e.g. -1.5 lowers them by 1.5 on average;
    /// fractional parts apply to that share of rows). Default 0.
    pub rating_shift: f64,
    /// Products launched at the window start (new ids, added to the catalog) that
    /// trend inside it. Default 0.
    pub new_items: usize,
    /// Share of window interactions that go to the new items (default 0.3; used only
    /// with `new_items > 0`).
    pub trending_share: f64,
    /// Interactions per day in the window relative to before (2.0 doubles the daily
    /// volume). Default 1.0.
    pub volume_factor: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            window_days: 7,
            rating_shift: 0.0,
            new_items: 0,
            trending_share: 0.3,
            volume_factor: 1.0,
        }
    }
}

impl DriftOptions {
    /// Whether any drift is injected.
    pub fn is_active(&self) -> bool {
        self.rating_shift != 0.0 || self.new_items > 0 || self.volume_factor != 1.0
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenConfig {
    /// Users (ids are distinct, ascending, not contiguous).
    pub users: usize,
    /// Products in the base catalog (drift's new items come on top).
    pub products: usize,
    /// Interaction rows, exactly (duplicates and invalid rows included).
    pub interactions: usize,
    /// Seed: the same config gives the same data.
    pub seed: u64,
    /// Taste clusters: each user and product belongs to one; users mostly rate their
    /// cluster's products, so collaborative filtering beats popularity.
    pub clusters: usize,
    /// Share of a user's interactions inside their cluster (default 0.8).
    pub in_cluster_share: f64,
    /// First day of the period.
    pub start: NaiveDate,
    /// Length of the period in days (default 365).
    pub days: u32,
    /// Share of rows with a comment (default 0.75).
    pub comment_rate: f64,
    /// Share of comments written in decomposed Unicode (NFD), as some phones send
    /// them (default 0.05).
    pub nfd_rate: f64,
    /// Share of rows repeated later with the same (user, product, date) and another
    /// rating, to exercise dedup (default 0).
    pub duplicate_rate: f64,
    /// Share of rows made invalid (empty user, bad product id, rating outside
    /// 1..=5, unparsable date), to exercise validation (default 0).
    pub invalid_rate: f64,
    /// Drift in the last days of the period.
    pub drift: DriftOptions,
}

impl Default for GenConfig {
    /// The small default of `recops gen-data`: 1,000 users, 200 products, 20,000
    /// interactions over 2024 — a whole pipeline run handles it in seconds.
    fn default() -> Self {
        GenConfig {
            users: 1_000,
            products: 200,
            interactions: 20_000,
            seed: 42,
            clusters: 8,
            in_cluster_share: 0.8,
            start: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default(),
            days: 365,
            comment_rate: 0.75,
            nfd_rate: 0.05,
            duplicate_rate: 0.0,
            invalid_rate: 0.0,
            drift: DriftOptions::default(),
        }
    }
}

impl GenConfig {
    /// Tiny data for unit tests: 60 users, 25 products, 600 interactions.
    pub fn tiny() -> GenConfig {
        GenConfig {
            users: 60,
            products: 25,
            interactions: 600,
            clusters: 4,
            ..GenConfig::default()
        }
    }

    /// The spec's size: 26,000 users x 2,200 products, 1,000,000 interactions.
    pub fn spec_size() -> GenConfig {
        GenConfig {
            users: 26_000,
            products: 2_200,
            interactions: 1_000_000,
            clusters: 12,
            ..GenConfig::default()
        }
    }

    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |field: &'static str, message: String| Err(Error::InvalidConfig { field, message });
        let share = |v: f64| (0.0..=1.0).contains(&v);
        if self.users == 0 {
            return bad("users", "expected at least 1".into());
        }
        if self.products == 0 {
            return bad("products", "expected at least 1".into());
        }
        if self.clusters == 0 {
            return bad("clusters", "expected at least 1".into());
        }
        if self.days == 0 {
            return bad("days", "expected at least 1".into());
        }
        for (field, v) in [
            ("in_cluster_share", self.in_cluster_share),
            ("comment_rate", self.comment_rate),
            ("nfd_rate", self.nfd_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("invalid_rate", self.invalid_rate),
            ("drift.trending_share", self.drift.trending_share),
        ] {
            if !share(v) {
                return bad(field, format!("expected a share in [0, 1], got {v}"));
            }
        }
        if self.drift.window_days >= self.days {
            return bad(
                "drift.window_days",
                format!("expected fewer than the {} days of the period", self.days),
            );
        }
        if !(self.drift.volume_factor > 0.0 && self.drift.volume_factor.is_finite()) {
            return bad("drift.volume_factor", "expected a number > 0".into());
        }
        if !self.drift.rating_shift.is_finite() || self.drift.rating_shift.abs() > 4.0 {
            return bad("drift.rating_shift", "expected a number in [-4, 4]".into());
        }
        Ok(())
    }
}

/// A catalog product (`data_product.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    /// Product id.
    pub product_id: i64,
    /// Name, e.g. `Serum The Ordinary Niacinamide 10% 30ml`.
    pub name: String,
    /// Brand.
    pub brand: String,
    /// Category, e.g. `Kem chống nắng`.
    pub category: String,
    /// Description in Vietnamese.
    pub description: String,
    /// Taste cluster.
    pub cluster: usize,
    /// Launched by the drift window (a new trending item).
    pub trending: bool,
}

/// How a row was made invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalid {
    /// user_id left empty.
    EmptyUser,
    /// product_id not a number.
    BadProduct,
    /// rating 0 or 6.
    RatingOutOfRange,
    /// cmt_date in dd/mm/yyyy form.
    BadDate,
}

/// One generated interaction row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenInteraction {
    /// User id.
    pub user_id: i64,
    /// Product id.
    pub product_id: i64,
    /// Rating 1..=5 (rendered out of range for [`Invalid::RatingOutOfRange`]).
    pub rating: u8,
    /// Comment, if any.
    pub comment: Option<String>,
    /// Date, microseconds since the epoch (written as a naive `YYYY-MM-DD HH:MM:SS`).
    pub cmt_date: i64,
    /// Set when the row is deliberately invalid.
    pub invalid: Option<Invalid>,
}

/// A generated data set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dataset {
    /// The configuration used.
    pub config: GenConfig,
    /// The catalog, drift's new items last.
    pub products: Vec<Product>,
    /// User ids, ascending.
    pub user_ids: Vec<i64>,
    /// The taste cluster of each user (same order as `user_ids`).
    pub user_clusters: Vec<usize>,
    /// The rows, in date order.
    pub interactions: Vec<GenInteraction>,
    /// Start of the drift window, microseconds since the epoch.
    pub drift_start: i64,
}

impl Dataset {
    /// Rows deliberately made invalid.
    pub fn invalid_rows(&self) -> usize {
        self.interactions
            .iter()
            .filter(|r| r.invalid.is_some())
            .count()
    }
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Where a row's product is drawn from.
#[derive(Clone, Copy)]
enum Source {
    Trending,
    Cluster,
    Global,
}
/// Share of rows allowed to repeat a (user, product) pair without redrawing.
const REPURCHASE_RATE: f64 = 0.05;
/// Exponent of the Zipf law of product popularity (by rank).
const ZIPF_EXPONENT: f64 = 1.2;
/// Redraws of a product the user already rated.
const REDRAWS: usize = 8;

/// Generates a data set. Deterministic in `config` (seed included).
///
/// ```
/// use recops_synth::{GenConfig, generate};
/// let ds = generate(&GenConfig::tiny())?;
/// assert_eq!(ds.interactions.len(), 600);
/// assert_eq!(ds, generate(&GenConfig::tiny())?);
/// # Ok::<(), recops_synth::Error>(())
/// ```
pub fn generate(config: &GenConfig) -> Result<Dataset> {
    config.validate()?;
    let mut rng = Rng::new(config.seed);
    let catalog = Catalog::generate(config, &mut rng);
    let users = Users::generate(config, &mut rng);
    let calendar = Calendar::new(config);
    let mut rows = draw_interactions(config, &mut rng, &catalog, &users, &calendar);
    rows.sort_by_key(|r| (r.cmt_date, r.user_id, r.product_id));
    add_duplicates(config, &mut rng, &mut rows);
    add_invalid_rows(config, &mut rng, &mut rows);
    Ok(Dataset {
        config: config.clone(),
        products: catalog.products,
        user_ids: users.ids,
        user_clusters: users.clusters,
        interactions: rows,
        drift_start: calendar.drift_start,
    })
}

/// The catalog and the samplers that draw products from it.
struct Catalog {
    /// Base products, then drift's new items.
    products: Vec<Product>,
    /// Products in the base catalog.
    n_base: usize,
    /// Every base product by popularity.
    global: Weighted,
    /// The base products of each cluster.
    cluster_items: Vec<Vec<usize>>,
    /// Popularity samplers over `cluster_items`.
    cluster_samplers: Vec<Weighted>,
    /// Drift's new items, the first ones trending most.
    trending: Weighted,
}

impl Catalog {
    /// Products whose clusters follow categories (with some mixing) and whose
    /// popularity is a long tail (Zipf over a random ranking).
    fn generate(config: &GenConfig, rng: &mut Rng) -> Catalog {
        let n_base = config.products;
        let n_total = n_base + config.drift.new_items;
        let mut products = Vec::with_capacity(n_total);
        for j in 0..n_total {
            let category = rng.index(vocab::CATEGORIES.len());
            let brand = rng.pick(&vocab::BRANDS).copied().unwrap_or("Cocoon");
            let (name, variant) = vocab::product_name(category, brand, rng);
            let cluster = if rng.chance(0.85) {
                category % config.clusters
            } else {
                rng.index(config.clusters)
            };
            products.push(Product {
                product_id: 1_000 + j as i64 * 3 + rng.below(3) as i64,
                description: vocab::description(category, brand, &variant, rng),
                name,
                brand: brand.to_owned(),
                category: vocab::CATEGORIES[category].0.to_owned(),
                cluster,
                trending: j >= n_base,
            });
        }
        let mut rank: Vec<usize> = (0..n_base).collect();
        for i in (1..rank.len()).rev() {
            rank.swap(i, rng.index(i + 1));
        }
        let popularity: Vec<f64> = rank
            .iter()
            .map(|&r| (r as f64 + 1.0).powf(-ZIPF_EXPONENT))
            .collect();
        let cluster_items: Vec<Vec<usize>> = (0..config.clusters)
            .map(|c| (0..n_base).filter(|&j| products[j].cluster == c).collect())
            .collect();
        let cluster_samplers = cluster_items
            .iter()
            .map(|items| Weighted::new(items.iter().map(|&j| popularity[j])))
            .collect();
        let trending =
            Weighted::new((0..config.drift.new_items).map(|k| 1.0 / (k as f64 + 1.0).sqrt()));
        Catalog {
            global: Weighted::new(popularity.iter().copied()),
            products,
            n_base,
            cluster_items,
            cluster_samplers,
            trending,
        }
    }

    /// A product for a user of `cluster` from `source`, and whether it is in the
    /// user's cluster.
    fn pick(&self, source: Source, cluster: usize, rng: &mut Rng) -> (usize, bool) {
        match source {
            Source::Trending => (self.n_base + self.trending.sample(rng).unwrap_or(0), true),
            Source::Cluster => {
                let k = self.cluster_samplers[cluster].sample(rng).unwrap_or(0);
                (self.cluster_items[cluster][k], true)
            }
            Source::Global => {
                let j = self.global.sample(rng).unwrap_or(0);
                (j, self.products[j].cluster == cluster)
            }
        }
    }
}

/// Users: heavy-tailed activity, one taste cluster each.
struct Users {
    ids: Vec<i64>,
    clusters: Vec<usize>,
    activity: Weighted,
}

impl Users {
    fn generate(config: &GenConfig, rng: &mut Rng) -> Users {
        let ids = (0..config.users)
            .map(|i| 100_000 + i as i64 * 4 + rng.below(4) as i64)
            .collect();
        let clusters = (0..config.users)
            .map(|_| rng.index(config.clusters))
            .collect();
        let activity = Weighted::new((0..config.users).map(|_| (rng.normal() * 0.9).exp()));
        Users {
            ids,
            clusters,
            activity,
        }
    }
}

/// The generated period: the window gets `volume_factor` times the daily volume of
/// the days before.
struct Calendar {
    /// Midnight of the first day, microseconds since the epoch.
    start_micros: i64,
    /// Days of the drift window.
    window: i64,
    /// Days before the window.
    before: i64,
    /// Probability that a row falls in the window.
    p_window: f64,
    /// Start of the window, microseconds since the epoch.
    drift_start: i64,
}

impl Calendar {
    fn new(config: &GenConfig) -> Calendar {
        let drift = &config.drift;
        let start_micros = config
            .start
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_micros());
        let window = i64::from(drift.window_days);
        let before = i64::from(config.days) - window;
        let p_window = drift.volume_factor * window as f64
            / (before as f64 + drift.volume_factor * window as f64);
        Calendar {
            start_micros,
            window,
            before,
            p_window,
            drift_start: start_micros + before * MICROS_PER_DAY,
        }
    }

    /// A day (weekends busier: weekdays are kept with probability 0.8) and a time
    /// between 07:00 and 24:00, as microseconds since the epoch, and whether it is in
    /// the window; `None` when the day was dropped.
    fn draw(&self, config: &GenConfig, rng: &mut Rng) -> Option<(i64, bool)> {
        let in_window = self.window > 0 && rng.chance(self.p_window);
        let day = if in_window {
            self.before + rng.below(self.window as u64) as i64
        } else {
            rng.below(self.before as u64) as i64
        };
        let date = config.start + Duration::days(day);
        if date.weekday().number_from_monday() <= 5 && !rng.chance(0.8) {
            return None;
        }
        let seconds = 7 * 3600 + rng.below(17 * 3600) as i64;
        Some((
            self.start_micros + day * MICROS_PER_DAY + seconds * 1_000_000,
            in_window,
        ))
    }
}

/// Exactly `config.interactions` valid rows, unsorted.
fn draw_interactions(
    config: &GenConfig,
    rng: &mut Rng,
    catalog: &Catalog,
    users: &Users,
    calendar: &Calendar,
) -> Vec<GenInteraction> {
    let drift = &config.drift;
    let in_cluster_rating = Weighted::new([0.02, 0.03, 0.08, 0.27, 0.60]);
    let out_cluster_rating = Weighted::new([0.06, 0.08, 0.20, 0.33, 0.33]);
    let mut rows = Vec::with_capacity(config.interactions);
    let mut rated: HashSet<(usize, usize)> = HashSet::with_capacity(config.interactions);
    while rows.len() < config.interactions {
        let Some((cmt_date, in_window)) = calendar.draw(config, rng) else {
            continue;
        };
        let u = users.activity.sample(rng).unwrap_or(0);
        let cluster = users.clusters[u];
        // Customers seldom review the same product twice: a repeat is redrawn (a few
        // times), except for the occasional re-purchase.
        let repurchase = rng.chance(REPURCHASE_RATE);
        // Where the product comes from is decided once; redraws stay in that source.
        let source = if in_window && drift.new_items > 0 && rng.chance(drift.trending_share) {
            Source::Trending
        } else if rng.chance(config.in_cluster_share) && !catalog.cluster_items[cluster].is_empty()
        {
            Source::Cluster
        } else {
            Source::Global
        };
        let mut choice = catalog.pick(source, cluster, rng);
        for _ in 0..REDRAWS {
            if repurchase || !rated.contains(&(u, choice.0)) {
                break;
            }
            choice = catalog.pick(source, cluster, rng);
        }
        let (item, in_cluster) = choice;
        rated.insert((u, item));
        let base = if in_cluster {
            &in_cluster_rating
        } else {
            &out_cluster_rating
        };
        let rating = draw_rating(base, in_window.then_some(drift.rating_shift), rng);
        let comment = draw_comment(config, rating, rng);
        rows.push(GenInteraction {
            user_id: users.ids[u],
            product_id: catalog.products[item].product_id,
            rating,
            comment,
            cmt_date,
            invalid: None,
        });
    }
    rows
}

/// A rating from `base`, moved by the drift's `shift` (in the window): the whole part
/// always, the fractional part for that share of rows.
fn draw_rating(base: &Weighted, shift: Option<f64>, rng: &mut Rng) -> u8 {
    let mut rating = base.sample(rng).unwrap_or(4) as f64 + 1.0;
    if let Some(shift) = shift.filter(|s| *s != 0.0) {
        let whole = shift.trunc();
        let frac = shift - whole;
        let extra = if rng.chance(frac.abs()) {
            frac.signum()
        } else {
            0.0
        };
        rating = (rating + whole + extra).clamp(1.0, 5.0);
    }
    rating as u8
}

/// A comment for `comment_rate` of the rows, sometimes shouted, sometimes in NFD.
fn draw_comment(config: &GenConfig, rating: u8, rng: &mut Rng) -> Option<String> {
    rng.chance(config.comment_rate).then(|| {
        let text = vocab::comment(rating, rng);
        if rng.chance(0.02) {
            text.to_uppercase()
        } else if rng.chance(config.nfd_rate) {
            text.nfd().collect()
        } else {
            text
        }
    })
}

/// Duplicates (same key, another rating, right after the original), keeping the
/// exact row count.
fn add_duplicates(config: &GenConfig, rng: &mut Rng, rows: &mut Vec<GenInteraction>) {
    if config.duplicate_rate <= 0.0 || rows.len() <= 1 {
        return;
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut i = 0;
    while out.len() < rows.len() {
        let row = rows[i].clone();
        let dup = rng.chance(config.duplicate_rate) && out.len() + 1 < rows.len();
        out.push(row.clone());
        if dup {
            let mut again = row;
            again.rating = (again.rating % 5) + 1;
            out.push(again);
        }
        i += 1;
    }
    *rows = out;
}

/// Marks `invalid_rate` of the rows invalid, each in one of the four ways.
fn add_invalid_rows(config: &GenConfig, rng: &mut Rng, rows: &mut [GenInteraction]) {
    if config.invalid_rate <= 0.0 {
        return;
    }
    let kinds = [
        Invalid::EmptyUser,
        Invalid::BadProduct,
        Invalid::RatingOutOfRange,
        Invalid::BadDate,
    ];
    for row in rows {
        if rng.chance(config.invalid_rate) {
            row.invalid = rng.pick(&kinds).copied();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn deterministic_and_sized_as_asked() {
        let cfg = GenConfig::default();
        let a = generate(&cfg).unwrap();
        let b = generate(&cfg).unwrap();
        assert_eq!(a, b);
        let c = generate(&GenConfig {
            seed: 7,
            ..cfg.clone()
        })
        .unwrap();
        assert_ne!(a.interactions, c.interactions);
        assert_eq!(a.interactions.len(), cfg.interactions);
        assert_eq!(a.products.len(), cfg.products);
        assert_eq!(a.user_ids.len(), cfg.users);
        let ids: HashSet<i64> = a.products.iter().map(|p| p.product_id).collect();
        assert_eq!(ids.len(), cfg.products);
        assert!(a.user_ids.windows(2).all(|w| w[0] < w[1]));
        assert!(
            a.interactions
                .windows(2)
                .all(|w| w[0].cmt_date <= w[1].cmt_date)
        );
        // Dates cover the year.
        let first = a.interactions[0].cmt_date;
        let last = a.interactions.last().unwrap().cmt_date;
        assert!((last - first) / MICROS_PER_DAY > 350);
    }

    #[test]
    fn ratings_skew_high_and_popularity_has_a_long_tail() {
        let ds = generate(&GenConfig::default()).unwrap();
        let n = ds.interactions.len() as f64;
        let high = ds.interactions.iter().filter(|r| r.rating >= 4).count() as f64;
        assert!(high / n > 0.7, "{}", high / n);
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for r in &ds.interactions {
            *counts.entry(r.product_id).or_default() += 1;
        }
        let mut c: Vec<usize> = counts.into_values().collect();
        c.sort_unstable_by(|a, b| b.cmp(a));
        let top10: usize = c.iter().take(c.len() / 10).sum();
        assert!(
            top10 as f64 / n > 0.3,
            "top 10% of items: {}",
            top10 as f64 / n
        );
        let bottom_half: usize = c.iter().skip(c.len() / 2).sum();
        assert!(
            (bottom_half as f64 / n) < 0.2,
            "bottom half: {}",
            bottom_half as f64 / n
        );
    }

    #[test]
    fn comments_are_vietnamese_with_the_spec_keywords_and_some_nfd() {
        let ds = generate(&GenConfig::default()).unwrap();
        let comments: Vec<&str> = ds
            .interactions
            .iter()
            .filter_map(|r| r.comment.as_deref())
            .collect();
        let share = comments.len() as f64 / ds.interactions.len() as f64;
        assert!((0.7..0.8).contains(&share), "{share}");
        let nfc: Vec<String> = comments
            .iter()
            .map(|c| c.nfc().collect::<String>().to_lowercase())
            .collect();
        for kw in [
            "thấm nhanh",
            "hiệu quả",
            "thơm",
            "mịn",
            "sáng da",
            "dưỡng ẩm",
            "tốt",
            "đẹp",
            "không thích",
            "dở",
            "tệ",
            "kém",
            "giả",
        ] {
            assert!(nfc.iter().any(|c| c.contains(kw)), "{kw}");
        }
        let decomposed = comments
            .iter()
            .filter(|c| c.nfc().collect::<String>() != **c)
            .count();
        assert!(decomposed > 0);
        assert!(ds.products[0].description.contains("phù hợp với"));
    }

    #[test]
    fn drift_lands_in_the_window() {
        let cfg = GenConfig {
            interactions: 40_000,
            drift: DriftOptions {
                window_days: 14,
                rating_shift: -1.5,
                new_items: 5,
                trending_share: 0.4,
                volume_factor: 2.0,
            },
            ..GenConfig::default()
        };
        let ds = generate(&cfg).unwrap();
        assert_eq!(ds.products.len(), 205);
        let (win, before): (Vec<_>, Vec<_>) = ds
            .interactions
            .iter()
            .partition(|r| r.cmt_date >= ds.drift_start);
        let mean = |v: &[&GenInteraction]| {
            v.iter().map(|r| f64::from(r.rating)).sum::<f64>() / v.len() as f64
        };
        assert!(
            mean(&before) - mean(&win) > 1.0,
            "{} vs {}",
            mean(&before),
            mean(&win)
        );
        let new_ids: HashSet<i64> = ds
            .products
            .iter()
            .filter(|p| p.trending)
            .map(|p| p.product_id)
            .collect();
        assert!(before.iter().all(|r| !new_ids.contains(&r.product_id)));
        let trending = win
            .iter()
            .filter(|r| new_ids.contains(&r.product_id))
            .count() as f64
            / win.len() as f64;
        assert!((0.35..0.45).contains(&trending), "{trending}");
        let per_day_win = win.len() as f64 / 14.0;
        let per_day_before = before.len() as f64 / (365.0 - 14.0);
        let ratio = per_day_win / per_day_before;
        assert!((1.8..2.2).contains(&ratio), "{ratio}");
    }

    #[test]
    fn duplicates_and_invalid_rows_are_injected_on_request() {
        let cfg = GenConfig {
            duplicate_rate: 0.05,
            invalid_rate: 0.02,
            ..GenConfig::default()
        };
        let ds = generate(&cfg).unwrap();
        assert_eq!(ds.interactions.len(), cfg.interactions);
        let mut keys = HashSet::new();
        let dups = ds
            .interactions
            .iter()
            .filter(|r| !keys.insert((r.user_id, r.product_id, r.cmt_date)))
            .count();
        assert!(dups > 500, "{dups}");
        let invalid = ds.invalid_rows();
        assert!((250..550).contains(&invalid), "{invalid}");
    }

    #[test]
    fn bad_settings_are_named() {
        for (cfg, field) in [
            (
                GenConfig {
                    users: 0,
                    ..GenConfig::tiny()
                },
                "users",
            ),
            (
                GenConfig {
                    comment_rate: 1.5,
                    ..GenConfig::tiny()
                },
                "comment_rate",
            ),
            (
                GenConfig {
                    drift: DriftOptions {
                        window_days: 400,
                        ..DriftOptions::default()
                    },
                    ..GenConfig::tiny()
                },
                "drift.window_days",
            ),
            (
                GenConfig {
                    drift: DriftOptions {
                        volume_factor: 0.0,
                        ..DriftOptions::default()
                    },
                    ..GenConfig::tiny()
                },
                "drift.volume_factor",
            ),
        ] {
            let err = generate(&cfg).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
