//! The cluster bus's wire format: Redis 7.0's `clusterMsg` (cluster.h),
//! encoded and decoded field by field in network byte order.
//!
//! A message is a 2256-byte header (signature `RCmb`, total length,
//! version 1, the sender's ports, type, gossip count, epochs, replication
//! offset, name, slot bitmap, primary's name, announced IP, extension
//! count, flags, cluster state, message flags) followed by the type's data:
//! PING/PONG/MEET: `count` 104-byte gossip entries, then (with
//! `FLAG0_EXT_DATA`) `extensions` 8-byte aligned extensions; FAIL: a node
//! name; PUBLISH/PUBLISHSHARD: channel and message lengths and bytes;
//! UPDATE: config epoch, node name, slot bitmap; MODULE: id, length, type,
//! payload; FAILOVER_AUTH_REQUEST/ACK and MFSTART: nothing.
//!
//! `decode` checks every length as Redis's `clusterProcessPacket` does and
//! answers an error for a message Redis would drop; it never panics,
//! whatever the bytes (`crate::fuzz::cluster_bus`).

use std::fmt;

pub const NAMELEN: usize = 40;
pub const IPLEN: usize = 46;
pub const SLOT_BYTES: usize = super::slots::SLOTS / 8;
/// `sizeof(clusterMsg) - sizeof(union clusterMsgData)`.
pub const HEADER_LEN: usize = 2256;
/// `sizeof(clusterMsgDataGossip)`.
pub const GOSSIP_LEN: usize = 104;
/// Largest message accepted (Redis has no bound; a PUBLISH carries at most
/// a client's 512 MB bulk).
pub const MAX_LEN: usize = 1 << 30;

pub const PING: u16 = 0;
pub const PONG: u16 = 1;
pub const MEET: u16 = 2;
pub const FAIL: u16 = 3;
pub const PUBLISH: u16 = 4;
pub const FAILOVER_AUTH_REQUEST: u16 = 5;
pub const FAILOVER_AUTH_ACK: u16 = 6;
pub const UPDATE: u16 = 7;
pub const MFSTART: u16 = 8;
pub const MODULE: u16 = 9;
pub const PUBLISHSHARD: u16 = 10;
/// Number of message types (`CLUSTERMSG_TYPE_COUNT`).
pub const TYPE_COUNT: usize = 11;

/// `mflags[0]` bits.
pub const FLAG0_PAUSED: u8 = 1 << 0;
pub const FLAG0_FORCEACK: u8 = 1 << 1;
pub const FLAG0_EXT_DATA: u8 = 1 << 2;

/// Ping extension types.
pub const EXT_HOSTNAME: u16 = 0;
pub const EXT_FORGOTTEN_NODE: u16 = 1;

/// The name Redis's `clusterGetMessageTypeString` gives a type (CLUSTER
/// INFO's `cluster_stats_messages_<name>_sent`).
pub fn type_name(t: usize) -> &'static str {
    match t as u16 {
        PING => "ping",
        PONG => "pong",
        MEET => "meet",
        FAIL => "fail",
        PUBLISH => "publish",
        PUBLISHSHARD => "publishshard",
        FAILOVER_AUTH_REQUEST => "auth-req",
        FAILOVER_AUTH_ACK => "auth-ack",
        UPDATE => "update",
        MFSTART => "mfstart",
        MODULE => "module",
        _ => "unknown",
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusError {
    /// Fewer bytes than the header or than `totlen` says.
    Short,
    BadSignature,
    /// `totlen` below the header's size or above `MAX_LEN`.
    BadLength(u64),
    Version(u16),
    /// `totlen` differs from what the type and its counts imply.
    LengthMismatch {
        totlen: usize,
        expected: usize,
    },
    BadExtension,
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Short => write!(f, "truncated message"),
            BusError::BadSignature => write!(f, "bad signature"),
            BusError::BadLength(n) => write!(f, "bad total length {n}"),
            BusError::Version(v) => write!(f, "unsupported protocol version {v}"),
            BusError::LengthMismatch { totlen, expected } => {
                write!(f, "length {totlen} but expected {expected}")
            }
            BusError::BadExtension => write!(f, "invalid ping extension"),
        }
    }
}

