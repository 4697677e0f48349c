use std::time::{Duration, SystemTime};

use arrow_array::{Float64Array, Int32Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use recops_data::{
    DataConfig, DataManifest, Error, Mappings, ReadOptions, RefreshKind, TrainingData,
    data_version, parse_cmt_date, read_csr_npz, read_interactions, read_interactions_meta,
    temporal_split,
};
use recops_testkit::{GenConfig, TempHome};

use crate::{csv, names, run, run_with, snapshot};

fn set_mtime(path: &std::path::Path, secs: u64) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs))
        .unwrap();
}

#[test]
fn first_run_is_full_and_writes_every_output_consistently() {
    let (t, ds, summary) = TempHome::with_dataset(&GenConfig::tiny(), 2).unwrap();
    let home = t.home();
    let r = run(home).unwrap();
    assert_eq!(r.kind, RefreshKind::Full);
    assert_eq!(r.new_records, 600);
    assert_eq!(r.files.len(), 2);
    assert!(r.changed && r.outputs_written);
    // Staging is empty, both files are in the archive.
    assert!(names(&home.staging_dir()).is_empty());
    let archived: Vec<String> = summary
        .staging_files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names(&home.staging_archive_dir()), archived);

    // The table holds every generated row.
    let (table, meta) = read_interactions(&home.interactions(), ReadOptions::default()).unwrap();
    assert_eq!(
        table.len(),
        ds.interactions.len() - r.merge.duplicates_in_incoming
    );
    assert_eq!(
        meta.data_version.as_deref(),
        Some(data_version(&table).as_str())
    );
    assert_eq!(meta.data_version, r.data_version);
    assert_eq!(meta.last_ingest.len(), 2);

    // Training data == the split of the table; the npz is its train part.
    let data = TrainingData::load(home).unwrap();
    assert_eq!(data.split, temporal_split(&table.raw()));
    assert_eq!(Some(&data.data_version), r.data_version.as_ref());
    let npz = read_csr_npz(&home.train_confidence()).unwrap();
    assert_eq!(npz, data.train_confidence(10.0));
    assert_eq!(npz.nnz(), r.train_interactions);
    assert_eq!(data.split.test.len(), r.test_interactions);
    let mappings = Mappings::read(&home.user_item_mappings()).unwrap();
    assert_eq!(mappings, data.mappings());
    let manifest = DataManifest::read(&home.data_version_file())
        .unwrap()
        .unwrap();
    assert_eq!(Some(manifest.data_version), r.data_version);
    assert_eq!((manifest.users, manifest.items), (r.users, r.items));
    assert_eq!(manifest.created_at, "2025-01-15T02:00:00.000000+00:00");
    // Counts recorded per file.
    assert!(
        r.files
            .iter()
            .all(|f| f.rows == 300 && f.valid == 300 && f.rejected == 0)
    );
}

#[test]
fn incremental_up_to_the_threshold_then_full() {
    let (t, _) = TempHome::with_data(&GenConfig::tiny(), 1).unwrap();
    let home = t.home();
    assert_eq!(run(home).unwrap().kind, RefreshKind::Full);
    let rows = |n: i64, base: i64| -> Vec<(i64, i64, u8, &str, &str)> {
        (0..n)
            .map(|i| (900_000 + base + i, 1, 5, "mịn", "2025-01-10 08:00:00"))
            .collect()
    };
    // 100 new rows (the spec's threshold): incremental.
    t.stage("a.csv", &csv(&rows(100, 0))).unwrap();
    let r = run(home).unwrap();
    assert_eq!(
        (r.kind, r.new_records, r.merge.added),
        (RefreshKind::Incremental, 100, 100)
    );
    assert_eq!(r.total_records, r.previous_records + 100);
    // The data version's quality: the mean comment quality of every row, in [0, 1].
    let q = r.mean_comment_quality.unwrap();
    assert!((0.0..=1.0).contains(&q), "{q}");
    // 101: full.
    t.stage("b.csv", &csv(&rows(101, 1000))).unwrap();
    assert_eq!(run(home).unwrap().kind, RefreshKind::Full);
    // 3 with --force-full: full.
    t.stage("c.csv", &csv(&rows(3, 2000))).unwrap();
    assert_eq!(
        run_with(home, &DataConfig::default(), true).unwrap().kind,
        RefreshKind::Full
    );
    // The threshold comes from config/data_config.yaml.
    std::fs::create_dir_all(home.config_dir()).unwrap();
    std::fs::write(
        home.data_config(),
        recops_data::DEFAULT_DATA_CONFIG.replace("${RECOPS_INCREMENTAL_MAX_NEW_ROWS:-100}", "2"),
    )
    .unwrap();
    let config = DataConfig::load(home).unwrap();
    assert_eq!(config.refresh.incremental_max_new_rows, 2);
    t.stage("d.csv", &csv(&rows(3, 3000))).unwrap();
    assert_eq!(
        run_with(home, &config, false).unwrap().kind,
        RefreshKind::Full
    );
    t.stage("e.csv", &csv(&rows(2, 4000))).unwrap();
    assert_eq!(
        run_with(home, &config, false).unwrap().kind,
        RefreshKind::Incremental
    );
}

