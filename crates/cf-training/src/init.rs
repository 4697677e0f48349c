//! Factor initialisation: warm start from an earlier model and item factors from
//! product embeddings (truncated SVD).
//!
//! The embeddings file (`data/content_based_embeddings/product_embeddings.safetensors`,
//! written by the embeddings job) is read leniently:
//! - the matrix is the 2-D float tensor `embeddings` (else the only 2-D float tensor);
//! - the product ids are the 1-D integer tensor `product_ids` (else `ids` or
//!   `item_ids`, else the only 1-D integer tensor as long as the matrix), or a JSON
//!   array in the header metadata under `product_ids`;
//! - anything missing or unreadable means "no embeddings": training says why and uses
//!   random initialisation.

use std::path::Path;

use faer::Mat;
use safetensors::tensor::Dtype;

use crate::error::{Error, Result};
use crate::matrix::Factors;
use crate::model::CfModel;
use crate::tensors::Decoded;

/// Product embeddings as read from the embeddings file.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductEmbeddings {
    /// Product id of each row.
    pub product_ids: Vec<i64>,
    /// One row per product.
    pub vectors: Factors,
}

/// Reads the embeddings file (see the module docs for the accepted layouts).
pub fn read_product_embeddings(path: &Path) -> Result<ProductEmbeddings> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    let d = Decoded::parse(path, &bytes)?;
    let shapes = d.shapes();
    let is_float = |t: &Dtype| matches!(t, Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16);
    let is_int = |t: &Dtype| matches!(t, Dtype::I64 | Dtype::I32 | Dtype::U32 | Dtype::U64);
    let matrix_name = if d.has("embeddings") {
        "embeddings".to_owned()
    } else {
        let cands: Vec<&String> = shapes
            .iter()
            .filter(|(_, s, t)| s.len() == 2 && is_float(t))
            .map(|(n, _, _)| n)
            .collect();
        match cands.as_slice() {
            [one] => (*one).clone(),
            _ => {
                return Err(Error::ModelFile {
                    path: path.to_path_buf(),
                    message: format!(
                        "no tensor \"embeddings\" and not exactly one 2-D float tensor (has {:?})",
                        d.names()
                    ),
                });
            }
        }
    };
    let vectors = d.matrix(&matrix_name)?;
    let rows = vectors.rows();
    let id_name = ["product_ids", "ids", "item_ids"]
        .into_iter()
        .find(|n| d.has(n))
        .map(str::to_owned)
        .or_else(|| {
            let c: Vec<&String> = shapes
                .iter()
                .filter(|(_, s, t)| s.len() == 1 && s[0] == rows && is_int(t))
                .map(|(n, _, _)| n)
                .collect();
            (c.len() == 1).then(|| c[0].clone())
        });
    let product_ids = match id_name {
        Some(n) => d.ids(&n)?,
        None => match d.metadata("product_ids") {
            Some(json) => serde_json::from_str::<Vec<i64>>(json).map_err(|e| Error::ModelFile {
                path: path.to_path_buf(),
                message: format!("metadata product_ids is not a JSON array of integers: {e}"),
            })?,
            None => {
                return Err(Error::ModelFile {
                    path: path.to_path_buf(),
                    message: format!(
                        "no product ids: expected a 1-D integer tensor \"product_ids\" or metadata \
                         \"product_ids\" (has {:?})",
                        d.names()
                    ),
                });
            }
        },
    };
    if product_ids.len() != rows {
        return Err(Error::ShapeMismatch {
            what: format!("product ids in {}", path.display()),
            expected: format!("{rows} ids (one per embedding row)"),
            got: format!("{} ids", product_ids.len()),
        });
    }
    Ok(ProductEmbeddings {
        product_ids,
        vectors,
    })
}