/// The fixed header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub port: u16,
    pub kind: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub offset: u64,
    pub sender: [u8; NAMELEN],
    pub myslots: Box<[u8; SLOT_BYTES]>,
    /// All zero for a primary.
    pub replicaof: [u8; NAMELEN],
    /// NUL-padded; all zero: the receiver uses the connection's address.
    pub myip: [u8; IPLEN],
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    pub state: u8,
    pub mflags: [u8; 3],
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("kind", &self.kind)
            .field("sender", &String::from_utf8_lossy(&self.sender))
            .field("current_epoch", &self.current_epoch)
            .field("config_epoch", &self.config_epoch)
            .finish_non_exhaustive()
    }
}

impl Header {
    pub fn new(kind: u16) -> Header {
        Header {
            port: 0,
            kind,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender: [0; NAMELEN],
            myslots: Box::new([0; SLOT_BYTES]),
            replicaof: [0; NAMELEN],
            myip: [0; IPLEN],
            pport: 0,
            cport: 0,
            flags: 0,
            state: 0,
            mflags: [0; 3],
        }
    }

    /// The announced IP up to its first NUL (empty: none announced).
    pub fn ip(&self) -> &[u8] {
        cstr(&self.myip)
    }
}

/// One gossip entry (`clusterMsgDataGossip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gossip {
    pub name: [u8; NAMELEN],
    /// Seconds.
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: [u8; IPLEN],
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

impl Gossip {
    pub fn ip(&self) -> &[u8] {
        cstr(&self.ip)
    }
}

/// A ping extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ext {
    /// The sender's announced hostname (NUL-terminated on the wire).
    Hostname(Vec<u8>),
    /// Redis 7.2's forgotten-node extension: a name and a TTL in seconds.
    ForgottenNode { name: [u8; NAMELEN], ttl: u64 },
    /// A type this node does not know: kept, ignored.
    Other { kind: u16, data: Vec<u8> },
}