#[test]
fn incremental_and_full_give_the_same_data() {
    let make = || {
        let (t, _) = TempHome::with_data(&GenConfig::tiny(), 1).unwrap();
        run(t.home()).unwrap();
        let rows = [
            (100_001, 1_000, 1, "tệ, không thích", "2025-01-10 08:00:00"),
            (999_999, 1_003, 5, "Thấm nhanh", "2025-01-11"),
        ];
        t.stage("new.csv", &csv(&rows)).unwrap();
        t
    };
    let (a, b) = (make(), make());
    let ra = run(a.home()).unwrap();
    let rb = run_with(b.home(), &DataConfig::default(), true).unwrap();
    assert_eq!(
        (ra.kind, rb.kind),
        (RefreshKind::Incremental, RefreshKind::Full)
    );
    assert_eq!(ra.data_version, rb.data_version);
    let ta = read_interactions(&a.home().interactions(), ReadOptions::default())
        .unwrap()
        .0;
    let tb = read_interactions(&b.home().interactions(), ReadOptions::default())
        .unwrap()
        .0;
    assert_eq!(ta, tb);
    assert_eq!(
        read_csr_npz(&a.home().train_confidence()).unwrap(),
        read_csr_npz(&b.home().train_confidence()).unwrap()
    );
}

#[test]
fn running_twice_changes_nothing_the_second_time() {
    let (t, _) = TempHome::with_data(&GenConfig::tiny(), 2).unwrap();
    let home = t.home();
    let first = run(home).unwrap();
    let before = snapshot(&home.processed_dir());
    // Second run on the same (now empty) staging folder.
    let second = run(home).unwrap();
    assert_eq!(second.kind, RefreshKind::NoNewData);
    assert!(!second.changed && !second.outputs_written);
    assert_eq!(second.data_version, first.data_version);
    assert_eq!(snapshot(&home.processed_dir()), before);
    // The same file dropped again under its name: recognised as committed, archived.
    let archived = home.staging_archive_dir().join(&first.files[0].name);
    std::fs::copy(&archived, home.staging_dir().join(&first.files[0].name)).unwrap();
    let third = run(home).unwrap();
    assert_eq!(
        (third.kind, third.recovered_files.len()),
        (RefreshKind::NoNewData, 1)
    );
    assert_eq!(snapshot(&home.processed_dir()), before);
    // Under another name: read again, rows identical, nothing is rewritten.
    std::fs::copy(&archived, home.staging_dir().join("again.csv")).unwrap();
    let fourth = run(home).unwrap();
    assert_eq!(fourth.kind, RefreshKind::Full);
    assert!(!fourth.changed && !fourth.outputs_written);
    assert_eq!(fourth.merge.added + fourth.merge.replaced, 0);
    assert_eq!(fourth.merge.unchanged, fourth.new_records);
    assert_eq!(fourth.data_version, first.data_version);
    assert_eq!(snapshot(&home.processed_dir()), before);
    // Copies are archived next to the first, never over it.
    let archive = names(&home.staging_archive_dir());
    assert_eq!(archive.len(), 4, "{archive:?}");
    assert!(archive.iter().any(|n| n.contains(".20250115T020000Z.")));
}

