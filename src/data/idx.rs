//! The IDX file format of (Fashion-)MNIST, gzipped or not.
//!
//! An IDX file is a 4-byte magic number `00 00 08 N` (08: unsigned bytes, N: the number of
//! dimensions), then N big-endian u32 dimensions, then the bytes themselves in row-major order.

use std::io::Read;
use std::path::{Path, PathBuf};

/// What can be wrong with one IDX file. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: corrupt gzip stream: {source}")]
    Gzip { path: PathBuf, source: std::io::Error },
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

/// A parsed IDX file: its dimensions and its bytes.
#[derive(Debug, Clone)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file, inflating it first when it starts with the gzip magic (not by its name).
pub fn read_idx(path: &Path) -> Result<Idx, IdxError> {
    let raw = std::fs::read(path).map_err(|source| IdxError::Io { path: path.to_owned(), source })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|source| IdxError::Gzip { path: path.to_owned(), source })?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|what| IdxError::Invalid { path: path.to_owned(), what })
}

/// Parses the bytes of an (inflated) IDX file.
pub fn parse_idx(bytes: &[u8]) -> Result<Idx, String> {
    if bytes.len() < 4 {
        return Err(format!("truncated: {} bytes, too short for the IDX header", bytes.len()));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "bad magic number {:02x} {:02x} {:02x} {:02x}: not an IDX file",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!("element type 0x{:02x} is not 0x08 (unsigned byte)", bytes[2]));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format!(
            "truncated: the header of {ndims} dimensions needs {header} bytes, the file has {}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or("dimensions overflow")?;
    let found = bytes.len() - header;
    if found < expected {
        return Err(format!("truncated: dimensions {dims:?} need {expected} bytes of data, found {found}"));
    }
    if found > expected {
        return Err(format!("{} bytes after the data that dimensions {dims:?} describe", found - expected));
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}

/// Serializes bytes as an IDX file (uncompressed); used to write test fixtures and samples.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data: Vec<u8> = (0..24).collect();
        let idx = parse_idx(&encode_idx(&[2, 3, 4], &data)).unwrap();
        assert_eq!(idx.dims, vec![2, 3, 4]);
        assert_eq!(idx.data, data);
    }

    #[test]
    fn rejects_short_long_and_foreign_files() {
        let good = encode_idx(&[3], &[1, 2, 3]);
        assert!(parse_idx(&good[..good.len() - 1]).unwrap_err().contains("truncated"));
        let mut long = good.clone();
        long.push(0);
        assert!(parse_idx(&long).unwrap_err().contains("after the data"));
        assert!(parse_idx(b"PK\x03\x04").unwrap_err().contains("magic"));
        assert!(parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 0]).unwrap_err().contains("element type"));
    }
}
