//! What the kill suites share: naming which recorded state a home is in right after a
//! `kill -9`, or failing with the differences.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// A normalised durable state: one value per key (a file's hash, a row, a status).
pub type State = BTreeMap<String, String>;

/// The name of the state in `states` that `got` equals; panics naming the kill
/// `point`, the `leftovers` found beside the state and, against each recorded state,
/// every key whose value differs.
pub fn which_state<'a>(
    point: &str,
    got: &State,
    leftovers: &[String],
    states: &[(&'a str, &State)],
) -> &'a str {
    if let Some((name, _)) = states.iter().find(|(_, s)| *s == got) {
        return name;
    }
    let mut diff = String::new();
    for (name, s) in states {
        let _ = write!(diff, "\n  against the {name} state:");
        let keys: BTreeSet<&String> = s.keys().chain(got.keys()).collect();
        for k in keys.into_iter().filter(|k| s.get(*k) != got.get(*k)) {
            let _ = write!(
                diff,
                "\n    {k}: expected {:?}, got {:?}",
                s.get(k),
                got.get(k)
            );
        }
    }
    panic!("{point}: a half state right after the kill (leftovers {leftovers:?}):{diff}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pairs: &[(&str, &str)]) -> State {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_the_equal_state() {
        let (before, after) = (state(&[("a", "1")]), state(&[("a", "2")]));
        let states = [("before", &before), ("after", &after)];
        assert_eq!(which_state("p", &after, &[], &states), "after");
    }

    #[test]
    #[should_panic(expected = "a: expected Some(\"1\"), got Some(\"3\")")]
    fn a_half_state_names_the_differing_keys() {
        let before = state(&[("a", "1"), ("b", "x")]);
        which_state(
            "p",
            &state(&[("a", "3"), ("b", "x")]),
            &[],
            &[("before", &before)],
        );
    }
}
