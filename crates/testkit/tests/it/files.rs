use recops_data::{find_staging_files, read_staging_file};
use recops_testkit::{GenConfig, TempHome};

#[test]
fn generated_staging_files_ingest_cleanly_in_date_order() {
    let (home, ds, summary) = TempHome::with_dataset(&GenConfig::default(), 3).unwrap();
    let scan = find_staging_files(&home.home().staging_dir()).unwrap();
    assert_eq!(scan.files.len(), 3);
    assert!(scan.ignored.is_empty());
    // Oldest data first, also by modification time (the merge order).
    let names: Vec<_> = scan.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(names, summary.staging_files);
    let mut rows = 0;
    let mut last_date = i64::MIN;
    for f in &scan.files {
        let b = read_staging_file(f).unwrap();
        assert!(b.rejected.is_empty(), "{:?}", &b.rejected[..1]);
        assert!(b.rows.cmt_date[0] >= last_date);
        last_date = *b.rows.cmt_date.last().unwrap();
        for i in 0..b.rows.len() {
            let g = &ds.interactions[rows + i];
            assert_eq!(
                (
                    b.rows.user_id[i],
                    b.rows.product_id[i],
                    b.rows.rating[i],
                    b.rows.cmt_date[i]
                ),
                (g.user_id, g.product_id, g.rating, g.cmt_date)
            );
            assert_eq!(b.rows.comment(i), g.comment.as_deref());
        }
        rows += b.rows.len();
    }
    assert_eq!(rows, ds.interactions.len());
    // Comments score across the whole range: the keywords are there.
    let b = read_staging_file(&scan.files[0]).unwrap();
    let q = &b.rows.comment_quality;
    assert!(q.iter().any(|&x| x >= 0.7) && q.iter().any(|&x| x <= 0.4));
}

#[test]
fn invalid_rows_are_exactly_the_injected_ones() {
    let config = GenConfig {
        invalid_rate: 0.03,
        ..GenConfig::default()
    };
    let (home, ds, summary) = TempHome::with_dataset(&config, 1).unwrap();
    assert_eq!(summary.invalid_rows, ds.invalid_rows());
    let scan = find_staging_files(&home.home().staging_dir()).unwrap();
    let b = read_staging_file(&scan.files[0]).unwrap();
    assert_eq!(b.rejected.len(), ds.invalid_rows());
    assert_eq!(b.rows.len() + b.rejected.len(), config.interactions);
}

#[test]
fn catalog_is_the_spec_csv_in_vietnamese() {
    let (home, ds, _) = TempHome::with_dataset(&GenConfig::tiny(), 1).unwrap();
    let text = std::fs::read_to_string(home.home().product_catalog()).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("product_id,name,brand,category,description")
    );
    assert_eq!(text.lines().count(), ds.products.len() + 1);
    assert!(text.contains("phù hợp với"));
}
