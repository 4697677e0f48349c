//! Ids that are certainly not in a set (probes for "an unknown user").

/// An id that is not in `ids`: one more than the largest when that does not overflow,
/// else one less than the smallest, else the first gap found by search. A probe built
/// as `max + 1` with saturation returns a *known* id once `i64::MAX` is in the data
/// (one hostile staging row is enough), which is why this searches.
///
/// ```
/// use recops_core::absent_id;
/// assert_eq!(absent_id(&[3, 1, 2]), 4);
/// assert_eq!(absent_id(&[i64::MAX, 5]), 4);
/// assert_eq!(absent_id(&[]), 0);
/// ```
pub fn absent_id(ids: &[i64]) -> i64 {
    let (Some(&min), Some(&max)) = (ids.iter().min(), ids.iter().max()) else {
        return 0;
    };
    if let Some(next) = max.checked_add(1) {
        return next;
    }
    if let Some(prev) = min.checked_sub(1) {
        return prev;
    }
    // Both ends are taken: the sorted ids have a gap somewhere (there are fewer ids
    // than values of i64).
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
        .windows(2)
        .find(|w| i128::from(w[1]) - i128::from(w[0]) > 1)
        .map_or(0, |w| w[0] + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_never_a_known_id() {
        for ids in [
            vec![],
            vec![7],
            vec![i64::MAX],
            vec![i64::MIN],
            vec![i64::MIN, i64::MAX],
            vec![i64::MIN, -1, 0, 1, i64::MAX],
            vec![i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX],
        ] {
            let probe = absent_id(&ids);
            assert!(!ids.contains(&probe), "{probe} is in {ids:?}");
        }
    }
}
