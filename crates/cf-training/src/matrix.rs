//! The interaction matrix (sprs CSR, both orientations) and dense factor matrices.

use recops_data::Entry;
use sprs::{CsMatI, TriMatI};

use crate::error::{Error, Result};

/// A sparse user × item matrix kept in both orientations (rows by user and rows by
/// item), as ALS needs both and BPR needs sorted rows for negative checks. Column
/// indices are sorted within each row. Values are confidences (ALS) or 1 (BPR).
#[derive(Debug, Clone)]
pub struct Interactions {
    by_user: CsMatI<f32, u32, usize>,
    by_item: CsMatI<f32, u32, usize>,
}

impl Interactions {
    /// Builds the matrix from split cells with `value(entry)` as each cell's value.
    /// Cells must be unique per (user, item), as [`recops_data::temporal_split`] makes them.
    pub fn from_entries(
        n_users: usize,
        n_items: usize,
        entries: &[Entry],
        value: impl Fn(&Entry) -> f32,
    ) -> Result<Self> {
        if n_users > u32::MAX as usize || n_items > u32::MAX as usize {
            return Err(Error::InvalidInput {
                what: "interaction matrix",
                message: format!("{n_users} users x {n_items} items exceeds 2^32 rows or columns"),
            });
        }
        let mut tri = TriMatI::<f32, u32>::with_capacity((n_users, n_items), entries.len());
        for e in entries {
            if e.user as usize >= n_users || e.item as usize >= n_items {
                return Err(Error::InvalidInput {
                    what: "interaction matrix",
                    message: format!(
                        "cell ({}, {}) is outside {n_users} users x {n_items} items",
                        e.user, e.item
                    ),
                });
            }
            tri.add_triplet(e.user as usize, e.item as usize, value(e));
        }
        let by_user: CsMatI<f32, u32, usize> = tri.to_csr();
        let by_item: CsMatI<f32, u32, usize> = by_user.transpose_view().to_csr();
        Ok(Interactions { by_user, by_item })
    }

    /// Number of users (rows).
    pub fn n_users(&self) -> usize {
        self.by_user.rows()
    }

    /// Number of items (columns).
    pub fn n_items(&self) -> usize {
        self.by_user.cols()
    }

    /// Number of stored cells.
    pub fn nnz(&self) -> usize {
        self.by_user.nnz()
    }

    /// The items of `user` (sorted) and their values.
    pub fn user_row(&self, user: usize) -> (&[u32], &[f32]) {
        row(&self.by_user, user)
    }

    /// The users of `item` (sorted) and their values.
    pub fn item_row(&self, item: usize) -> (&[u32], &[f32]) {
        row(&self.by_item, item)
    }

    /// Number of cells per item.
    pub fn item_counts(&self) -> Vec<u32> {
        (0..self.n_items())
            .map(|i| self.item_row(i).0.len() as u32)
            .collect()
    }

    /// The user-major CSR arrays: (indptr, indices, values).
    pub(crate) fn user_csr(&self) -> Csr<'_> {
        csr(&self.by_user)
    }

    /// The item-major CSR arrays: (indptr, indices, values).
    pub(crate) fn item_csr(&self) -> Csr<'_> {
        csr(&self.by_item)
    }
}

/// Borrowed CSR arrays for the hot loops.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Csr<'a> {
    pub(crate) indptr: &'a [usize],
    pub(crate) indices: &'a [u32],
    pub(crate) data: &'a [f32],
}

impl Csr<'_> {
    pub(crate) fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    #[inline]
    pub(crate) fn range(&self, row: usize) -> std::ops::Range<usize> {
        self.indptr[row]..self.indptr[row + 1]
    }
}

fn csr(m: &CsMatI<f32, u32, usize>) -> Csr<'_> {
    Csr {
        indptr: m.indptr().into_raw_storage(),
        indices: m.indices(),
        data: m.data(),
    }
}

fn row(m: &CsMatI<f32, u32, usize>, r: usize) -> (&[u32], &[f32]) {
    let c = csr(m);
    if r >= c.rows() {
        return (&[], &[]);
    }
    let range = c.range(r);
    (&c.indices[range.clone()], &c.data[range])
}

/// A dense row-major matrix of factors: one row per user or item.
///
/// The values start on a 64-byte boundary (a cache line; the buffer holds up to 15 spare
/// values in front), so a row of `16·m` factors spans exactly `m` cache lines and its
/// 512-bit loads never straddle two. The trainers gather scattered rows, and a 64-factor
/// row then costs 4 line fetches instead of 5.
pub struct Factors {
    rows: usize,
    cols: usize,
    /// `rows · cols` values from `buf[off]`, which is 64-byte aligned.
    buf: Vec<f32>,
    off: usize,
}

/// Values per 64-byte cache line.
const LINE: usize = 64 / size_of::<f32>();

