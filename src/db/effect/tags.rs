//! The WAL's effect tags and value types, by name. `docs/format.md` lists
//! the same numbers and names; a test checks its tables against [`TAGS`]
//! and [`VALUE_TYPES`].

/// Effect tags (`effect = u8 tag | body`).
pub mod tag {
    pub const SET: u8 = 1;
    pub const DEL: u8 = 2;
    pub const EXPIRE: u8 = 3;
    pub const FLUSHDB: u8 = 4;
    pub const FLUSHALL: u8 = 5;
    pub const SWAPDB: u8 = 6;
    pub const APPEND: u8 = 7;
    pub const SETRANGE: u8 = 8;
    pub const LPUSH: u8 = 20;
    pub const LPOP: u8 = 21;
    pub const LSET: u8 = 22;
    pub const LINSERT: u8 = 23;
    pub const LREM: u8 = 24;
    pub const LTRIM: u8 = 25;
    pub const HSET: u8 = 30;
    pub const HDEL: u8 = 31;
    pub const SADD: u8 = 40;
    pub const SREM: u8 = 41;
    pub const ZADD: u8 = 50;
    pub const ZREM: u8 = 51;
    pub const LOGFORMAT_SET: u8 = 70;
    pub const LOGFORMAT_DEL: u8 = 71;
    pub const LOGMINER_LEARN: u8 = 72;
    pub const LOGMINER_STATE: u8 = 73;
    /// Older logs: [`STREAM_INGEST_LEARN`] without the generation (read,
    /// never written).
    pub const STREAM_INGEST_LEARN_V1: u8 = 74;
    pub const STREAM_INGEST_LEARN: u8 = 75;
    pub const FUNCTION_LOAD: u8 = 80;
    pub const FUNCTION_DELETE: u8 = 81;
    pub const FUNCTION_FLUSH: u8 = 82;
    pub const FUNCTION_RESTORE: u8 = 83;
    pub const REPL_POSITION: u8 = 90;
    pub const COMMAND: u8 = 91;
}

/// Value types (`value = u8 type | body`).
pub mod value_type {
    pub const STRING: u8 = 1;
    pub const LIST: u8 = 2;
    pub const HASH: u8 = 3;
    pub const SET: u8 = 4;
    pub const ZSET: u8 = 5;
    /// A stream: its id only (entries live in its own directory).
    pub const STREAM: u8 = 6;
    /// A stream with LOGPARSE ingestion attached: id, format name, spec,
    /// miner state.
    pub const STREAM_INGEST: u8 = 7;
}

/// Every effect tag with its name in `docs/format.md`.
pub const TAGS: &[(u8, &str)] = &[
    (tag::SET, "SET"),
    (tag::DEL, "DEL"),
    (tag::EXPIRE, "EXPIRE"),
    (tag::FLUSHDB, "FLUSHDB"),
    (tag::FLUSHALL, "FLUSHALL"),
    (tag::SWAPDB, "SWAPDB"),
    (tag::APPEND, "APPEND"),
    (tag::SETRANGE, "SETRANGE"),
    (tag::LPUSH, "LPUSH"),
    (tag::LPOP, "LPOP"),
    (tag::LSET, "LSET"),
    (tag::LINSERT, "LINSERT"),
    (tag::LREM, "LREM"),
    (tag::LTRIM, "LTRIM"),
    (tag::HSET, "HSET"),
    (tag::HDEL, "HDEL"),
    (tag::SADD, "SADD"),
    (tag::SREM, "SREM"),
    (tag::ZADD, "ZADD"),
    (tag::ZREM, "ZREM"),
    (tag::LOGFORMAT_SET, "LOGFORMAT_SET"),
    (tag::LOGFORMAT_DEL, "LOGFORMAT_DEL"),
    (tag::LOGMINER_LEARN, "LOGMINER_LEARN"),
    (tag::LOGMINER_STATE, "LOGMINER_STATE"),
    (tag::STREAM_INGEST_LEARN_V1, "STREAM_INGEST_LEARN_V1"),
    (tag::STREAM_INGEST_LEARN, "STREAM_INGEST_LEARN"),
    (tag::FUNCTION_LOAD, "FUNCTION_LOAD"),
    (tag::FUNCTION_DELETE, "FUNCTION_DELETE"),
    (tag::FUNCTION_FLUSH, "FUNCTION_FLUSH"),
    (tag::FUNCTION_RESTORE, "FUNCTION_RESTORE"),
    (tag::REPL_POSITION, "REPL_POSITION"),
    (tag::COMMAND, "COMMAND"),
];

/// Every value type with its name in `docs/format.md`.
pub const VALUE_TYPES: &[(u8, &str)] = &[
    (value_type::STRING, "string"),
    (value_type::LIST, "list"),
    (value_type::HASH, "hash"),
    (value_type::SET, "set"),
    (value_type::ZSET, "zset"),
    (value_type::STREAM, "stream"),
    (value_type::STREAM_INGEST, "stream_ingest"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `(number, name)` of every `<word> <number> <NAME> =` line of
    /// docs/format.md's unit grammar.
    fn documented(word: &str) -> Vec<(u8, String)> {
        let doc = include_str!("../../../docs/format.md");
        let start = doc
            .find("### Unit")
            .expect("docs/format.md has a Unit section");
        let end = start
            + doc[start..]
                .find("### Base file")
                .expect("and a Base file one");
        doc[start..end]
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()? == word).then_some(())?;
                let n = w.next()?.parse().ok()?;
                let name = w.next()?.to_string();
                (w.next()? == "=").then_some((n, name))
            })
            .collect()
    }

    fn table(t: &[(u8, &str)]) -> Vec<(u8, String)> {
        t.iter().map(|(n, s)| (*n, s.to_string())).collect()
    }

    #[test]
    fn format_md_matches() {
        assert_eq!(documented("tag"), table(TAGS));
        assert_eq!(documented("type"), table(VALUE_TYPES));
        // Every tag and type is distinct.
        for t in [TAGS, VALUE_TYPES] {
            let mut n: Vec<u8> = t.iter().map(|e| e.0).collect();
            n.sort_unstable();
            n.dedup();
            assert_eq!(n.len(), t.len());
        }
    }
}
