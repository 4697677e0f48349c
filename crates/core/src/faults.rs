//! Fault points: named places in the crash-sensitive steps (atomic writes, registry
//! and deployment updates, training phases) where a test can kill the process with
//! SIGKILL or stall it, so fault-injection suites hit exact moments instead of racing
//! a timer.
//!
//! Nothing happens unless the environment variable [`FAULT_ENV`]
//! (`RECOPS_FAULT_POINT`) is set, read once per process:
//! - `trace`: every point reached writes `recops-fault-point: <name>` to stderr, so a
//!   test can list the points of a run and how often each is hit;
//! - `<name>` or `<name>#<n>`: SIGKILL this process at the first (or n-th) hit of
//!   the point `<name>`;
//! - `<name>[#<n>]:stall`: at that hit, write `recops-fault-point: <name> stalled` to
//!   stderr and block forever (until a signal), to test signal handling mid-step.
//!
//! Point names are `area.step`, for example `atomic.before_rename:registry.json`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The environment variable that arms fault points.
pub const FAULT_ENV: &str = "RECOPS_FAULT_POINT";

/// Prefix of the stderr lines written in `trace` and `stall` modes.
pub const TRACE_PREFIX: &str = "recops-fault-point: ";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Trace,
    At { name: String, nth: u32, stall: bool },
}

fn parse(value: &str) -> Option<Plan> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value == "trace" {
        return Some(Plan::Trace);
    }
    let (spec, stall) = match value.strip_suffix(":stall") {
        Some(s) => (s, true),
        None => (value, false),
    };
    let (name, nth) = match spec.rsplit_once('#') {
        Some((n, k)) => (n, k.parse().ok().filter(|&k| k > 0)?),
        None => (spec, 1),
    };
    Some(Plan::At {
        name: name.to_owned(),
        nth,
        stall,
    })
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| std::env::var(FAULT_ENV).ok().and_then(|v| parse(&v)))
        .as_ref()
}

/// Marks the fault point `name` (see the module docs). A no-op unless armed.
pub fn point(name: &str) {
    let Some(plan) = plan() else {
        return;
    };
    match plan {
        Plan::Trace => eprintln_point(name, ""),
        Plan::At {
            name: target,
            nth,
            stall,
        } if target == name => {
            static HITS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);
            let hit = {
                let mut hits = HITS.lock().unwrap_or_else(PoisonError::into_inner);
                let n = hits
                    .get_or_insert_with(HashMap::new)
                    .entry(name.to_owned())
                    .or_insert(0);
                *n += 1;
                *n
            };
            if hit != *nth {
                return;
            }
            if *stall {
                eprintln_point(name, " stalled");
                loop {
                    std::thread::park();
                }
            }
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        Plan::At { .. } => {}
    }
}

#[allow(clippy::print_stderr)]
fn eprintln_point(name: &str, suffix: &str) {
    eprintln!("{TRACE_PREFIX}{name}{suffix}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("trace"), Some(Plan::Trace));
        assert_eq!(
            parse("registry.write#3"),
            Some(Plan::At {
                name: "registry.write".into(),
                nth: 3,
                stall: false
            })
        );
        assert_eq!(
            parse("maintenance.start:stall"),
            Some(Plan::At {
                name: "maintenance.start".into(),
                nth: 1,
                stall: true
            })
        );
        assert_eq!(parse("x#0"), None);
        assert_eq!(parse("x#many"), None);
    }

    #[test]
    fn an_unarmed_point_does_nothing() {
        // The test process has no RECOPS_FAULT_POINT (or another point's name).
        point("tests.never_armed");
    }
}
