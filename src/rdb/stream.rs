//! Stream values (`RDB_TYPE_STREAM_LISTPACKS`, `_2`).

use super::{Error, Reader, Result};

/// A decoded stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamValue {}

/// Reads a stream object of type `t`.
pub fn read(t: u8, _r: &mut Reader<'_>) -> Result<StreamValue> {
    Err(Error::UnsupportedType(t))
}

/// The DUMP payload of a stream.
pub fn dump(_s: &crate::stream::StreamRef) -> std::result::Result<Vec<u8>, String> {
    Err("DUMP of a stream is not supported yet".into())
}

/// A new stream holding `v`.
pub fn create(
    _reg: &std::sync::Arc<crate::stream::Registry>,
    _v: &StreamValue,
) -> std::result::Result<crate::stream::StreamRef, String> {
    Err("streams are not restored yet".into())
}
