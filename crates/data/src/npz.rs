//! CSR matrices as `.npz` files in the layout of `scipy.sparse.save_npz`, so
//! `scipy.sparse.load_npz` reads what recops writes and recops reads what scipy writes.
//!
//! The layout: a zip archive with five `.npy` entries — `data` (values), `indices`
//! (column of each value), `indptr` (row starts), `format` (the bytes `csr`, dtype
//! `|S3`) and `shape` (two int64). Entries are deflated like `save_npz`'s default
//! (`compressed=True`) or stored. The zip container is the `zip` crate (which checks
//! each entry's CRC-32 and reads zip64 archives as numpy writes them) and the `.npy`
//! entries are `npyz`; this module only maps a CSR matrix onto the five entries.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;

use npyz::{DType, NpyFile, Order, TypeChar, TypeStr, WriterBuilder};
use sprs::CsMat;
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::error::{Error, Result};

const WHAT: &str = "npz file";

/// How the entries of an `.npz` file are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NpzCompression {
    /// Deflate, as `save_npz(..., compressed=True)` (its default). Level 1: nearly
    /// the size of zlib's default at a fraction of the time.
    #[default]
    Deflate,
    /// No compression, as `save_npz(..., compressed=False)`.
    Stored,
}

/// Writes `matrix` (CSR) to `path` atomically in the `save_npz` layout: `data` as
/// `<f4`, `indices` and `indptr` as `<i4` (or `<i8` when they do not fit), `format`
/// `b"csr"`, `shape` `(rows, cols)` as `<i8`. Entry timestamps are fixed
/// (1980-01-01), so the file's bytes are a function of the matrix only.
pub fn write_csr_npz(path: &Path, matrix: &CsMat<f32>, compression: NpzCompression) -> Result<()> {
    if !matrix.is_csr() {
        return Err(Error::invalid(WHAT, path, "expected a CSR matrix, got CSC"));
    }
    let options = match compression {
        NpzCompression::Deflate => SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(1)),
        NpzCompression::Stored => {
            SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
        }
    }
    .last_modified_time(zip::DateTime::default());
    let mut out = NpzWriter {
        zip: ZipWriter::new(Cursor::new(Vec::new())),
        path,
        options,
    };
    let indptr = matrix.proper_indptr();
    let fits_i32 = |m: usize| i32::try_from(m).is_ok();
    let len = |v: usize| v as u64;
    out.put::<f32, _>("data", &[len(matrix.nnz())], matrix.data())?;
    if fits_i32(matrix.cols()) {
        out.put::<i32, _>(
            "indices",
            &[len(matrix.nnz())],
            matrix.indices().iter().map(|&c| c as i32),
        )?;
    } else {
        out.put::<i64, _>(
            "indices",
            &[len(matrix.nnz())],
            matrix.indices().iter().map(|&c| c as i64),
        )?;
    }
    if fits_i32(matrix.nnz()) {
        out.put::<i32, _>(
            "indptr",
            &[len(indptr.len())],
            indptr.iter().map(|&p| p as i32),
        )?;
    } else {
        out.put::<i64, _>(
            "indptr",
            &[len(indptr.len())],
            indptr.iter().map(|&p| p as i64),
        )?;
    }
    let s3: TypeStr = "|S3"
        .parse()
        .map_err(|e| Error::invalid(WHAT, path, format!("format.npy: {e}")))?;
    out.put_as::<[u8], _>("format", DType::Plain(s3), &[], [&b"csr"[..]])?;
    let shape = [matrix.rows() as i64, matrix.cols() as i64];
    out.put::<i64, _>("shape", &[2], shape)?;
    let bytes = out
        .zip
        .finish()
        .map_err(|source| Error::NpzEntry {
            path: path.to_owned(),
            entry: "(central directory)".to_owned(),
            source,
        })?
        .into_inner();
    recops_core::write_atomic(path, &bytes)?;
    Ok(())
}

/// The zip archive being built, with what every entry shares.
struct NpzWriter<'p> {
    zip: ZipWriter<Cursor<Vec<u8>>>,
    path: &'p Path,
    options: SimpleFileOptions,
}