/// The first index of `buf` on a 64-byte boundary (at most `LINE - 1`).
fn line_offset(buf: &[f32]) -> usize {
    let misaligned = (buf.as_ptr() as usize) % 64;
    ((64 - misaligned) % 64) / size_of::<f32>()
}

/// A zeroed buffer holding `len` aligned values from the returned offset.
fn aligned_zeros(len: usize) -> (Vec<f32>, usize) {
    let buf = vec![0.0f32; len + LINE - 1];
    let off = line_offset(&buf);
    (buf, off)
}

impl Factors {
    /// A `rows × cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        let (buf, off) = aligned_zeros(rows * cols);
        Factors {
            rows,
            cols,
            buf,
            off,
        }
    }

    /// Wraps row-major `data`; its length must be `rows * cols`. The values are copied
    /// once into an aligned buffer unless `data` already starts on a cache line.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::ShapeMismatch {
                what: "factor matrix".into(),
                expected: format!("{rows} x {cols} = {} values", rows * cols),
                got: format!("{} values", data.len()),
            });
        }
        if line_offset(&data) == 0 {
            return Ok(Factors {
                rows,
                cols,
                buf: data,
                off: 0,
            });
        }
        let mut f = Factors::zeros(rows, cols);
        f.as_mut_slice().copy_from_slice(&data);
        Ok(f)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (factors, plus the bias column for BPR).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.as_slice()[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r`, mutable.
    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        let cols = self.cols;
        &mut self.as_mut_slice()[r * cols..(r + 1) * cols]
    }

    /// All values, row-major (starting on a 64-byte boundary).
    pub fn as_slice(&self) -> &[f32] {
        &self.buf[self.off..self.off + self.rows * self.cols]
    }

    /// All values, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        let len = self.rows * self.cols;
        &mut self.buf[self.off..self.off + len]
    }

    /// The values, row-major.
    pub fn into_vec(self) -> Vec<f32> {
        let (len, off, mut buf) = (self.rows * self.cols, self.off, self.buf);
        if off > 0 {
            buf.copy_within(off..off + len, 0);
        }
        buf.truncate(len);
        buf
    }

    /// True when every value is finite (no NaN, no infinity).
    pub fn all_finite(&self) -> bool {
        self.as_slice().iter().all(|v| v.is_finite())
    }
}

impl Clone for Factors {
    fn clone(&self) -> Self {
        let mut f = Factors::zeros(self.rows, self.cols);
        f.as_mut_slice().copy_from_slice(self.as_slice());
        f
    }
}

impl PartialEq for Factors {
    fn eq(&self, other: &Self) -> bool {
        (self.rows, self.cols) == (other.rows, other.cols) && self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for Factors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factors")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("data", &self.as_slice())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(user: u32, item: u32, rating: f32) -> Entry {
        Entry {
            user,
            item,
            rating,
            timestamp: 0,
        }
    }

    #[test]
    fn both_orientations_hold_the_same_cells_with_sorted_rows() {
        let cells = [e(1, 3, 5.0), e(0, 2, 1.0), e(1, 0, 2.0), e(0, 0, 4.0)];
        let m = Interactions::from_entries(3, 4, &cells, |c| 1.0 + 10.0 * c.rating).unwrap();
        assert_eq!((m.n_users(), m.n_items(), m.nnz()), (3, 4, 4));
        assert_eq!(m.user_row(0), (&[0u32, 2][..], &[41.0f32, 11.0][..]));
        assert_eq!(m.user_row(1), (&[0u32, 3][..], &[21.0f32, 51.0][..]));
        assert_eq!(m.user_row(2).0.len(), 0);
        assert_eq!(m.item_row(0), (&[0u32, 1][..], &[41.0f32, 21.0][..]));
        assert_eq!(m.item_row(1).0.len(), 0);
        assert_eq!(m.item_counts(), vec![2, 0, 1, 1]);
        assert!(Interactions::from_entries(1, 1, &[e(0, 5, 1.0)], |_| 1.0).is_err());
    }

    #[test]
    fn factors_start_on_a_cache_line_and_round_trip() {
        for (rows, cols) in [(0usize, 0usize), (1, 1), (3, 5), (7, 64), (1000, 64)] {
            let data: Vec<f32> = (0..rows * cols).map(|v| v as f32 * 0.5).collect();
            let f = Factors::from_vec(rows, cols, data.clone()).unwrap();
            let g = f.clone();
            for m in [&f, &g, &Factors::zeros(rows, cols)] {
                assert_eq!(m.as_slice().as_ptr() as usize % 64, 0, "{rows}x{cols}");
            }
            assert_eq!(f.as_slice(), &data[..]);
            assert_eq!(f, g);
            if rows > 1 {
                assert_eq!(f.row(1), &data[cols..2 * cols]);
            }
            assert_eq!(g.into_vec(), data);
        }
        assert!(Factors::from_vec(2, 2, vec![0.0; 3]).is_err());
    }
}
