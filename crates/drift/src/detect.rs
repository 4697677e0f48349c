//! The spec's three drift detectors, on fair windows, with statistical extras.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use recops_core::DriftSettings;
use recops_data::InteractionColumns;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::stats;

/// Microseconds per day.
const DAY_MICROS: i64 = 86_400_000_000;

/// The interactions drift detection reads: user, product, rating and date columns, in
/// one or more chunks (one per Parquet row group when [loaded](DriftInput::load)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftInput {
    parts: Vec<InteractionColumns>,
    /// The time the data is as of (µs): rows dated more than [`FUTURE_TOLERANCE_DAYS`]
    /// after it are ignored, so they cannot move the windows.
    as_of: Option<i64>,
}

/// Rows dated more than this many days after [`DriftInput::as_of`] are future rows:
/// counted in [`Windows::future_count`], left out of both windows. One day, like the
/// data refresh's `future_tolerance_hours` default.
pub const FUTURE_TOLERANCE_DAYS: i64 = 1;

impl DriftInput {
    /// Reads the columns drift needs from `data/processed/interactions.parquet` of
    /// `home` (comments and quality scores are not read) and returns them with the
    /// table's data version.
    ///
    /// The input is [as of](DriftInput::as_of) the refresh that wrote the table (the
    /// `created_at` of `data_version.json`), when that is known.
    /// Both files are read under the data's commit lock, after rolling forward the
    /// commit of an interrupted refresh, so they come from the same refresh.
    pub fn load(home: &recops_core::Home) -> crate::Result<(Self, Option<String>)> {
        let guard = recops_data::lock_for_reading(home)?;
        let (parts, meta) = recops_data::read_interaction_columns(&home.interactions())?;
        let as_of = recops_data::DataManifest::read(&home.data_version_file())
            .ok()
            .flatten()
            .and_then(|m| recops_core::parse_timestamp(&m.created_at));
        drop(guard);
        let input = DriftInput { parts, as_of: None };
        Ok((
            match as_of {
                Some(t) => input.as_of(t),
                None => input,
            },
            meta.data_version,
        ))
    }

    /// The same input, as of `time` (the refresh or clock time): rows dated more than
    /// [`FUTURE_TOLERANCE_DAYS`] after it are ignored, so one row dated 2099 cannot
    /// anchor the "new" window in the future and leave it empty.
    pub fn as_of(mut self, time: DateTime<Utc>) -> Self {
        self.as_of = Some(time.timestamp_micros());
        self
    }

    /// Interactions from columns (row `i` = element `i` of each). Ratings outside
    /// 1..=5 are ignored by the rating detector.
    ///
    /// # Panics
    /// When the vectors differ in length.
    pub fn from_columns(
        user_id: Vec<i64>,
        product_id: Vec<i64>,
        rating: Vec<u8>,
        cmt_date: Vec<i64>,
    ) -> Self {
        DriftInput::from_parts(vec![InteractionColumns::new(
            user_id, product_id, rating, cmt_date,
        )])
    }

    /// Interactions in chunks, in order.
    pub fn from_parts(parts: Vec<InteractionColumns>) -> Self {
        DriftInput { parts, as_of: None }
    }

    /// The chunks.
    pub fn parts(&self) -> &[InteractionColumns] {
        &self.parts
    }

    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.parts.iter().map(InteractionColumns::len).sum()
    }

    /// True without interactions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// At most this many historical windows are told apart (about 1,250 years of weeks).
const MAX_HISTORICAL_WINDOWS: i64 = 1 << 16;

/// Rows per unit of parallel work.
const CHUNK_ROWS: usize = 64 * 1024;

/// Dense indexes `0..len` for external ids.
enum IdIndex {
    /// Ids within a range no wider than the data (at most 2^21): index = id - min.
    Offset { min: i64, len: usize },
    /// Scattered ids: a table, in order of first appearance.
    Table {
        index: FxHashMap<i64, u32>,
        ids: Vec<i64>,
    },
}

impl IdIndex {
    /// The index of the ids of `column` over `parts`, which lie within `min..=max`.
    fn build(
        parts: &[InteractionColumns],
        column: fn(&InteractionColumns) -> &[i64],
        (min, max): (i64, i64),
        rows: usize,
    ) -> IdIndex {
        if rows == 0 {
            return IdIndex::Offset { min: 0, len: 0 };
        }
        // Offset indexing costs memory per possible id (counts, user bits per window,
        // in every parallel share): only for ranges no wider than the data, capped.
        let range = i128::from(max) - i128::from(min) + 1;
        if range <= rows.clamp(1 << 16, 1 << 21) as i128 {
            return IdIndex::Offset {
                min,
                len: range as usize,
            };
        }
        let mut index = FxHashMap::default();
        let mut ids = Vec::new();
        for p in parts {
            for &id in column(p) {
                index.entry(id).or_insert_with(|| {
                    ids.push(id);
                    (ids.len() - 1) as u32
                });
            }
        }
        IdIndex::Table { index, ids }
    }

