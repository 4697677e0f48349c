//! The taste clusters make a simple item-item collaborative filter beat popularity on
//! the ARCHITECTURE split, as real shop data does.

use recops_data::{RawInteraction, temporal_split};
use recops_testkit::{GenConfig, generate};

fn recall_at_10(
    recommend: &dyn Fn(usize, &[bool]) -> Vec<usize>,
    train: &[Vec<usize>],
    test: &[Vec<usize>],
    n_items: usize,
) -> f64 {
    let mut total = 0.0;
    let mut users = 0;
    for (u, held) in test.iter().enumerate() {
        if held.is_empty() {
            continue;
        }
        let mut seen = vec![false; n_items];
        for &i in &train[u] {
            seen[i] = true;
        }
        let top = recommend(u, &seen);
        let hits = top.iter().filter(|i| held.contains(i)).count();
        total += hits as f64 / held.len().min(10) as f64;
        users += 1;
    }
    total / users as f64
}

fn top10(scores: &[f64], seen: &[bool]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| !seen[i]).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(10);
    order
}

#[test]
fn item_item_cf_beats_popularity() {
    let ds = generate(&GenConfig::default()).unwrap();
    let rows: Vec<RawInteraction> = ds
        .interactions
        .iter()
        .map(|r| RawInteraction {
            user_id: r.user_id,
            item_id: r.product_id,
            rating: f32::from(r.rating),
            timestamp: r.cmt_date,
        })
        .collect();
    let s = temporal_split(&rows);
    let (nu, ni) = (s.n_users(), s.n_items());
    let mut train = vec![Vec::new(); nu];
    let mut test = vec![Vec::new(); nu];
    for e in &s.train {
        train[e.user as usize].push(e.item as usize);
    }
    for e in &s.test {
        test[e.user as usize].push(e.item as usize);
    }
    let mut pop = vec![0f64; ni];
    let mut cooc = vec![0f64; ni * ni];
    for items in &train {
        for &a in items {
            pop[a] += 1.0;
            for &b in items {
                if a != b {
                    cooc[a * ni + b] += 1.0;
                }
            }
        }
    }
    let popularity = |_: usize, seen: &[bool]| top10(&pop, seen);
    let item_item = |u: usize, seen: &[bool]| {
        let mut scores = vec![0f64; ni];
        for &a in &train[u] {
            for b in 0..ni {
                scores[b] += cooc[a * ni + b] / (pop[a] * pop[b]).sqrt().max(1.0);
            }
        }
        top10(&scores, seen)
    };
    let r_pop = recall_at_10(&popularity, &train, &test, ni);
    let r_cf = recall_at_10(&item_item, &train, &test, ni);
    assert!(
        r_cf > 1.5 * r_pop,
        "item-item recall@10 {r_cf:.4} vs popularity {r_pop:.4}"
    );
}
