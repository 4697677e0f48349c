//! CSR matrices as `.npz` files in the layout of `scipy.sparse.save_npz`, so
//! `scipy.sparse.load_npz` reads what recops writes and recops reads what scipy writes.
//!
//! The layout: a zip archive with five `.npy` entries — `data` (values), `indices`
//! (column of each value), `indptr` (row starts), `format` (the bytes `csr`, dtype
//! `|S3`) and `shape` (two int64). Entries are deflated like `save_npz`'s default
//! (`compressed=True`) or stored; the reader takes both, zip64 extra fields included
//! (numpy writes them), and checks each entry's CRC-32.

use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use rayon::prelude::*;
use sprs::CsMat;

use crate::error::{Error, Result};

const WHAT: &str = "npz file";
const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIR: u32 = 0x0605_4b50;
const ZIP64_END_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
/// 1980-01-01 00:00 in MS-DOS date format (time 0): a fixed timestamp keeps the
/// file's bytes a function of the matrix only.
const DOS_DATE_1980_01_01: u16 = (1 << 5) | 1;

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
/// `b"csr"`, `shape` `(rows, cols)` as `<i8`.
pub fn write_csr_npz(path: &Path, matrix: &CsMat<f32>, compression: NpzCompression) -> Result<()> {
    if !matrix.is_csr() {
        return Err(Error::invalid(WHAT, path, "expected a CSR matrix, got CSC"));
    }
    let indptr = matrix.proper_indptr();
    let fits_i32 = |m: usize| i32::try_from(m).is_ok();
    let wide_indices = !fits_i32(matrix.cols());
    let wide_indptr = !fits_i32(matrix.nnz());
    let entries: Vec<(&str, Vec<u8>)> = vec![
        (
            "data.npy",
            npy_bytes("<f4", &[matrix.nnz()], |out| {
                for v in matrix.data() {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }),
        ),
        ("indices.npy", index_npy(matrix.indices(), wide_indices)),
        ("indptr.npy", index_npy(&indptr, wide_indptr)),
        (
            "format.npy",
            npy_bytes("|S3", &[], |out| out.extend_from_slice(b"csr")),
        ),
        (
            "shape.npy",
            npy_bytes("<i8", &[2], |out| {
                out.extend_from_slice(&(matrix.rows() as i64).to_le_bytes());
                out.extend_from_slice(&(matrix.cols() as i64).to_le_bytes());
            }),
        ),
    ];
    let zip =
        zip_archive(entries, compression).map_err(|reason| Error::invalid(WHAT, path, reason))?;
    recops_core::write_atomic(path, &zip)?;
    Ok(())
}

/// Reads a CSR matrix from an `.npz` file written by [`write_csr_npz`] or by
/// `scipy.sparse.save_npz` (compressed or not). `data` may be any float or integer
/// dtype (converted to f32), `indices`/`indptr` int32 or int64. Rows with unsorted
/// or repeated column indices (scipy's non-canonical form) are sorted and summed.
pub fn read_csr_npz(path: &Path) -> Result<CsMat<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    let bad = |reason: String| Error::invalid(WHAT, path, reason);
    let entries = unzip(&bytes).map_err(bad)?;
    let get = |name: &str| {
        entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| {
                bad(format!(
                    "missing entry {name} (expected data, indices, indptr, format, shape)"
                ))
            })
    };
    let format = Npy::parse(get("format.npy")?).map_err(|e| bad(format!("format.npy: {e}")))?;
    let format = format.text().map_err(|e| bad(format!("format.npy: {e}")))?;
    if format != "csr" {
        return Err(bad(format!(
            "matrix format is {format:?}, expected \"csr\""
        )));
    }
    let shape = Npy::parse(get("shape.npy")?)
        .and_then(|n| n.ints())
        .map_err(|e| bad(format!("shape.npy: {e}")))?;
    let [rows, cols] = shape[..] else {
        return Err(bad(format!("shape has {} values, expected 2", shape.len())));
    };
    let to_usize =
        |v: i64, what: &str| usize::try_from(v).map_err(|_| bad(format!("negative {what} {v}")));
    let (rows, cols) = (
        to_usize(rows, "row count")?,
        to_usize(cols, "column count")?,
    );
    let data = Npy::parse(get("data.npy")?)
        .and_then(|n| n.floats())
        .map_err(|e| bad(format!("data.npy: {e}")))?;
    let indices = Npy::parse(get("indices.npy")?)
        .and_then(|n| n.ints())
        .map_err(|e| bad(format!("indices.npy: {e}")))?;
    let indptr = Npy::parse(get("indptr.npy")?)
        .and_then(|n| n.ints())
        .map_err(|e| bad(format!("indptr.npy: {e}")))?;
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