    #[inline]
    fn get(&self, id: i64) -> usize {
        match self {
            IdIndex::Offset { min, .. } => (id - min) as usize,
            IdIndex::Table { index, .. } => index.get(&id).map_or(0, |&i| i as usize),
        }
    }

    fn id(&self, index: usize) -> i64 {
        match self {
            IdIndex::Offset { min, .. } => min + index as i64,
            IdIndex::Table { ids, .. } => ids[index],
        }
    }

    fn len(&self) -> usize {
        match self {
            IdIndex::Offset { len, .. } => *len,
            IdIndex::Table { ids, .. } => ids.len(),
        }
    }
}

/// Ranges of the columns: (user min, max), (product min, max), the newest date not
/// after `future_after`, and how many rows are after it.
#[derive(Clone, Copy)]
struct Ranges {
    user: (i64, i64),
    product: (i64, i64),
    newest: i64,
    future: usize,
}

impl Ranges {
    const EMPTY: Ranges = Ranges {
        user: (i64::MAX, i64::MIN),
        product: (i64::MAX, i64::MIN),
        newest: i64::MIN,
        future: 0,
    };

    fn of(p: &InteractionColumns, future_after: i64) -> Ranges {
        let span = |v: &[i64]| {
            v.iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
        };
        let (newest, future) =
            p.cmt_date()
                .iter()
                .fold((i64::MIN, 0usize), |(newest, future), &t| {
                    if t > future_after {
                        (newest, future + 1)
                    } else {
                        (newest.max(t), future)
                    }
                });
        Ranges {
            user: span(p.user_id()),
            product: span(p.product_id()),
            newest,
            future,
        }
    }

    fn merge(self, o: Ranges) -> Ranges {
        Ranges {
            user: (self.user.0.min(o.user.0), self.user.1.max(o.user.1)),
            product: (
                self.product.0.min(o.product.0),
                self.product.1.max(o.product.1),
            ),
            newest: self.newest.max(o.newest),
            future: self.future + o.future,
        }
    }
}

/// How rows fall into windows: bucket 0 is the new window, bucket k >= 1 the k-th
/// `new_window_days` before the cutoff; rows before the historical start are skipped.
/// Rows after `newest` (future rows) are skipped.
#[derive(Clone, Copy)]
struct Bucketing {
    cutoff: i64,
    newest: i64,
    hist_start: Option<i64>,
    window: i64,
}

impl Bucketing {
    #[inline]
    fn bucket(&self, t: i64) -> Option<usize> {
        if t > self.newest {
            None
        } else if t > self.cutoff {
            Some(0)
        } else if self.hist_start.is_none_or(|s| t > s) {
            // Clamped: one row dated in year -290000 must not allocate millions of
            // windows; rows that old share the oldest one.
            let k = self.cutoff.saturating_sub(t) / self.window;
            Some(1 + k.min(MAX_HISTORICAL_WINDOWS) as usize)
        } else {
            None
        }
    }
}

/// Counts over a share of the rows; shares merge by addition (and OR of user bits).
#[derive(Clone)]
struct Counts {
    /// Rating counts: [historical, new], index 0 = rating 1.
    ratings: [[u64; 5]; 2],
    /// Interactions: [historical, new].
    rows: [usize; 2],
    /// Oldest historical interaction.
    hist_first: i64,
    /// Per product index: [historical, new] interactions.
    products: Vec<[u64; 2]>,
    /// Per bucket: the users active in it, as bits of the user index.
    users: Vec<Vec<u64>>,
    /// Per bucket: interactions.
    bucket_rows: Vec<u64>,
}

impl Counts {
    fn new(products: usize) -> Counts {
        Counts {
            ratings: [[0; 5]; 2],
            rows: [0; 2],
            hist_first: i64::MAX,
            products: vec![[0; 2]; products],
            users: Vec::new(),
            bucket_rows: Vec::new(),
        }
    }

    fn add(
        mut self,
        p: &InteractionColumns,
        rows: std::ops::Range<usize>,
        b: Bucketing,
        users: &IdIndex,
        products: &IdIndex,
    ) -> Counts {
        let (uid, pid, rating, date) = (
            &p.user_id()[rows.clone()],
            &p.product_id()[rows.clone()],
            &p.rating()[rows.clone()],
            &p.cmt_date()[rows],
        );
        for i in 0..date.len() {
            let t = date[i];
            let Some(bucket) = b.bucket(t) else { continue };
            let side = usize::from(bucket == 0);
            if side == 0 {
                self.hist_first = self.hist_first.min(t);
            }
            self.rows[side] += 1;
            let r = rating[i];
            if (1..=5).contains(&r) {
                self.ratings[side][usize::from(r - 1)] += 1;
            }
            self.products[products.get(pid[i])][side] += 1;
            if bucket >= self.users.len() {
                self.users.resize(bucket + 1, Vec::new());
                self.bucket_rows.resize(bucket + 1, 0);
            }
            let u = users.get(uid[i]);
            let bits = &mut self.users[bucket];
            if bits.len() <= u / 64 {
                bits.resize(u / 64 + 1, 0);
            }
            bits[u / 64] |= 1 << (u % 64);
            self.bucket_rows[bucket] += 1;
        }
        self
    }

