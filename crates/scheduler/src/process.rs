//! Running a job: a child process in its own process group, output to the job's log,
//! signals to the whole group.

use std::fs::OpenOptions;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use recops_core::procid::{Liveness, boot_id, process_start_ticks};

use crate::state::RunningClaim;

/// What to start.
#[derive(Debug, Clone)]
pub(crate) struct JobCommand {
    /// The program.
    pub(crate) program: PathBuf,
    /// Its arguments.
    pub(crate) args: Vec<String>,
    /// Working directory (the home).
    pub(crate) cwd: PathBuf,
    /// Extra environment variables.
    pub(crate) env: Vec<(String, String)>,
}

/// How a job process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcessEnd {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// It was not our child (adopted after a scheduler restart) and its process group
    /// is gone: its exit status cannot be known.
    Unknown,
}

impl ProcessEnd {
    fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => ProcessEnd::Exited(code),
            (None, Some(sig)) => ProcessEnd::Signaled(sig),
            (None, None) => ProcessEnd::Unknown,
        }
    }

    /// True for exit code 0.
    pub(crate) fn success(self) -> bool {
        self == ProcessEnd::Exited(0)
    }

    /// `exit code 3`, `killed by SIGTERM`, `unknown`.
    pub(crate) fn describe(self) -> String {
        match self {
            ProcessEnd::Exited(c) => format!("exit code {c}"),
            ProcessEnd::Signaled(s) => format!("killed by {}", signal_name(s)),
            ProcessEnd::Unknown => "outcome unknown".to_owned(),
        }
    }
}

/// The name of a signal number (`SIGTERM`), or `signal N`.
pub(crate) fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// A running job: the leader of its own process group.
#[derive(Debug)]
pub(crate) struct JobProcess {
    child: Option<Child>,
    pgid: i32,
    /// Start time of the group leader (`/proc/<pid>/stat` field 22), when known.
    leader_start_ticks: Option<u64>,
    end: Option<ProcessEnd>,
}

impl JobProcess {
    /// Starts `cmd` as the leader of a new process group, stdin from /dev/null, stdout
    /// and stderr appended to `log`.
    pub(crate) fn spawn(cmd: &JobCommand, log: &Path) -> std::io::Result<Self> {
        let out = OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = Command::new(&cmd.program)
            .args(&cmd.args)
            .current_dir(&cmd.cwd)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()?;
        let pgid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        // Our unreaped child: its pid cannot be reused yet, so this is its start time.
        let leader_start_ticks = process_start_ticks(child.id());
        Ok(JobProcess {
            child: Some(child),
            pgid,
            leader_start_ticks,
            end: None,
        })
    }

    /// Supervises a process group that is not our child (left by a scheduler that
    /// exited): it ends when no live process is left in the group, or when its
    /// leader's pid is found to belong to a process started at another time than
    /// `leader_start_ticks` (the group is then gone and its id reused).
    pub(crate) fn adopt(pgid: i32, leader_start_ticks: Option<u64>) -> Self {
        JobProcess {
            child: None,
            pgid,
            leader_start_ticks,
            end: None,
        }
    }

    /// Start time of the group leader, when known.
    pub(crate) fn leader_start_ticks(&self) -> Option<u64> {
        self.leader_start_ticks
    }

    /// False once the group id is provably someone else's (adopted groups only: a
    /// child's pid cannot be reused before we reap it).
    fn still_ours(&self) -> bool {
        self.child.is_some() || !leader_reused(self.pgid, self.leader_start_ticks)
    }

    /// The process group id (the leader's pid).
    pub(crate) fn pgid(&self) -> i32 {
        self.pgid
    }

    /// How the group leader ended, once it has; reaps it. Never blocks.
    pub(crate) fn poll(&mut self) -> std::io::Result<Option<ProcessEnd>> {
        if self.end.is_some() {
            return Ok(self.end);
        }
        match &mut self.child {
            Some(child) => {
                if let Some(status) = child.try_wait()? {
                    self.end = Some(ProcessEnd::from_status(status));
                }
            }
            None => {
                if !self.group_alive() {
                    self.end = Some(ProcessEnd::Unknown);
                }
            }
        }
        Ok(self.end)
    }

    /// Sends `sig` to every process of the group. A group that is already gone is not
    /// an error, and a group id now used by other processes is never signalled.
    pub(crate) fn signal_group(&self, sig: Signal) -> std::io::Result<()> {
        if !self.still_ours() {
            return Ok(());
        }
        signal_group(self.pgid, sig)
    }