/// Projects the embeddings of the items in `item_ids` to `k` dimensions with a
/// truncated SVD of the mean-centred matrix (PCA, faer), rescales the rows to a mean
/// norm of `target_norm`, and writes them into the first `k` columns of `items`.
/// Items without an embedding keep their (random) rows. Returns how many items were
/// initialised.
pub fn project_embeddings(
    emb: &ProductEmbeddings,
    item_ids: &[i64],
    k: usize,
    target_norm: f32,
    items: &mut Factors,
) -> Result<usize> {
    let dim = emb.vectors.cols();
    // Rows of `emb` for our items, in our column order.
    let mut matched: Vec<(usize, usize)> = Vec::new(); // (item column, embedding row)
    let mut by_id: Vec<(i64, usize)> = emb.product_ids.iter().copied().zip(0..).collect();
    by_id.sort_unstable();
    for (col, id) in item_ids.iter().enumerate() {
        if let Ok(p) = by_id.binary_search_by_key(id, |x| x.0) {
            let row = by_id[p].1;
            if emb.vectors.row(row).iter().all(|v| v.is_finite()) {
                matched.push((col, row));
            }
        }
    }
    let n = matched.len();
    if n < 2 || dim == 0 {
        return Ok(0);
    }
    let mut mean = vec![0.0f64; dim];
    for &(_, r) in &matched {
        for (m, v) in mean.iter_mut().zip(emb.vectors.row(r)) {
            *m += f64::from(*v);
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let a = Mat::<f64>::from_fn(n, dim, |i, j| {
        f64::from(emb.vectors.row(matched[i].1)[j]) - mean[j]
    });
    let svd = a.thin_svd().map_err(|e| Error::InvalidInput {
        what: "product embeddings",
        message: format!("the SVD did not converge: {e:?}"),
    })?;
    let u = svd.U();
    let s = svd.S().column_vector();
    let rank = s.nrows().min(k);
    // Projection = U_k S_k (n × rank).
    let mut proj = vec![0.0f64; n * k];
    for i in 0..n {
        for j in 0..rank {
            proj[i * k + j] = u[(i, j)] * s[j];
        }
    }
    let mean_norm = (0..n)
        .map(|i| {
            proj[i * k..(i + 1) * k]
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
        })
        .sum::<f64>()
        / n as f64;
    let scale = if mean_norm > 0.0 {
        f64::from(target_norm) / mean_norm
    } else {
        0.0
    };
    for (i, &(col, _)) in matched.iter().enumerate() {
        let row = items.row_mut(col);
        for j in 0..rank.min(row.len()) {
            row[j] = (proj[i * k + j] * scale) as f32;
        }
    }
    Ok(n)
}

/// Copies rows of `old` into `users` / `items` where the external ids match. Returns
/// (users copied, items copied). The caller checks that the shapes agree.
pub fn warm_start_rows(
    old: &CfModel,
    user_ids: &[i64],
    item_ids: &[i64],
    users: &mut Factors,
    items: &mut Factors,
) -> (usize, usize) {
    let mut nu = 0;
    for (r, id) in user_ids.iter().enumerate() {
        if let Some(o) = old.user_index(*id) {
            users.row_mut(r).copy_from_slice(old.user_factors.row(o));
            nu += 1;
        }
    }
    let mut ni = 0;
    for (r, id) in item_ids.iter().enumerate() {
        if let Some(o) = old.item_index(*id) {
            items.row_mut(r).copy_from_slice(old.item_factors.row(o));
            ni += 1;
        }
    }
    (nu, ni)
}

/// Mean row norm of a random initialisation (for scaling projected embeddings).
pub(crate) fn mean_row_norm(f: &Factors, cols: usize) -> f32 {
    if f.rows() == 0 {
        return 0.0;
    }
    let total: f64 = (0..f.rows())
        .map(|r| {
            let row = &f.row(r)[..cols.min(f.cols())];
            f64::from(crate::kernels::dot(row, row)).sqrt()
        })
        .sum();
    (total / f.rows() as f64) as f32
}

/// Fills rows with uniform values in `[lo, hi)` from a seeded stream.
#[cfg(test)]
pub(crate) fn fill_uniform(f: &mut Factors, lo: f32, hi: f32, seed: u64, tag: u64) {
    let mut rng = crate::rng::Rng::stream(seed, &[0x1A17, tag]);
    for v in f.as_mut_slice() {
        *v = lo + (hi - lo) * rng.unit_f32();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::{Tensor, encode};
    use std::collections::HashMap;

    #[test]
    fn projection_keeps_the_main_directions_and_scales() {
        // Items 10 and 11 point one way, 12 and 13 the other, in 6 dims; 99 has no row.
        let rows = vec![
            1.0, 0.1, 0.0, 0.0, 0.0, 0.0, //
            0.9, 0.0, 0.1, 0.0, 0.0, 0.0, //
            0.0, 0.0, 0.0, 1.0, 0.1, 0.0, //
            0.0, 0.0, 0.0, 0.9, 0.0, 0.1, //
        ];
        let emb = ProductEmbeddings {
            product_ids: vec![13, 12, 11, 10],
            vectors: Factors::from_vec(4, 6, rows).unwrap(),
        };
        let mut items = Factors::zeros(5, 2);
        fill_uniform(&mut items, 5.0, 6.0, 1, 1);
        let n = project_embeddings(&emb, &[10, 11, 12, 13, 99], 2, 0.5, &mut items).unwrap();
        assert_eq!(n, 4);
        let d = |a: usize, b: usize| crate::kernels::dot(items.row(a), items.row(b));
        assert!(d(0, 1) > 0.0 && d(2, 3) > 0.0 && d(0, 2) < 0.0, "{items:?}");
        assert!(
            items.row(4)[0] >= 5.0,
            "item without embedding keeps its init"
        );
        let norm = (0..4).map(|r| d(r, r).sqrt()).sum::<f32>() / 4.0;
        assert!((norm - 0.5).abs() < 1e-3, "{norm}");
    }

    #[test]
    fn reads_the_documented_layouts_and_refuses_others() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.safetensors");
        let m = Factors::from_vec(2, 3, vec![1.0; 6]).unwrap();
        let ids = [7i64, 8];
        let write = |t: &[(&str, Tensor<'_>)], meta: HashMap<String, String>| {
            std::fs::write(&p, encode(&p, t, meta).unwrap()).unwrap();
        };
        write(
            &[
                ("embeddings", Tensor::Matrix(&m)),
                ("product_ids", Tensor::Ids(&ids)),
            ],
            HashMap::new(),
        );
        assert_eq!(read_product_embeddings(&p).unwrap().product_ids, ids);
        // Other names, ids in metadata.
        let mut meta = HashMap::new();
        meta.insert("product_ids".to_owned(), "[7, 8]".to_owned());
        write(&[("vectors", Tensor::Matrix(&m))], meta);
        assert_eq!(read_product_embeddings(&p).unwrap().vectors, m);
        // No ids at all.
        write(&[("vectors", Tensor::Matrix(&m))], HashMap::new());
        let e = read_product_embeddings(&p).unwrap_err().to_string();
        assert!(e.contains("no product ids"), "{e}");
        std::fs::write(&p, b"not safetensors").unwrap();
        assert!(read_product_embeddings(&p).is_err());
        assert!(read_product_embeddings(&dir.path().join("absent")).is_err());
    }
}