    fn merge(mut self, o: Counts) -> Counts {
        for side in 0..2 {
            for r in 0..5 {
                self.ratings[side][r] += o.ratings[side][r];
            }
            self.rows[side] += o.rows[side];
        }
        self.hist_first = self.hist_first.min(o.hist_first);
        for (a, b) in self.products.iter_mut().zip(&o.products) {
            a[0] += b[0];
            a[1] += b[1];
        }
        if self.users.len() < o.users.len() {
            self.users.resize(o.users.len(), Vec::new());
            self.bucket_rows.resize(o.users.len(), 0);
        }
        for (k, bits) in o.users.into_iter().enumerate() {
            or_into(&mut self.users[k], &bits);
            self.bucket_rows[k] += o.bucket_rows[k];
        }
        self
    }
}

/// `into |= bits`, growing `into` as needed.
fn or_into(into: &mut Vec<u64>, bits: &[u64]) {
    if into.len() < bits.len() {
        into.resize(bits.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(bits) {
        *a |= b;
    }
}

/// Severity of a drift, ordered low < medium < high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to act on.
    Low,
    /// Worth a look.
    Medium,
    /// Act: retrain, review the pipeline.
    High,
}

impl Severity {
    /// `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// The two windows compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Windows {
    /// Start of the historical window (its first interaction).
    pub historical_from: Option<DateTime<Utc>>,
    /// End of the historical window = start of the new one.
    pub cutoff: Option<DateTime<Utc>>,
    /// End of the new window: the newest interaction that is not a future row.
    pub new_to: Option<DateTime<Utc>>,
    /// Rows dated more than a day after the time the data is as of
    /// ([`DriftInput::as_of`]), left out of both windows.
    #[serde(default)]
    pub future_count: usize,
    /// Length of the historical window in days.
    pub historical_days: f64,
    /// Length of the new window in days.
    pub new_days: f64,
    /// Interactions in the historical window.
    pub historical_count: usize,
    /// Interactions in the new window.
    pub new_count: usize,
    /// True when a window has fewer interactions than `min_interactions`: the
    /// detectors then report `insufficient_data` and no drift.
    pub insufficient_data: bool,
}

/// Result of the rating detector (spec fields plus chi-square, PSI and JS distance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatingDrift {
    /// `max_difference > threshold` (the spec's rule decides).
    pub drift_detected: bool,
    /// high (> 0.2), medium (> 0.1), low.
    pub severity: Severity,
    /// Largest absolute difference between the rating shares.
    pub max_difference: f64,
    /// `{historical: {rating: share}, new: {...}, differences: {...}}`.
    pub rating_comparison: RatingComparison,
    /// Chi-square test of homogeneity of the two rating count vectors.
    pub chi_square: Option<f64>,
    /// Its p-value (small = the distributions differ).
    pub chi_square_p_value: Option<f64>,
    /// Population Stability Index (bands 0.1 / 0.25).
    pub psi: f64,
    /// PSI band: `stable` (< 0.1), `moderate` (< 0.25), `large`.
    pub psi_band: String,
    /// Jensen–Shannon distance (base 2).
    pub js_distance: f64,
    /// True when a window had too few interactions to judge.
    pub insufficient_data: bool,
}

/// Shares per rating 1..=5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatingComparison {
    /// Historical shares by rating.
    pub historical: std::collections::BTreeMap<u8, f64>,
    /// New shares by rating.
    pub new: std::collections::BTreeMap<u8, f64>,
    /// Absolute differences by rating.
    pub differences: std::collections::BTreeMap<u8, f64>,
}

/// Result of the popularity detector (spec fields plus rank-biased overlap).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopularityDrift {
    /// `jaccard_similarity < 0.8` (the spec's rule decides).
    pub shift_detected: bool,
    /// Jaccard similarity of the two top-K sets.
    pub jaccard_similarity: f64,
    /// Products entering the top-K, most popular first.
    pub new_trending: Vec<i64>,
    /// Products leaving the top-K, formerly most popular first.
    pub dropped_out: Vec<i64>,
    /// Products in both top-K sets.
    pub stable_count: usize,
    /// Rank-biased overlap (p = 0.9) of the two top-K rankings.
    pub rank_biased_overlap: f64,
    /// K.
    pub top_k: usize,
    /// True when a window had too few interactions to judge.
    pub insufficient_data: bool,
}

/// Activity figures of a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InteractionStats {
    /// Interactions in the window.
    pub total_interactions: usize,
    /// Interactions per day.
    pub interactions_per_day: f64,
    /// Mean interactions per active user over a `new_window_days` window (for the
    /// historical side, the mean over its consecutive windows of that length).
    pub avg_interactions_per_user: f64,
    /// Distinct users.
    pub active_users: usize,
}