impl NpzWriter<'_> {
    /// Adds `<name>.npy` with the default dtype of `T` (little-endian on every
    /// platform numpy and recops run on).
    fn put<T, V>(
        &mut self,
        name: &str,
        shape: &[u64],
        values: impl IntoIterator<Item = V>,
    ) -> Result<()>
    where
        T: npyz::AutoSerialize,
        V: Borrow<T>,
    {
        self.put_as::<T, V>(name, T::default_dtype(), shape, values)
    }

    fn put_as<T, V>(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        values: impl IntoIterator<Item = V>,
    ) -> Result<()>
    where
        T: npyz::Serialize + ?Sized,
        V: Borrow<T>,
    {
        let entry = format!("{name}.npy");
        let fail = |source: ZipError| Error::NpzEntry {
            path: self.path.to_owned(),
            entry: entry.clone(),
            source,
        };
        self.zip
            .start_file(entry.as_str(), self.options)
            .map_err(fail)?;
        let written = (|| {
            let mut npy = npyz::WriteOptions::<T>::new()
                .dtype(dtype)
                .shape(shape)
                .writer(&mut self.zip)
                .begin_nd()?;
            for v in values {
                npy.push(v.borrow())?;
            }
            npy.finish()
        })();
        written.map_err(|e| fail(ZipError::Io(e)))
    }
}