    /// True while a live (non-zombie) process remains in the group.
    pub(crate) fn group_alive(&self) -> bool {
        self.still_ours() && group_alive(self.pgid)
    }
}

/// Sends `sig` to the process group `pgid`; a group that is gone is not an error.
pub(crate) fn signal_group(pgid: i32, sig: Signal) -> std::io::Result<()> {
    if pgid <= 1 {
        return Err(std::io::Error::other(format!(
            "refusing to signal process group {pgid}"
        )));
    }
    match killpg(Pid::from_raw(pgid), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)),
    }
}

/// True when the pid `pgid` now belongs to a process started at another time than
/// `leader_start_ticks`: the recorded group leader is gone and, since the kernel does
/// not hand out a pid still used as a process group id, so is its group.
fn leader_reused(pgid: i32, leader_start_ticks: Option<u64>) -> bool {
    let Ok(pid) = u32::try_from(pgid) else {
        return true;
    };
    match (process_start_ticks(pid), leader_start_ticks) {
        (Some(now), Some(then)) => now != then,
        _ => false,
    }
}

/// Whether the supervisor recorded in `claim` still runs: the same boot, the same
/// process (start time) and not a zombie.
pub(crate) fn claim_owner_alive(claim: &RunningClaim) -> bool {
    claim.owner_identity().check() == Liveness::Alive && process_alive(claim.owner_pid)
}

/// Whether the process group recorded in `claim` still has live processes: never
/// after a reboot (another boot id) nor when its id now leads a process started at
/// another time.
pub(crate) fn claim_group_alive(claim: &RunningClaim) -> bool {
    let Some(pgid) = claim.pgid.and_then(|g| i32::try_from(g).ok()) else {
        return false;
    };
    if let (Some(theirs), Some(ours)) = (&claim.boot_id, boot_id())
        && *theirs != ours
    {
        return false;
    }
    !leader_reused(pgid, claim.pgid_start_ticks) && group_alive(pgid)
}

/// True while the process `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match kill(Pid::from_raw(raw), None) {
        Ok(()) | Err(Errno::EPERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
        .is_some_and(|(state, _)| state == 'Z')
}

/// Parses `/proc/<pid>/stat`: (state, process group).
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    // The command name is in parentheses and may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// True while a live (non-zombie) process remains in the process group `pgid`.
///
/// Reads `/proc` where it exists, so zombies (killed processes whose parent has not
/// reaped them, common in containers) do not count; elsewhere asks the kernel with
/// signal 0.
pub fn group_alive(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    match std::fs::read_dir("/proc") {
        Ok(entries) => entries.flatten().any(|e| {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                return false;
            };
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
                .is_some_and(|(state, pgrp)| pgrp == pgid && state != 'Z' && state != 'X')
        }),
        Err(_) => !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(
            parse_stat("1234 (my (odd) job) S 1 1234 1234 0 -1 4194560"),
            Some(('S', 1234))
        );
        assert_eq!(parse_stat("99 (sleep) Z 1 77 77 0"), Some(('Z', 77)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn exit_descriptions() {
        assert_eq!(ProcessEnd::Exited(3).describe(), "exit code 3");
        assert_eq!(ProcessEnd::Signaled(15).describe(), "killed by SIGTERM");
        assert!(ProcessEnd::Exited(0).success());
        assert!(!ProcessEnd::Signaled(9).success());
    }

    #[test]
    fn a_spawned_job_leads_its_own_group_and_its_output_goes_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("job.log");
        let cmd = JobCommand {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                "echo out; echo err >&2; echo \"$RECOPS_X $(pwd)\"; exit 3".into(),
            ],
            cwd: dir.path().to_path_buf(),
            env: vec![("RECOPS_X".into(), "hello".into())],
        };
        let mut p = JobProcess::spawn(&cmd, &log).unwrap();
        assert!(p.pgid() > 1);
        let end = loop {
            if let Some(end) = p.poll().unwrap() {
                break end;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(end, ProcessEnd::Exited(3));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("out\n") && text.contains("err\n"), "{text}");
        let cwd = std::fs::canonicalize(dir.path()).unwrap();
        assert!(text.contains(&format!("hello {}", cwd.display())), "{text}");
        assert!(!p.group_alive());
        assert!(!process_alive(u32::try_from(p.pgid()).unwrap()));
        assert!(process_alive(std::process::id()));
    }
}
