//! Keyspace notifications (`notify-keyspace-events`), as Redis has them.
//!
//! Command handlers call `Keyspace::notify(class, event, db, key)` after a
//! change (Redis's `notifyKeyspaceEvent`); the events enabled by the
//! configured flags are queued here and published by the server after the
//! command, on `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`.

use super::Keyspace;
use bytes::Bytes;

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key expired.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key was evicted.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: a key was missed on a read.
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module key type events.
pub const MODULE: u32 = 1 << 13;
/// `n`: a new key was created.
pub const NEW: u32 = 1 << 14;
/// `A`: alias for `g$lshzxetd`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses the flag string (Redis's `keyspaceEventsStringToFlags`); None
/// for an unknown character.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// The canonical flag string CONFIG GET shows (`keyspaceEventsFlagsToString`).
pub fn flags_to_string(f: u32) -> String {
    let mut s = String::new();
    if f & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    // As Redis's `keyspaceEventsFlagsToString`: `n` is not part of `A`
    // but is printed only when `A` is not (so "AKEn" reads back "AKE").
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// One queued event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub event: &'static str,
    pub db: usize,
    pub key: Bytes,
    /// Which of K / E were enabled when it was queued.
    pub keyspace: bool,
    pub keyevent: bool,
    /// Where in the command's reply buffer Redis 7.0 would write the push
    /// for a RESP3 client subscribed to its own events (`Ctx::notify`
    /// records it); None: before the reply, or after the previous event.
    pub reply_at: Option<usize>,
}

/// CONFIG SET's complaint about a bad `notify-keyspace-events` value.
pub const INVALID_FLAGS: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

impl Keyspace {
    /// Queues an event of `class` if the configured flags enable it
    /// (Redis's `notifyKeyspaceEvent`).
    pub fn notify(&mut self, class: u32, event: &'static str, db: usize, key: &[u8]) {
        self.notify_at(class, event, db, key, None);
    }

    /// `notify` with the reply-buffer position of the event (see
    /// `Notification::reply_at`).
    pub fn notify_at(
        &mut self,
        class: u32,
        event: &'static str,
        db: usize,
        key: &[u8],
        reply_at: Option<usize>,
    ) {
        let f = self.notify_flags;
        if f & class == 0 || f & (KEYSPACE | KEYEVENT) == 0 {
            return;
        }
        self.notifications.push(Notification {
            event,
            db,
            key: Bytes::copy_from_slice(key),
            keyspace: f & KEYSPACE != 0,
            keyevent: f & KEYEVENT != 0,
            reply_at,
        });
    }

    /// The queued events, oldest first.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.notifications)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_like_redis() {
        assert_eq!(
            parse_flags("KEA").map(flags_to_string).as_deref(),
            Some("AKE")
        );
        assert_eq!(
            parse_flags("Kx$g").map(flags_to_string).as_deref(),
            Some("g$xK")
        );
        assert_eq!(parse_flags("").map(flags_to_string).as_deref(), Some(""));
        assert_eq!(parse_flags("Q"), None);
        assert_eq!(
            parse_flags("KElshzxetdmgn").map(flags_to_string).as_deref(),
            Some("glshzxetdnKEm")
        );
        assert_eq!(
            parse_flags("AnKE").map(flags_to_string).as_deref(),
            Some("AKE")
        );
        assert_eq!(
            parse_flags("mK").map(flags_to_string).as_deref(),
            Some("Km")
        );
    }

    #[test]
    fn only_enabled_classes_are_queued() {
        let mut ks = crate::commands::lua::keyspace();
        ks.notify(GENERIC, "del", 0, b"k");
        assert!(ks.take_notifications().is_empty(), "off by default");
        ks.notify_flags = parse_flags("Eg").unwrap();
        ks.notify(STRING, "set", 0, b"k");
        ks.notify(GENERIC, "del", 0, b"k");
        let n = ks.take_notifications();
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n[0].event, n[0].keyspace, n[0].keyevent),
            ("del", false, true)
        );
    }
}
