//! Whole RDB files (rdb.c's `rdbSaveRio` / `rdbLoadRio`):
//!
//! ```text
//! "REDIS" 4-digit version
//! (250 AUX string key string value)*
//! (254 SELECTDB len db | 251 RESIZEDB len keys len expires
//!  | [252 EXPIRETIME_MS u64 LE ms | 253 EXPIRETIME u32 LE s]
//!    [248 IDLE len s] [249 FREQ u8] type string key object
//!  | 245 FUNCTION2 string code)*
//! 255 EOF | u64 LE crc64 of everything before (0: not checked)
//! ```

use super::{crc64, opcodes, Error, Reader, Writer, RDB_VERSION};

/// One key of an RDB file: its database, key, expiry (absolute Unix ms, 0
/// for none), and its value: type byte and object bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    pub db: u64,
    pub key: Vec<u8>,
    pub expires_at_ms: u64,
    pub rdb_type: u8,
    pub object: &'a [u8],
}

impl Item<'_> {
    /// The value as a DUMP payload (`type | object | version | crc64`).
    pub fn dump_payload(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.object.len() + 11);
        v.push(self.rdb_type);
        v.extend_from_slice(self.object);
        super::dump_envelope(v)
    }
}

/// What a file held besides keys.
#[derive(Debug, Default)]
pub struct Summary {
    pub version: u16,
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// FUNCTION2 records: each library's code, in file order (read, not
    /// compiled: loading them is the caller's).
    pub functions: Vec<Vec<u8>>,
}

/// Why an RDB file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("not an RDB file (no REDIS magic)")]
    NoMagic,
    #[error("bad RDB version field")]
    BadVersionField,
    #[error("unsupported RDB version {0}")]
    UnsupportedVersion(u16),
    #[error("RDB checksum mismatch")]
    ChecksumMismatch,
    #[error("unsupported RDB opcode {op} at offset {offset}")]
    UnsupportedOpcode { op: u8, offset: usize },
    /// A key's value does not decode.
    #[error("key at offset {offset}: {source}")]
    Value { offset: usize, source: Error },
    /// The file's framing (opcodes, strings, lengths) does not decode.
    #[error("{0}")]
    Data(#[from] Error),
    /// An aux field the reader understands does not decode (a redlog
    /// record: `db::effect::record`).
    #[error("aux field: {0}")]
    Aux(String),
}