/// Result of the interaction detector (spec fields plus per-day figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionDrift {
    /// `|volume_change| > 20 %` or `|user_activity_change| > 20 %`.
    pub drift_detected: bool,
    /// Change in interactions per day, percent.
    pub volume_change_pct: f64,
    /// Change in interactions per active user per window, percent.
    pub user_activity_change_pct: f64,
    /// Share of the new window's users never seen before, percent.
    pub new_users_pct: f64,
    /// Historical figures.
    pub historical: InteractionStats,
    /// New figures.
    pub new: InteractionStats,
    /// True when a window had too few interactions to judge.
    pub insufficient_data: bool,
}

/// All three detectors on one data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftResults {
    /// The windows compared.
    pub windows: Windows,
    /// Rating drift.
    pub rating_drift: RatingDrift,
    /// Popularity drift.
    pub popularity_drift: PopularityDrift,
    /// Interaction drift.
    pub interaction_drift: InteractionDrift,
    /// The spec's overall severity: the rating severity, or high when popularity
    /// shifted or interactions drifted.
    pub overall_severity: Severity,
    /// The spec's recommendations.
    pub recommendations: Vec<String>,
}

/// Runs the three detectors: "new" is the last `new_window_days` (7) before the newest
/// interaction, "historical" everything before it (or the last `historical_days`
/// when set). Volumes are compared per day and user activity per window of equal
/// length, so the same behaviour over windows of different lengths is not drift.
///
/// The anchor is the newest interaction that is not a *future row*: when the input is
/// [as of](DriftInput::as_of) a time (the job's input is, from the refresh that wrote
/// it), rows dated more than [`FUTURE_TOLERANCE_DAYS`] after that time are left out of
/// both windows and counted in [`Windows::future_count`]. Anchoring at the newest date
/// of all rows let one row dated 2099 put the "new" window in 2099, where it held that
/// one row: `insufficient_data` on every later run, drift never detected. Anchoring at
/// the clock itself would call a week without new data "no data"; the newest
/// non-future date keeps the spec's "last week of data" meaning.
pub fn detect_drift(input: &DriftInput, cfg: &DriftSettings) -> DriftResults {
    let plan = WindowPlan::new(input, cfg);
    let counts = plan.count(input);
    let (windows, figures) = plan.figures(&counts, cfg);
    verdict(windows, &figures, cfg)
}

/// Phase 1: where the windows lie, and the dense id indexes of the counting pass.
struct WindowPlan {
    n: usize,
    newest: Option<i64>,
    future: usize,
    bucketing: Bucketing,
    users: IdIndex,
    products: IdIndex,
}

impl WindowPlan {
    fn new(input: &DriftInput, cfg: &DriftSettings) -> WindowPlan {
        let parts = input.parts();
        let future_after = input.as_of.map_or(i64::MAX, |t| {
            t.saturating_add(FUTURE_TOLERANCE_DAYS * DAY_MICROS)
        });
        let ranges = parts
            .par_iter()
            .map(|p| Ranges::of(p, future_after))
            .reduce(|| Ranges::EMPTY, Ranges::merge);
        let n = input.len() - ranges.future;
        let newest = (n > 0).then_some(ranges.newest);
        if ranges.future > 0 {
            tracing::warn!(
                future_rows = ranges.future,
                "interactions dated after the data's refresh time are left out of the drift windows"
            );
        }
        let window = i64::from(cfg.new_window_days).max(1) * DAY_MICROS;
        let cutoff = newest.map(|t| t.saturating_sub(window));
        let hist_start = match (cutoff, cfg.historical_days) {
            (Some(c), Some(days)) => Some(c.saturating_sub(i64::from(days) * DAY_MICROS)),
            _ => None,
        };
        WindowPlan {
            n,
            newest,
            future: ranges.future,
            bucketing: Bucketing {
                cutoff: cutoff.unwrap_or(0),
                newest: newest.unwrap_or(i64::MIN),
                hist_start,
                window,
            },
            users: IdIndex::build(parts, InteractionColumns::user_id, ranges.user, input.len()),
            products: IdIndex::build(
                parts,
                InteractionColumns::product_id,
                ranges.product,
                input.len(),
            ),
        }
    }

    fn cutoff(&self) -> Option<i64> {
        self.newest.map(|_| self.bucketing.cutoff)
    }

    /// Phase 2: one parallel pass over the rows: rating counts, product counts per
    /// window, and the users of every window as bits of a dense user index (window 0
    /// = the new one, window k >= 1 = the k-th `new_window_days` before the cutoff),
    /// so distinct-user counts cost no hashing of user sets.
    fn count(&self, input: &DriftInput) -> Counts {
        let products = self.products.len();
        input
            .parts()
            .par_iter()
            .flat_map_iter(|p| {
                (0..p.len())
                    .step_by(CHUNK_ROWS)
                    .map(move |s| (p, s..(s + CHUNK_ROWS).min(p.len())))
            })
            .fold(
                || Counts::new(products),
                |acc, (p, rows)| acc.add(p, rows, self.bucketing, &self.users, &self.products),
            )
            .reduce(|| Counts::new(products), Counts::merge)
    }

