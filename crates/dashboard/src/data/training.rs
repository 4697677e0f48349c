//! `/training`: training runs, one run's per-iteration curves, evaluation against the
//! popularity baseline, its config, and curves of several runs overlaid.

use recops_tracking::{IterationMetric, TrainingQuery, TrainingRun, TrainingStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Ctx, When};
use crate::charts::Chart;
use crate::store::{self, Panel};

const HINT: &str = "no training runs yet: run model-training";
const PAGE_SIZE: usize = 50;
/// Most runs overlaid in one comparison.
pub(crate) const MAX_COMPARED: usize = 100;

/// The filters of the run list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TrainingFilter {
    /// `als` or `bpr`.
    pub(crate) model_type: Option<String>,
    /// Keyset cursor (`started_at|run_id`).
    pub(crate) after: Option<String>,
}

/// One training run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TrainingRow {
    pub(crate) run_id: String,
    pub(crate) model_type: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) started_at: Option<When>,
    pub(crate) recall_at_10: Option<f64>,
    pub(crate) ndcg_at_10: Option<f64>,
    pub(crate) coverage: Option<f64>,
    pub(crate) baseline_recall_at_10: Option<f64>,
    pub(crate) improvement_pct: Option<f64>,
    pub(crate) training_time_seconds: Option<f64>,
    pub(crate) data_version: Option<String>,
    pub(crate) model_id: Option<String>,
    pub(crate) registry_status: Option<String>,
}

/// A page of runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TrainingPage {
    pub(crate) runs: Vec<TrainingRow>,
    pub(crate) next: Option<String>,
}

/// Everything `/training` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TrainingView {
    pub(crate) filter: TrainingFilter,
    pub(crate) runs: Panel<TrainingPage>,
}

/// One run with its config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TrainingDetail {
    pub(crate) run: TrainingRow,
    pub(crate) hyperparameters: Value,
    pub(crate) git_commit: Option<String>,
    pub(crate) artifacts_path: Option<String>,
    pub(crate) iterations: u64,
}

/// Reads `/training`.
pub(crate) fn load(ctx: &Ctx, filter: TrainingFilter) -> TrainingView {
    let runs = store::read_training(
        &ctx.home,
        HINT,
        |p: &TrainingPage| p.runs.is_empty(),
        |s| page(ctx, s, &filter),
    );
    TrainingView { filter, runs }
}

fn row(ctx: &Ctx, r: TrainingRun) -> TrainingRow {
    TrainingRow {
        started_at: r.started_at.as_deref().and_then(|s| ctx.when_str(s)),
        status: r.status.map(|s| s.as_str().to_owned()),
        registry_status: r.registry_status.map(|s| s.as_str().to_owned()),
        run_id: r.run_id,
        model_type: r.model_type,
        recall_at_10: r.recall_at_10,
        ndcg_at_10: r.ndcg_at_10,
        coverage: r.coverage,
        baseline_recall_at_10: r.baseline_recall_at_10,
        improvement_pct: r.improvement_pct,
        training_time_seconds: r.training_time_seconds,
        data_version: r.data_version,
        model_id: r.model_id,
    }
}

fn page(
    ctx: &Ctx,
    s: &dyn TrainingStore,
    f: &TrainingFilter,
) -> recops_tracking::Result<TrainingPage> {
    let q = TrainingQuery {
        model_type: f.model_type.clone().filter(|m| !m.is_empty()),
        status: None,
        after: f
            .after
            .as_deref()
            .and_then(|a| a.split_once('|'))
            .map(|(a, b)| (a.to_owned(), b.to_owned())),
        limit: PAGE_SIZE + 1,
    };
    let mut runs = s.page(&q)?;
    let next = (runs.len() > PAGE_SIZE).then(|| {
        runs.truncate(PAGE_SIZE);
        runs.last()
            .map(|r| format!("{}|{}", r.started_at.as_deref().unwrap_or(""), r.run_id))
            .unwrap_or_default()
    });
    Ok(TrainingPage {
        runs: runs.into_iter().map(|r| row(ctx, r)).collect(),
        next,
    })
}

