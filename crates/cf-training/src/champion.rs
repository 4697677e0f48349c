//! Re-evaluating a saved model on another model's evaluation split (the champion rule:
//! a new model and the current champion are compared on the same rows).
//!
//! The split's users and items are mapped to the saved model's rows by external id:
//! - a user the model does not know gets the plain popularity ranking of the split's
//!   training cells (what the recommender serves such a user);
//! - an item the model does not know has no factors and cannot be scored: it is never
//!   recommended by the model (it still counts as a held-out item, so a model that
//!   misses new items pays for it).
//!
//! Training items of the split are filtered out as in [`crate::evaluate_factors`], so
//! the numbers are comparable with the new model's own evaluation.

use recops_data::Split;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::eval::{Metrics, evaluate_rankings, popularity_order};
use crate::matrix::{Factors, Interactions};
use crate::model::CfModel;

/// A saved model's metrics on a split, and how much of the split it knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitEvaluation {
    /// Metrics on the split's held-out cells.
    pub metrics: Metrics,
    /// Users of the split the model has factors for.
    pub users_known: usize,
    /// Users of the split.
    pub users_total: usize,
    /// Items of the split the model has factors for.
    pub items_known: usize,
    /// Items of the split.
    pub items_total: usize,
}

/// Evaluates `model` on `split` (see the module docs).
pub fn evaluate_model_on_split(
    model: &CfModel,
    split: &Split,
    ks: &[usize],
) -> Result<SplitEvaluation> {
    let (nu, ni) = (split.n_users(), split.n_items());
    let train = Interactions::from_entries(nu, ni, &split.train, |_| 1.0)?;
    let test = Interactions::from_entries(nu, ni, &split.test, |_| 1.0)?;
    let cols = model.item_factors.cols();
    // Item factors in the split's item space; unknown items NaN (left out by top_k).
    let mut items = Factors::from_vec(ni, cols, vec![f32::NAN; ni * cols])?;
    let mut items_known = 0usize;
    for (j, id) in split.item_ids.iter().enumerate() {
        if let Ok(r) = model.item_ids.binary_search(id) {
            items.row_mut(j).copy_from_slice(model.item_factors.row(r));
            items_known += 1;
        }
    }
    let user_rows: Vec<Option<usize>> = split
        .user_ids
        .iter()
        .map(|id| model.user_ids.binary_search(id).ok())
        .collect();
    let users_known = user_rows.iter().filter(|r| r.is_some()).count();
    let popular = popularity_order(&train);
    let metrics = evaluate_rankings(&test, ks, |u, n| {
        let seen = train.user_row(u).0;
        match user_rows[u] {
            Some(r) => crate::ranking::top_k(model.user_factors.row(r), items.as_slice(), seen, n)
                .into_iter()
                .map(|(i, _)| i)
                .collect(),
            None => popular
                .iter()
                .copied()
                .filter(|i| seen.binary_search(i).is_err())
                .take(n)
                .collect(),
        }
    });
    Ok(SplitEvaluation {
        metrics,
        users_known,
        users_total: nu,
        items_known,
        items_total: ni,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::evaluate_factors;
    use crate::model::{MODEL_FORMAT_VERSION, ModelMeta, ModelType, mapping_fingerprint};
    use recops_data::Entry;

    fn e(user: u32, item: u32) -> Entry {
        Entry {
            user,
            item,
            rating: 1.0,
            timestamp: 0,
        }
    }

    fn model(user_ids: Vec<i64>, item_ids: Vec<i64>, users: Factors, items: Factors) -> CfModel {
        CfModel {
            meta: ModelMeta {
                format_version: MODEL_FORMAT_VERSION,
                model_id: "als_20250101_000000".parse().unwrap(),
                model_type: ModelType::Als,
                factors: users.cols(),
                hyperparameters: serde_json::Value::Null,
                metrics: Default::default(),
                baseline: Default::default(),
                baselines: Default::default(),
                tuning: None,
                improvement_pct: 0.0,
                data_version: "v0".into(),
                created_at: String::new(),
                n_users: user_ids.len(),
                n_items: item_ids.len(),
                mapping_fingerprint: mapping_fingerprint(&user_ids, &item_ids),
                training: Default::default(),
            },
            user_ids,
            item_ids,
            user_factors: users,
            item_factors: items,
        }
    }

    #[test]
    fn same_mappings_give_the_models_own_numbers_and_unknown_ids_are_explicit() {
        // Split: users 10, 20, 30; items 100, 200, 300.
        let split = Split {
            user_ids: vec![10, 20, 30],
            item_ids: vec![100, 200, 300],
            train: vec![e(0, 0), e(1, 0), e(2, 1)],
            test: vec![e(0, 2), e(1, 1), e(2, 2)],
        };
        let users = Factors::from_vec(3, 1, vec![1.0, -1.0, 1.0]).unwrap();
        let items = Factors::from_vec(3, 1, vec![0.1, 0.2, 0.3]).unwrap();
        let same = model(
            split.user_ids.clone(),
            split.item_ids.clone(),
            users.clone(),
            items.clone(),
        );
        let ev = evaluate_model_on_split(&same, &split, &[1, 10]).unwrap();
        let train = Interactions::from_entries(3, 3, &split.train, |_| 1.0).unwrap();
        let test = Interactions::from_entries(3, 3, &split.test, |_| 1.0).unwrap();
        assert_eq!(
            ev.metrics,
            evaluate_factors(&users, &items, &train, &test, &[1, 10])
        );
        assert_eq!((ev.users_known, ev.items_known), (3, 3));
        // User 0 ranks item 2 first: hit@1; user 1 (negative) ranks item 1 first: hit.
        assert_eq!(ev.metrics.recall(1), 1.0);

        // An older model that knows users 10 and 20 (as its rows 0, 1) and items 100,
        // 200 only: user 30 falls back to popularity, item 300 is never recommended.
        let old = model(
            vec![10, 20],
            vec![100, 200],
            Factors::from_vec(2, 1, vec![1.0, 1.0]).unwrap(),
            Factors::from_vec(2, 1, vec![0.5, 0.1]).unwrap(),
        );
        let ev = evaluate_model_on_split(&old, &split, &[1]).unwrap();
        assert_eq!((ev.users_known, ev.users_total), (2, 3));
        assert_eq!((ev.items_known, ev.items_total), (2, 3));
        // User 0 (seen 100): model ranks [200] -> miss (held out 300). User 1 (seen
        // 100): [200] -> hit. User 2 unknown, seen 200: popularity [100, 300] -> miss.
        assert!((ev.metrics.recall(1) - 1.0 / 3.0).abs() < 1e-12, "{ev:?}");
    }
}