    /// Phase 3: the windows and the figures the detectors compare.
    fn figures(&self, counts: &Counts, cfg: &DriftSettings) -> (Windows, Figures) {
        let [hist_count, new_count] = counts.rows;
        let hist_first = counts.hist_first;
        let windows_users = &counts.users;
        let bucket_counts = &counts.bucket_rows;
        let popcount = |bits: &[u64]| bits.iter().map(|w| w.count_ones() as usize).sum::<usize>();
        let new_bits: &[u64] = windows_users.first().map_or(&[], Vec::as_slice);
        let mut hist_bits: Vec<u64> = Vec::new();
        for bits in windows_users.iter().skip(1) {
            or_into(&mut hist_bits, bits);
        }
        let new_user_count = popcount(new_bits);
        let unseen = new_bits
            .iter()
            .enumerate()
            .map(|(k, w)| (w & !hist_bits.get(k).copied().unwrap_or(0)).count_ones() as usize)
            .sum::<usize>();
        let side_pop = |side: usize| -> HashMap<i64, u64> {
            counts
                .products
                .iter()
                .enumerate()
                .filter(|(_, c)| c[side] > 0)
                .map(|(i, c)| (self.products.id(i), c[side]))
                .collect()
        };
        let to_time = |micros: i64| DateTime::<Utc>::from_timestamp_micros(micros);
        let cutoff = self.cutoff();
        let new_days = f64::from(cfg.new_window_days);
        let historical_days = match (cutoff, hist_count) {
            (Some(c), n) if n > 0 => c.saturating_sub(hist_first) as f64 / DAY_MICROS as f64,
            _ => 0.0,
        }
        .max(if hist_count > 0 { 1.0 } else { 0.0 });
        let windows = Windows {
            historical_from: (hist_count > 0).then(|| to_time(hist_first)).flatten(),
            cutoff: cutoff.and_then(to_time),
            new_to: self.newest.and_then(to_time),
            future_count: self.future,
            historical_days,
            new_days,
            historical_count: hist_count,
            new_count,
            insufficient_data: hist_count < cfg.min_interactions
                || new_count < cfg.min_interactions,
        };
        // Only full historical windows count for activity (a partial oldest window
        // would understate it).
        let full_windows = (historical_days / new_days).floor().max(1.0) as usize;
        let activity: Vec<f64> = (1..windows_users.len())
            .filter(|&b| b <= full_windows && bucket_counts[b] > 0)
            .map(|b| bucket_counts[b] as f64 / popcount(&windows_users[b]).max(1) as f64)
            .collect();
        let hist_stats = InteractionStats {
            total_interactions: hist_count,
            interactions_per_day: if historical_days > 0.0 {
                hist_count as f64 / historical_days
            } else {
                0.0
            },
            avg_interactions_per_user: if activity.is_empty() {
                0.0
            } else {
                activity.iter().sum::<f64>() / activity.len() as f64
            },
            active_users: popcount(&hist_bits),
        };
        let new_stats = InteractionStats {
            total_interactions: new_count,
            interactions_per_day: new_count as f64 / new_days,
            avg_interactions_per_user: new_count as f64 / new_user_count.max(1) as f64,
            active_users: new_user_count,
        };
        let new_users_pct = if new_user_count == 0 {
            0.0
        } else {
            unseen as f64 * 100.0 / new_user_count as f64
        };
        debug_assert!(self.n >= hist_count + new_count);
        let figures = Figures {
            ratings: counts.ratings,
            hist_pop: side_pop(0),
            new_pop: side_pop(1),
            hist_stats,
            new_stats,
            new_users_pct,
        };
        (windows, figures)
    }
}

/// What the detectors compare.
struct Figures {
    /// [historical, new] rating counts.
    ratings: [[u64; 5]; 2],
    hist_pop: HashMap<i64, u64>,
    new_pop: HashMap<i64, u64>,
    hist_stats: InteractionStats,
    new_stats: InteractionStats,
    new_users_pct: f64,
}