/// One run and its config.
pub(crate) fn detail(ctx: &Ctx, run_id: &str) -> Panel<TrainingDetail> {
    let hint = format!("no training run {run_id}");
    store::read_training(&ctx.home, &hint, Option::is_none, |s| {
        let Some(r) = s.get(run_id)? else {
            return Ok(None);
        };
        let iterations = s.iterations(run_id)?.len() as u64;
        Ok(Some(TrainingDetail {
            hyperparameters: r.hyperparameters.clone(),
            git_commit: r.git_commit.clone(),
            artifacts_path: r.artifacts_path.clone(),
            run: row(ctx, r),
            iterations,
        }))
    })
    .and_then(|d| d.map_or_else(|| Panel::empty(&hint), |data| Panel::Ready { data }))
}

/// Which per-iteration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Curve {
    /// Training loss.
    Loss,
    /// Validation recall@10.
    ValidationRecall,
    /// Validation ndcg@10.
    ValidationNdcg,
}

impl Curve {
    fn column(self) -> &'static str {
        match self {
            Curve::Loss => "loss",
            Curve::ValidationRecall => "validation_recall",
            Curve::ValidationNdcg => "validation_ndcg",
        }
    }
}

/// The per-iteration curves of one run (all three values).
pub(crate) fn run_curves(ctx: &Ctx, run_id: &str) -> Panel<Chart> {
    let hint = format!("run {run_id} logged no iterations");
    store::read_training(&ctx.home, &hint, Chart::is_empty, |s| {
        let its = s.iterations(run_id)?;
        let series = [Curve::Loss, Curve::ValidationRecall, Curve::ValidationNdcg]
            .into_iter()
            .map(|k| (k.column().to_owned(), points(&its, k)))
            .collect();
        Ok(Chart::numeric("iteration", "value").with_series(series))
    })
}

/// One value of several runs overlaid (at most [`MAX_COMPARED`] runs).
pub(crate) fn compare(ctx: &Ctx, run_ids: &[String], curve: Curve) -> Panel<Chart> {
    store::read_training(&ctx.home, "pick runs to compare", Chart::is_empty, |s| {
        let series = run_ids
            .iter()
            .take(MAX_COMPARED)
            .map(|id| Ok((id.clone(), points(&s.iterations(id)?, curve))))
            .collect::<recops_tracking::Result<Vec<_>>>()?;
        Ok(Chart::numeric("iteration", curve.column()).with_series(series))
    })
}

/// `(iteration, value)` of the iterations that logged `curve`, by iteration.
fn points(its: &[IterationMetric], curve: Curve) -> Vec<(f64, f64)> {
    its.iter()
        .filter_map(|i| {
            let v = match curve {
                Curve::Loss => i.loss,
                Curve::ValidationRecall => i.validation_recall,
                Curve::ValidationNdcg => i.validation_ndcg,
            }?;
            Some((f64::from(i.iteration), v))
        })
        .collect()
}

/// At most this many completed runs are drawn in the evaluation trend.
const TREND_RUNS: usize = 10_000;

/// recall@10 of every completed run and of its popularity baseline, over time.
pub(crate) fn evaluation_trend(ctx: &Ctx) -> Panel<Chart> {
    store::read_training(&ctx.home, HINT, Chart::is_empty, |s| {
        let mut model = Vec::new();
        let mut baseline = Vec::new();
        let mut ndcg = Vec::new();
        for r in s.evaluations(TREND_RUNS)? {
            let Some(t) = recops_core::parse_timestamp(&r.started_at) else {
                continue;
            };
            let t = t.timestamp() as f64;
            model.extend(r.recall_at_10.map(|v| (t, v)));
            baseline.extend(r.baseline_recall_at_10.map(|v| (t, v)));
            ndcg.extend(r.ndcg_at_10.map(|v| (t, v)));
        }
        Ok(Chart::time("metric@10").with_series(vec![
            ("recall@10".to_owned(), model),
            ("baseline recall@10".to_owned(), baseline),
            ("ndcg@10".to_owned(), ndcg),
        ]))
    })
}
