//! Reading and writing safetensors files of f32 matrices and i64 id vectors.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::matrix::Factors;

/// A tensor to write.
pub(crate) enum Tensor<'a> {
    /// A row-major f32 matrix.
    Matrix(&'a Factors),
    /// An i64 vector.
    Ids(&'a [i64]),
}

/// Serialises named tensors and string metadata.
pub(crate) fn encode(
    path: &Path,
    tensors: &[(&str, Tensor<'_>)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        match t {
            Tensor::Matrix(f) => buffers.push((
                (*name).to_owned(),
                Dtype::F32,
                vec![f.rows(), f.cols()],
                f.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect(),
            )),
            Tensor::Ids(ids) => buffers.push((
                (*name).to_owned(),
                Dtype::I64,
                vec![ids.len()],
                ids.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )),
        }
    }
    let views: Vec<(String, TensorView<'_>)> = buffers
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| bad(path, format!("cannot encode tensor {n}: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| bad(path, format!("cannot encode: {e}")))
}

fn bad(path: &Path, message: String) -> Error {
    Error::ModelFile {
        path: path.to_path_buf(),
        message,
    }
}

/// A parsed safetensors file.
pub(crate) struct Decoded<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
    metadata: HashMap<String, String>,
}

impl<'a> Decoded<'a> {
    pub(crate) fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self> {
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
        Ok(Decoded { path, st, metadata })
    }

    pub(crate) fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.st.names().into_iter().map(str::to_owned).collect();
        n.sort();
        n
    }

    fn view(&self, name: &str) -> Result<TensorView<'a>> {
        self.st.tensor(name).map_err(|_| {
            bad(
                self.path,
                format!("missing tensor {name:?} (has {:?})", self.names()),
            )
        })
    }

    /// A 2-D tensor as f32 (f32 stored; f16/bf16/f64 are converted).
    pub(crate) fn matrix(&self, name: &str) -> Result<Factors> {
        let v = self.view(name)?;
        let shape = v.shape().to_vec();
        if shape.len() != 2 {
            return Err(bad(
                self.path,
                format!("tensor {name:?} has shape {shape:?}; expected 2 dimensions"),
            ));
        }
        let values = floats(v.dtype(), v.data()).ok_or_else(|| {
            bad(
                self.path,
                format!(
                    "tensor {name:?} has dtype {:?}; expected F32, F64, F16 or BF16",
                    v.dtype()
                ),
            )
        })?;
        Factors::from_vec(shape[0], shape[1], values)
    }

    /// A 1-D integer tensor as i64 (I64, I32, U32 or U64 stored).
    pub(crate) fn ids(&self, name: &str) -> Result<Vec<i64>> {
        let v = self.view(name)?;
        if v.shape().len() != 1 {
            return Err(bad(
                self.path,
                format!(
                    "tensor {name:?} has shape {:?}; expected 1 dimension",
                    v.shape()
                ),
            ));
        }
        let d = v.data();
        let out: Option<Vec<i64>> = match v.dtype() {
            Dtype::I64 => Some(
                d.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(arr8(c)))
                    .collect(),
            ),
            Dtype::U64 => d
                .chunks_exact(8)
                .map(|c| i64::try_from(u64::from_le_bytes(arr8(c))).ok())
                .collect(),
            Dtype::I32 => Some(
                d.chunks_exact(4)
                    .map(|c| i64::from(i32::from_le_bytes(arr4(c))))
                    .collect(),
            ),
            Dtype::U32 => Some(
                d.chunks_exact(4)
                    .map(|c| i64::from(u32::from_le_bytes(arr4(c))))
                    .collect(),
            ),
            _ => None,
        };
        out.ok_or_else(|| {
            bad(
                self.path,
                format!("tensor {name:?} has dtype {:?}; expected I64", v.dtype()),
            )
        })
    }

    /// True when the file has a tensor `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// (name, shape, dtype) of every tensor.
    pub(crate) fn shapes(&self) -> Vec<(String, Vec<usize>, Dtype)> {
        self.st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.shape().to_vec(), v.dtype()))
            .collect()
    }
}

fn arr8(c: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    a
}

fn arr4(c: &[u8]) -> [u8; 4] {
    let mut a = [0u8; 4];
    a.copy_from_slice(c);
    a
}

fn floats(dtype: Dtype, d: &[u8]) -> Option<Vec<f32>> {
    match dtype {
        Dtype::F32 => Some(
            d.chunks_exact(4)
                .map(|c| f32::from_le_bytes(arr4(c)))
                .collect(),
        ),
        Dtype::F64 => Some(
            d.chunks_exact(8)
                .map(|c| f64::from_le_bytes(arr8(c)) as f32)
                .collect(),
        ),
        Dtype::F16 => Some(
            d.chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        Dtype::BF16 => Some(
            d.chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
        ),
        _ => None,
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_half_floats() {
        let f = Factors::from_vec(2, 3, vec![1.0, -2.5, 3.0, 0.0, 1e-3, 7.0]).unwrap();
        let ids = [5i64, -9];
        let p = Path::new("x.safetensors");
        let mut meta = HashMap::new();
        meta.insert("k".to_owned(), "v".to_owned());
        let bytes = encode(
            p,
            &[("m", Tensor::Matrix(&f)), ("ids", Tensor::Ids(&ids))],
            meta,
        )
        .unwrap();
        let d = Decoded::parse(p, &bytes).unwrap();
        assert_eq!(d.matrix("m").unwrap(), f);
        assert_eq!(d.ids("ids").unwrap(), ids);
        assert_eq!(d.metadata("k"), Some("v"));
        assert!(d.matrix("ids").is_err());
        assert!(
            d.matrix("nope")
                .unwrap_err()
                .to_string()
                .contains("missing tensor")
        );
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(Decoded::parse(p, b"garbage").is_err());
    }
}
