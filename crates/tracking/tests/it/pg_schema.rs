//! The PostgreSQL tables keep the spec's names and columns, and migrations are
//! versioned and run once.

use recops_testkit::PgCluster;
use recops_tracking::{PgDatabase, PgPipelineStore, PgRollupStore, PgTrainingStore};

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
        "pipeline:1,service:1,training:1,training:2"
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
