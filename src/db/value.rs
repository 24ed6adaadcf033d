//! Values stored under keys. Each data type lives in its own variant; the
//! command families in `commands/` own their semantics.

use super::zset::ZSet;
use crate::protocol::parse::parse_i64;

/// Longest string Redis stores with the `embstr` encoding.
const EMBSTR_BYTES_MAX: usize = 44;

/// Integers Redis keeps as shared objects (`OBJ_SHARED_INTEGERS`): values
/// 0..=9999 created through `tryObjectEncoding` point at one preallocated
/// object whose OBJECT REFCOUNT is `i32::MAX`.
const SHARED_INTEGERS_MAX: i64 = 9999;

/// OBJECT REFCOUNT of a shared object (`OBJ_SHARED_REFCOUNT`).
pub const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// Largest string a replayed SETRANGE may produce: Redis's largest
/// `proto-max-bulk-len` is far below it; a bigger offset in a unit that
/// passed its CRC is a bug, refused rather than allocated.
pub const STRING_LOG_BYTES_MAX: usize = 1 << 40;

/// How Redis would have built a string object; decides OBJECT ENCODING
/// and OBJECT REFCOUNT, never the content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StrForm {
    /// Through `tryObjectEncoding` (SET, MSET, GETSET, INCR, APPEND on a
    /// new key): `int` when the content is a canonical 64-bit integer of at
    /// most 20 bytes, else `embstr` up to 44 bytes, else `raw`.
    #[default]
    Encoded,
    /// From a buffer without trying the integer encoding (INCRBYFLOAT's
    /// result): `embstr` up to 44 bytes, else `raw`.
    Plain,
    /// Modified in place (APPEND, SETRANGE): always `raw`.
    Raw,
    /// A private duplicate of an `int` object (COPY): `int`, never shared.
    IntCopy,
}

/// A string value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrValue {
    pub data: Vec<u8>,
    pub form: StrForm,
}

impl StrValue {
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        StrValue {
            data: data.into(),
            form: StrForm::Encoded,
        }
    }

    /// A string built the way `form` says.
    pub fn with_form(data: impl Into<Vec<u8>>, form: StrForm) -> Self {
        StrValue {
            data: data.into(),
            form,
        }
    }

    pub fn from_i64(n: i64) -> Self {
        let mut b = itoa::Buffer::new();
        StrValue::new(b.format(n).as_bytes())
    }

    /// Replaces the content with `n` (as `from_i64`), reusing the buffer.
    pub fn set_i64(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.data.clear();
        self.data.extend_from_slice(b.format(n).as_bytes());
        self.form = StrForm::Encoded;
    }

    /// The integer value, if the string is a canonical 64-bit integer.
    pub fn as_i64(&self) -> Option<i64> {
        parse_i64(&self.data)
    }

    /// OBJECT ENCODING, following Redis's `tryObjectEncoding`.
    pub fn encoding(&self) -> &'static str {
        match self.form {
            StrForm::Raw => "raw",
            StrForm::IntCopy => "int",
            StrForm::Encoded if self.data.len() <= 20 && self.as_i64().is_some() => "int",
            _ if self.data.len() <= EMBSTR_BYTES_MAX => "embstr",
            _ => "raw",
        }
    }

    /// OBJECT REFCOUNT: shared small integers report `SHARED_REFCOUNT`.
    pub fn refcount(&self) -> i64 {
        let shared = self.form == StrForm::Encoded
            && self
                .as_i64()
                .is_some_and(|n| (0..=SHARED_INTEGERS_MAX).contains(&n));
        if shared {
            SHARED_REFCOUNT
        } else {
            1
        }
    }

    /// The duplicate COPY makes (`dupStringObject`): same encoding, private.
    pub fn duplicate(&self) -> Self {
        let form = match (self.form, self.encoding()) {
            (StrForm::Encoded, "int") => StrForm::IntCopy,
            (f, _) => f,
        };
        StrValue {
            data: self.data.clone(),
            form,
        }
    }
}

/// A key's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(StrValue),
    ZSet(ZSet),
    /// A stream: metadata in memory, entries in its own logs (`stream`).
    Stream(crate::stream::StreamRef),
    Hash(super::hash::Hash),
    Set(super::set::Set),
    List(super::list::List),
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::List(_) => "list",
        }
    }

    /// The name OBJECT ENCODING replies with.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::List(l) => l.encoding(),
        }
    }

    pub fn str(data: impl Into<Vec<u8>>) -> Value {
        Value::Str(StrValue::new(data))
    }
}