/// Phase 4: the three detectors, the overall severity and the recommendations.
fn verdict(windows: Windows, f: &Figures, cfg: &DriftSettings) -> DriftResults {
    let [hist_ratings, new_ratings] = f.ratings;
    let mut rating_drift = detect_rating_drift(&hist_ratings, &new_ratings, cfg.rating_threshold);
    let mut popularity_drift =
        detect_popularity_drift(&f.hist_pop, &f.new_pop, cfg.top_k, cfg.jaccard_threshold);
    let mut interaction_drift = detect_interaction_drift(
        &f.hist_stats,
        &f.new_stats,
        f.new_users_pct,
        cfg.interaction_change_threshold,
    );
    let insufficient = windows.insufficient_data;
    if insufficient {
        rating_drift.drift_detected = false;
        rating_drift.severity = Severity::Low;
        rating_drift.insufficient_data = true;
        popularity_drift.shift_detected = false;
        popularity_drift.insufficient_data = true;
        interaction_drift.drift_detected = false;
        interaction_drift.insufficient_data = true;
    }
    let overall_severity = [
        rating_drift.severity,
        if popularity_drift.shift_detected {
            Severity::High
        } else {
            Severity::Low
        },
        if interaction_drift.drift_detected {
            Severity::High
        } else {
            Severity::Low
        },
    ]
    .into_iter()
    .max()
    .unwrap_or(Severity::Low);
    let mut recommendations = Vec::new();
    if rating_drift.drift_detected {
        recommendations.push("Rating distribution changed - consider retraining".to_owned());
    }
    if popularity_drift.shift_detected {
        recommendations.push("Popular items changed - update popularity baseline".to_owned());
    }
    if interaction_drift.drift_detected {
        recommendations.push("Interaction patterns changed - review data pipeline".to_owned());
    }
    if insufficient {
        recommendations.push(format!(
            "Not enough data to judge drift ({} historical, {} new interactions; at least {} each are needed)",
            windows.historical_count, windows.new_count, cfg.min_interactions
        ));
    }
    if windows.future_count > 0 {
        recommendations.push(format!(
            "{} interaction(s) dated after the data's refresh time were left out - check the source's clock",
            windows.future_count
        ));
    }
    DriftResults {
        windows,
        rating_drift,
        popularity_drift,
        interaction_drift,
        overall_severity,
        recommendations,
    }
}

/// The spec's `detect_rating_drift` on rating counts (index 0 = rating 1).
pub fn detect_rating_drift(historical: &[u64; 5], new: &[u64; 5], threshold: f64) -> RatingDrift {
    let shares = |c: &[u64; 5]| {
        let s: u64 = c.iter().sum();
        c.map(|x| if s == 0 { 0.0 } else { x as f64 / s as f64 })
    };
    let (h, n) = (shares(historical), shares(new));
    let diffs: Vec<f64> = h.iter().zip(&n).map(|(a, b)| (a - b).abs()).collect();
    let max_difference = diffs.iter().copied().fold(0.0, f64::max);
    let severity = if max_difference > 0.2 {
        Severity::High
    } else if max_difference > 0.1 {
        Severity::Medium
    } else {
        Severity::Low
    };
    let by_rating = |v: &[f64]| (1u8..=5).zip(v.iter().copied()).collect();
    let chi = stats::chi_square_homogeneity(historical, new);
    let psi = stats::psi(&h, &n);
    RatingDrift {
        drift_detected: max_difference > threshold,
        severity,
        max_difference,
        rating_comparison: RatingComparison {
            historical: by_rating(&h),
            new: by_rating(&n),
            differences: by_rating(&diffs),
        },
        chi_square: chi.map(|c| c.0),
        chi_square_p_value: chi.map(|c| c.2),
        psi,
        psi_band: if psi < 0.1 {
            "stable"
        } else if psi < 0.25 {
            "moderate"
        } else {
            "large"
        }
        .to_owned(),
        js_distance: stats::jensen_shannon_distance(&h, &n),
        insufficient_data: false,
    }
}

/// The top `k` products by count, most popular first; ties by lower product id.
fn top_k(pop: &HashMap<i64, u64>, k: usize) -> Vec<i64> {
    let mut v: Vec<(i64, u64)> = pop.iter().map(|(&p, &c)| (p, c)).collect();
    let by_rank = |a: &(i64, u64), b: &(i64, u64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > k {
        v.select_nth_unstable_by(k, by_rank);
        v.truncate(k);
    }
    v.sort_unstable_by(by_rank);
    v.into_iter().map(|(p, _)| p).collect()
}

/// The spec's `detect_popularity_drift` (Jaccard of the top-K sets) plus rank-biased
/// overlap of the rankings.
pub fn detect_popularity_drift(
    old: &HashMap<i64, u64>,
    new: &HashMap<i64, u64>,
    k: usize,
    jaccard_threshold: f64,
) -> PopularityDrift {
    let (old_top, new_top) = (top_k(old, k), top_k(new, k));
    let old_set: HashSet<i64> = old_top.iter().copied().collect();
    let new_set: HashSet<i64> = new_top.iter().copied().collect();
    let inter = old_set.intersection(&new_set).count();
    let union = old_set.union(&new_set).count();
    let jaccard = if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    };
    PopularityDrift {
        shift_detected: jaccard < jaccard_threshold,
        jaccard_similarity: jaccard,
        new_trending: new_top
            .iter()
            .copied()
            .filter(|p| !old_set.contains(p))
            .collect(),
        dropped_out: old_top
            .iter()
            .copied()
            .filter(|p| !new_set.contains(p))
            .collect(),
        stable_count: inter,
        rank_biased_overlap: stats::rank_biased_overlap(&old_top, &new_top, 0.9),
        top_k: k,
        insufficient_data: false,
    }
}

