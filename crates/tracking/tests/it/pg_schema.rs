//! The PostgreSQL tables keep the spec's names and columns, and migrations are
//! versioned and run once.

use recops_testkit::PgCluster;
use recops_tracking::{
    PG_SERVICE_MIGRATIONS, PgDatabase, PgPipelineStore, PgRollupStore, PgTrainingStore, RollupStore,
};

fn columns(pg: &PgCluster, db: &str, table: &str) -> String {
    pg.psql(
        db,
        &format!(
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_name = '{table}'"
        ),
    )
}

#[test]
fn spec_tables_keep_their_columns_and_migrations_run_once() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let name = url.rsplit('/').next().unwrap();
    // Two pools (as two processes would have) open every store twice.
    for _ in 0..2 {
        let db = PgDatabase::connect_new(&url).unwrap();
        PgPipelineStore::open(&db).unwrap();
        PgTrainingStore::open(&db).unwrap();
        PgRollupStore::open(&db).unwrap();
    }
    assert_eq!(
        columns(pg, name, "pipeline_runs"),
        "run_id,pipeline_name,status,started_at,finished_at,duration_seconds,error_message,metadata"
    );
    assert_eq!(
        columns(pg, name, "training_runs"),
        "run_id,model_type,started_at,completed_at,status,hyperparameters,recall_at_10,\
         ndcg_at_10,coverage,baseline_recall_at_10,improvement_pct,training_time_seconds,\
         data_version,git_commit,artifacts_path,model_id,registered_at,registry_status"
    );
    assert_eq!(
        columns(pg, name, "iteration_metrics"),
        "id,run_id,iteration,timestamp,loss,validation_recall,validation_ndcg,wall_time_seconds"
    );
    assert_eq!(
        pg.psql(
            name,
            "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes \
             WHERE tablename = 'pipeline_runs' AND indexname LIKE 'idx_%'"
        ),
        "idx_pipeline_name_status,idx_started_at"
    );
    assert_eq!(
        pg.psql(
            name,
            "SELECT string_agg(store || ':' || version, ',' ORDER BY store) \
             FROM recops_schema_migrations"
        ),
        "pipeline:1,service:1,service:2,training:1,training:2"
    );
    // A database migrated by a newer recops is refused, not downgraded.
    pg.psql(
        name,
        "INSERT INTO recops_schema_migrations VALUES ('pipeline', 2, 'later')",
    );
    let db = PgDatabase::connect_new(&url).unwrap();
    let err = PgPipelineStore::open(&db).unwrap_err().to_string();
    assert!(
        err.contains("schema version 2") && err.contains("upgrade recops"),
        "{err}"
    );
}

/// Rollups written before instances existed (service schema version 1) survive the
/// migration to version 2 under the instance `''`, and a read-only reader of a
/// version-1 database reads them too.
#[test]
fn version_1_rollups_are_kept_under_the_empty_instance() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let name = url.rsplit('/').next().unwrap();
    pg.psql(
        name,
        "CREATE TABLE recops_schema_migrations (store TEXT NOT NULL, version INTEGER NOT NULL, \
         applied_at TEXT NOT NULL, PRIMARY KEY (store, version))",
    );
    pg.psql(name, PG_SERVICE_MIGRATIONS[0]);
    pg.psql(
        name,
        "INSERT INTO recops_schema_migrations VALUES ('service', 1, 'before'); \
         INSERT INTO request_rollups (minute, endpoint, model_id, request_count, error_count, \
         fallback_count, latency_sum_ms, latency_hist) VALUES \
         ('2025-01-15T15:00:00.000000+00:00', '/recommend', 'm1', 4, 1, 2, 40.0, '[]')",
    );
    let t0 = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2025, 1, 15, 15, 0, 0).unwrap();
    let t1 = t0 + chrono::Duration::minutes(1);
    let db = PgDatabase::connect_new(&url).unwrap();
    let reader = PgRollupStore::open_existing(&db).unwrap().unwrap();
    let rows = reader.rollups(t0, t1, None).unwrap();
    assert_eq!((rows[0].instance.as_str(), rows[0].request_count), ("", 4));

    let store = PgRollupStore::open(&db).unwrap();
    let rows = store.rollups(t0, t1, None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].instance.as_str(), rows[0].error_count), ("", 1));
    assert_eq!(
        pg.psql(
            name,
            "SELECT string_agg(a.attname, ',' ORDER BY a.attname) FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = 'request_rollups'::regclass AND i.indisprimary"
        ),
        "endpoint,instance,minute,model_id"
    );
}
