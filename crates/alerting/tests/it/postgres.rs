//! A home whose `storage.url` is PostgreSQL: alert state and silences live in its
//! `alert_state` and `silences` tables (shared by every process), and no
//! `logs/alert_state.db` is written. Skipped with a NOTICE when PostgreSQL is not
//! installed, unless `CI=true` or `RECOPS_REQUIRE_POSTGRES=1`.

use chrono::Duration;
use recops_alerting::{Action, AlertStatus, Evaluation};
use recops_testkit::PgCluster;

use crate::support::{TestHome, lines_with, t0};

fn action_of(evals: &[Evaluation], name: &str) -> Action {
    evals
        .iter()
        .find(|e| e.alert_name == name)
        .map(|e| e.action.clone())
        .unwrap()
}

#[test]
fn a_postgres_home_keeps_alert_state_and_silences_in_its_tables() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let home = TestHome::new(
        "alerts:\n  high_error_rate:\n    threshold: 0.05\n    severity: critical\n    channels: [log]\n",
    );
    let shipped = include_str!("../../../../config/recops.yaml");
    assert!(shipped.contains("  url: \"\"\n"));
    std::fs::write(
        home.home.recops_config(),
        shipped.replacen("  url: \"\"\n", &format!("  url: {url}\n"), 1),
    )
    .unwrap();

    // Each manager is a new process: the state they share is in PostgreSQL.
    let evals = home.manager().process(&[("error_rate", 0.08)]);
    assert_eq!(
        action_of(&evals, "high_error_rate"),
        Action::Notified { repeat: false }
    );
    home.clock.advance(Duration::minutes(10));
    let evals = home.manager().process(&[("error_rate", 0.09)]);
    assert!(
        matches!(
            action_of(&evals, "high_error_rate"),
            Action::Deduplicated { .. }
        ),
        "{evals:?}"
    );
    assert_eq!(
        pg.psql(
            &db,
            "SELECT status || ':' || notification_count || ':' || last_value \
             FROM alert_state WHERE alert_name = 'high_error_rate'"
        ),
        "firing:1:0.09"
    );
    let states = home.manager().states().unwrap();
    assert_eq!(states[0].status, AlertStatus::Firing);
    assert_eq!(states[0].firing_since, Some(t0()));

    // A silence set by one process holds back the next one's reminder.
    home.manager()
        .silence_for("high_*", Duration::hours(8), "migrating")
        .unwrap();
    assert_eq!(
        pg.psql(&db, "SELECT matcher || ':' || reason FROM silences"),
        "high_*:migrating"
    );
    home.clock.set(t0() + Duration::hours(5));
    let evals = home.manager().process(&[("error_rate", 0.09)]);
    assert!(
        matches!(
            action_of(&evals, "high_error_rate"),
            Action::Silenced { .. }
        ),
        "{evals:?}"
    );
    assert_eq!(home.manager().silences().unwrap().len(), 1);
    assert!(home.manager().unsilence("high_*").unwrap());
    assert_eq!(pg.psql(&db, "SELECT COUNT(*) FROM silences"), "0");
    assert_eq!(
        lines_with(&home.alerts_log(), "high_error_rate triggered").len(),
        2,
        "{}",
        home.alerts_log()
    );
    assert_eq!(
        pg.psql(
            &db,
            "SELECT string_agg(store || ':' || version, ',') FROM recops_schema_migrations"
        ),
        "alerts:1"
    );
    assert!(
        !home.home.alert_state_db().exists(),
        "alert_state.db written"
    );
}