/// The spec's `detect_interaction_drift`, on per-day volume and per-window activity.
pub fn detect_interaction_drift(
    historical: &InteractionStats,
    new: &InteractionStats,
    new_users_pct: f64,
    threshold: f64,
) -> InteractionDrift {
    let change = |new: f64, old: f64| if old > 0.0 { (new - old) / old } else { 0.0 };
    let volume = change(new.interactions_per_day, historical.interactions_per_day);
    let activity = change(
        new.avg_interactions_per_user,
        historical.avg_interactions_per_user,
    );
    InteractionDrift {
        drift_detected: volume.abs() > threshold || activity.abs() > threshold,
        volume_change_pct: volume * 100.0,
        user_activity_change_pct: activity * 100.0,
        new_users_pct,
        historical: *historical,
        new: *new,
        insufficient_data: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DriftSettings {
        DriftSettings::default()
    }

    #[test]
    fn rating_drift_hand_computed() {
        // 100 historical: 10/10/20/30/30 %; 100 new: 5/5/10/30/50 %.
        let d = detect_rating_drift(&[10, 10, 20, 30, 30], &[5, 5, 10, 30, 50], 0.1);
        assert!((d.max_difference - 0.2).abs() < 1e-12);
        assert!(d.drift_detected);
        assert_eq!(d.severity, Severity::Medium); // 0.2 is not > 0.2
        assert!((d.rating_comparison.differences[&3] - 0.1).abs() < 1e-12);
        assert!(d.chi_square_p_value.unwrap() < 0.05);
        let same = detect_rating_drift(&[1, 2, 3, 4, 5], &[2, 4, 6, 8, 10], 0.1);
        assert!(!same.drift_detected && same.severity == Severity::Low && same.psi.abs() < 1e-12);
    }

    #[test]
    fn popularity_drift_hand_computed() {
        let old: HashMap<i64, u64> = [(1, 50), (2, 40), (3, 30), (4, 20), (5, 10)].into();
        let new: HashMap<i64, u64> = [(1, 5), (2, 4), (3, 3), (6, 90), (7, 80)].into();
        let d = detect_popularity_drift(&old, &new, 4, 0.8);
        // top4 old {1,2,3,4}; new {6,7,1,2}: 2 shared, union 6.
        assert!((d.jaccard_similarity - 2.0 / 6.0).abs() < 1e-12);
        assert!(d.shift_detected);
        assert_eq!(d.new_trending, vec![6, 7]);
        assert_eq!(d.dropped_out, vec![3, 4]);
        assert_eq!(d.stable_count, 2);
        let same = detect_popularity_drift(&old, &old, 4, 0.8);
        assert!(!same.shift_detected && (same.rank_biased_overlap - 1.0).abs() < 1e-12);
    }

    /// `per_day` interactions per day over `days` days ending now, users cycling over
    /// `users`, ratings by `rating(i)`.
    fn synth(days: i64, per_day: i64, users: i64, rating: impl Fn(i64) -> u8) -> DriftInput {
        let (u, p, r, t) = synth_columns(days, per_day, users, rating);
        DriftInput::from_columns(u, p, r, t)
    }

    type Columns = (Vec<i64>, Vec<i64>, Vec<u8>, Vec<i64>);

    fn synth_columns(days: i64, per_day: i64, users: i64, rating: impl Fn(i64) -> u8) -> Columns {
        let end = 1_700_000_000_000_000i64;
        let mut c: Columns = Default::default();
        let mut i = 0;
        for day in 0..days {
            for k in 0..per_day {
                c.0.push(i % users);
                c.1.push(i % 50);
                c.2.push(rating(i));
                c.3.push(end - day * DAY_MICROS - k * 1_000_000);
                i += 1;
            }
        }
        c
    }

    #[test]
    fn equal_behaviour_over_unequal_windows_is_not_drift() {
        // A year of steady traffic: the 7-day window has 1/52 of the volume, which the
        // spec's raw comparison would call a -98 % drift.
        let d = synth(365, 100, 300, |i| (i % 5 + 1) as u8);
        let r = detect_drift(&d, &cfg());
        assert!(!r.windows.insufficient_data);
        assert!(
            !r.interaction_drift.drift_detected,
            "{:?}",
            r.interaction_drift
        );
        assert!(r.interaction_drift.volume_change_pct.abs() < 5.0);
        assert!(
            r.interaction_drift.user_activity_change_pct.abs() < 5.0,
            "{:?}",
            r.interaction_drift
        );
        assert!(!r.rating_drift.drift_detected);
        assert!(!r.popularity_drift.shift_detected);
        assert_eq!(r.overall_severity, Severity::Low);
        assert!(r.recommendations.is_empty());
    }

    #[test]
    fn a_volume_jump_and_a_rating_shift_in_the_last_week_are_detected() {
        let mut d = synth_columns(120, 50, 200, |i| (i % 5 + 1) as u8);
        // Last week: twice the volume, all 5-star.
        let extra = synth_columns(7, 50, 200, |_| 5);
        d.0.extend(extra.0);
        d.1.extend(extra.1);
        d.2.extend(extra.2);
        d.3.extend(extra.3);
        for i in 0..d.3.len() {
            if d.3[i] > 1_700_000_000_000_000 - 7 * DAY_MICROS {
                d.2[i] = 5;
            }
        }
        let r = detect_drift(&DriftInput::from_columns(d.0, d.1, d.2, d.3), &cfg());
        assert!(r.interaction_drift.drift_detected);
        assert!(
            (r.interaction_drift.volume_change_pct - 100.0).abs() < 5.0,
            "{:?}",
            r.interaction_drift
        );
        assert!(r.rating_drift.drift_detected);
        assert_eq!(r.rating_drift.severity, Severity::High);
        assert_eq!(r.overall_severity, Severity::High);
        assert_eq!(r.recommendations.len(), 2);
    }

    #[test]
    fn one_row_dated_2099_cannot_blind_detection() {
        let mut d = synth_columns(120, 50, 200, |i| (i % 5 + 1) as u8);
        for i in 0..d.3.len() {
            if d.3[i] > 1_700_000_000_000_000 - 7 * DAY_MICROS {
                d.2[i] = 5;
            }
        }
        let far = parse_2099();
        d.0.push(1);
        d.1.push(1);
        d.2.push(1);
        d.3.push(far);
        let input = DriftInput::from_columns(d.0, d.1, d.2, d.3);
        // Without a reference time the 2099 row anchors the window: blind.
        let blind = detect_drift(&input, &cfg());
        assert!(blind.windows.insufficient_data);
        // As of the refresh time, it is a future row and detection works.
        let as_of = DateTime::<Utc>::from_timestamp_micros(1_700_000_000_000_000).unwrap();
        let r = detect_drift(&input.as_of(as_of), &cfg());
        assert!(!r.windows.insufficient_data, "{:?}", r.windows);
        assert_eq!(r.windows.future_count, 1);
        assert_eq!(r.windows.new_to, Some(as_of));
        assert!(r.rating_drift.drift_detected);
        assert!(
            r.recommendations
                .iter()
                .any(|m| m.contains("1 interaction(s) dated after"))
        );
    }

    #[test]
    fn one_row_at_the_dawn_of_time_costs_no_memory_blowup() {
        let (mut u, mut p, mut r, mut t) = synth_columns(60, 20, 50, |i| (i % 5 + 1) as u8);
        u.push(1);
        p.push(1);
        r.push(3);
        t.push(i64::MIN);
        let res = detect_drift(&DriftInput::from_columns(u, p, r, t), &cfg());
        assert_eq!(
            res.windows.historical_count + res.windows.new_count,
            60 * 20 + 1
        );
    }

    fn parse_2099() -> i64 {
        DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z")
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn too_few_interactions_is_insufficient_data_not_drift() {
        let d = synth(30, 5, 20, |i| if i < 35 { 1 } else { 5 });
        let r = detect_drift(&d, &cfg());
        assert!(r.windows.insufficient_data);
        assert!(r.rating_drift.insufficient_data && !r.rating_drift.drift_detected);
        assert!(!r.interaction_drift.drift_detected);
        assert_eq!(r.overall_severity, Severity::Low);
        assert!(r.recommendations[0].contains("Not enough data"));
        let empty = detect_drift(&DriftInput::default(), &cfg());
        assert!(empty.windows.insufficient_data);
    }

    #[test]
    fn chunking_and_scattered_ids_do_not_change_the_result() {
        let (u, p, r, t) = synth_columns(120, 80, 300, |i| ((i * 7) % 5 + 1) as u8);
        let whole = detect_drift(
            &DriftInput::from_columns(u.clone(), p.clone(), r.clone(), t.clone()),
            &cfg(),
        );
        // Rows in uneven chunks, in another order.
        let mut parts = Vec::new();
        let mut start = 0usize;
        for len in [1, 999, 5000, 77, usize::MAX] {
            let end = start.saturating_add(len).min(t.len());
            let rev = |v: &[i64]| v[start..end].iter().rev().copied().collect::<Vec<_>>();
            parts.push(InteractionColumns::new(
                rev(&u),
                rev(&p),
                r[start..end].iter().rev().copied().collect(),
                rev(&t),
            ));
            start = end;
        }
        assert_eq!(detect_drift(&DriftInput::from_parts(parts), &cfg()), whole);
        // Ids far apart (hashed index) instead of dense (offset index).
        let spread = |v: &[i64]| v.iter().map(|x| x * 1_000_000_007 - 5).collect::<Vec<_>>();
        let scattered = detect_drift(
            &DriftInput::from_columns(spread(&u), spread(&p), r, t),
            &cfg(),
        );
        assert_eq!(scattered.interaction_drift, whole.interaction_drift);
        assert_eq!(scattered.rating_drift, whole.rating_drift);
        let back = |v: &[i64]| {
            v.iter()
                .map(|x| (x + 5) / 1_000_000_007)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            back(&scattered.popularity_drift.new_trending),
            whole.popularity_drift.new_trending
        );
        assert_eq!(
            scattered.popularity_drift.jaccard_similarity,
            whole.popularity_drift.jaccard_similarity
        );
    }
}