#[test]
fn dedup_keeps_the_newest_file_and_the_last_row() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    let old = t
        .stage(
            "zz_old.csv",
            &csv(&[
                (1, 10, 1, "old", "2025-01-01 10:00:00"),
                (2, 10, 2, "kept", "2025-01-01 10:00:00"),
            ]),
        )
        .unwrap();
    let new = t
        .stage(
            "aa_new.csv",
            &csv(&[
                (1, 10, 4, "first version", "2025-01-01T10:00:00Z"),
                (1, 10, 5, "last version", "2025-01-01 10:00:00"),
                (1, 10, 3, "other date", "2025-01-02 10:00:00"),
            ]),
        )
        .unwrap();
    // Name order says otherwise; modification time decides.
    set_mtime(&old, 100);
    set_mtime(&new, 200);
    let r = run(home).unwrap();
    assert_eq!(r.merge.duplicates_in_incoming, 2);
    let (table, _) = read_interactions(&home.interactions(), ReadOptions::default()).unwrap();
    let rows: Vec<_> = (0..table.len())
        .map(|i| {
            (
                table.user_id[i],
                table.rating[i],
                table.comment(i).unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (2, 2, "kept".to_owned()),
            (1, 5, "last version".to_owned()),
            (1, 3, "other date".to_owned()),
        ]
    );
    // A later refresh replaces a row by key.
    t.stage(
        "fix.csv",
        &csv(&[(2, 10, 4, "changed", "2025-01-01 10:00:00")]),
    )
    .unwrap();
    let r = run(home).unwrap();
    assert_eq!(
        (r.kind, r.merge.replaced, r.total_records),
        (RefreshKind::Incremental, 1, 3)
    );
    let (table, _) = read_interactions(&home.interactions(), ReadOptions::default()).unwrap();
    assert_eq!(table.comment(2), Some("changed"));
}

#[test]
fn a_broken_file_fails_the_run_and_changes_nothing() {
    let (t, _) = TempHome::with_data(&GenConfig::tiny(), 1).unwrap();
    let home = t.home();
    run(home).unwrap();
    let processed = snapshot(&home.processed_dir());
    let archive = names(&home.staging_archive_dir());
    t.stage("good.csv", &csv(&[(5, 5, 5, "tốt", "2025-01-01")]))
        .unwrap();
    t.stage("broken.csv", "user_id;product_id;rating\n1;2;3\n")
        .unwrap();
    t.stage("empty.csv", "").unwrap();
    let staged = snapshot(&home.staging_dir());
    let err = run(home).unwrap_err();
    let msg = err.to_string();
    match &err {
        Error::BadStagingFiles { problems } => assert_eq!(problems.len(), 2),
        other => panic!("unexpected error {other}"),
    }
    assert!(
        msg.contains("broken.csv") && msg.contains("missing required column(s)"),
        "{msg}"
    );
    assert!(
        msg.contains("empty.csv") && msg.contains("empty file"),
        "{msg}"
    );
    assert!(msg.contains("nothing was changed"), "{msg}");
    // Processed data, staging files (the good one too) and the archive are untouched.
    assert_eq!(snapshot(&home.processed_dir()), processed);
    assert_eq!(snapshot(&home.staging_dir()), staged);
    assert_eq!(names(&home.staging_archive_dir()), archive);
    assert!(!home.staging_rejected_dir().exists());
    // Once the bad files are gone, the good one goes through.
    std::fs::remove_file(home.staging_dir().join("broken.csv")).unwrap();
    std::fs::remove_file(home.staging_dir().join("empty.csv")).unwrap();
    let r = run(home).unwrap();
    assert_eq!((r.kind, r.new_records), (RefreshKind::Incremental, 1));
}

