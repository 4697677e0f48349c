//! The product catalog: `data/published_data/data_product.csv`.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Columns the catalog must have (others, such as `brand` and `category`, are ignored).
pub const REQUIRED_COLUMNS: [&str; 3] = ["product_id", "name", "description"];

/// One product of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The product id (the interactions' `product_id`).
    pub product_id: i64,
    /// Product name.
    pub name: String,
    /// Product description (may be empty).
    pub description: String,
    /// 1-based line of the record in the file (header = line 1).
    pub line: u64,
}

impl Product {
    /// The text embedded for this product: name and description joined as a sentence
    /// (`"{name}. {description}"`), the name alone when the description is empty, the
    /// description alone when the name is empty.
    pub fn text(&self) -> String {
        product_text(&self.name, &self.description)
    }
}

/// The text embedded for a product: see [`Product::text`].
pub fn product_text(name: &str, description: &str) -> String {
    let (name, description) = (name.trim(), description.trim());
    match (name.is_empty(), description.is_empty()) {
        (_, true) => name.to_owned(),
        (true, false) => description.to_owned(),
        (false, false) if name.ends_with(['.', '!', '?', ':', ';']) => {
            format!("{name} {description}")
        }
        (false, false) => format!("{name}. {description}"),
    }
}

/// The products of a catalog file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Products that have a name or a description.
    pub products: Vec<Product>,
    /// Products whose description is empty (their name alone is embedded).
    pub empty_descriptions: usize,
    /// Ids of products with neither name nor description (not embedded).
    pub skipped_without_text: Vec<i64>,
}

