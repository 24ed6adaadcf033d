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

    /// The bytes the value's own allocations take in jemalloc size
    /// classes (MEMORY USAGE; the entry holding it is counted by the
    /// database). Collections in table form average their first
    /// `samples` elements over all of them, as Redis does. A stream
    /// counts its in-memory state only: its entries live on disk.
    pub fn mem_usage(&self, samples: usize) -> usize {
        use super::memory::size_class;
        match self {
            Value::Str(s) => size_class(s.data.capacity()),
            Value::ZSet(z) => z.mem_usage(samples),
            Value::Stream(_) => {
                // The Arc's block (two counters and the stream) and the
                // open state behind its mutex.
                size_class(16 + std::mem::size_of::<crate::stream::Stream>())
                    + size_class(std::mem::size_of::<crate::stream::Inner>())
            }
            Value::Hash(h) => h.mem_usage(samples),
            Value::Set(s) => s.mem_usage(samples),
            Value::List(l) => l.mem_usage(samples),
        }
    }

    /// How many allocations freeing the value takes (Redis's
    /// `lazyfreeGetFreeEffort`): above `lazyfree::THRESHOLD` a lazy
    /// deletion frees it on the background thread. A stream is 1: its
    /// last handle's drop schedules its directory's removal, kept on the
    /// keyspace's side.
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Str(_) | Value::Stream(_) => 1,
            Value::ZSet(z) => z.free_effort(),
            Value::Hash(h) => h.free_effort(),
            Value::Set(s) => s.free_effort(),
            Value::List(l) => l.free_effort(),
        }
    }

    pub fn str(data: impl Into<Vec<u8>>) -> Value {
        Value::Str(StrValue::new(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::hash::{Hash, HashLimits};
    use crate::db::list::List;
    use crate::db::memory::thread_net;
    use crate::db::set::Set;
    use crate::db::zset::ZsetLimits;

    /// The bytes this thread holds for what `build` returns, and its
    /// MEMORY USAGE with every element sampled and with Redis's default 5.
    fn measure(build: impl FnOnce() -> Value) -> (i64, usize, usize) {
        let before = thread_net();
        let v = build();
        let held = thread_net().wrapping_sub(before) as i64;
        let all = v.mem_usage(usize::MAX);
        let sampled = v.mem_usage(5);
        drop(v);
        (held, all, sampled)
    }

    fn close(name: &str, (held, all, sampled): (i64, usize, usize)) {
        let within = |x: usize, pct: i64| (x as i64 - held).abs() * 100 <= held * pct;
        assert!(within(all, 20), "{name}: usage {all} vs allocated {held}");
        assert!(within(sampled, 35), "{name}: sampled {sampled} vs {held}");
    }

    #[test]
    fn mem_usage_is_close_to_what_the_value_allocates() {
        close("raw string", measure(|| Value::str(vec![7u8; 1000])));
        close(
            "list",
            measure(|| {
                let mut l = List::new();
                for i in 0..20_000 {
                    l.push(false, format!("element-{i}").as_bytes());
                }
                Value::List(l)
            }),
        );
        close(
            "hash table",
            measure(|| {
                let mut h = Hash::default();
                let lim = HashLimits {
                    max_entries: 0,
                    max_value: 0,
                };
                for i in 0..20_000 {
                    h.set(format!("field-{i}").as_bytes(), b"some value", lim);
                }
                Value::Hash(h)
            }),
        );
        close(
            "set table",
            measure(|| {
                let mut s = Set::Table(Default::default());
                for i in 0..20_000 {
                    s.add(format!("member-{i}").as_bytes(), 0);
                }
                Value::Set(s)
            }),
        );
        close(
            "intset",
            measure(|| {
                let mut s = Set::new_intset();
                for i in 0..500 {
                    s.add(i.to_string().as_bytes(), 512);
                }
                Value::Set(s)
            }),
        );
        close(
            "skiplist",
            measure(|| {
                let mut z = ZSet::new_skiplist();
                for i in 0..20_000 {
                    let m = bytes::Bytes::from(format!("member-{i}"));
                    z.insert_new(m, i as f64, ZsetLimits::default());
                }
                Value::ZSet(z)
            }),
        );
    }
}