#[test]
fn rejected_rows_are_reported_and_kept_with_the_reason() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    t.stage(
        "mixed.csv",
        "user_id,product_id,rating,comment,cmt_date\n\
         1,10,5,good,2025-01-01\n\
         2,10,7,too high,2025-01-01\n\
         ,10,5,no user,2025-01-01\n\
         3,10,4,bad date,yesterday\n",
    )
    .unwrap();
    let r = run(home).unwrap();
    assert_eq!((r.new_records, r.rejected_records), (1, 3));
    let f = &r.files[0];
    assert_eq!((f.rows, f.valid, f.rejected), (4, 1, 3));
    let rejected = f.rejected_file.clone().unwrap();
    assert_eq!(
        rejected,
        home.staging_rejected_dir()
            .join("mixed.csv.20250115T020000Z.csv")
    );
    let text = std::fs::read_to_string(rejected).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "row,line,reason,user_id,product_id,rating,comment,cmt_date"
    );
    assert_eq!(
        lines[1],
        "2,3,rating 7 outside 1..=5,2,10,7,too high,2025-01-01"
    );
    assert!(lines[2].starts_with("3,4,empty user_id,"));
    assert!(
        lines[3].contains("invalid cmt_date \"\"yesterday\"\""),
        "{}",
        lines[3]
    );
    // The original file is archived whole.
    assert_eq!(names(&home.staging_archive_dir()), ["mixed.csv"]);
}