fn index_npy(values: &[usize], wide: bool) -> Vec<u8> {
    if wide {
        npy_bytes("<i8", &[values.len()], |out| {
            for &v in values {
                out.extend_from_slice(&(v as i64).to_le_bytes());
            }
        })
    } else {
        npy_bytes("<i4", &[values.len()], |out| {
            for &v in values {
                out.extend_from_slice(&(v as i32).to_le_bytes());
            }
        })
    }
}

/// An `.npy` file (format version 1.0): magic, header dict padded with spaces to a
/// multiple of 64 bytes and ended by a newline, then the raw little-endian values.
fn npy_bytes(descr: &str, shape: &[usize], fill: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let shape_text = match shape {
        [] => "()".to_owned(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // magic (6) + version (2) + header length (2) + header + '\n' = multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.div_ceil(64) * 64 - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 8 * shape.iter().product::<usize>());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    fill(&mut out);
    out
}

/// A parsed `.npy` entry.
struct Npy<'a> {
    descr: String,
    shape: Vec<usize>,
    data: &'a [u8],
}

impl<'a> Npy<'a> {
    fn parse(b: &'a [u8]) -> std::result::Result<Npy<'a>, String> {
        if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
            return Err("not an .npy array (bad magic)".to_owned());
        }
        let (header_len, start) = match b[6] {
            1 => (usize::from(u16::from_le_bytes([b[8], b[9]])), 10),
            2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
            v => return Err(format!("unsupported .npy version {v}")),
        };
        let header = b
            .get(start..start + header_len)
            .ok_or("truncated .npy header")?;
        let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
        let descr = dict_value(header, "descr")
            .and_then(|v| v.strip_prefix('\'').and_then(|v| v.split('\'').next()))
            .ok_or("header without descr")?
            .to_owned();
        if dict_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
            return Err("fortran_order arrays are not supported".to_owned());
        }
        let shape_text = dict_value(header, "shape")
            .and_then(|v| v.strip_prefix('('))
            .and_then(|v| v.split(')').next())
            .ok_or("header without shape")?;
        let shape = shape_text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('L').parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| format!("bad shape ({shape_text})"))?;
        Ok(Npy {
            descr,
            shape,
            data: &b[start + header_len..],
        })
    }

    fn count(&self) -> usize {
        self.shape.iter().product()
    }

    fn values<const N: usize>(&self) -> std::result::Result<Vec<[u8; N]>, String> {
        let n = self.count();
        let bytes = self.data.get(..n * N).ok_or_else(|| {
            format!(
                "{n} values of {N} bytes announced, {} bytes present",
                self.data.len()
            )
        })?;
        Ok(bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                a
            })
            .collect())
    }

    fn ints(&self) -> std::result::Result<Vec<i64>, String> {
        if self.shape.len() != 1 {
            return Err(format!("expected a 1-d array, got shape {:?}", self.shape));
        }
        Ok(match self.descr.as_str() {
            "<i8" => self
                .values::<8>()?
                .into_iter()
                .map(i64::from_le_bytes)
                .collect(),
            "<i4" => self
                .values::<4>()?
                .into_iter()
                .map(|b| i64::from(i32::from_le_bytes(b)))
                .collect(),
            "<u4" => self
                .values::<4>()?
                .into_iter()
                .map(|b| i64::from(u32::from_le_bytes(b)))
                .collect(),
            d => return Err(format!("dtype {d}, expected <i4 or <i8")),
        })
    }

    fn floats(&self) -> std::result::Result<Vec<f32>, String> {
        if self.shape.len() != 1 {
            return Err(format!("expected a 1-d array, got shape {:?}", self.shape));
        }
        Ok(match self.descr.as_str() {
            "<f4" => self
                .values::<4>()?
                .into_iter()
                .map(f32::from_le_bytes)
                .collect(),
            "<f8" => self
                .values::<8>()?
                .into_iter()
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect(),
            "<i8" | "<i4" | "<u4" => self.ints()?.into_iter().map(|v| v as f32).collect(),
            "|b1" | "|u1" | "|i1" => self.data[..self.count().min(self.data.len())]
                .iter()
                .map(|&v| f32::from(v))
                .collect(),
            d => return Err(format!("dtype {d}, expected a float or integer dtype")),
        })
    }

    /// A 0-d byte string (`|S3`) or unicode string (`<U3`).
    fn text(&self) -> std::result::Result<String, String> {
        if !self.shape.is_empty() {
            return Err(format!("expected a scalar, got shape {:?}", self.shape));
        }
        if let Some(n) = self.descr.strip_prefix("|S") {
            let n: usize = n.parse().map_err(|_| format!("bad dtype {}", self.descr))?;
            let b = self.data.get(..n).ok_or("truncated string")?;
            return Ok(String::from_utf8_lossy(b).trim_end_matches('\0').to_owned());
        }
        if let Some(n) = self.descr.strip_prefix("<U") {
            let n: usize = n.parse().map_err(|_| format!("bad dtype {}", self.descr))?;
            let b = self.data.get(..4 * n).ok_or("truncated string")?;
            return Ok(b
                .chunks_exact(4)
                .filter_map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .filter(|&c| c != '\0')
                .collect());
        }
        Err(format!("dtype {}, expected a string", self.descr))
    }
}