/// Reads a CSR matrix from an `.npz` file written by [`write_csr_npz`] or by
/// `scipy.sparse.save_npz` (compressed or not). `data` may be any float, integer or
/// bool dtype (converted to f32), `indices`/`indptr` any integer dtype of at most
/// 8 bytes. Rows with unsorted or repeated column indices (scipy's non-canonical
/// form) are sorted and summed.
pub fn read_csr_npz(path: &Path) -> Result<CsMat<f32>> {
    let file = File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut zip = ZipArchive::new(BufReader::new(file)).map_err(|source| Error::NotZip {
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| Error::invalid(WHAT, path, reason);
    let format = Entry::open(&mut zip, path, "format")?.text()?;
    if format != "csr" {
        return Err(bad(format!(
            "matrix format is {format:?}, expected \"csr\""
        )));
    }
    let shape = Entry::open(&mut zip, path, "shape")?.ints()?;
    let [rows, cols] = shape[..] else {
        return Err(bad(format!("shape has {} values, expected 2", shape.len())));
    };
    let to_usize =
        |v: i64, what: &str| usize::try_from(v).map_err(|_| bad(format!("negative {what} {v}")));
    let (rows, cols) = (
        to_usize(rows, "row count")?,
        to_usize(cols, "column count")?,
    );
    let data = Entry::open(&mut zip, path, "data")?.floats()?;
    let indices = Entry::open(&mut zip, path, "indices")?.ints()?;
    let indptr = Entry::open(&mut zip, path, "indptr")?.ints()?;
    let indices: Vec<usize> = indices
        .into_iter()
        .map(|v| to_usize(v, "column index"))
        .collect::<Result<_>>()?;
    let indptr: Vec<usize> = indptr
        .into_iter()
        .map(|v| to_usize(v, "row pointer"))
        .collect::<Result<_>>()?;
    if indptr.len() != rows + 1 {
        return Err(bad(format!(
            "indptr has {} entries, expected rows + 1 = {}",
            indptr.len(),
            rows + 1
        )));
    }
    if indices.len() != data.len() || indptr.last() != Some(&data.len()) {
        return Err(bad(format!(
            "{} values, {} indices and a last row pointer of {:?} disagree",
            data.len(),
            indices.len(),
            indptr.last()
        )));
    }
    if indptr.windows(2).any(|w| w[0] > w[1]) {
        return Err(bad("indptr is not non-decreasing".to_owned()));
    }
    if let Some(c) = indices.iter().find(|&&c| c >= cols) {
        return Err(bad(format!("column index {c} outside 0..{cols}")));
    }
    let (indptr, indices, data) = canonical(indptr, indices, data);
    CsMat::try_new((rows, cols), indptr, indices, data)
        .map_err(|(_, _, _, e)| bad(format!("not a valid CSR structure: {e}")))
}

/// One `.npy` entry of an archive being read, decompressed and CRC-checked, with
/// its header parsed.
struct Entry<'p> {
    path: &'p Path,
    name: &'static str,
    npy: NpyFile<Cursor<Vec<u8>>>,
    type_str: TypeStr,
}

impl<'p> Entry<'p> {
    fn open(
        zip: &mut ZipArchive<impl Read + Seek>,
        path: &'p Path,
        name: &'static str,
    ) -> Result<Self> {
        let entry_error = |source: ZipError| Error::NpzEntry {
            path: path.to_owned(),
            entry: format!("{name}.npy"),
            source,
        };
        let mut bytes = Vec::new();
        match zip.by_name(&format!("{name}.npy")) {
            Ok(mut file) => file
                .read_to_end(&mut bytes)
                .map_err(|e| entry_error(ZipError::Io(e)))?,
            Err(ZipError::FileNotFound) => {
                return Err(Error::invalid(
                    WHAT,
                    path,
                    format!(
                        "missing entry {name}.npy (expected data, indices, indptr, format, shape)"
                    ),
                ));
            }
            Err(source) => return Err(entry_error(source)),
        };
        let npy = NpyFile::new(Cursor::new(bytes)).map_err(|e| entry_error(ZipError::Io(e)))?;
        let bad = |reason: String| Error::invalid(WHAT, path, format!("{name}.npy: {reason}"));
        let type_str = match npy.dtype() {
            DType::Plain(t) => t,
            other => {
                return Err(bad(format!(
                    "dtype {}, expected a plain dtype",
                    other.descr()
                )));
            }
        };
        if npy.shape().len() > 1 && npy.order() == Order::Fortran {
            return Err(bad("fortran_order arrays are not supported".to_owned()));
        }
        Ok(Entry {
            path,
            name,
            npy,
            type_str,
        })
    }

    fn bad(&self, reason: String) -> Error {
        Error::invalid(WHAT, self.path, format!("{}.npy: {reason}", self.name))
    }

    /// The values of a 1-d array of type `T`.
    fn values<T: npyz::Deserialize>(self) -> Result<Vec<T>> {
        let (path, name) = (self.path, self.name);
        self.npy.into_vec().map_err(|e| Error::NpzEntry {
            path: path.to_owned(),
            entry: format!("{name}.npy"),
            source: ZipError::Io(e),
        })
    }

    fn one_dimensional(&self) -> Result<()> {
        match self.npy.shape() {
            [_] => Ok(()),
            shape => Err(self.bad(format!("expected a 1-d array, got shape {shape:?}"))),
        }
    }

    /// An integer array of any width up to 8 bytes, signed or not (u64 only when
    /// every value fits in i64).
    fn ints(self) -> Result<Vec<i64>> {
        self.one_dimensional()?;
        fn widen<T: Into<i64>>(v: Vec<T>) -> Vec<i64> {
            v.into_iter().map(Into::into).collect()
        }
        let t = &self.type_str;
        Ok(match (t.type_char(), t.size_field()) {
            (TypeChar::Int, 8) => self.values::<i64>()?,
            (TypeChar::Int, 4) => widen(self.values::<i32>()?),
            (TypeChar::Int, 2) => widen(self.values::<i16>()?),
            (TypeChar::Int, 1) => widen(self.values::<i8>()?),
            (TypeChar::Uint, 4) => widen(self.values::<u32>()?),
            (TypeChar::Uint, 2) => widen(self.values::<u16>()?),
            (TypeChar::Uint, 1) => widen(self.values::<u8>()?),
            (TypeChar::Uint, 8) => {
                let bad = self.bad("a value does not fit in int64".to_owned());
                self.values::<u64>()?
                    .into_iter()
                    .map(|v| i64::try_from(v).map_err(|_| ()))
                    .collect::<std::result::Result<_, ()>>()
                    .map_err(|()| bad)?
            }
            _ => return Err(self.bad(format!("dtype {t}, expected an integer dtype"))),
        })
    }

    /// A float, integer or bool array as f32.
    fn floats(self) -> Result<Vec<f32>> {
        self.one_dimensional()?;
        let t = &self.type_str;
        Ok(match (t.type_char(), t.size_field()) {
            (TypeChar::Float, 4) => self.values::<f32>()?,
            (TypeChar::Float, 8) => self
                .values::<f64>()?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            (TypeChar::Bool, _) => self.values::<bool>()?.into_iter().map(f32::from).collect(),
            (TypeChar::Int | TypeChar::Uint, _) => {
                self.ints()?.into_iter().map(|v| v as f32).collect()
            }
            _ => {
                return Err(self.bad(format!(
                    "dtype {t}, expected a float, integer or bool dtype"
                )));
            }
        })
    }

    /// A 0-d byte string (`|S3`) or unicode string (`<U3`).
    fn text(self) -> Result<String> {
        if !self.npy.shape().is_empty() {
            return Err(self.bad(format!(
                "expected a scalar, got shape {:?}",
                self.npy.shape()
            )));
        }
        match self.type_str.type_char() {
            TypeChar::ByteStr | TypeChar::UnicodeStr => {}
            _ => return Err(self.bad(format!("dtype {}, expected a string", self.type_str))),
        }
        let mut values = self.values::<String>()?;
        Ok(values.pop().unwrap_or_default())
    }
}

/// Sorts each row by column and sums repeated columns, when needed.
fn canonical(
    indptr: Vec<usize>,
    indices: Vec<usize>,
    data: Vec<f32>,
) -> (Vec<usize>, Vec<usize>, Vec<f32>) {
    let sorted = indptr
        .windows(2)
        .all(|w| indices[w[0]..w[1]].windows(2).all(|p| p[0] < p[1]));
    if sorted {
        return (indptr, indices, data);
    }
    let mut new_ptr = Vec::with_capacity(indptr.len());
    let mut new_ind = Vec::with_capacity(indices.len());
    let mut new_dat = Vec::with_capacity(data.len());
    new_ptr.push(0);
    for w in indptr.windows(2) {
        let mut row: Vec<(usize, f32)> = (w[0]..w[1]).map(|k| (indices[k], data[k])).collect();
        row.sort_by_key(|&(c, _)| c);
        for (c, v) in row {
            if new_ind.len() > *new_ptr.last().unwrap_or(&0) && new_ind.last() == Some(&c) {
                if let Some(last) = new_dat.last_mut() {
                    *last += v;
                }
            } else {
                new_ind.push(c);
                new_dat.push(v);
            }
        }
        new_ptr.push(new_ind.len());
    }
    (new_ptr, new_ind, new_dat)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn sample() -> CsMat<f32> {
        // [[0, 11, 0, 51], [0, 0, 0, 0], [31, 0, 0, 0]]
        CsMat::new(
            (3, 4),
            vec![0, 2, 2, 3],
            vec![1, 3, 0],
            vec![11.0, 51.0, 31.0],
        )
    }

    /// An `.npy` file of `values` with dtype `descr`, as numpy would write it.
    fn npy<T: npyz::Serialize + ?Sized>(descr: &str, shape: &[u64], values: &[&T]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::<T>::new()
            .dtype(DType::Plain(descr.parse().unwrap()))
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        for v in values {
            w.push(v).unwrap();
        }
        w.finish().unwrap();
        out
    }

    fn archive(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut zip = ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..zip.len())
            .map(|i| {
                let mut f = zip.by_index(i).unwrap();
                let mut b = Vec::new();
                f.read_to_end(&mut b).unwrap();
                (f.name().unwrap().into_owned(), b)
            })
            .collect()
    }

    #[test]
    fn round_trip_both_compressions() {
        let dir = tempfile::tempdir().unwrap();
        for c in [NpzCompression::Deflate, NpzCompression::Stored] {
            let path = dir.path().join(format!("{c:?}.npz"));
            write_csr_npz(&path, &sample(), c).unwrap();
            assert_eq!(read_csr_npz(&path).unwrap(), sample());
            // Same matrix, same bytes (fixed timestamps).
            let again = dir.path().join(format!("{c:?}-again.npz"));
            write_csr_npz(&again, &sample(), c).unwrap();
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(&again).unwrap()
            );
        }
        let empty = CsMat::<f32>::zero((0, 0));
        let path = dir.path().join("empty.npz");
        write_csr_npz(&path, &empty, NpzCompression::Deflate).unwrap();
        assert_eq!(read_csr_npz(&path).unwrap(), empty);
    }

    #[test]
    fn layout_is_the_save_npz_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npz");
        write_csr_npz(&path, &sample(), NpzCompression::Stored).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let entries = entries(&bytes);
        let names: Vec<_> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "data.npy",
                "indices.npy",
                "indptr.npy",
                "format.npy",
                "shape.npy"
            ]
        );
        let entry = |n: &str| {
            let bytes = entries.iter().find(|(e, _)| e == n).unwrap().1.clone();
            NpyFile::new(Cursor::new(bytes)).unwrap()
        };
        let header = |n: &str| {
            let f = entry(n);
            (f.dtype().descr(), f.shape().to_vec())
        };
        assert_eq!(header("data.npy"), ("'<f4'".to_owned(), vec![3]));
        assert_eq!(header("indices.npy"), ("'<i4'".to_owned(), vec![3]));
        assert_eq!(header("indptr.npy"), ("'<i4'".to_owned(), vec![4]));
        assert_eq!(header("format.npy"), ("'|S3'".to_owned(), vec![]));
        assert_eq!(header("shape.npy"), ("'<i8'".to_owned(), vec![2]));
        assert_eq!(
            entry("data.npy").into_vec::<f32>().unwrap(),
            [11.0, 51.0, 31.0]
        );
        assert_eq!(entry("indices.npy").into_vec::<i32>().unwrap(), [1, 3, 0]);
        assert_eq!(entry("indptr.npy").into_vec::<i32>().unwrap(), [0, 2, 2, 3]);
        assert_eq!(entry("format.npy").into_vec::<Vec<u8>>().unwrap(), [b"csr"]);
        assert_eq!(entry("shape.npy").into_vec::<i64>().unwrap(), [3, 4]);
        // Stored entries are the raw .npy bytes right after their local headers.
        let data = &entries[0].1;
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        assert_eq!(&bytes[30..38], b"data.npy");
        assert_eq!(&bytes[38..38 + data.len()], &data[..]);
    }

    #[test]
    fn reads_non_canonical_and_wide_matrices_as_scipy_may_write_them() {
        // Unsorted and repeated indices, int64 index arrays, float64 data, <U3 format.
        let csr: Vec<u32> = "csr".chars().map(u32::from).collect();
        let entries = [
            (
                "data.npy",
                npy::<f64>("<f8", &[4], &[&1.0, &2.0, &3.0, &4.0]),
            ),
            ("indices.npy", npy::<i64>("<i8", &[4], &[&2, &0, &2, &1])),
            ("indptr.npy", npy::<i64>("<i8", &[3], &[&0, &3, &4])),
            ("format.npy", npy::<[u32]>("<U3", &[], &[&csr[..]])),
            ("shape.npy", npy::<i64>("<i8", &[2], &[&2, &3])),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scipy.npz");
        std::fs::write(&path, archive(&entries)).unwrap();
        let m = read_csr_npz(&path).unwrap();
        assert_eq!(
            m,
            CsMat::new((2, 3), vec![0, 2, 3], vec![0, 2, 1], vec![2.0, 4.0, 4.0])
        );
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file_and_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npz");
        write_csr_npz(&path, &sample(), NpzCompression::Deflate).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 0xFF; // inside the first entry's compressed data
        std::fs::write(&path, &bytes).unwrap();
        let err = read_csr_npz(&path).unwrap_err().to_string();
        assert!(err.contains("x.npz") && err.contains("data.npy"), "{err}");
        std::fs::write(&path, b"hello").unwrap();
        let err = read_csr_npz(&path).unwrap_err().to_string();
        assert!(
            err.contains("x.npz") && err.contains("not a readable zip archive"),
            "{err}"
        );
        let csc = [("format.npy", npy::<[u8]>("|S3", &[], &[b"csc"]))];
        std::fs::write(&path, archive(&csc)).unwrap();
        let err = read_csr_npz(&path).unwrap_err().to_string();
        assert!(err.contains("\"csc\""), "{err}");
        let no_shape = [("format.npy", npy::<[u8]>("|S3", &[], &[b"csr"]))];
        std::fs::write(&path, archive(&no_shape)).unwrap();
        let err = read_csr_npz(&path).unwrap_err().to_string();
        assert!(err.contains("missing entry shape.npy"), "{err}");
        let text_data = [
            ("format.npy", npy::<[u8]>("|S3", &[], &[b"csr"])),
            ("shape.npy", npy::<i64>("<i8", &[2], &[&1, &1])),
            ("data.npy", npy::<[u8]>("|S1", &[1], &[b"a"])),
        ];
        std::fs::write(&path, archive(&text_data)).unwrap();
        let err = read_csr_npz(&path).unwrap_err().to_string();
        assert!(err.contains("data.npy: dtype |S1"), "{err}");
        let truncated = [("format.npy", b"\x93NUMPY\x01\x00".to_vec())];
        std::fs::write(&path, archive(&truncated)).unwrap();
        let err = read_csr_npz(&path).unwrap_err().to_string();
        assert!(
            err.contains("x.npz") && err.contains("entry format.npy"),
            "{err}"
        );
    }
}
