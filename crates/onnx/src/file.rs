//! Reading an ONNX file: the protobuf message, and tensors from it or from external data
//! files beside it.

use std::path::{Component, Path, PathBuf};

use onnx_ir::{Message, ModelProto, TensorProto};

use crate::constant::{Const, Dtype};
use crate::error::{OnnxError, Result};

/// ONNX's `TensorProto.DataType` codes featx reads.
mod code {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const UINT16: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const UINT32: i32 = 12;
    pub const UINT64: i32 = 13;
    pub const BFLOAT16: i32 = 16;
}

/// The element type of an ONNX type code, or `None` for types featx does not compute with
/// (strings, complex numbers, 8-bit floats).
pub fn dtype_of(code: i32) -> Option<Dtype> {
    use code::*;
    match code {
        FLOAT | FLOAT16 | DOUBLE | BFLOAT16 => Some(Dtype::Float),
        UINT8 | INT8 | UINT16 | INT16 | INT32 | INT64 | UINT32 | UINT64 => Some(Dtype::Int),
        BOOL => Some(Dtype::Bool),
        _ => None,
    }
}

/// Reads and parses the model file.
pub fn read_model(path: &Path) -> Result<ModelProto> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let not_onnx = |reason: String| OnnxError::NotOnnx {
        path: path.to_path_buf(),
        reason,
    };
    let model = ModelProto::parse_from_bytes(&bytes).map_err(|e| not_onnx(e.to_string()))?;
    check_model(&model, path)?;
    Ok(model)
}

/// Protobuf accepts many byte strings as an empty or partial message: a model has a graph
/// with at least one node and an opset.
pub fn check_model(model: &ModelProto, path: &Path) -> Result<()> {
    if model.graph.is_none() || model.graph.node.is_empty() || model.opset_import.is_empty() {
        return Err(OnnxError::NotOnnx {
            path: path.to_path_buf(),
            reason:
                "no graph with nodes and opsets (an empty or truncated file, or another format)"
                    .into(),
        });
    }
    Ok(())
}

/// A tensor of the file as a host constant, its data read from the message or, for external
/// data, from a file in `folder` (never outside it).
pub fn read_tensor(tensor: &TensorProto, folder: &Path) -> Result<Const> {
    let name = if tensor.name.is_empty() {
        "<unnamed>".to_string()
    } else {
        tensor.name.clone()
    };
    let bad = |reason: String| OnnxError::TensorData {
        tensor: name.clone(),
        reason,
    };
    let dtype = dtype_of(tensor.data_type).ok_or_else(|| {
        bad(format!(
            "element type {} is not supported",
            tensor.data_type
        ))
    })?;
    let shape = tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dimension {d}"))))
        .collect::<Result<Vec<usize>>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {shape:?} is too large")))?;
    let external;
    let raw: &[u8] = if tensor.data_location.value() == 1 {
        external = read_external(tensor, folder, &name)?;
        &external
    } else {
        &tensor.raw_data
    };
    let size = element_size(tensor.data_type);
    let out = if !raw.is_empty() || count == 0 {
        if raw.len() != count * size {
            return Err(bad(format!(
                "{} bytes of data for shape {shape:?} ({} expected)",
                raw.len(),
                count * size
            )));
        }
        decode_raw(tensor.data_type, raw, dtype, shape)
    } else {
        decode_typed(tensor, dtype, shape)
    };
    match out {
        Some(c) if c.len() == count => Ok(c),
        Some(c) => Err(bad(format!(
            "{} values for shape {:?} ({count} expected)",
            c.len(),
            c.shape
        ))),
        None => Err(bad("no data".into())),
    }
}

fn element_size(code: i32) -> usize {
    use code::*;
    match code {
        UINT8 | INT8 | BOOL => 1,
        UINT16 | INT16 | FLOAT16 | BFLOAT16 => 2,
        FLOAT | INT32 | UINT32 => 4,
        _ => 8,
    }
}