/// The text after `'key':` in a numpy header dict.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let pat = format!("'{key}':");
    let at = header.find(&pat)?;
    Some(header[at + pat.len()..].trim_start())
}

/// Builds a zip archive of `entries` (entries compressed in parallel).
fn zip_archive(
    entries: Vec<(&str, Vec<u8>)>,
    compression: NpzCompression,
) -> std::result::Result<Vec<u8>, String> {
    let packed: Vec<(&str, u32, usize, u16, Vec<u8>)> = entries
        .into_par_iter()
        .map(|(name, raw)| {
            let crc = crc32fast::hash(&raw);
            match compression {
                NpzCompression::Stored => Ok((name, crc, raw.len(), 0u16, raw)),
                NpzCompression::Deflate => {
                    let mut enc =
                        DeflateEncoder::new(Vec::with_capacity(raw.len() / 2), Compression::fast());
                    enc.write_all(&raw).map_err(|e| e.to_string())?;
                    let packed = enc.finish().map_err(|e| e.to_string())?;
                    Ok((name, crc, raw.len(), 8u16, packed))
                }
            }
        })
        .collect::<std::result::Result<_, String>>()?;
    let total: usize = packed.iter().map(|p| p.4.len() + 100).sum();
    let mut out = Vec::with_capacity(total + 22);
    let mut central = Vec::new();
    let fit = |v: usize| u32::try_from(v).map_err(|_| "npz entry larger than 4 GiB".to_owned());
    for (name, crc, raw_len, method, data) in &packed {
        let offset = fit(out.len())?;
        let (csize, usize_) = (fit(data.len())?, fit(*raw_len)?);
        let mut header = Vec::with_capacity(30 + name.len());
        put32(&mut header, LOCAL_HEADER);
        put16(&mut header, 20); // version needed: 2.0
        put16(&mut header, 0); // flags
        put16(&mut header, *method);
        put16(&mut header, 0); // time 00:00
        put16(&mut header, DOS_DATE_1980_01_01);
        put32(&mut header, *crc);
        put32(&mut header, csize);
        put32(&mut header, usize_);
        put16(&mut header, name.len() as u16);
        put16(&mut header, 0); // extra length
        header.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);

        put32(&mut central, CENTRAL_HEADER);
        put16(&mut central, 20); // version made by
        put16(&mut central, 20); // version needed
        put16(&mut central, 0);
        put16(&mut central, *method);
        put16(&mut central, 0);
        put16(&mut central, DOS_DATE_1980_01_01);
        put32(&mut central, *crc);
        put32(&mut central, csize);
        put32(&mut central, usize_);
        put16(&mut central, name.len() as u16);
        put16(&mut central, 0); // extra
        put16(&mut central, 0); // comment
        put16(&mut central, 0); // disk
        put16(&mut central, 0); // internal attributes
        put32(&mut central, 0o100_644 << 16); // external attributes: regular file 0644
        put32(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = fit(out.len())?;
    let cd_size = fit(central.len())?;
    out.extend_from_slice(&central);
    put32(&mut out, END_OF_CENTRAL_DIR);
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, packed.len() as u16);
    put16(&mut out, packed.len() as u16);
    put32(&mut out, cd_size);
    put32(&mut out, cd_offset);
    put16(&mut out, 0);
    Ok(out)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn le16(b: &[u8], at: usize) -> std::result::Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| "truncated zip structure".to_owned())
}

