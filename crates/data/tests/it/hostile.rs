//! Bad data cannot wedge or poison a refresh: date bounds, size caps, overflowing
//! Parquet dates, and staging folders on another filesystem or that cannot be
//! archived.

use std::sync::Arc;

use arrow_array::{Date32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use recops_core::Home;
use recops_data::{DataConfig, Error, ReadOptions, RefreshKind, RefreshOptions, read_interactions};
use recops_testkit::TempHome;

use crate::{csv, names, now, run, run_with, snapshot};

fn rejected_text(r: &recops_data::RefreshReport) -> String {
    std::fs::read_to_string(r.files[0].rejected_file.clone().unwrap()).unwrap()
}

#[test]
fn rows_dated_in_the_future_or_before_the_floor_are_quarantined_with_the_reason() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    // now() is 2025-01-15 02:00 UTC; the tolerance is 24 h.
    t.stage(
        "dates.csv",
        &csv(&[
            (1, 10, 5, "ok", "2025-01-14"),
            (2, 10, 5, "within tolerance", "2025-01-16 01:00:00"),
            (3, 10, 5, "future", "2099-01-01"),
            (4, 10, 5, "ancient", "1900-01-01"),
            (5, 10, 5, "just late", "2025-01-16 02:00:01"),
        ]),
    )
    .unwrap();
    let r = run(home).unwrap();
    assert_eq!((r.new_records, r.rejected_records), (2, 3));
    let text = rejected_text(&r);
    assert!(
        text.contains("cmt_date 2099-01-01T00:00:00.000000+00:00 is after 2025-01-16T02:00:00.000000+00:00 (the refresh time + refresh.future_tolerance_hours)"),
        "{text}"
    );
    assert!(
        text.contains("is before 2000-01-01T00:00:00.000000+00:00 (refresh.min_cmt_date)"),
        "{text}"
    );
    let (table, _) = read_interactions(&home.interactions(), ReadOptions::default()).unwrap();
    assert_eq!(table.user_id, vec![1, 2]);
}

#[test]
fn an_oversized_field_rejects_the_row_and_an_oversized_file_is_refused() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    let big = "x".repeat(10 << 20);
    let text = format!(
        "user_id,product_id,rating,comment,cmt_date\n1,10,5,fine,2025-01-01\n2,10,5,\"{big}\",2025-01-01\n"
    );
    t.stage("big_field.csv", &text).unwrap();
    let r = run(home).unwrap();
    assert_eq!((r.new_records, r.rejected_records), (1, 1));
    let report = rejected_text(&r);
    assert!(
        report.contains("comment is 10485760 bytes, above refresh.max_field_bytes (65536)"),
        "{}",
        &report[..report.len().min(400)]
    );
    // The report keeps a prefix, not the 10 MB.
    assert!(report.len() < 4096, "{} bytes", report.len());

    // A file above the cap is refused before it is read, and nothing changes.
    let mut config = DataConfig::default();
    config.refresh.max_file_bytes = 1024;
    let before = snapshot(&home.processed_dir());
    t.stage("big_file.csv", &text).unwrap();
    let err = run_with(home, &config, false).unwrap_err();
    let Error::BadStagingFiles { problems } = &err else {
        panic!("{err}")
    };
    assert!(problems[0].file.ends_with("big_file.csv"));
    assert!(
        problems[0]
            .reason
            .contains("above refresh.max_file_bytes (1024)"),
        "{err}"
    );
    assert_eq!(snapshot(&home.processed_dir()), before);
    assert!(names(&home.staging_dir()).contains(&"big_file.csv".to_owned()));
}

#[test]
fn a_parquet_date32_that_overflows_is_a_rejected_row_not_a_panic() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    let schema = Schema::new(vec![
        Field::new("user_id", DataType::Int64, true),
        Field::new("product_id", DataType::Int64, true),
        Field::new("rating", DataType::Int64, true),
        Field::new("comment", DataType::Utf8, true),
        Field::new("cmt_date", DataType::Date32, true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(Int64Array::from(vec![10, 10, 10])),
            Arc::new(Int64Array::from(vec![5, 5, 5])),
            Arc::new(StringArray::from(vec!["a", "b", "c"])),
            // 2025-01-01, i32::MAX days, i32::MIN days.
            Arc::new(Date32Array::from(vec![20089, i32::MAX, i32::MIN])),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(home.staging_dir()).unwrap();
    let path = home.staging_dir().join("dates.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let r = run(home).unwrap();
    assert_eq!((r.new_records, r.rejected_records), (1, 2));
    let text = rejected_text(&r);
    assert!(
        text.contains(
            "cmt_date 2147483647 days since 1970-01-01 is outside the representable range"
        ),
        "{text}"
    );
}

#[test]
fn a_staging_folder_on_another_filesystem_is_archived_by_copy() {
    let shm = std::path::Path::new("/dev/shm");
    let t = TempHome::new().unwrap();
    let home = t.home();
    let Ok(staging) = tempfile::tempdir_in(shm) else {
        eprintln!("skipped: no /dev/shm");
        return;
    };
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &std::path::Path| std::fs::metadata(p).unwrap().dev();
    std::fs::create_dir_all(home.staging_dir()).unwrap();
    if dev(staging.path()) == dev(&home.staging_dir()) {
        eprintln!("skipped: /dev/shm is on the same filesystem as the home");
        return;
    }
    let text = csv(&[(1, 10, 5, "ok", "2025-01-14")]);
    std::fs::write(staging.path().join("other_fs.csv"), &text).unwrap();
    let options = RefreshOptions {
        force_full: false,
        staging_dir: Some(staging.path().to_path_buf()),
        now: now(),
    };
    let r = recops_data::refresh(home, &DataConfig::default(), &options).unwrap();
    assert_eq!(r.new_records, 1);
    let archived = r.files[0].archived_to.clone().unwrap();
    assert_eq!(std::fs::read_to_string(archived).unwrap(), text);
    assert!(names(staging.path()).is_empty());
    // And the next run is a no-op, not a failure.
    let r = recops_data::refresh(home, &DataConfig::default(), &options).unwrap();
    assert_eq!(r.kind, RefreshKind::NoNewData);
}

#[test]
fn a_failed_archive_never_blocks_later_runs() {
    let t = TempHome::new().unwrap();
    let home: &Home = t.home();
    // The archive folder cannot be created: a file stands in its way.
    std::fs::create_dir_all(home.staging_dir()).unwrap();
    std::fs::write(home.staging_archive_dir(), b"in the way").unwrap();
    t.stage("a.csv", &csv(&[(1, 10, 5, "ok", "2025-01-14")]))
        .unwrap();
    let r = run(home).unwrap();
    assert_eq!(r.new_records, 1);
    assert_eq!(r.files[0].archived_to, None);
    assert!(names(&home.staging_dir()).contains(&"a.csv".to_owned()));
    // Still in the way: the next run recognises the committed file and goes on.
    let r = run(home).unwrap();
    assert_eq!(r.kind, RefreshKind::NoNewData);
    assert_eq!(r.recovered_files.len(), 1);
    assert_eq!(r.recovered_files[0].archived_to, None);
    // Fixed: the file is archived at last, and the data did not change.
    std::fs::remove_file(home.staging_archive_dir()).unwrap();
    let r = run(home).unwrap();
    assert_eq!(r.kind, RefreshKind::NoNewData);
    assert!(r.recovered_files[0].archived_to.is_some());
    assert_eq!(names(&home.staging_archive_dir()), vec!["a.csv".to_owned()]);
    assert_eq!(r.total_records, 1);
}
