//! A model ready to serve: factors, id mappings, seen items, popularity; top-K scoring.

use std::collections::HashMap;

use recops_core::ModelId;
use serde::Serialize;

use crate::error::{Error, Result};

/// Everything a served model is made of, as loaded from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelParts {
    /// The registry id (`als_20250115_103000`).
    pub model_id: ModelId,
    /// `als` or `bpr`.
    pub model_type: recops_core::ModelType,
    /// Row index -> external user id.
    pub user_ids: Vec<i64>,
    /// Column index -> external product id.
    pub item_ids: Vec<i64>,
    /// Latent dimension.
    pub factors: usize,
    /// `user_ids.len() x factors`, row-major.
    pub user_factors: Vec<f32>,
    /// `item_ids.len() x factors`, row-major.
    pub item_factors: Vec<f32>,
    /// CSR row pointers of the training items of each user (`user_ids.len() + 1`).
    pub seen_indptr: Vec<usize>,
    /// CSR column indices (sorted within each row) of the training items.
    pub seen_indices: Vec<u32>,
    /// Training interaction count per item (the popularity baseline).
    pub item_popularity: Vec<u32>,
}

/// One recommended product.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoredItem {
    /// External product id.
    pub product_id: i64,
    /// Model score (dot product), or the popularity count for a fallback.
    pub score: f32,
}

/// The answer for one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// Best first.
    pub items: Vec<ScoredItem>,
    /// True when the user is unknown to the model and popular items were returned.
    pub fallback: bool,
}

/// A validated model, ready to answer requests. Immutable; shared between requests.
#[derive(Debug)]
pub struct ServingModel {
    parts: ModelParts,
    user_index: HashMap<i64, u32>,
    /// Items by popularity, most popular first (ties: lower column index).
    popular: Vec<u32>,
}

impl ServingModel {
    /// Validates `parts`: shapes agree with the mappings, every factor is finite, ids
    /// are unique, seen items are in range; then a test recommendation must succeed for
    /// a known user and for an unknown one.
    pub fn new(parts: ModelParts) -> Result<Self> {
        let model_id = parts.model_id.clone();
        let invalid = |reason: String| Error::InvalidModel {
            model_id: model_id.to_string(),
            reason,
        };
        let (nu, ni, k) = (parts.user_ids.len(), parts.item_ids.len(), parts.factors);
        if ni == 0 || k == 0 {
            return Err(invalid(format!("empty model: {ni} items, {k} factors")));
        }
        if parts.user_factors.len() != nu * k {
            return Err(invalid(format!(
                "user_factors has {} values, expected {nu} users x {k} factors",
                parts.user_factors.len()
            )));
        }
        if parts.item_factors.len() != ni * k {
            return Err(invalid(format!(
                "item_factors has {} values, expected {ni} items x {k} factors",
                parts.item_factors.len()
            )));
        }
        if let Some(pos) = parts
            .user_factors
            .iter()
            .chain(&parts.item_factors)
            .position(|v| !v.is_finite())
        {
            return Err(invalid(format!("factor value #{pos} is not finite")));
        }
        if parts.seen_indptr.len() != nu + 1
            || parts.seen_indptr.first() != Some(&0)
            || parts.seen_indptr.last() != Some(&parts.seen_indices.len())
            || parts.seen_indptr.windows(2).any(|w| w[0] > w[1])
        {
            return Err(invalid("seen-items index does not match the users".into()));
        }
        if parts.seen_indices.iter().any(|&i| i as usize >= ni) {
            return Err(invalid("a seen item is outside the item mapping".into()));
        }
        if parts.item_popularity.len() != ni {
            return Err(invalid(format!(
                "popularity has {} entries, expected {ni} items",
                parts.item_popularity.len()
            )));
        }
        let user_index: HashMap<i64, u32> = parts
            .user_ids
            .iter()
            .enumerate()
            .map(|(i, &u)| (u, i as u32))
            .collect();
        if user_index.len() != nu {
            return Err(invalid("duplicate user ids in the mapping".into()));
        }
        let mut popular: Vec<u32> = (0..ni as u32).collect();
        popular.sort_by_key(|&i| (std::cmp::Reverse(parts.item_popularity[i as usize]), i));
        let model = ServingModel {
            parts,
            user_index,
            popular,
        };
        // Smoke test: one known user and one unknown user get results.
        if let Some(&u) = model.parts.user_ids.first()
            && model.recommend(u, 5).items.is_empty()
            && model.parts.seen_indptr[1] < ni
        {
            return Err(Error::InvalidModel {
                model_id: model_id.to_string(),
                reason: "test recommendation for a known user is empty".into(),
            });
        }
        let unknown = recops_core::absent_id(&model.parts.user_ids);
        let fb = model.recommend(unknown, 5);
        if !fb.fallback || fb.items.is_empty() {
            return Err(Error::InvalidModel {
                model_id: model_id.to_string(),
                reason: "test fallback recommendation is empty".into(),
            });
        }
        Ok(model)
    }

    /// The model id.
    pub fn model_id(&self) -> &ModelId {
        &self.parts.model_id
    }

    /// The model type (`als`, `bpr`).
    pub fn model_type(&self) -> &str {
        self.parts.model_type.as_str()
    }

    /// Number of users and items.
    pub fn shape(&self) -> (usize, usize) {
        (self.parts.user_ids.len(), self.parts.item_ids.len())
    }

    /// Whether the model knows this user.
    pub fn knows_user(&self, user_id: i64) -> bool {
        self.user_index.contains_key(&user_id)
    }

