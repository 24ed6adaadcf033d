//! Values stored under keys. Each data type lives in its own variant; the
//! command families in `commands/` own their semantics.

use crate::protocol::parse::parse_i64;

/// Largest string value, as Redis's `proto-max-bulk-len` default: SETRANGE and
/// APPEND refuse to grow a string past it.
pub const STRING_BYTES_MAX: usize = 512 * 1024 * 1024;

/// Longest string Redis stores with the `embstr` encoding.
const EMBSTR_BYTES_MAX: usize = 44;

/// A string value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrValue {
    pub data: Vec<u8>,
    /// Set once the string was modified in place (APPEND, SETRANGE): Redis
    /// then keeps it `raw` whatever its content.
    pub raw: bool,
}

impl StrValue {
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        StrValue {
            data: data.into(),
            raw: false,
        }
    }

    pub fn from_i64(n: i64) -> Self {
        let mut b = itoa::Buffer::new();
        StrValue::new(b.format(n).as_bytes())
    }

    /// The integer value, if the string is a canonical 64-bit integer.
    pub fn as_i64(&self) -> Option<i64> {
        parse_i64(&self.data)
    }

    /// OBJECT ENCODING, following Redis's `tryObjectEncoding`.
    pub fn encoding(&self) -> &'static str {
        if self.raw {
            "raw"
        } else if self.data.len() <= 20 && self.as_i64().is_some() {
            "int"
        } else if self.data.len() <= EMBSTR_BYTES_MAX {
            "embstr"
        } else {
            "raw"
        }
    }
}

/// A key's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(StrValue),
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The name OBJECT ENCODING replies with.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
        }
    }

    pub fn str(data: impl Into<Vec<u8>>) -> Value {
        Value::Str(StrValue::new(data))
    }
}