#[test]
fn parquet_staging_files_with_pandas_style_types() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    let schema = Schema::new(vec![
        Field::new("user_id", DataType::Int32, true),
        Field::new("product_id", DataType::Utf8, true),
        Field::new("rating", DataType::Float64, true),
        Field::new("comment", DataType::Utf8, true),
        Field::new(
            "cmt_date",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new("ignored", DataType::Int32, true),
    ]);
    let jan1 = parse_cmt_date("2025-01-01 09:30:00").unwrap() / 1000;
    let batch = RecordBatch::try_new(
        std::sync::Arc::new(schema),
        vec![
            std::sync::Arc::new(Int32Array::from(vec![Some(1), Some(2), None, Some(4)])),
            std::sync::Arc::new(StringArray::from(vec!["10", "11", "12", "x"])),
            std::sync::Arc::new(Float64Array::from(vec![
                Some(5.0),
                Some(4.5),
                Some(3.0),
                Some(2.0),
            ])),
            std::sync::Arc::new(StringArray::from(vec![
                Some("Thơm"),
                None,
                Some("ok"),
                Some(""),
            ])),
            std::sync::Arc::new(TimestampMillisecondArray::from(vec![
                jan1, jan1, jan1, jan1,
            ])),
            std::sync::Arc::new(Int32Array::from(vec![0, 0, 0, 0])),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(home.staging_dir()).unwrap();
    let path = home.staging_dir().join("export.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let r = run(home).unwrap();
    assert_eq!((r.new_records, r.rejected_records), (1, 3));
    let (table, _) = read_interactions(&home.interactions(), ReadOptions::default()).unwrap();
    assert_eq!(table.user_id, vec![1]);
    assert_eq!(table.product_id, vec![10]);
    assert_eq!(table.cmt_date, vec![jan1 * 1000]);
    assert_eq!(table.comment_quality, vec![0.6]);
    let text = std::fs::read_to_string(r.files[0].rejected_file.clone().unwrap()).unwrap();
    assert!(text.contains("rating 4.5 is not a whole number"), "{text}");
    assert!(text.contains("empty user_id"), "{text}");
    assert!(
        text.contains("invalid product_id \"\"x\"\": expected an integer"),
        "{text}"
    );
}

#[test]
fn stale_derived_outputs_are_repaired() {
    let (t, _) = TempHome::with_data(&GenConfig::tiny(), 1).unwrap();
    let home = t.home();
    let first = run(home).unwrap();
    let npz = std::fs::read(home.train_confidence()).unwrap();
    // As if a run was killed after committing the table but before the manifest.
    std::fs::remove_file(home.data_version_file()).unwrap();
    std::fs::write(home.train_confidence(), b"stale").unwrap();
    let r = run(home).unwrap();
    assert_eq!(r.kind, RefreshKind::Repair);
    assert!(!r.changed && r.outputs_written);
    assert_eq!(r.data_version, first.data_version);
    assert_eq!(std::fs::read(home.train_confidence()).unwrap(), npz);
    assert_eq!(
        DataManifest::read(&home.data_version_file())
            .unwrap()
            .unwrap()
            .data_version,
        first.data_version.unwrap()
    );
}

#[test]
fn committed_files_left_in_staging_are_archived_not_ingested_again() {
    let (t, _) = TempHome::with_data(&GenConfig::tiny(), 1).unwrap();
    let home = t.home();
    let first = run(home).unwrap();
    let name = &first.files[0].name;
    // As if killed after the commit but before archiving: the file is back in staging.
    std::fs::rename(
        home.staging_archive_dir().join(name),
        home.staging_dir().join(name),
    )
    .unwrap();
    // And a temporary file of the killed write is lying around.
    let orphan = home
        .processed_dir()
        .join(".interactions.parquet.tmp.999999.0");
    std::fs::write(&orphan, b"half a parquet").unwrap();
    let before = snapshot(&home.processed_dir());
    let r = run(home).unwrap();
    assert_eq!(r.kind, RefreshKind::NoNewData);
    assert_eq!(r.recovered_files.len(), 1);
    assert_eq!(r.new_records, 0);
    assert!(names(&home.staging_dir()).is_empty());
    assert_eq!(
        names(&home.staging_archive_dir()),
        std::slice::from_ref(name)
    );
    assert!(!orphan.exists());
    let mut expected = before;
    expected.remove(&orphan);
    assert_eq!(snapshot(&home.processed_dir()), expected);
    // A file with the same name but other content is new data.
    t.stage(name, &csv(&[(1, 1, 1, "x", "2025-01-01")]))
        .unwrap();
    let r = run(home).unwrap();
    assert_eq!((r.recovered_files.len(), r.new_records), (0, 1));
    assert_eq!(
        read_interactions_meta(&home.interactions()).unwrap().rows,
        r.total_records
    );
}

#[test]
fn hidden_and_foreign_files_are_left_alone() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    t.stage(".upload-in-progress.csv", "user_id,product_id\n")
        .unwrap();
    t.stage("README.txt", "notes").unwrap();
    let r = run(home).unwrap();
    assert_eq!(r.kind, RefreshKind::NoNewData);
    assert_eq!(r.ignored_files.len(), 2);
    assert_eq!(
        names(&home.staging_dir()),
        [".upload-in-progress.csv", "README.txt"]
    );
    assert!(!home.interactions().exists());
    let err = TrainingData::load(home).unwrap_err();
    assert!(err.to_string().contains("run data-refresh first"), "{err}");
}

#[test]
fn a_refresh_failing_before_its_commit_changes_nothing_and_leaves_nothing() {
    let (t, _) = TempHome::with_data(&GenConfig::tiny(), 1).unwrap();
    let home = t.home();
    run(home).unwrap();
    let processed = snapshot(&home.processed_dir());
    t.stage(
        "more.csv",
        &csv(&[
            (5, 5, 5, "tốt", "2025-01-01"),
            (6, 5, 9, "out of range", "2025-01-01"),
        ]),
    )
    .unwrap();
    let staging = snapshot(&home.staging_dir());
    // The staged matrix cannot be written: a folder stands in its way.
    let blocker = home.processed_dir().join(".X_train_confidence.npz.next");
    std::fs::create_dir(&blocker).unwrap();
    let err = run(home).unwrap_err();
    assert!(
        err.to_string().contains(".X_train_confidence.npz.next"),
        "{err}"
    );
    std::fs::remove_dir(&blocker).unwrap();
    // The staged table and rejected-rows report were removed; nothing else changed.
    assert_eq!(snapshot(&home.processed_dir()), processed);
    assert_eq!(snapshot(&home.staging_dir()), staging);
    assert!(!home.data_commit_journal().exists());
    let r = run(home).unwrap();
    assert_eq!((r.new_records, r.rejected_records), (1, 1));
    assert!(r.files[0].archived_to.is_some());
}