/// Reads an RDB file, calling `f` for every key (values checked by
/// decoding them); an error of `f` ends the read and is returned. The
/// file's checksum is verified at its end.
pub fn read_file<E: From<FileError>>(
    data: &[u8],
    mut f: impl FnMut(Item<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<Summary, E> {
    if data.len() < 9 || &data[..5] != b"REDIS" {
        return Err(FileError::NoMagic.into());
    }
    let version: u16 = std::str::from_utf8(&data[5..9])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(FileError::BadVersionField)?;
    if !(1..=RDB_VERSION).contains(&version) {
        return Err(FileError::UnsupportedVersion(version).into());
    }
    let mut s = Summary {
        version,
        ..Summary::default()
    };
    let mut r = Reader::new(data);
    r.bytes(9).map_err(err)?;
    let (mut db, mut expires_at_ms) = (0u64, 0u64);
    loop {
        let start = r.pos();
        let op = r.u8().map_err(err)?;
        match op {
            opcodes::EOF => {
                if version >= 5 {
                    let body = &data[..r.pos()];
                    let crc = r.u64_le().map_err(err)?;
                    if crc != 0 && crc != crc64(body) {
                        return Err(FileError::ChecksumMismatch.into());
                    }
                }
                return Ok(s);
            }
            opcodes::AUX => {
                let k = r.string().map_err(err)?;
                let v = r.string().map_err(err)?;
                s.aux.push((k, v));
            }
            opcodes::SELECTDB => db = r.len().map_err(err)?,
            opcodes::RESIZEDB => {
                r.len().map_err(err)?;
                r.len().map_err(err)?;
            }
            opcodes::EXPIRETIME_MS => expires_at_ms = r.u64_le().map_err(err)?,
            opcodes::EXPIRETIME => expires_at_ms = u64::from(r.u32_le().map_err(err)?) * 1000,
            opcodes::IDLE => {
                r.len().map_err(err)?;
            }
            opcodes::FREQ => {
                r.u8().map_err(err)?;
            }
            opcodes::FUNCTION2 => {
                s.functions.push(r.string().map_err(err)?);
            }
            opcodes::FUNCTION | opcodes::MODULE_AUX => {
                return Err(FileError::UnsupportedOpcode { op, offset: start }.into());
            }
            t => {
                let key = r.string().map_err(err)?;
                let at = r.pos();
                super::value::read_object(t, &mut r).map_err(|source| FileError::Value {
                    offset: start,
                    source,
                })?;
                let item = Item {
                    db,
                    key,
                    expires_at_ms,
                    rdb_type: t,
                    object: &data[at..r.pos()],
                };
                f(item)?;
                expires_at_ms = 0;
            }
        }
    }
}

fn err(e: Error) -> FileError {
    FileError::Data(e)
}

/// Writes an RDB file, as redis-server 7.0's SAVE lays it out.
pub struct FileWriter {
    pub w: Writer,
}

impl FileWriter {
    /// The header and the aux fields redis-server writes.
    pub fn new(ctime_s: u64, used_mem: u64) -> FileWriter {
        let mut w = Writer::new();
        w.raw(format!("REDIS{RDB_VERSION:04}").as_bytes());
        let mut aux = |k: &str, v: &str| {
            w.u8(opcodes::AUX);
            w.string(k.as_bytes());
            w.string(v.as_bytes());
        };
        aux("redis-ver", crate::REDIS_COMPAT_VERSION);
        aux("redis-bits", "64");
        aux("ctime", &ctime_s.to_string());
        aux("used-mem", &used_mem.to_string());
        aux("aof-base", "0");
        FileWriter { w }
    }

    pub fn select_db(&mut self, db: u64, keys: u64, expires: u64) {
        self.w.u8(opcodes::SELECTDB);
        self.w.len(db);
        self.w.u8(opcodes::RESIZEDB);
        self.w.len(keys);
        self.w.len(expires);
    }

    /// A key's expiry, written before the key (`put_value`).
    pub fn expiry(&mut self, expires_at_ms: u64) {
        if expires_at_ms != 0 {
            self.w.u8(opcodes::EXPIRETIME_MS);
            self.w.u64_le(expires_at_ms);
        }
    }

    /// The EOF opcode and checksum.
    pub fn finish(mut self) -> Vec<u8> {
        self.w.u8(opcodes::EOF);
        let crc = crc64(&self.w.buf);
        self.w.u64_le(crc);
        self.w.buf
    }
}

/// Writes `type | key | object` given the value's `type | object` bytes.
pub fn put_value(w: &mut Writer, key: &[u8], type_and_object: &[u8]) {
    w.u8(type_and_object[0]);
    w.string(key);
    w.raw(&type_and_object[1..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trip() {
        let mut f = FileWriter::new(1, 2);
        f.select_db(3, 1, 1);
        f.expiry(1234);
        let mut v = Writer::new();
        v.u8(super::super::types::STRING);
        v.string(b"value");
        put_value(&mut f.w, b"k", &v.buf);
        let bytes = f.finish();
        let mut seen = Vec::new();
        let s = read_file::<FileError>(&bytes, |i| {
            let mut v = vec![i.rdb_type];
            v.extend_from_slice(i.object);
            seen.push((i.db, i.key.clone(), i.expires_at_ms, v));
            Ok(())
        })
        .unwrap();
        assert_eq!(s.version, 10);
        assert_eq!(seen, vec![(3, b"k".to_vec(), 1234, v.buf.clone())]);
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 12] ^= 1;
        assert!(matches!(
            read_file::<FileError>(&bad, |_| Ok(())),
            Err(FileError::ChecksumMismatch)
        ));
        assert_eq!(
            read_file::<FileError>(b"RDXS0010", |_| Ok(()))
                .unwrap_err()
                .to_string(),
            "not an RDB file (no REDIS magic)"
        );
    }
}