/// The data after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Ping {
        gossip: Vec<Gossip>,
        exts: Vec<Ext>,
    },
    Fail {
        about: [u8; NAMELEN],
    },
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    Update {
        config_epoch: u64,
        name: [u8; NAMELEN],
        slots: Box<[u8; SLOT_BYTES]>,
    },
    Module {
        id: u64,
        kind: u8,
        payload: Vec<u8>,
    },
    /// FAILOVER_AUTH_REQUEST / ACK, MFSTART.
    Empty,
    /// A type this node does not know: its bytes after the header.
    Unknown(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

/// A byte string up to its first NUL.
pub fn cstr(b: &[u8]) -> &[u8] {
    &b[..memchr::memchr(0, b).unwrap_or(b.len())]
}

/// Copies `s` into a NUL-padded fixed field (truncated to leave a NUL).
pub fn fixed<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N.saturating_sub(1));
    out[..n].copy_from_slice(&s[..n]);
    out
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BusError> {
        let end = self.at.checked_add(n).ok_or(BusError::Short)?;
        let s = self.b.get(self.at..end).ok_or(BusError::Short)?;
        self.at = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], BusError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, BusError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, BusError> {
        Ok(u16::from_be_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, BusError> {
        Ok(u32::from_be_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, BusError> {
        Ok(u64::from_be_bytes(self.arr()?))
    }
}

/// The total length a message's first 8 bytes announce, once its
/// signature is checked (the reader's framing step, Redis's
/// `clusterReadHandler`).
pub fn frame_len(first8: &[u8; 8]) -> Result<usize, BusError> {
    if &first8[..4] != b"RCmb" {
        return Err(BusError::BadSignature);
    }
    let n = u32::from_be_bytes([first8[4], first8[5], first8[6], first8[7]]) as usize;
    if !(HEADER_LEN..=MAX_LEN).contains(&n) {
        return Err(BusError::BadLength(n as u64));
    }
    Ok(n)
}

/// Decodes one whole message (`buf` holds exactly its `totlen` bytes).
pub fn decode(buf: &[u8]) -> Result<Message, BusError> {
    if buf.len() < 8 {
        return Err(BusError::Short);
    }
    let mut first8 = [0u8; 8];
    first8.copy_from_slice(&buf[..8]);
    let totlen = frame_len(&first8)?;
    if buf.len() < totlen {
        return Err(BusError::Short);
    }
    let buf = &buf[..totlen];
    let mut r = Reader { b: buf, at: 8 };
    let ver = r.u16()?;
    let port = r.u16()?;
    let kind = r.u16()?;
    let count = r.u16()?;
    let current_epoch = r.u64()?;
    let config_epoch = r.u64()?;
    let offset = r.u64()?;
    let sender = r.arr::<NAMELEN>()?;
    let myslots = Box::new(r.arr::<SLOT_BYTES>()?);
    let replicaof = r.arr::<NAMELEN>()?;
    let myip = r.arr::<IPLEN>()?;
    let extensions = r.u16()?;
    r.take(30)?;
    let pport = r.u16()?;
    let cport = r.u16()?;
    let flags = r.u16()?;
    let state = r.u8()?;
    let mflags = r.arr::<3>()?;
    debug_assert_eq!(r.at, HEADER_LEN);
    if ver != 1 {
        return Err(BusError::Version(ver));
    }
    let header = Header {
        port,
        kind,
        current_epoch,
        config_epoch,
        offset,
        sender,
        myslots,
        replicaof,
        myip,
        pport,
        cport,
        flags,
        state,
        mflags,
    };
    let check = |expected: usize| {
        if expected == totlen {
            Ok(())
        } else {
            Err(BusError::LengthMismatch { totlen, expected })
        }
    };
    let body = match kind {
        PING | PONG | MEET => {
            let gossip_end = HEADER_LEN + GOSSIP_LEN * usize::from(count);
            if totlen < gossip_end {
                return Err(BusError::LengthMismatch {
                    totlen,
                    expected: gossip_end,
                });
            }
            let mut gossip = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let name = r.arr::<NAMELEN>()?;
                let ping_sent = r.u32()?;
                let pong_received = r.u32()?;
                let ip = r.arr::<IPLEN>()?;
                let port = r.u16()?;
                let cport = r.u16()?;
                let flags = r.u16()?;
                let pport = r.u16()?;
                r.u16()?;
                gossip.push(Gossip {
                    name,
                    ping_sent,
                    pong_received,
                    ip,
                    port,
                    cport,
                    flags,
                    pport,
                });
            }
            let mut exts = Vec::new();
            if mflags[0] & FLAG0_EXT_DATA != 0 {
                for _ in 0..extensions {
                    let len = r.u32()? as usize;
                    if !len.is_multiple_of(8) || len < 8 || len - 4 > totlen - r.at {
                        return Err(BusError::BadExtension);
                    }
                    let t = r.u16()?;
                    r.u16()?;
                    let data = r.take(len - 8)?;
                    exts.push(match t {
                        EXT_HOSTNAME => Ext::Hostname(cstr(data).to_vec()),
                        EXT_FORGOTTEN_NODE if data.len() >= NAMELEN + 8 => {
                            let mut name = [0u8; NAMELEN];
                            name.copy_from_slice(&data[..NAMELEN]);
                            let mut ttl = [0u8; 8];
                            ttl.copy_from_slice(&data[NAMELEN..NAMELEN + 8]);
                            Ext::ForgottenNode {
                                name,
                                ttl: u64::from_be_bytes(ttl),
                            }
                        }
                        _ => Ext::Other {
                            kind: t,
                            data: data.to_vec(),
                        },
                    });
                }
            }
            check(r.at)?;
            Body::Ping { gossip, exts }
        }
        FAIL => {
            check(HEADER_LEN + NAMELEN)?;
            Body::Fail { about: r.arr()? }
        }
        PUBLISH | PUBLISHSHARD => {
            let cl = r.u32()? as usize;
            let ml = r.u32()? as usize;
            check(HEADER_LEN + 8 + cl + ml)?;
            let channel = r.take(cl)?.to_vec();
            let message = r.take(ml)?.to_vec();
            Body::Publish { channel, message }
        }
        FAILOVER_AUTH_REQUEST | FAILOVER_AUTH_ACK | MFSTART => {
            check(HEADER_LEN)?;
            Body::Empty
        }
        UPDATE => {
            check(HEADER_LEN + 8 + NAMELEN + SLOT_BYTES)?;
            let config_epoch = r.u64()?;
            let name = r.arr()?;
            let slots = Box::new(r.arr()?);
            Body::Update {
                config_epoch,
                name,
                slots,
            }
        }
        MODULE => {
            let id = u64::from_le_bytes(r.arr()?);
            let len = r.u32()? as usize;
            let kind = r.u8()?;
            check(HEADER_LEN + 13 + len)?;
            Body::Module {
                id,
                kind,
                payload: r.take(len)?.to_vec(),
            }
        }
        _ => Body::Unknown(buf[HEADER_LEN..].to_vec()),
    };
    Ok(Message { header, body })
}

/// Encodes a message; the header's count, extension count, `EXT_DATA` flag
/// and total length are taken from the body.
pub fn encode(m: &Message) -> Vec<u8> {
    let h = &m.header;
    let mut b = Vec::with_capacity(HEADER_LEN + 256);
    b.extend_from_slice(b"RCmb");
    b.extend_from_slice(&[0; 4]); // totlen, set below
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&h.port.to_be_bytes());
    b.extend_from_slice(&h.kind.to_be_bytes());
    let (count, nexts) = match &m.body {
        Body::Ping { gossip, exts } => (gossip.len() as u16, exts.len() as u16),
        _ => (0, 0),
    };
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&h.current_epoch.to_be_bytes());
    b.extend_from_slice(&h.config_epoch.to_be_bytes());
    b.extend_from_slice(&h.offset.to_be_bytes());
    b.extend_from_slice(&h.sender);
    b.extend_from_slice(&h.myslots[..]);
    b.extend_from_slice(&h.replicaof);
    b.extend_from_slice(&h.myip);
    b.extend_from_slice(&nexts.to_be_bytes());
    b.extend_from_slice(&[0; 30]);
    b.extend_from_slice(&h.pport.to_be_bytes());
    b.extend_from_slice(&h.cport.to_be_bytes());
    b.extend_from_slice(&h.flags.to_be_bytes());
    b.push(h.state);
    let mut mflags = h.mflags;
    if nexts > 0 {
        mflags[0] |= FLAG0_EXT_DATA;
    }
    b.extend_from_slice(&mflags);
    match &m.body {
        Body::Ping { gossip, exts } => {
            for g in gossip {
                b.extend_from_slice(&g.name);
                b.extend_from_slice(&g.ping_sent.to_be_bytes());
                b.extend_from_slice(&g.pong_received.to_be_bytes());
                b.extend_from_slice(&g.ip);
                b.extend_from_slice(&g.port.to_be_bytes());
                b.extend_from_slice(&g.cport.to_be_bytes());
                b.extend_from_slice(&g.flags.to_be_bytes());
                b.extend_from_slice(&g.pport.to_be_bytes());
                b.extend_from_slice(&[0; 2]);
            }
            for e in exts {
                let (t, data): (u16, Vec<u8>) = match e {
                    Ext::Hostname(h) => {
                        let mut d = h.clone();
                        d.push(0);
                        (EXT_HOSTNAME, d)
                    }
                    Ext::ForgottenNode { name, ttl } => {
                        let mut d = name.to_vec();
                        d.extend_from_slice(&ttl.to_be_bytes());
                        (EXT_FORGOTTEN_NODE, d)
                    }
                    Ext::Other { kind, data } => (*kind, data.clone()),
                };
                let padded = data.len().div_ceil(8) * 8;
                b.extend_from_slice(&((8 + padded) as u32).to_be_bytes());
                b.extend_from_slice(&t.to_be_bytes());
                b.extend_from_slice(&[0; 2]);
                b.extend_from_slice(&data);
                b.resize(b.len() + padded - data.len(), 0);
            }
        }
        Body::Fail { about } => b.extend_from_slice(about),
        Body::Publish { channel, message } => {
            b.extend_from_slice(&(channel.len() as u32).to_be_bytes());
            b.extend_from_slice(&(message.len() as u32).to_be_bytes());
            b.extend_from_slice(channel);
            b.extend_from_slice(message);
        }
        Body::Update {
            config_epoch,
            name,
            slots,
        } => {
            b.extend_from_slice(&config_epoch.to_be_bytes());
            b.extend_from_slice(name);
            b.extend_from_slice(&slots[..]);
        }
        Body::Module { id, kind, payload } => {
            b.extend_from_slice(&id.to_le_bytes());
            b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            b.push(*kind);
            b.extend_from_slice(payload);
        }
        Body::Empty => {}
        Body::Unknown(rest) => b.extend_from_slice(rest),
    }
    let n = b.len() as u32;
    b[4..8].copy_from_slice(&n.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(c: u8) -> [u8; NAMELEN] {
        [c; NAMELEN]
    }

    #[test]
    fn ping_round_trips_with_gossip_and_extensions() {
        let mut h = Header::new(PING);
        h.sender = name(b'a');
        h.current_epoch = 7;
        h.config_epoch = 3;
        h.port = 7000;
        h.cport = 17000;
        h.flags = 1;
        h.myslots[0] = 0x80;
        h.myip = fixed(b"10.0.0.1");
        let m = Message {
            header: h,
            body: Body::Ping {
                gossip: vec![Gossip {
                    name: name(b'b'),
                    ping_sent: 1,
                    pong_received: 2,
                    ip: fixed(b"127.0.0.1"),
                    port: 7001,
                    cport: 17001,
                    flags: 1,
                    pport: 0,
                }],
                exts: vec![Ext::Hostname(b"host-a".to_vec())],
            },
        };
        let bytes = encode(&m);
        assert_eq!(bytes.len(), HEADER_LEN + GOSSIP_LEN + 16);
        // Field offsets as cluster.h's static asserts state them.
        assert_eq!(&bytes[40..80], &[b'a'; 40]);
        assert_eq!(bytes[80], 0x80);
        assert_eq!(&bytes[2168..2176], b"10.0.0.1");
        assert_eq!(&bytes[2248..2250], &17000u16.to_be_bytes());
        assert_eq!(bytes[2253] & FLAG0_EXT_DATA, FLAG0_EXT_DATA);
        let mut d = decode(&bytes).unwrap();
        d.header.mflags[0] &= !FLAG0_EXT_DATA;
        assert_eq!(d, m);
        assert_eq!(d.header.ip(), b"10.0.0.1");
    }

    #[test]
    fn other_types_round_trip() {
        for body in [
            Body::Fail { about: name(b'c') },
            Body::Publish {
                channel: b"ch".to_vec(),
                message: b"hello".to_vec(),
            },
            Body::Update {
                config_epoch: 9,
                name: name(b'd'),
                slots: Box::new([0xff; SLOT_BYTES]),
            },
            Body::Module {
                id: 5,
                kind: 2,
                payload: b"xyz".to_vec(),
            },
            Body::Empty,
        ] {
            let kind = match body {
                Body::Fail { .. } => FAIL,
                Body::Publish { .. } => PUBLISH,
                Body::Update { .. } => UPDATE,
                Body::Module { .. } => MODULE,
                _ => MFSTART,
            };
            let m = Message {
                header: Header::new(kind),
                body,
            };
            assert_eq!(decode(&encode(&m)).unwrap(), m);
        }
        assert_eq!(
            encode(&Message {
                header: Header::new(FAIL),
                body: Body::Fail { about: name(b'x') }
            })
            .len(),
            2296
        );
    }

    #[test]
    fn bad_messages_are_refused() {
        let m = Message {
            header: Header::new(PING),
            body: Body::Ping {
                gossip: vec![],
                exts: vec![],
            },
        };
        let good = encode(&m);
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(decode(&b), Err(BusError::BadSignature));
        let mut b = good.clone();
        b[9] = 2;
        assert_eq!(decode(&b), Err(BusError::Version(2)));
        // A gossip count the length does not hold.
        let mut b = good.clone();
        b[15] = 1;
        assert!(matches!(decode(&b), Err(BusError::LengthMismatch { .. })));
        // Truncated.
        assert_eq!(decode(&good[..100]), Err(BusError::Short));
        // A FAIL without its name.
        let mut b = good.clone();
        b[13] = FAIL as u8;
        assert!(matches!(decode(&b), Err(BusError::LengthMismatch { .. })));
        // An extension longer than the message.
        let mut b = good.clone();
        b[2253] = FLAG0_EXT_DATA;
        b[2215] = 1;
        b.extend_from_slice(&64u32.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        let n = b.len() as u32;
        b[4..8].copy_from_slice(&n.to_be_bytes());
        assert_eq!(decode(&b), Err(BusError::BadExtension));
    }
}
