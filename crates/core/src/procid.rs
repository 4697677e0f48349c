//! Who a stored process id really is: a pid alone is reused by the kernel (quickly in
//! containers, always after a reboot), so a record of "process N runs job X" also keeps
//! the kernel's boot id and the process start time, and a later check that finds
//! another boot or another start time knows the recorded process is gone.

use serde::{Deserialize, Serialize};

/// A process as recorded by whoever started or locked something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// Its process id.
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22); `None`
    /// off Linux or when it could not be read.
    pub start_ticks: Option<u64>,
    /// The kernel's boot id when it was recorded (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: Option<String>,
}

/// What [`ProcessIdentity::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The recorded process still runs (or nothing proves otherwise: no `/proc`, or
    /// a record without a start time whose pid exists).
    Alive,
    /// Provably gone: another boot, no such pid, or the pid now belongs to a process
    /// that started at another time.
    Gone,
}

/// What the system says now, so checks can be tested with made-up answers.
pub trait ProcSource {
    /// The current boot id.
    fn boot_id(&self) -> Option<String>;
    /// Start ticks of `pid`, `None` when no such process exists.
    fn start_ticks(&self, pid: u32) -> Option<u64>;
    /// Whether `/proc` can be read at all (off Linux nothing can be proven).
    fn has_proc(&self) -> bool;
}

/// The real `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemProc;

impl ProcSource for SystemProc {
    fn boot_id(&self) -> Option<String> {
        boot_id()
    }
    fn start_ticks(&self, pid: u32) -> Option<u64> {
        process_start_ticks(pid)
    }
    fn has_proc(&self) -> bool {
        std::path::Path::new("/proc/self/stat").exists()
    }
}

impl ProcessIdentity {
    /// The identity of the running process `pid`, read now (`start_ticks` is `None`
    /// when it does not exist).
    pub fn of(pid: u32) -> Self {
        Self::of_with(pid, &SystemProc)
    }

    /// [`of`](Self::of) with another source.
    pub fn of_with(pid: u32, proc: &dyn ProcSource) -> Self {
        ProcessIdentity {
            pid,
            start_ticks: proc.start_ticks(pid),
            boot_id: proc.boot_id(),
        }
    }

    /// This process.
    pub fn current() -> Self {
        Self::of(std::process::id())
    }

    /// Whether the recorded process still runs, against the real `/proc`.
    pub fn check(&self) -> Liveness {
        self.check_with(&SystemProc)
    }

    /// [`check`](Self::check) against `proc`: another boot id, a missing pid or
    /// another start time mean [`Liveness::Gone`].
    pub fn check_with(&self, proc: &dyn ProcSource) -> Liveness {
        if let (Some(theirs), Some(ours)) = (&self.boot_id, proc.boot_id())
            && *theirs != ours
        {
            return Liveness::Gone;
        }
        if !proc.has_proc() {
            return Liveness::Alive;
        }
        match (proc.start_ticks(self.pid), self.start_ticks) {
            (None, _) => Liveness::Gone,
            (Some(now), Some(then)) if now != then => Liveness::Gone,
            _ => Liveness::Alive,
        }
    }
}

/// Field 22 (`starttime`) of `/proc/<pid>/stat`; `None` when there is no such process.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_ticks(&stat)
}

fn parse_start_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain anything.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The kernel's boot id (`/proc/sys/kernel/random/boot_id`), `None` off Linux.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        boot: &'static str,
        ticks: Option<u64>,
    }

    impl ProcSource for Fake {
        fn boot_id(&self) -> Option<String> {
            Some(self.boot.to_owned())
        }
        fn start_ticks(&self, _pid: u32) -> Option<u64> {
            self.ticks
        }
        fn has_proc(&self) -> bool {
            true
        }
    }

    #[test]
    fn another_boot_or_start_time_or_no_pid_is_gone() {
        let rec = ProcessIdentity {
            pid: 4242,
            start_ticks: Some(100),
            boot_id: Some("boot-a".into()),
        };
        let same = Fake {
            boot: "boot-a",
            ticks: Some(100),
        };
        assert_eq!(rec.check_with(&same), Liveness::Alive);
        // The pid exists, started at the same tick, but the machine rebooted.
        let rebooted = Fake {
            boot: "boot-b",
            ticks: Some(100),
        };
        assert_eq!(rec.check_with(&rebooted), Liveness::Gone);
        // Same boot, the pid was reused by a later process.
        let reused = Fake {
            boot: "boot-a",
            ticks: Some(900),
        };
        assert_eq!(rec.check_with(&reused), Liveness::Gone);
        let missing = Fake {
            boot: "boot-a",
            ticks: None,
        };
        assert_eq!(rec.check_with(&missing), Liveness::Gone);
        // An old record without a start time: the pid existing is all we can see.
        let old = ProcessIdentity {
            start_ticks: None,
            boot_id: None,
            ..rec
        };
        assert_eq!(old.check_with(&reused), Liveness::Alive);
    }

    #[test]
    fn this_process_is_alive_and_stat_lines_parse() {
        assert_eq!(ProcessIdentity::current().check(), Liveness::Alive);
        assert_eq!(
            parse_start_ticks("7 (a (b) c) S 1 7 7 0 -1 4 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0"),
            Some(12345)
        );
        assert_eq!(parse_start_ticks("nonsense"), None);
    }
}
