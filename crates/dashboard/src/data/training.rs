//! `/training`: training runs, one run's per-iteration curves, evaluation against the
//! popularity baseline, its config, and curves of several runs overlaid.

use rusqlite::{Connection, Row};
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

const SELECT: &str = "SELECT run_id, model_type, status, started_at, recall_at_10, ndcg_at_10, \
    coverage, baseline_recall_at_10, improvement_pct, training_time_seconds, data_version, \
    model_id, registry_status, hyperparameters, git_commit, artifacts_path FROM training_runs";

/// Reads `/training`.
pub(crate) fn load(ctx: &Ctx, filter: TrainingFilter) -> TrainingView {
    let runs = store::read(
        &ctx.home.training_db(),
        HINT,
        |p: &TrainingPage| p.runs.is_empty(),
        |c| page(ctx, c, &filter),
    );
    TrainingView { filter, runs }
}

fn row(ctx: &Ctx, r: &Row<'_>) -> rusqlite::Result<TrainingRow> {
    Ok(TrainingRow {
        run_id: r.get(0)?,
        model_type: r.get(1)?,
        status: r.get(2)?,
        started_at: r
            .get::<_, Option<String>>(3)?
            .and_then(|s| ctx.when_str(&s)),
        recall_at_10: r.get(4)?,
        ndcg_at_10: r.get(5)?,
        coverage: r.get(6)?,
        baseline_recall_at_10: r.get(7)?,
        improvement_pct: r.get(8)?,
        training_time_seconds: r.get(9)?,
        data_version: r.get(10)?,
        model_id: r.get(11)?,
        registry_status: r.get(12)?,
    })
}

fn page(ctx: &Ctx, c: &Connection, f: &TrainingFilter) -> rusqlite::Result<TrainingPage> {
    let model_type = f.model_type.clone().filter(|m| !m.is_empty());
    let (at, id) = f
        .after
        .as_deref()
        .and_then(|a| a.split_once('|'))
        .map(|(a, b)| (Some(a.to_owned()), Some(b.to_owned())))
        .unwrap_or((None, None));
    let sql = format!(
        "{SELECT} WHERE (?1 IS NULL OR model_type = ?1) AND (?2 IS NULL OR (started_at, run_id) < (?2, ?3)) \
         ORDER BY started_at DESC, run_id DESC LIMIT {}",
        PAGE_SIZE + 1
    );
    let mut st = c.prepare_cached(&sql)?;
    let mut runs: Vec<TrainingRow> = st
        .query_map(rusqlite::params![model_type, at, id], |r| row(ctx, r))?
        .collect::<rusqlite::Result<_>>()?;
    let next = (runs.len() > PAGE_SIZE).then(|| {
        runs.truncate(PAGE_SIZE);
        runs.last()
            .map(|r| {
                format!(
                    "{}|{}",
                    r.started_at.as_ref().map(|w| w.utc.as_str()).unwrap_or(""),
                    r.run_id
                )
            })
            .unwrap_or_default()
    });
    Ok(TrainingPage { runs, next })
}

/// One run and its config.
pub(crate) fn detail(ctx: &Ctx, run_id: &str) -> Panel<TrainingDetail> {
    store::read(
        &ctx.home.training_db(),
        &format!("no training run {run_id}"),
        |_| false,
        |c| {
            let sql = format!("{SELECT} WHERE run_id = ?1");
            let mut d = c.query_row(&sql, [run_id], |r| {
                Ok(TrainingDetail {
                    run: row(ctx, r)?,
                    hyperparameters: r
                        .get::<_, Option<String>>(13)?
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or(Value::Null),
                    git_commit: r.get(14)?,
                    artifacts_path: r.get(15)?,
                    iterations: 0,
                })
            })?;
            d.iterations = c.query_row(
                "SELECT count(*) FROM iteration_metrics WHERE run_id = ?1",
                [run_id],
                |r| store::count(r, 0),
            )?;
            Ok(d)
        },
    )
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
    store::read(&ctx.home.training_db(), &hint, Chart::is_empty, |c| {
        let series = [Curve::Loss, Curve::ValidationRecall, Curve::ValidationNdcg]
            .into_iter()
            .map(|k| Ok((k.column().to_owned(), points(c, run_id, k)?)))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Chart::numeric("iteration", "value").with_series(series))
    })
}

/// One value of several runs overlaid (at most [`MAX_COMPARED`] runs).
pub(crate) fn compare(ctx: &Ctx, run_ids: &[String], curve: Curve) -> Panel<Chart> {
    store::read(
        &ctx.home.training_db(),
        "pick runs to compare",
        Chart::is_empty,
        |c| {
            let series = run_ids
                .iter()
                .take(MAX_COMPARED)
                .map(|id| Ok((id.clone(), points(c, id, curve)?)))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Chart::numeric("iteration", curve.column()).with_series(series))
        },
    )
}

fn points(c: &Connection, run_id: &str, curve: Curve) -> rusqlite::Result<Vec<(f64, f64)>> {
    let sql = format!(
        "SELECT iteration, {} FROM iteration_metrics WHERE run_id = ?1 AND {0} IS NOT NULL ORDER BY iteration",
        curve.column()
    );
    let mut st = c.prepare_cached(&sql)?;
    st.query_map([run_id], |r| Ok((r.get::<_, f64>(0)?, r.get::<_, f64>(1)?)))?
        .collect()
}

/// recall@10 of every completed run and of its popularity baseline, over time.
pub(crate) fn evaluation_trend(ctx: &Ctx) -> Panel<Chart> {
    store::read(&ctx.home.training_db(), HINT, Chart::is_empty, |c| {
        let mut st = c.prepare_cached(
            "SELECT unixepoch(substr(started_at, 1, 19)), recall_at_10, baseline_recall_at_10, ndcg_at_10 \
             FROM training_runs WHERE status = 'completed' ORDER BY started_at",
        )?;
        let mut model = Vec::new();
        let mut baseline = Vec::new();
        let mut ndcg = Vec::new();
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, Option<f64>>(0)?,
                r.get::<_, Option<f64>>(1)?,
                r.get::<_, Option<f64>>(2)?,
                r.get::<_, Option<f64>>(3)?,
            ))
        })?;
        for row in rows {
            let (Some(t), recall, base, n) = row? else {
                continue;
            };
            model.extend(recall.map(|v| (t, v)));
            baseline.extend(base.map(|v| (t, v)));
            ndcg.extend(n.map(|v| (t, v)));
        }
        Ok(Chart::time("metric@10").with_series(vec![
            ("recall@10".to_owned(), model),
            ("baseline recall@10".to_owned(), baseline),
            ("ndcg@10".to_owned(), ndcg),
        ]))
    })
}
