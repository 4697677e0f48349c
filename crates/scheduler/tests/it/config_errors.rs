//! A bad config is refused at start with the file, the job and the reason.

use recops_scheduler::{Scheduler, check_config};
use serde_json::json;

use crate::Fixture;

fn open_err(f: &Fixture) -> String {
    let check = check_config(&f.home, &f.bins).unwrap_err().to_string();
    let start = Scheduler::open(&f.home, f.options())
        .unwrap_err()
        .to_string();
    assert_eq!(
        check, start,
        "--check-config and the scheduler say the same"
    );
    check
}

#[test]
fn invalid_cron_unknown_timezone_unknown_key_and_missing_binary_are_refused() {
    let f = Fixture::new(crate::hcm(15, 12, 0, 0));
    f.script("data-refresh", "exit 0");
    let file = f.home.scheduler_config().display().to_string();

    f.config(&[("data_refresh", "0 25 * * *", 30.0)], json!({}));
    let e = open_err(&f);
    assert!(e.starts_with(&format!("invalid config {file} at key `jobs.data_refresh.cron`: invalid cron expression \"0 25 * * *\"")), "{e}");

    f.config(
        &[("data_refresh", "0 2 * * *", 30.0)],
        json!({"timezone": "Asia/Hanoi_Old"}),
    );
    let e = open_err(&f);
    assert!(
        e.contains(&format!(
            "{file} at key `timezone`: unknown time zone \"Asia/Hanoi_Old\""
        )),
        "{e}"
    );

    f.config(
        &[("data_refresh", "0 2 * * *", 30.0)],
        json!({"kill_grace": 5}),
    );
    let e = open_err(&f);
    assert!(
        e.contains(&file) && e.contains("unknown field `kill_grace`"),
        "{e}"
    );

    f.config(
        &[
            ("data_refresh", "0 2 * * *", 30.0),
            ("health_check", "0 * * * *", 5.0),
        ],
        json!({}),
    );
    let e = open_err(&f);
    assert!(
        e.contains(&format!(
            "{file} at key `jobs.health_check.binary`: job binary "
        )),
        "{e}"
    );
    assert!(e.contains("health-check does not exist"), "{e}");

    f.write_config("{\"timezone\": \"UTC\", \"jobs\": {");
    let e = open_err(&f);
    assert!(e.contains(&file) && e.contains("EOF"), "{e}");

    // Nothing was written by the refused starts.
    assert!(!f.home.scheduler_log().exists());
    assert!(!f.home.scheduler_state_db().exists());

    f.config(&[("data_refresh", "0 2 * * *", 30.0)], json!({}));
    let ok = check_config(&f.home, &f.bins).unwrap();
    assert_eq!(ok.enabled, vec!["data_refresh"]);
    assert_eq!(ok.timezone, "Asia/Ho_Chi_Minh");
}
