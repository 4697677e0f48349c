//! [`PgCluster`]: a throwaway PostgreSQL server for tests.
//!
//! `initdb` into a temporary folder, `postgres` on a port the OS chose, listening on
//! 127.0.0.1 only (and a Unix socket inside the folder), trust authentication for the
//! `recops` user, `fsync` off. As root (here and in CI) the server runs as the
//! `postgres` system user through `setpriv`, because `initdb` refuses root. Dropping
//! the cluster stops the server and removes the folder; a watchdog shell stops it too
//! when the test process dies without dropping it (a shared cluster in a `static`).
//!
//! When PostgreSQL is not installed, [`PgCluster::start`] returns `None` after a
//! NOTICE on stderr, unless `CI=true` or `RECOPS_REQUIRE_POSTGRES=1`, where it
//! panics: CI must run these tests, not skip them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The database user every test cluster has (no password: trust authentication).
pub const PG_USER: &str = "recops";

/// A running throwaway PostgreSQL server; stopped and removed on drop.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    server: Child,
    watchdog: Option<Child>,
    run_as: Option<String>,
}

/// True when tests must not skip for want of PostgreSQL (`CI=true` or
/// `RECOPS_REQUIRE_POSTGRES=1`).
pub fn postgres_required() -> bool {
    std::env::var("RECOPS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
        || std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The folder holding `initdb` and `postgres`: `RECOPS_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else the folder of an `initdb` on `PATH`.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("RECOPS_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("initdb").exists() && d.join("postgres").exists())
}

fn running_as_root() -> bool {
    // No libc call (unsafe is forbidden): the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn fail(message: String) -> ! {
    panic!("PostgreSQL test cluster: {message}")
}

impl PgCluster {
    /// Starts a new cluster, or `None` (with a NOTICE) when PostgreSQL is not
    /// installed and not required. Panics when it is required and missing, or when
    /// an installed server fails to start.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = postgres_bin_dir() else {
            if postgres_required() {
                fail(
                    "PostgreSQL is required (CI=true or RECOPS_REQUIRE_POSTGRES=1) but initdb \
                     was not found; install Debian's postgresql or set RECOPS_PG_BIN"
                        .into(),
                );
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "NOTICE: PostgreSQL is not installed (no initdb); skipping the PostgreSQL \
                     tests (set RECOPS_REQUIRE_POSTGRES=1 to make this an error)"
                );
            }
            return None;
        };
        Some(Self::start_in(&bin).unwrap_or_else(|e| fail(e)))
    }

    /// One cluster shared by every test of this process (each test takes its own
    /// database with [`fresh_database`](Self::fresh_database)); `None` as in
    /// [`start`](Self::start). The watchdog stops it when the process exits.
    pub fn shared() -> Option<&'static PgCluster> {
        static SHARED: OnceLock<Option<PgCluster>> = OnceLock::new();
        SHARED.get_or_init(PgCluster::start).as_ref()
    }

    fn start_in(bin: &Path) -> Result<PgCluster, String> {
        let root = running_as_root();
        let run_as = root.then(|| "postgres".to_owned());
        let mut dir = tempfile::Builder::new()
            .prefix("recops-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let data = dir.path().join("data");
        if let Some(user) = &run_as {
            // The server's user must own its folder.
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:{user}"))
                .arg(dir.path())
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "chown {} to {user} failed (is there a {user} system user?)",
                    dir.path().display()
                ));
            }
        }
        let out = command(bin, "initdb", run_as.as_deref())
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(|e| format!("free port: {e}"))?;
            let log = dir.path().join("server.log");
            let server = command(bin, "postgres", run_as.as_deref())
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
                .arg(dir.path())
                .args([
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(&log)
                        .map(Stdio::from)
                        .unwrap_or_else(|_| Stdio::null()),
                )
                .spawn()
                .map_err(|e| format!("run postgres: {e}"))?;
            let watchdog = watchdog(server.id(), dir.path());
            let mut cluster = PgCluster {
                dir,
                bin: bin.to_path_buf(),
                port,
                server,
                watchdog,
                run_as: run_as.clone(),
            };
            match cluster.wait_ready() {
                Ok(()) => return Ok(cluster),
                Err(e) => {
                    last = format!(
                        "{e}; server log: {}",
                        std::fs::read_to_string(&log).unwrap_or_default().trim()
                    );
                    cluster.stop();
                    // Take the folder back for the next attempt.
                    dir = std::mem::replace(
                        &mut cluster.dir,
                        tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?,
                    );
                }
            }
        }
        Err(format!("postgres did not start: {last}"))
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.server.try_wait() {
                return Err(format!("postgres exited with {status}"));
            }
            let ok = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", PG_USER, "-d", "postgres"])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("not ready after 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://recops@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (plain lowercase name) and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                PG_USER,
                name,
            ])
            .output()
            .unwrap_or_else(|e| fail(format!("run createdb: {e}")));
        if !out.status.success() {
            fail(format!(
                "createdb {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        self.url(name)
    }

    /// Creates a database no other caller of this process got and returns its URL.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("t{}_{n}", std::process::id()))
    }

    /// Runs SQL through `psql` on database `db` and returns its unaligned output
    /// (rows separated by newlines, columns by `|`).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                PG_USER,
            ])
            .args([
                "-d",
                db,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap_or_else(|e| fail(format!("run psql: {e}")));
        if !out.status.success() {
            fail(format!(
                "psql {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn stop(&mut self) {
        // SIGINT = PostgreSQL's "fast shutdown"; the server is our child (setpriv execs).
        let _ = Command::new("kill")
            .args(["-INT", &self.server.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    /// The user the server runs as (`postgres` when the tests run as root).
    pub fn run_as(&self) -> Option<&str> {
        self.run_as.as_deref()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn command(bin: &Path, program: &str, run_as: Option<&str>) -> Command {
    match run_as {
        Some(user) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .arg("--init-groups")
                .arg("--reset-env")
                .arg(bin.join(program));
            c
        }
        None => Command::new(bin.join(program)),
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A shell that stops the server (immediate shutdown) and removes its folder once
/// this process is gone, for clusters never dropped (a `static`).
fn watchdog(server: u32, dir: &Path) -> Option<Child> {
    let me = std::process::id();
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -QUIT {server} 2>/dev/null; \
         sleep 1; kill -KILL {server} 2>/dev/null; rm -rf '{}'",
        dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// Runs the same test bodies over both storage backends: for each `name`, a test
/// `<embedded_mod>::name` calling `name(embedded)` and a test `on_postgres::name`
/// calling `name(postgres)`, which skips (with [`PgCluster::shared`]'s NOTICE) only
/// when PostgreSQL is not installed and not required. The fixtures are resolved in the
/// calling module.
///
/// ```ignore
/// recops_testkit::on_both_backends!(on_sqlite: sqlite, postgres; round_trip, concurrent_writers);
/// ```
#[macro_export]
macro_rules! on_both_backends {
    ($embedded_mod:ident: $embedded:expr, $postgres:expr; $($name:ident),* $(,)?) => {
        mod $embedded_mod {
            #[allow(unused_imports)]
            use super::*;
            $(#[test] fn $name() { super::$name($embedded) })*
        }
        mod on_postgres {
            #[allow(unused_imports)]
            use super::*;
            $(#[test] fn $name() {
                if $crate::PgCluster::shared().is_some() {
                    super::$name($postgres)
                }
            })*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_answers_and_is_removed_on_drop() {
        let Some(pg) = PgCluster::start() else {
            return;
        };
        let url = pg.create_database("probe");
        assert!(url.starts_with("postgres://recops@127.0.0.1:"), "{url}");
        assert_eq!(pg.psql("probe", "SELECT 40 + 2"), "42");
        // Only 127.0.0.1.
        assert_eq!(pg.psql("probe", "SHOW listen_addresses"), "127.0.0.1");
        let dir = pg.dir.path().to_path_buf();
        let port = pg.port();
        drop(pg);
        assert!(!dir.exists(), "{} left behind", dir.display());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
