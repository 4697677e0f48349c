//! Chart data as the browser draws it (uPlot's columns: one x array, one array per
//! series), and the server-side downsampling that keeps every series at most
//! [`MAX_POINTS`] points, so 30 days of minutes or 100 runs x 500 iterations draw
//! instantly.
//!
//! Downsampling is min/max per bucket: the x range is cut into `max_points / 2` equal
//! buckets and each keeps its smallest and largest value (in x order), so spikes and
//! dips survive, unlike averaging or taking every n-th point.

use serde::Serialize;

/// Largest number of points sent per series.
pub(crate) const MAX_POINTS: usize = 1000;

/// One chart's data.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Chart {
    /// `time` (x in Unix seconds) or `number` (iterations, ranks).
    pub(crate) x_kind: &'static str,
    /// The x axis label.
    pub(crate) x_label: String,
    /// The y axis label.
    pub(crate) y_label: String,
    /// Shared x values, ascending.
    pub(crate) x: Vec<f64>,
    /// The series over `x` (`null` where a series has no value).
    pub(crate) series: Vec<SeriesData>,
    /// Events marked on the x axis (model reloads).
    pub(crate) marks: Vec<Mark>,
}

/// One series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SeriesData {
    /// Legend label.
    pub(crate) label: String,
    /// Values over the chart's x.
    pub(crate) values: Vec<Option<f64>>,
}

/// An event drawn as a vertical line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Mark {
    /// Where.
    pub(crate) x: f64,
    /// What.
    pub(crate) label: String,
}

impl Chart {
    /// A chart over time.
    pub(crate) fn time(y_label: &str) -> Self {
        Chart {
            x_kind: "time",
            x_label: "time".to_owned(),
            y_label: y_label.to_owned(),
            ..Chart::default()
        }
    }

    /// A chart over a number (iterations).
    pub(crate) fn numeric(x_label: &str, y_label: &str) -> Self {
        Chart {
            x_kind: "number",
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            ..Chart::default()
        }
    }

    /// True when no series has a value.
    pub(crate) fn is_empty(&self) -> bool {
        self.series
            .iter()
            .all(|s| s.values.iter().all(Option::is_none))
    }

    /// Builds a chart from independent series of (x, y) points: each is downsampled
    /// to [`MAX_POINTS`], then all are aligned on the union of their x values.
    pub(crate) fn with_series(mut self, series: Vec<(String, Vec<(f64, f64)>)>) -> Self {
        let series: Vec<(String, Vec<(f64, f64)>)> = series
            .into_iter()
            .map(|(label, points)| (label, min_max(&points, MAX_POINTS)))
            .collect();
        let mut xs: Vec<f64> = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        self.series = series
            .into_iter()
            .map(|(label, points)| {
                let mut values = vec![None; xs.len()];
                for (x, y) in points {
                    if let Ok(i) = xs.binary_search_by(|v| v.total_cmp(&x)) {
                        values[i] = Some(y);
                    }
                }
                SeriesData { label, values }
            })
            .collect();
        self.x = xs;
        self
    }
}

/// Min/max downsampling of `points` (sorted by x) to at most `max_points` points:
/// `max_points / 2` equal-width x buckets keep their lowest and highest point, in x
/// order. Series that already fit are returned as they are. Non-finite values are
/// dropped.
pub(crate) fn min_max(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if finite.len() <= max_points || max_points < 2 {
        return finite;
    }
    let buckets = max_points / 2;
    let (lo, hi) = (finite[0].0, finite[finite.len() - 1].0);
    let width = (hi - lo) / buckets as f64;
    let mut out = Vec::with_capacity(max_points);
    let mut start = 0;
    while start < finite.len() {
        let b = bucket_of(finite[start].0, lo, width, buckets);
        let end = start
            + finite[start..]
                .iter()
                .take_while(|(x, _)| bucket_of(*x, lo, width, buckets) == b)
                .count();
        push_extremes(&finite[start..end], &mut out);
        start = end;
    }
    out
}

fn bucket_of(x: f64, lo: f64, width: f64, buckets: usize) -> usize {
    if width <= 0.0 {
        return 0;
    }
    (((x - lo) / width) as usize).min(buckets - 1)
}

fn push_extremes(bucket: &[(f64, f64)], out: &mut Vec<(f64, f64)>) {
    let min = bucket
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.1.total_cmp(&b.1.1));
    let max = bucket
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.1.total_cmp(&b.1.1));
    if let (Some((i, &pmin)), Some((j, &pmax))) = (min, max) {
        match i.cmp(&j) {
            std::cmp::Ordering::Equal => out.push(pmin),
            std::cmp::Ordering::Less => out.extend([pmin, pmax]),
            std::cmp::Ordering::Greater => out.extend([pmax, pmin]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| (i as f64, ((i * 7919) % 1000) as f64))
            .collect()
    }

    #[test]
    fn short_series_are_untouched_long_ones_are_capped_in_x_order() {
        let short = wave(500);
        assert_eq!(min_max(&short, MAX_POINTS), short);
        let long = wave(43_200);
        let out = min_max(&long, MAX_POINTS);
        assert!(
            out.len() <= MAX_POINTS && out.len() > MAX_POINTS / 2,
            "{}",
            out.len()
        );
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(out.first().map(|p| p.0), Some(0.0));
    }

    #[test]
    fn spikes_and_dips_survive_downsampling() {
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, 10.0)).collect();
        points[31_337].1 = 999.0;
        points[77_777].1 = -5.0;
        let out = min_max(&points, MAX_POINTS);
        assert!(out.contains(&(31_337.0, 999.0)));
        assert!(out.contains(&(77_777.0, -5.0)));
    }

    #[test]
    fn non_finite_values_are_dropped() {
        let out = min_max(&[(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)], 10);
        assert_eq!(out, vec![(0.0, 1.0), (2.0, 3.0)]);
    }

    #[test]
    fn series_are_aligned_on_the_union_of_their_x() {
        let chart = Chart::numeric("iteration", "loss").with_series(vec![
            ("a".into(), vec![(1.0, 0.5), (2.0, 0.4)]),
            ("b".into(), vec![(2.0, 0.6), (3.0, 0.3)]),
        ]);
        assert_eq!(chart.x, vec![1.0, 2.0, 3.0]);
        assert_eq!(chart.series[0].values, vec![Some(0.5), Some(0.4), None]);
        assert_eq!(chart.series[1].values, vec![None, Some(0.6), Some(0.3)]);
        assert!(!chart.is_empty());
    }
}