/// Reads the catalog CSV (UTF-8, header row, quoted fields may span lines; a UTF-8
/// byte-order mark is accepted). Column names are matched ignoring case and
/// surrounding spaces. Errors name the file and line: a missing column, a
/// `product_id` that is not an integer, a duplicate `product_id`, a malformed row, or a
/// catalog with no products.
pub fn read_catalog(path: &Path) -> Result<Catalog> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Catalog {
                path: path.to_path_buf(),
                line: None,
                message: "file not found; export the catalog there (CSV with columns \
                          product_id, name, brand, category, description)"
                    .to_owned(),
            });
        }
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
    let bad = |line: Option<u64>, message: String| Error::Catalog {
        path: path.to_path_buf(),
        line,
        message,
    };
    let headers = reader
        .headers()
        .map_err(|e| bad(Some(1), csv_message(&e)))?
        .clone();
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_lowercase())
        .collect();
    let index = |col: &str| names.iter().position(|n| n == col);
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| index(c).is_none())
        .collect();
    let (Some(id_col), Some(name_col), Some(desc_col)) =
        (index("product_id"), index("name"), index("description"))
    else {
        return Err(bad(
            Some(1),
            format!(
                "missing column(s) {}; the header has [{}], expected product_id, name, brand, \
                 category, description",
                missing.join(", "),
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    };

    let mut catalog = Catalog::default();
    let mut seen: HashMap<i64, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(csv::Position::line);
            bad(line, csv_message(&e))
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |i: usize| record.get(i).unwrap_or("");
        let raw_id = field(id_col).trim();
        let product_id = parse_id(raw_id).ok_or_else(|| {
            bad(
                Some(line),
                format!("product_id {raw_id:?} is not an integer"),
            )
        })?;
        if let Some(first) = seen.insert(product_id, line) {
            return Err(bad(
                Some(line),
                format!("product_id {product_id} already appears on line {first}"),
            ));
        }
        let name = field(name_col).trim().to_owned();
        let description = field(desc_col).trim().to_owned();
        if name.is_empty() && description.is_empty() {
            catalog.skipped_without_text.push(product_id);
            continue;
        }
        if description.is_empty() {
            catalog.empty_descriptions += 1;
        }
        catalog.products.push(Product {
            product_id,
            name,
            description,
            line,
        });
    }
    if catalog.products.is_empty() {
        return Err(bad(
            None,
            if catalog.skipped_without_text.is_empty() {
                "no products (only a header, or an empty file)".to_owned()
            } else {
                format!(
                    "no product has a name or a description ({} rows without text)",
                    catalog.skipped_without_text.len()
                )
            },
        ));
    }
    Ok(catalog)
}

/// An integer id; `12.0` is accepted too (pandas writes integer columns with missing
/// values as floats), `12.5`, `abc` and out-of-range values are not.
fn parse_id(raw: &str) -> Option<i64> {
    if let Ok(id) = raw.parse::<i64>() {
        return Some(id);
    }
    let f: f64 = raw.parse().ok()?;
    // 2^53: beyond it a float no longer holds every integer exactly.
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0).then_some(f as i64)
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            format!(
                "not valid UTF-8 (field {}); save the file as UTF-8",
                err.field() + 1
            )
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data_product.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_products_with_quotes_newlines_bom_and_extra_columns() {
        let (_d, path) = write(
            "\u{feff}Product_ID, name ,brand,category,description,price\n\
             1,Sữa rửa mặt,CeraVe,Skincare,\"Làm sạch, dịu nhẹ\nkhông khô da\",100\n\
             2,Son môi,Maybelline,Makeup,,50\n\
             3,,,,,0\n",
        );
        let c = read_catalog(&path).unwrap();
        assert_eq!(c.products.len(), 2);
        assert_eq!(c.products[0].product_id, 1);
        assert_eq!(c.products[0].description, "Làm sạch, dịu nhẹ\nkhông khô da");
        assert_eq!(c.products[1].line, 4);
        assert_eq!(c.empty_descriptions, 1);
        assert_eq!(c.skipped_without_text, vec![3]);
        assert_eq!(c.products[1].text(), "Son môi");
    }

    #[test]
    fn ids_written_as_floats_by_pandas_are_accepted_when_integral() {
        assert_eq!(parse_id("12"), Some(12));
        assert_eq!(parse_id("-3"), Some(-3));
        assert_eq!(parse_id("12.0"), Some(12));
        assert_eq!(parse_id("12.5"), None);
        assert_eq!(parse_id("1e300"), None);
        assert_eq!(parse_id("NaN"), None);
        assert_eq!(parse_id(""), None);
    }

    #[test]
    fn texts_join_name_and_description_as_a_sentence() {
        assert_eq!(product_text("Kem dưỡng", "Cấp ẩm"), "Kem dưỡng. Cấp ẩm");
        assert_eq!(product_text("Kem dưỡng!", " Cấp ẩm "), "Kem dưỡng! Cấp ẩm");
        assert_eq!(product_text("", "Cấp ẩm"), "Cấp ẩm");
        assert_eq!(product_text(" Kem ", "  "), "Kem");
    }

    #[test]
    fn missing_columns_are_listed_with_the_header_found() {
        let (_d, path) = write("product_id,name,brand\n1,a,b\n");
        let msg = read_catalog(&path).unwrap_err().to_string();
        assert!(msg.contains("data_product.csv line 1"), "{msg}");
        assert!(msg.contains("missing column(s) description"), "{msg}");
        assert!(msg.contains("[product_id, name, brand]"), "{msg}");
    }

    #[test]
    fn bad_ids_duplicates_and_ragged_rows_name_their_line() {
        let (_d, path) = write("product_id,name,description\n1,a,b\nx2,c,d\n");
        let msg = read_catalog(&path).unwrap_err().to_string();
        assert!(
            msg.contains("line 3: product_id \"x2\" is not an integer"),
            "{msg}"
        );

        let (_d, path) = write("product_id,name,description\n1,a,b\n2,c,d\n1,e,f\n");
        let msg = read_catalog(&path).unwrap_err().to_string();
        assert!(
            msg.contains("line 4: product_id 1 already appears on line 2"),
            "{msg}"
        );

        let (_d, path) = write("product_id,name,description\n1,a,b\n2,c\n");
        let msg = read_catalog(&path).unwrap_err().to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("2 fields where the header has 3"), "{msg}");
    }

    #[test]
    fn invalid_utf8_and_empty_catalogs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.csv");
        std::fs::write(&path, b"product_id,name,description\n1,S\xfba,b\n").unwrap();
        let msg = read_catalog(&path).unwrap_err().to_string();
        assert!(msg.contains("UTF-8"), "{msg}");

        let (_d, path) = write("product_id,name,description\n");
        let msg = read_catalog(&path).unwrap_err().to_string();
        assert!(msg.contains("no products"), "{msg}");

        let missing = dir.path().join("nope.csv");
        let msg = read_catalog(&missing).unwrap_err().to_string();
        assert!(msg.contains("nope.csv: file not found"), "{msg}");
    }
}