fn le32(b: &[u8], at: usize) -> std::result::Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "truncated zip structure".to_owned())
}

fn le64(b: &[u8], at: usize) -> std::result::Result<u64, String> {
    b.get(at..at + 8)
        .map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        })
        .ok_or_else(|| "truncated zip structure".to_owned())
}

/// Reads every entry of a zip archive through its central directory.
fn unzip(b: &[u8]) -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
    // The end record is in the last 22 + 65535 bytes.
    let from = b.len().saturating_sub(22 + 65_535);
    let eocd = (from..=b.len().saturating_sub(22))
        .rev()
        .find(|&i| le32(b, i) == Ok(END_OF_CENTRAL_DIR))
        .ok_or("not a zip archive (no end of central directory)")?;
    let mut count = u64::from(le16(b, eocd + 10)?);
    let mut cd_offset = u64::from(le32(b, eocd + 16)?);
    if (count == 0xFFFF || cd_offset == 0xFFFF_FFFF)
        && eocd >= 20
        && le32(b, eocd - 20) == Ok(ZIP64_END_LOCATOR)
    {
        let z64 = usize::try_from(le64(b, eocd - 20 + 8)?).map_err(|_| "bad zip64 offset")?;
        if le32(b, z64)? != ZIP64_END {
            return Err("bad zip64 end of central directory".to_owned());
        }
        count = le64(b, z64 + 32)?;
        cd_offset = le64(b, z64 + 48)?;
    }
    let mut at = usize::try_from(cd_offset).map_err(|_| "bad central directory offset")?;
    let mut entries = Vec::new();
    for _ in 0..count {
        if le32(b, at)? != CENTRAL_HEADER {
            return Err("corrupt central directory".to_owned());
        }
        let method = le16(b, at + 10)?;
        let crc = le32(b, at + 16)?;
        let mut csize = u64::from(le32(b, at + 20)?);
        let mut usize_ = u64::from(le32(b, at + 24)?);
        let name_len = usize::from(le16(b, at + 28)?);
        let extra_len = usize::from(le16(b, at + 30)?);
        let comment_len = usize::from(le16(b, at + 32)?);
        let mut local = u64::from(le32(b, at + 42)?);
        let name = b
            .get(at + 46..at + 46 + name_len)
            .ok_or("truncated entry name")?;
        let name = String::from_utf8_lossy(name).into_owned();
        // zip64 extra field: the 0xFFFFFFFF fields, in order usize, csize, offset.
        let extra = b
            .get(at + 46 + name_len..at + 46 + name_len + extra_len)
            .ok_or("truncated extra field")?;
        let mut e = 0;
        while e + 4 <= extra.len() {
            let id = le16(extra, e)?;
            let len = usize::from(le16(extra, e + 2)?);
            if id == 1 {
                let mut p = e + 4;
                if usize_ == 0xFFFF_FFFF {
                    usize_ = le64(extra, p)?;
                    p += 8;
                }
                if csize == 0xFFFF_FFFF {
                    csize = le64(extra, p)?;
                    p += 8;
                }
                if local == 0xFFFF_FFFF {
                    local = le64(extra, p)?;
                }
            }
            e += 4 + len;
        }
        at += 46 + name_len + extra_len + comment_len;

        let local = usize::try_from(local).map_err(|_| "bad entry offset")?;
        if le32(b, local)? != LOCAL_HEADER {
            return Err(format!("entry {name}: bad local header"));
        }
        let data_start =
            local + 30 + usize::from(le16(b, local + 26)?) + usize::from(le16(b, local + 28)?);
        let csize = usize::try_from(csize).map_err(|_| "entry too large")?;
        let raw = b
            .get(data_start..data_start + csize)
            .ok_or_else(|| format!("entry {name}: truncated data"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(usize::try_from(usize_).unwrap_or(0));
                DeflateDecoder::new(raw)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("entry {name}: {e}"))?;
                out
            }
            m => return Err(format!("entry {name}: unsupported compression method {m}")),
        };
        if data.len() as u64 != usize_ || crc32fast::hash(&data) != crc {
            return Err(format!(
                "entry {name}: size or CRC-32 mismatch (corrupt file)"
            ));
        }
        entries.push((name, data));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn round_trip_both_compressions() {
        let dir = tempfile::tempdir().unwrap();
        for c in [NpzCompression::Deflate, NpzCompression::Stored] {
            let path = dir.path().join(format!("{c:?}.npz"));
            write_csr_npz(&path, &sample(), c).unwrap();
            assert_eq!(read_csr_npz(&path).unwrap(), sample());
        }
        let empty = CsMat::<f32>::zero((0, 0));
        let path = dir.path().join("empty.npz");
        write_csr_npz(&path, &empty, NpzCompression::Deflate).unwrap();
        assert_eq!(read_csr_npz(&path).unwrap(), empty);
    }

    #[test]
    fn layout_is_the_save_npz_layout_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npz");
        write_csr_npz(&path, &sample(), NpzCompression::Stored).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let entries = unzip(&bytes).unwrap();
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
        let entry = |n: &str| entries.iter().find(|(e, _)| e == n).unwrap().1.clone();
        // Every .npy header is exactly numpy's: version 1.0, padded to 64 bytes.
        let data = entry("data.npy");
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
        let mut expected = b"\x93NUMPY\x01\x00".to_vec();
        expected.extend_from_slice(&118u16.to_le_bytes());
        expected.extend_from_slice(header.as_bytes());
        expected.extend_from_slice(&vec![b' '; 118 - header.len() - 1]);
        expected.push(b'\n');
        for v in [11.0f32, 51.0, 31.0] {
            expected.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!((10 + 118) % 64, 0);
        assert_eq!(data, expected);
        let format = entry("format.npy");
        assert!(
            std::str::from_utf8(&format[10..74])
                .unwrap()
                .starts_with("{'descr': '|S3', 'fortran_order': False, 'shape': (), }")
        );
        assert_eq!(&format[128..], b"csr");
        let indices = entry("indices.npy");
        assert!(
            std::str::from_utf8(&indices[10..128])
                .unwrap()
                .contains("'<i4'")
        );
        assert_eq!(&indices[128..], &[1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]);
        let indptr = entry("indptr.npy");
        assert!(
            std::str::from_utf8(&indptr[10..128])
                .unwrap()
                .contains("'shape': (4,)")
        );
        let shape = entry("shape.npy");
        assert!(
            std::str::from_utf8(&shape[10..128])
                .unwrap()
                .contains("'<i8'")
        );
        assert_eq!(
            &shape[128..],
            &[3, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]
        );
        // Stored entries are the raw .npy bytes right after their local headers.
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        assert_eq!(&bytes[30..38], b"data.npy");
        assert_eq!(&bytes[38..38 + data.len()], &data[..]);
    }

    #[test]
    fn reads_non_canonical_and_wide_matrices_as_scipy_may_write_them() {
        // Unsorted and repeated indices, int64 index arrays, float64 data.
        let entries = vec![
            (
                "data.npy",
                npy_bytes("<f8", &[4], |o| {
                    for v in [1.0f64, 2.0, 3.0, 4.0] {
                        o.extend_from_slice(&v.to_le_bytes());
                    }
                }),
            ),
            ("indices.npy", index_npy(&[2, 0, 2, 1], true)),
            ("indptr.npy", index_npy(&[0, 3, 4], true)),
            (
                "format.npy",
                npy_bytes("<U3", &[], |o| {
                    for c in "csr".chars() {
                        o.extend_from_slice(&(c as u32).to_le_bytes());
                    }
                }),
            ),
            (
                "shape.npy",
                npy_bytes("<i8", &[2], |o| {
                    o.extend_from_slice(&2i64.to_le_bytes());
                    o.extend_from_slice(&3i64.to_le_bytes());
                }),
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scipy.npz");
        std::fs::write(
            &path,
            zip_archive(entries, NpzCompression::Deflate).unwrap(),
        )
        .unwrap();
        let m = read_csr_npz(&path).unwrap();
        assert_eq!(
            m,
            CsMat::new((2, 3), vec![0, 2, 3], vec![0, 2, 1], vec![2.0, 4.0, 4.0])
        );
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_problem() {
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
        assert!(err.contains("not a zip archive"), "{err}");
        let entries = vec![(
            "format.npy",
            npy_bytes("|S3", &[], |o| o.extend_from_slice(b"csc")),
        )];
        std::fs::write(&path, zip_archive(entries, NpzCompression::Stored).unwrap()).unwrap();
        let err = read_csr_npz(&path).unwrap_err().to_string();
        assert!(err.contains("\"csc\""), "{err}");
    }
}