fn decode_raw(code: i32, raw: &[u8], dtype: Dtype, shape: Vec<usize>) -> Option<Const> {
    use code::*;
    let chunks = |n: usize| raw.chunks_exact(n);
    let f32s: Option<Vec<f32>> = match code {
        FLOAT => Some(
            chunks(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        DOUBLE => Some(
            chunks(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
        ),
        FLOAT16 => Some(
            chunks(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
        ),
        BFLOAT16 => Some(
            chunks(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
        ),
        _ => None,
    };
    if let Some(v) = f32s {
        return Some(Const::floats(shape, v));
    }
    let ints: Vec<i64> = match code {
        UINT8 | BOOL => raw.iter().map(|&b| i64::from(b)).collect(),
        INT8 => raw.iter().map(|&b| i64::from(b as i8)).collect(),
        UINT16 => chunks(2)
            .map(|b| i64::from(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        INT16 => chunks(2)
            .map(|b| i64::from(i16::from_le_bytes([b[0], b[1]])))
            .collect(),
        INT32 => chunks(4)
            .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
        UINT32 => chunks(4)
            .map(|b| i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
        INT64 => chunks(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect(),
        UINT64 => chunks(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as i64)
            .collect(),
        _ => return None,
    };
    Some(Const::ints(dtype, shape, ints))
}

fn decode_typed(t: &TensorProto, dtype: Dtype, shape: Vec<usize>) -> Option<Const> {
    use code::*;
    match t.data_type {
        FLOAT => Some(Const::floats(shape, t.float_data.clone())),
        DOUBLE => Some(Const::floats(
            shape,
            t.double_data.iter().map(|&x| x as f32).collect(),
        )),
        // Half floats are stored as their bits in `int32_data`.
        FLOAT16 => Some(Const::floats(
            shape,
            t.int32_data.iter().map(|&b| f16_to_f32(b as u16)).collect(),
        )),
        BFLOAT16 => Some(Const::floats(
            shape,
            t.int32_data
                .iter()
                .map(|&b| f32::from_bits((b as u32) << 16))
                .collect(),
        )),
        INT64 => Some(Const::ints(dtype, shape, t.int64_data.clone())),
        UINT64 | UINT32 => Some(Const::ints(
            dtype,
            shape,
            t.uint64_data.iter().map(|&x| x as i64).collect(),
        )),
        _ => Some(Const::ints(
            dtype,
            shape,
            t.int32_data.iter().map(|&x| i64::from(x)).collect(),
        )),
    }
}

/// IEEE half to single precision.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exp = u32::from((bits >> 10) & 0x1f);
    let frac = u32::from(bits & 0x3ff);
    let magnitude = match (exp, frac) {
        (0, 0) => 0,
        // Subnormal: value is frac * 2^-24.
        (0, _) => return f32::from_bits(sign) + (frac as f32) * 2f32.powi(-24) * sign_of(sign),
        (0x1f, 0) => 0xff << 23,
        (0x1f, _) => (0xff << 23) | (frac << 13),
        _ => ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(sign | magnitude)
}

fn sign_of(sign_bit: u32) -> f32 {
    if sign_bit == 0 { 1.0 } else { -1.0 }
}

/// The bytes of an external-data tensor: `location` (relative to the model's folder, and
/// staying inside it), `offset` and `length`.
fn read_external(tensor: &TensorProto, folder: &Path, name: &str) -> Result<Vec<u8>> {
    let field = |key: &str| {
        tensor
            .external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.clone())
    };
    let bad = |reason: String| OnnxError::TensorData {
        tensor: name.to_string(),
        reason,
    };
    let location =
        field("location").ok_or_else(|| bad("external data without a location".into()))?;
    let relative = PathBuf::from(&location);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(OnnxError::ExternalPath {
            tensor: name.to_string(),
            location,
        });
    }
    let path = folder.join(&relative);
    // A symbolic link inside the folder may still point out of it.
    if let (Ok(real), Ok(root)) = (path.canonicalize(), folder.canonicalize())
        && !real.starts_with(&root)
    {
        return Err(OnnxError::ExternalPath {
            tensor: name.to_string(),
            location,
        });
    }
    let number = |key: &str| -> Result<Option<u64>> {
        field(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("bad {key} '{v}'")))
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let length = number("length")?;
    let bytes = std::fs::read(&path)
        .map_err(|e| bad(format!("cannot read external data {}: {e}", path.display())))?;
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let end = match length {
        Some(l) => start.saturating_add(usize::try_from(l).unwrap_or(usize::MAX)),
        None => bytes.len(),
    };
    bytes.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| {
        bad(format!(
            "external data {} has {} bytes, the tensor needs bytes {start}..{end}",
            path.display(),
            bytes.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_decode() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    }
}