    /// The top `k` items for `user_id`, excluding items the user interacted with in
    /// training. Unknown users get the most popular items with `fallback = true`.
    pub fn recommend(&self, user_id: i64, k: usize) -> Recommendation {
        match self.user_index.get(&user_id) {
            Some(&u) => Recommendation {
                items: self.top_k(u as usize, k),
                fallback: false,
            },
            None => Recommendation {
                items: self
                    .popular
                    .iter()
                    .take(k)
                    .map(|&i| ScoredItem {
                        product_id: self.parts.item_ids[i as usize],
                        score: self.parts.item_popularity[i as usize] as f32,
                    })
                    .collect(),
                fallback: true,
            },
        }
    }

    /// The ranking of evaluation ([`recops_cf_training::top_k`]): one dot product per
    /// item, the user's seen items left out, best `k` by score then item index, NaN
    /// scores left out.
    fn top_k(&self, u: usize, k: usize) -> Vec<ScoredItem> {
        let f = self.parts.factors;
        let x = &self.parts.user_factors[u * f..(u + 1) * f];
        let seen =
            &self.parts.seen_indices[self.parts.seen_indptr[u]..self.parts.seen_indptr[u + 1]];
        recops_cf_training::top_k(x, &self.parts.item_factors, seen, k)
            .into_iter()
            .map(|(i, score)| ScoredItem {
                product_id: self.parts.item_ids[i as usize],
                score,
            })
            .collect()
    }

    /// Known users (for deployment verification and tests).
    pub fn user_ids(&self) -> &[i64] {
        &self.parts.user_ids
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 3-user, 5-item, 2-factor model with known scores.
    pub(crate) fn tiny(model_id: &str) -> ModelParts {
        ModelParts {
            model_id: model_id.parse().unwrap(),
            model_type: recops_core::ModelType::Als,
            user_ids: vec![100, 200, 300],
            item_ids: vec![11, 12, 13, 14, 15],
            factors: 2,
            user_factors: vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            // item scores for user 100: 5, 4, 3, 2, 1; for user 200: 1, 2, 3, 4, 5
            item_factors: vec![5.0, 1.0, 4.0, 2.0, 3.0, 3.0, 2.0, 4.0, 1.0, 5.0],
            seen_indptr: vec![0, 1, 1, 5],
            seen_indices: vec![0, 0, 1, 2, 3],
            item_popularity: vec![3, 1, 1, 5, 0],
        }
    }

    #[test]
    fn known_users_get_their_best_unseen_items_in_order() {
        let m = ServingModel::new(tiny("als_1")).unwrap();
        let r = m.recommend(100, 3);
        assert!(!r.fallback);
        let ids: Vec<_> = r.items.iter().map(|i| i.product_id).collect();
        assert_eq!(ids, vec![12, 13, 14]); // item 11 was seen
        assert_eq!(r.items[0].score, 4.0);
        let r = m.recommend(200, 10);
        assert_eq!(
            r.items.iter().map(|i| i.product_id).collect::<Vec<_>>(),
            vec![15, 14, 13, 12, 11]
        );
        // User 300 has seen 4 of 5 items.
        assert_eq!(m.recommend(300, 3).items.len(), 1);
    }

    #[test]
    fn unknown_users_fall_back_to_popular_items() {
        let m = ServingModel::new(tiny("als_1")).unwrap();
        let r = m.recommend(999, 3);
        assert!(r.fallback);
        let ids: Vec<_> = r.items.iter().map(|i| i.product_id).collect();
        assert_eq!(ids, vec![14, 11, 12]); // counts 5, 3, then the tie 1/1 by index
    }

    #[test]
    fn broken_models_are_refused_with_a_reason() {
        let mut p = tiny("bad");
        p.item_factors.pop();
        assert!(
            ServingModel::new(p)
                .unwrap_err()
                .to_string()
                .contains("item_factors")
        );
        let mut p = tiny("bad");
        p.user_factors[3] = f32::NAN;
        assert!(
            ServingModel::new(p)
                .unwrap_err()
                .to_string()
                .contains("not finite")
        );
        let mut p = tiny("bad");
        p.seen_indices[0] = 9;
        assert!(ServingModel::new(p).is_err());
        let mut p = tiny("bad");
        p.item_popularity.pop();
        assert!(ServingModel::new(p).is_err());
    }

    proptest! {
        #[test]
        fn top_k_equals_a_full_sort(
            scores in prop::collection::vec(-100i32..100, 1..60),
            seen_mask in prop::collection::vec(any::<bool>(), 60),
            k in 1usize..20,
        ) {
            let n = scores.len();
            let seen: Vec<u32> = (0..n as u32).filter(|&i| seen_mask[i as usize]).collect();
            let parts = ModelParts {
                model_id: "p".parse().unwrap(),
                model_type: recops_core::ModelType::Als,
                user_ids: vec![1],
                item_ids: (0..n as i64).collect(),
                factors: 1,
                user_factors: vec![1.0],
                item_factors: scores.iter().map(|&s| s as f32).collect(),
                seen_indptr: vec![0, seen.len()],
                seen_indices: seen.clone(),
                item_popularity: vec![1; n],
            };
            let Ok(m) = ServingModel::new(parts) else { return Ok(()) };
            let got: Vec<i64> = m.recommend(1, k).items.iter().map(|i| i.product_id).collect();
            let mut all: Vec<(i32, i64)> = (0..n).filter(|i| !seen_mask[*i]).map(|i| (scores[i], i as i64)).collect();
            all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<i64> = all.into_iter().take(k).map(|x| x.1).collect();
            prop_assert_eq!(got, want);
        }
    }
}
