//! Access control lists, after Redis 7.0's `acl.c`: users with passwords
//! (SHA-256 hex), flags, and selectors (command bitmaps, key patterns
//! with read/write permissions, channel patterns); the rule language of
//! ACL SETUSER / `user` directives / the ACL file; the normalised
//! description ACL LIST and GETUSER print; the permission check run
//! before every command; the ACL log.
//!
//! Command ids are command-table indexes (`catalog::table()`), one bit
//! each in a selector's bitmap, plus one reserved bit past the table
//! (Redis's `USER_COMMAND_BITS_COUNT-1`) that only `+@all` sets, so a
//! description can tell `+@all -x` from `-@all +...`.
//!
//! Users are immutable values behind `Arc`: ACL SETUSER builds a new one
//! and bumps `Shared::acl_version`; a connection compares that counter
//! before each command and re-reads its user when it moved, so the check
//! itself takes no lock and allocates nothing.

mod error;
use crate::catalog::{self, key_flags, table, KeySpec};
use crate::glob::glob_match;
use bytes::Bytes;
pub use error::{AclFileError, AclFileProblem, ConfigUserError, SetUserError};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};

/// Redis's categories, in its order (ACL CAT, COMMAND INFO).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of a category name (case-insensitive), 0 when unknown.
pub fn category_flag(name: &[u8]) -> u32 {
    CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map_or(0, |i| 1 << i)
}

/// Key permissions of a pattern (`ACL_READ_PERMISSION`, `ACL_WRITE_PERMISSION`).
pub const PERM_R: u8 = 1;
pub const PERM_W: u8 = 2;
pub const PERM_ALL: u8 = PERM_R | PERM_W;

/// How a command's channels are found (Redis's `commands_with_channels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channels {
    None,
    /// SUBSCRIBE, SSUBSCRIBE: every argument; PSUBSCRIBE: as patterns.
    Subscribe {
        pattern: bool,
    },
    /// PUBLISH, SPUBLISH: argument 1.
    Publish,
}

/// How a command's keys are found for the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyMode {
    Specs,
    /// SET: RW+ACCESS with GET, else OW (Redis's `setGetKeys`).
    Set,
    /// BITFIELD: RO unless it writes (Redis's `bitfieldGetKeys`).
    Bitfield,
    /// SORT / SORT_RO: `catalog::getkeys::sort`.
    Sort,
}

/// What the check needs about each table entry, computed once.
#[derive(Debug)]
struct CmdInfo {
    cats: u32,
    subs: Vec<usize>,
    parent: Option<usize>,
    has_subs: bool,
    no_auth: bool,
    has_keys: bool,
    specs: Vec<KeySpec>,
    keys: KeyMode,
    channels: Channels,
}

fn infos() -> &'static [CmdInfo] {
    static INFO: OnceLock<Vec<CmdInfo>> = OnceLock::new();
    INFO.get_or_init(|| {
        let t = table();
        let mut v: Vec<CmdInfo> = t
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let cats = e
                    .cmd
                    .acl
                    .iter()
                    .map(|c| category_flag(c.trim_start_matches('@').as_bytes()))
                    .fold(0, |a, b| a | b);
                let specs = t.key_specs(i).into_owned();
                let name = e.full_name.as_str();
                CmdInfo {
                    cats,
                    subs: Vec::new(),
                    parent: e.parent,
                    has_subs: !e.cmd.subcommands.is_empty(),
                    no_auth: e.cmd.has(catalog::flags::NO_AUTH),
                    has_keys: t.has_keys(i),
                    specs,
                    keys: match name {
                        "set" => KeyMode::Set,
                        "bitfield" => KeyMode::Bitfield,
                        "sort" | "sort_ro" => KeyMode::Sort,
                        _ => KeyMode::Specs,
                    },
                    channels: match name {
                        "subscribe" | "ssubscribe" => Channels::Subscribe { pattern: false },
                        "psubscribe" => Channels::Subscribe { pattern: true },
                        "publish" | "spublish" => Channels::Publish,
                        _ => Channels::None,
                    },
                }
            })
            .collect();
        for i in 0..v.len() {
            if let Some(p) = v[i].parent {
                v[p].subs.push(i);
            }
        }
        v
    })
}

/// The full names of a category's commands (ACL CAT), in table order.
pub fn category_commands(flag: u32) -> Vec<&'static str> {
    let t = table();
    let info = infos();
    let mut out = Vec::new();
    for &top in &t.top {
        if info[top].cats & flag != 0 {
            out.push(t.entries[top].full_name.as_str());
        }
        for &s in &info[top].subs {
            if info[s].cats & flag != 0 {
                out.push(t.entries[s].full_name.as_str());
            }
        }
    }
    out
}

/// The number of bits a selector's bitmap holds: every command and the
/// reserved "future commands" bit.
fn reserved_bit() -> usize {
    table().entries.len()
}

fn words() -> usize {
    reserved_bit() / 64 + 1
}

/// A key pattern with its permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub flags: u8,
    pub pattern: Vec<u8>,
}

impl KeyPattern {
    fn describe(&self, out: &mut Vec<u8>) {
        match self.flags {
            PERM_R => out.extend_from_slice(b"%R~"),
            PERM_W => out.extend_from_slice(b"%W~"),
            _ => out.push(b'~'),
        }
        out.extend_from_slice(&self.pattern);
    }
}

/// Why ACLSetUser refused a rule (Redis's errno values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// ENOENT
    UnknownCommand,
    /// EINVAL
    Syntax,
    /// EEXIST
    KeysAfterAll,
    /// EISDIR
    ChannelsAfterAll,
    /// ENODEV
    NoSuchPassword,
    /// EBADMSG
    BadHash,
    /// ECHILD
    FirstArgOfSub,
}

impl RuleError {
    /// Redis's `ACLSetUserStringError`.
    pub fn message(self) -> &'static str {
        match self {
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeysAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelsAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// Redis's `aclSelector`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    root: bool,
    allkeys: bool,
    allchannels: bool,
    allcommands: bool,
    allowed: Box<[u64]>,
    /// Allowed first arguments of otherwise denied commands, by command id.
    firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    patterns: Vec<KeyPattern>,
    channels: Vec<Vec<u8>>,
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&c| c == 0 || c == b' ' || (b'\t'..=b'\r').contains(&c))
}

/// Redis's `ACLLookupCommand`: `name` or `container|sub`, ignoring case.
fn lookup_command(name: &[u8]) -> Option<usize> {
    let t = table();
    let parts: Vec<&[u8]> = name.split(|&c| c == b'|').collect();
    match parts.as_slice() {
        [one] => t.lookup(one),
        [a, b] => {
            let p = t.lookup(a)?;
            if t.entries[p].cmd.subcommands.is_empty() {
                return None;
            }
            t.lookup_sub(p, b)
        }
        _ => None,
    }
}

impl Selector {
    fn new(root: bool, pubsub_all: bool) -> Selector {
        Selector {
            root,
            allkeys: false,
            allchannels: pubsub_all,
            allcommands: false,
            allowed: vec![0; words()].into_boxed_slice(),
            firstargs: BTreeMap::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    /// Redis's `ACLChangeSelectorPerm`: the command and its subcommands.
    fn change_perm(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        for &s in &infos()[id].subs {
            self.set_bit(s, allow);
        }
    }

    fn set_category(&mut self, flag: u32, allow: bool) {
        let t = table();
        let info = infos();
        for &top in &t.top {
            if info[top].cats & flag != 0 {
                self.change_perm(top, allow);
            }
            for &s in &info[top].subs {
                if info[s].cats & flag != 0 {
                    self.change_perm(s, allow);
                }
            }
        }
    }

    fn count_category(&self, flag: u32) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for (i, info) in infos().iter().enumerate() {
            if info.cats & flag != 0 {
                if self.bit(i) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    fn all_commands(&mut self, on: bool) {
        let fill = if on { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
        self.allcommands = on;
        self.firstargs.clear();
    }

    /// Redis's `ACLSetSelector`.
    fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |kw: &str| op.eq_ignore_ascii_case(kw.as_bytes());
        if is("allkeys") || is("~*") {
            self.allkeys = true;
            self.patterns.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.patterns.clear();
        } else if is("allchannels") || is("&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.all_commands(true);
        } else if is("nocommands") || is("-@all") {
            self.all_commands(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.allkeys {
                return Err(RuleError::KeysAfterAll);
            }
            let mut flags = 0;
            let mut offset = 1;
            if op[0] == b'%' {
                while offset < op.len() {
                    let c = op[offset];
                    if c.eq_ignore_ascii_case(&b'R') && flags & PERM_R == 0 {
                        flags |= PERM_R;
                    } else if c.eq_ignore_ascii_case(&b'W') && flags & PERM_W == 0 {
                        flags |= PERM_W;
                    } else if c == b'~' {
                        offset += 1;
                        break;
                    } else {
                        return Err(RuleError::Syntax);
                    }
                    offset += 1;
                }
                if flags == 0 {
                    return Err(RuleError::Syntax);
                }
            } else {
                flags = PERM_ALL;
            }
            let pat = &op[offset.min(op.len())..];
            if has_spaces(pat) {
                return Err(RuleError::Syntax);
            }
            match self.patterns.iter_mut().find(|p| p.pattern == pat) {
                Some(p) => p.flags |= flags,
                None => self.patterns.push(KeyPattern {
                    flags,
                    pattern: pat.to_vec(),
                }),
            }
            self.allkeys = false;
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelsAfterAll);
            }
            let pat = &op[1..];
            if has_spaces(pat) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pat) {
                self.channels.push(pat.to_vec());
            }
            self.allchannels = false;
        } else if op[0] == b'+' && op.get(1) != Some(&b'@') {
            let name = &op[1..];
            match name.iter().rposition(|&c| c == b'|') {
                None => {
                    let id = lookup_command(name).ok_or(RuleError::UnknownCommand)?;
                    self.change_perm(id, true);
                }
                Some(bar) => {
                    let (base, sub) = (&name[..bar], &name[bar + 1..]);
                    let id = lookup_command(base).ok_or(RuleError::UnknownCommand)?;
                    if infos()[id].parent.is_some() {
                        return Err(RuleError::FirstArgOfSub);
                    }
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if infos()[id].has_subs {
                        let sid = lookup_command(name).ok_or(RuleError::UnknownCommand)?;
                        self.change_perm(sid, true);
                    } else {
                        tracing::warn!(
                            "Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})",
                            String::from_utf8_lossy(name)
                        );
                        let list = self.firstargs.entry(id).or_default();
                        if !list.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                            list.push(sub.to_vec());
                        }
                    }
                }
            }
        } else if op[0] == b'-' && op.get(1) != Some(&b'@') {
            let id = lookup_command(&op[1..]).ok_or(RuleError::UnknownCommand)?;
            self.change_perm(id, false);
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let flag = category_flag(&op[2..]);
            if flag == 0 {
                return Err(RuleError::UnknownCommand);
            }
            self.set_category(flag, op[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// Redis's `ACLDescribeSelectorCommandRules`.
    fn describe_commands(&self) -> Vec<u8> {
        let mut rules: Vec<u8> = Vec::new();
        let mut fake = Selector::new(false, false);
        let additive = !self.bit(reserved_bit());
        if additive {
            rules.extend_from_slice(b"-@all ");
            fake.all_commands(false);
        } else {
            rules.extend_from_slice(b"+@all ");
            fake.all_commands(true);
        }
        let mut temp = Selector::new(false, false);
        temp.allowed = self.allowed.clone();
        let mut applied = [false; 21];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, _) in CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (on, off) = temp.count_category(1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            fake.set_category(1 << j, additive);
            temp.set_category(1 << j, !additive);
            rules.extend_from_slice(if additive { b"+@" } else { b"-@" });
            rules.extend_from_slice(CATEGORIES[j].as_bytes());
            rules.push(b' ');
            applied[j] = true;
        }
        let t = table();
        let info = infos();
        let single = |id: usize, rules: &mut Vec<u8>, fake: &mut Selector| {
            let userbit = self.bit(id);
            if userbit != fake.bit(id) {
                rules.push(if userbit { b'+' } else { b'-' });
                rules.extend_from_slice(t.entries[id].full_name.as_bytes());
                rules.push(b' ');
                fake.change_perm(id, userbit);
            }
        };
        for &top in &t.top {
            single(top, &mut rules, &mut fake);
            for &s in &info[top].subs {
                single(s, &mut rules, &mut fake);
            }
            if !self.bit(top) {
                if let Some(args) = self.firstargs.get(&top) {
                    for a in args {
                        rules.push(b'+');
                        rules.extend_from_slice(t.entries[top].full_name.as_bytes());
                        rules.push(b'|');
                        rules.extend_from_slice(a);
                        rules.push(b' ');
                    }
                }
            }
        }
        rules.pop();
        rules
    }

    /// Redis's `ACLDescribeSelector`.
    fn describe(&self) -> Vec<u8> {
        let mut res = Vec::new();
        if self.allkeys {
            res.extend_from_slice(b"~* ");
        } else {
            for p in &self.patterns {
                p.describe(&mut res);
                res.push(b' ');
            }
        }
        if self.allchannels {
            res.extend_from_slice(b"&* ");
        } else {
            res.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                res.push(b'&');
                res.extend_from_slice(c);
                res.push(b' ');
            }
        }
        res.extend_from_slice(&self.describe_commands());
        res
    }

    /// The `keys` field of ACL GETUSER.
    pub fn keys_field(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            p.describe(&mut out);
        }
        out
    }

    /// The `channels` field of ACL GETUSER.
    pub fn channels_field(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }

    /// The `commands` field of ACL GETUSER.
    pub fn commands_field(&self) -> Vec<u8> {
        self.describe_commands()
    }

    fn check_key(&self, key: &[u8], spec_flags: u32) -> bool {
        if self.allkeys {
            return true;
        }
        let mut need = 0;
        if spec_flags & key_flags::K_ACCESS != 0 {
            need |= PERM_R;
        }
        if spec_flags & (key_flags::K_INSERT | key_flags::K_DELETE | key_flags::K_UPDATE) != 0 {
            need |= PERM_W;
        }
        self.patterns
            .iter()
            .any(|p| p.flags & need == need && glob_match(&p.pattern, key, false))
    }

    fn check_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p == channel
                } else {
                    glob_match(p, channel, false)
                }
            })
    }

    /// Redis's `ACLSelectorCheckCmd`: Ok, or the denial with the position
    /// of the key or channel.
    fn check(&self, id: usize, args: &[Bytes], keys: &mut Vec<(usize, u32)>) -> Result<(), Denied> {
        let info = &infos()[id];
        if !self.allcommands && !info.no_auth && !self.bit(id) {
            let ok = args.len() >= 2
                && self.firstargs.get(&id).is_some_and(|list| {
                    let i = if info.parent.is_some() { 2 } else { 1 };
                    args.get(i)
                        .is_some_and(|a| list.iter().any(|f| f.eq_ignore_ascii_case(a)))
                });
            if !ok {
                return Err(Denied::Command);
            }
        }
        if !self.allkeys && info.has_keys {
            if keys.is_empty() {
                command_keys(id, args, keys);
            }
            for &(pos, flags) in keys.iter() {
                if !self.check_key(&args[pos], flags) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.allchannels {
            match info.channels {
                Channels::None => {}
                Channels::Publish => {
                    if args.len() > 1 && !self.check_channel(&args[1], false) {
                        return Err(Denied::Channel(1));
                    }
                }
                Channels::Subscribe { pattern } => {
                    for (i, a) in args.iter().enumerate().skip(1) {
                        if !self.check_channel(a, pattern) {
                            return Err(Denied::Channel(i));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The keys of a command with the key-spec flags the check uses.
fn command_keys(id: usize, args: &[Bytes], out: &mut Vec<(usize, u32)>) {
    use key_flags::*;
    let info = &infos()[id];
    match info.keys {
        KeyMode::Specs => {
            catalog::key_refs(&info.specs, args, out);
        }
        KeyMode::Set => {
            let get = args.iter().skip(3).any(|a| catalog::is_opt(a, "get"));
            out.push((
                1,
                if get {
                    K_RW | K_ACCESS | K_UPDATE
                } else {
                    K_OW | K_UPDATE
                },
            ));
        }
        KeyMode::Bitfield => {
            let mut readonly = true;
            let mut i = 2;
            while i < args.len() {
                let rem = args.len() - i - 1;
                let a = &args[i];
                if catalog::is_opt(a, "get") && rem >= 2 {
                    i += 2;
                } else if (catalog::is_opt(a, "set") || catalog::is_opt(a, "incrby")) && rem >= 3 {
                    readonly = false;
                    break;
                } else if catalog::is_opt(a, "overflow") && rem >= 1 {
                    i += 1;
                } else {
                    readonly = false;
                    break;
                }
                i += 1;
            }
            out.push((
                1,
                if readonly {
                    K_RO | K_ACCESS
                } else {
                    K_RW | K_ACCESS | K_UPDATE
                },
            ));
        }
        KeyMode::Sort => {
            for (n, pos) in crate::catalog::getkeys::sort(args).into_iter().enumerate() {
                out.push((
                    pos,
                    if n == 0 {
                        K_RO | K_ACCESS
                    } else {
                        K_OW | K_UPDATE
                    },
                ));
            }
        }
    }
}

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    Command,
    /// The argument position of the key.
    Key(usize),
    /// The argument position of the channel.
    Channel(usize),
}

impl Denied {
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (0, 0),
            Denied::Key(p) => (1, p),
            Denied::Channel(p) => (2, p),
        }
    }

    /// The reply to a command refused at top level or in MULTI queueing.
    pub fn error(self, full_name: &str) -> catalog::CmdError {
        catalog::CmdError::new(match self {
            Denied::Command => format!(
                "NOPERM this user has no permissions to run the '{full_name}' command"
            ),
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .to_string()
            }
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .to_string()
            }
        })
    }

    /// Redis's `getAclErrorMessage` (scripts).
    pub fn script_message(self) -> &'static str {
        match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        }
    }

    /// EXEC's reason when the rules changed after queueing.
    pub fn exec_reason(self) -> &'static str {
        match self {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        }
    }
}

/// Redis's `user`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: Vec<u8>,
    pub enabled: bool,
    pub nopass: bool,
    /// None, or Some(true) for `sanitize-payload`, Some(false) for
    /// `skip-sanitize-payload`.
    sanitize: Option<bool>,
    /// SHA-256 hex digests.
    passwords: Vec<String>,
    /// The root selector first.
    selectors: Vec<Selector>,
    /// Some selector allows every command, key and channel: the check
    /// has nothing to do.
    pub unrestricted: bool,
}

/// SHA-256 of a password, in lower-case hex (Redis's `ACLHashPassword`).
pub fn hash_password(p: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(p);
    let mut s = String::with_capacity(64);
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Constant-time equality of two equal-length digests.
fn same_digest(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Redis's `ACLMergeSelectorArguments`: rules split by spaces inside a
/// parenthesised selector are joined back; Err(index) for an unmatched
/// parenthesis.
pub fn merge_selector_args(args: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::with_capacity(args.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.clone()));
            continue;
        }
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                if let Some((_, s)) = open.take() {
                    out.push(s);
                }
            }
            continue;
        }
        out.push(op.clone());
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

impl User {
    /// Redis's `ACLCreateUser`: off, no passwords, no permissions.
    pub fn new(name: &[u8], pubsub_all: bool) -> User {
        let mut u = User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, pubsub_all)],
            unrestricted: false,
        };
        u.refresh();
        u
    }

    /// Redis's `ACLCreateDefaultUser`.
    pub fn new_default(pubsub_all: bool) -> User {
        let mut u = User::new(b"default", pubsub_all);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(op.as_bytes(), pubsub_all);
        }
        u
    }

    fn refresh(&mut self) {
        self.unrestricted = self
            .selectors
            .iter()
            .any(|s| s.allcommands && s.allkeys && s.allchannels);
    }

    /// Redis's `ACLSetUser` for one rule.
    pub fn apply(&mut self, op: &[u8], pubsub_all: bool) -> Result<(), RuleError> {
        let r = self.apply_inner(op, pubsub_all);
        self.refresh();
        r
    }

    fn apply_inner(&mut self, op: &[u8], pubsub_all: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |kw: &str| op.eq_ignore_ascii_case(kw.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let h = if op[0] == b'>' {
                hash_password(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(RuleError::BadHash);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            if !self.passwords.contains(&h) {
                self.passwords.push(h);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let h = if op[0] == b'<' {
                hash_password(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(RuleError::BadHash);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            match self.passwords.iter().position(|p| *p == h) {
                Some(i) => {
                    self.passwords.remove(i);
                }
                None => return Err(RuleError::NoSuchPassword),
            }
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let inner = &op[1..op.len() - 1];
            let parts = crate::protocol::split_args(inner).ok_or(RuleError::Syntax)?;
            let mut s = Selector::new(false, pubsub_all);
            for p in parts {
                if !p.is_empty() {
                    s.apply(&p)?;
                }
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            self.nopass = false;
            self.passwords.clear();
            let root = &mut self.selectors[0];
            root.allkeys = false;
            root.patterns.clear();
            root.allchannels = pubsub_all;
            root.channels.clear();
            self.enabled = false;
            self.sanitize = Some(true);
            self.selectors.truncate(1);
            self.selectors[0].all_commands(false);
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// Redis's `ACLCheckUserCredentials` once the user is found.
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = hash_password(pass);
        self.passwords
            .iter()
            .any(|p| same_digest(p.as_bytes(), h.as_bytes()))
    }

    /// Redis's `ACLCheckAllUserCommandPerm`. `keys` is scratch space
    /// (cleared here), kept by the caller so the check allocates nothing.
    pub fn check(
        &self,
        id: usize,
        args: &[Bytes],
        keys: &mut Vec<(usize, u32)>,
    ) -> Result<(), Denied> {
        if self.unrestricted {
            return Ok(());
        }
        keys.clear();
        let mut relevant = Denied::Command;
        for s in &self.selectors {
            match s.check(id, args, keys) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if d.rank() > relevant.rank() {
                        relevant = d;
                    }
                }
            }
        }
        Err(relevant)
    }

    /// Whether the user may use a channel (Redis's `ACLUserCheckChannelPerm`).
    pub fn channel_ok(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.check_channel(channel, is_pattern))
    }

    /// Redis's `ACLDescribeUser`.
    pub fn describe(&self) -> Vec<u8> {
        let mut res = Vec::new();
        let mut flag = |f: &str| {
            res.extend_from_slice(f.as_bytes());
            res.push(b' ');
        };
        for f in self.flag_names() {
            flag(f);
        }
        for p in &self.passwords {
            res.push(b'#');
            res.extend_from_slice(p.as_bytes());
            res.push(b' ');
        }
        for s in &self.selectors {
            let d = s.describe();
            if s.root {
                res.extend_from_slice(&d);
            } else {
                res.extend_from_slice(b" (");
                res.extend_from_slice(&d);
                res.push(b')');
            }
        }
        res
    }

    /// The flags in Redis's order (`ACLUserFlags`).
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut v = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            v.push("nopass");
        }
        match self.sanitize {
            Some(false) => v.push("skip-sanitize-payload"),
            Some(true) => v.push("sanitize-payload"),
            None => {}
        }
        v
    }

    pub fn passwords(&self) -> &[String] {
        &self.passwords
    }

    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    pub fn extra_selectors(&self) -> &[Selector] {
        &self.selectors[1..]
    }

    /// Channel patterns of every selector, or None when one allows all
    /// (for `ACLKillPubsubClientsIfNeeded`).
    fn channel_lists(&self) -> Option<Vec<&Vec<u8>>> {
        if self.selectors.iter().any(|s| s.allchannels) {
            return None;
        }
        Some(
            self.selectors
                .iter()
                .flat_map(|s| s.channels.iter())
                .collect(),
        )
    }

    /// Redis's `ACLKillPubsubClientsIfNeeded` test: the new rules drop a
    /// channel pattern the old ones had. Returns the new channel list
    /// when subscribers must be checked, None when nothing was revoked.
    pub fn revoked_channels(&self, old: &User) -> Option<Vec<Vec<u8>>> {
        let upcoming = self.channel_lists()?;
        let superset = match old.channel_lists() {
            None => false,
            Some(orig) => orig.iter().all(|c| upcoming.contains(c)),
        };
        if superset {
            None
        } else {
            Some(upcoming.into_iter().cloned().collect())
        }
    }
}

/// Whether a subscription survives a channel list (`ACLCheckChannelAgainstList`).
pub fn channel_in_list(list: &[Vec<u8>], channel: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|p| {
        if is_pattern {
            p == channel
        } else {
            glob_match(p, channel, false)
        }
    })
}

/// Where a denial happened (ACL LOG `context`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogContext {
    Toplevel,
    Multi,
    Lua,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogReason {
    Command,
    Key,
    Channel,
    Auth,
}

/// One ACL LOG entry.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    pub reason: LogReason,
    pub context: LogContext,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub ctime_ms: u64,
    pub client_info: String,
}

/// The users and the ACL log.
#[derive(Debug)]
pub struct Acl {
    pub users: BTreeMap<Vec<u8>, Arc<User>>,
    pub log: VecDeque<LogEntry>,
}

impl Default for Acl {
    fn default() -> Self {
        let mut users = BTreeMap::new();
        users.insert(b"default".to_vec(), Arc::new(User::new_default(false)));
        Acl {
            users,
            log: VecDeque::new(),
        }
    }
}

/// Grouping window of similar log entries (`ACL_LOG_GROUPING_MAX_TIME_DELTA`).
const LOG_GROUPING_MS: u64 = 60_000;

impl Acl {
    pub fn default_user(&self) -> Arc<User> {
        self.users
            .get(&b"default"[..])
            .cloned()
            .unwrap_or_else(|| Arc::new(User::new_default(false)))
    }

    /// Redis's `addACLLogEntry`.
    pub fn add_log(&mut self, mut e: LogEntry, max_len: usize) {
        let found = self.log.iter().take(10).position(|c| {
            c.reason == e.reason
                && c.context == e.context
                && c.ctime_ms.abs_diff(e.ctime_ms) <= LOG_GROUPING_MS
                && c.object == e.object
                && c.username == e.username
        });
        if let Some(i) = found {
            if let Some(mut m) = self.log.remove(i) {
                m.client_info = std::mem::take(&mut e.client_info);
                m.ctime_ms = e.ctime_ms;
                m.count += 1;
                self.log.push_front(m);
            }
            return;
        }
        self.log.push_front(e);
        while self.log.len() > max_len {
            self.log.pop_back();
        }
    }

    /// Redis's `ACLStringSetUser`: every rule applied to a copy, all or
    /// nothing. Returns the new user (and the old one, if any).
    pub fn set_user(
        &mut self,
        name: &[u8],
        rules: &[Vec<u8>],
        pubsub_all: bool,
    ) -> Result<(Arc<User>, Option<Arc<User>>), SetUserError> {
        let merged = merge_selector_args(rules).map_err(|j| {
            SetUserError::UnmatchedParen(String::from_utf8_lossy(&rules[j]).into_owned())
        })?;
        let old = self.users.get(name).cloned();
        let mut u = match &old {
            Some(o) => (**o).clone(),
            None => User::new(name, pubsub_all),
        };
        for op in &merged {
            u.apply(op, pubsub_all).map_err(|why| SetUserError::Rule {
                op: String::from_utf8_lossy(crate::catalog::c_str(op)).into_owned(),
                why,
            })?;
        }
        let u = Arc::new(u);
        self.users.insert(name.to_vec(), u.clone());
        Ok((u, old))
    }

    /// The ACL file text (ACL SAVE), users in name order.
    pub fn file_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for u in self.users.values() {
            out.extend_from_slice(b"user ");
            out.extend_from_slice(&u.name);
            out.push(b' ');
            out.extend_from_slice(&u.describe());
            out.push(b'\n');
        }
        out
    }
}

/// Redis's `ACLLoadFromFile` on the file's text: the new users, or every
/// problem found. `filename` is for the messages.
pub fn parse_acl_file(
    text: &[u8],
    filename: &str,
    pubsub_all: bool,
) -> Result<BTreeMap<Vec<u8>, Arc<User>>, AclFileError> {
    let mut users: BTreeMap<Vec<u8>, User> = BTreeMap::new();
    let mut errors = Vec::new();
    let file = || filename.to_string();
    for (i, line) in text.split(|&c| c == b'\n').enumerate() {
        let linenum = i + 1;
        let line = trim(line, b" \t\r\n");
        if line.is_empty() {
            continue;
        }
        let argv: Vec<Vec<u8>> = line
            .split(|&c| c == b' ')
            .filter(|a| !a.is_empty())
            .map(|a| a.to_vec())
            .collect();
        if argv.is_empty() {
            continue;
        }
        if argv[0] != b"user" || argv.len() < 2 {
            errors.push(AclFileProblem::NoUserKeyword {
                file: file(),
                line: linenum,
            });
            continue;
        }
        if has_spaces(&argv[1]) {
            errors.push(AclFileProblem::BadUsername {
                file: file(),
                line: linenum,
                name: String::from_utf8_lossy(&argv[1]).into_owned(),
            });
            continue;
        }
        if users.contains_key(&argv[1]) {
            errors.push(AclFileProblem::Duplicate {
                name: String::from_utf8_lossy(&argv[1]).into_owned(),
                line: linenum,
            });
            continue;
        }
        let mut u = User::new(&argv[1], pubsub_all);
        let merged = match merge_selector_args(&argv[2..]) {
            Ok(m) => m,
            Err(_) => {
                errors.push(AclFileProblem::UnmatchedParen {
                    file: file(),
                    line: linenum,
                });
                Vec::new()
            }
        };
        let mut syntax_error = false;
        for op in &merged {
            let op = trim(op, b"\t\r\n");
            if let Err(e) = u.apply(op, pubsub_all) {
                if e == RuleError::UnknownCommand {
                    errors.push(AclFileProblem::Operation {
                        file: file(),
                        line: linenum,
                        op: String::from_utf8_lossy(op).into_owned(),
                        why: e,
                    });
                } else if !syntax_error {
                    errors.push(AclFileProblem::Rule {
                        file: file(),
                        line: linenum,
                        why: e,
                    });
                    syntax_error = true;
                }
            }
        }
        users.insert(argv[1].clone(), u);
    }
    if !errors.is_empty() {
        return Err(AclFileError { problems: errors });
    }
    let mut out: BTreeMap<Vec<u8>, Arc<User>> =
        users.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
    out.entry(b"default".to_vec())
        .or_insert_with(|| Arc::new(User::new_default(pubsub_all)));
    Ok(out)
}

fn trim<'a>(s: &'a [u8], set: &[u8]) -> &'a [u8] {
    let start = s.iter().position(|c| !set.contains(c)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !set.contains(c))
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// Redis's `ACLLoadConfiguredUsers` for the `user` directives of the
/// config file: applied in order over the default set; an error names the
/// rule and the user.
pub fn load_config_users(
    acl: &mut Acl,
    lines: &[Vec<Vec<u8>>],
    pubsub_all: bool,
) -> Result<(), ConfigUserError> {
    let mut seen: Vec<&[u8]> = Vec::new();
    for line in lines {
        let Some((name, rules)) = line.split_first() else {
            continue;
        };
        if seen.contains(&name.as_slice()) {
            return Err(ConfigUserError::Duplicate(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        seen.push(name);
        if has_spaces(name) {
            return Err(ConfigUserError::Spaces);
        }
        let merged = merge_selector_args(rules).map_err(|_| {
            ConfigUserError::UnmatchedParen(String::from_utf8_lossy(name).into_owned())
        })?;
        let mut u = if name == b"default" {
            let mut d = (*acl.default_user()).clone();
            let _ = d.apply(b"reset", pubsub_all);
            d
        } else {
            User::new(name, pubsub_all)
        };
        for op in &merged {
            u.apply(op, pubsub_all)
                .map_err(|why| ConfigUserError::Rule {
                    op: String::from_utf8_lossy(op).into_owned(),
                    user: String::from_utf8_lossy(name).into_owned(),
                    why,
                })?;
        }
        if !u.enabled {
            tracing::info!(
                "The user '{}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error.",
                String::from_utf8_lossy(name)
            );
        }
        acl.users.insert(name.clone(), Arc::new(u));
    }
    Ok(())
}

/// Whether the user can use SUBSCRIBE-family arguments, for the test in
/// `commands` that every key spec is understood.
#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut u = User::new(b"u", false);
        for r in rules.split(' ') {
            u.apply(r.as_bytes(), false).unwrap();
        }
        u
    }

    fn argv(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_string())).collect()
    }

    fn check(u: &User, cmd: &str) -> Result<(), Denied> {
        let args = argv(cmd);
        let idx = table().resolve(&args).unwrap();
        u.check(idx, &args, &mut Vec::new())
    }

    #[test]
    fn describes_as_redis() {
        assert_eq!(
            User::new_default(false).describe(),
            b"on nopass ~* &* +@all".to_vec()
        );
        assert_eq!(
            user("-@all +@slow").describe(),
            b"off resetchannels -@all +@slow".to_vec()
        );
        assert_eq!(
            user("+@all -@slow").describe(),
            b"off resetchannels +@all -@slow".to_vec()
        );
        assert_eq!(
            user("on ~app:* -@all +@read").describe(),
            b"on ~app:* resetchannels -@all +@read".to_vec()
        );
        assert_eq!(
            user("+@all -flushall").describe(),
            b"off resetchannels +@all -flushall".to_vec()
        );
        assert_eq!(
            user("%R~a* %W~b* %RW~c* ~d*").describe(),
            b"off %R~a* %W~b* ~c* ~d* resetchannels -@all".to_vec()
        );
        assert_eq!(
            user(">p").describe(),
            format!("off #{} resetchannels -@all", hash_password(b"p")).into_bytes()
        );
    }

    #[test]
    fn checks_commands_keys_and_channels() {
        let u = user("on ~app:* -@all +@read &news.*");
        assert_eq!(check(&u, "get app:1"), Ok(()));
        assert_eq!(check(&u, "get other"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "set app:1 v"), Err(Denied::Command));
        assert_eq!(check(&u, "mget app:1 x"), Err(Denied::Key(2)));
        let u = user("on %R~r* %W~w* +@all");
        assert_eq!(check(&u, "get r1"), Ok(()));
        assert_eq!(check(&u, "get w1"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "set w1 v"), Ok(()));
        assert_eq!(check(&u, "set w1 v get"), Err(Denied::Key(1)));
        assert_eq!(check(&u, "copy r1 w1"), Ok(()));
        assert_eq!(check(&u, "publish x m"), Err(Denied::Channel(1)));
        let u = user("on +@all allkeys &news.*");
        assert_eq!(check(&u, "publish news.a m"), Ok(()));
        assert_eq!(check(&u, "psubscribe news.*"), Ok(()));
        assert_eq!(check(&u, "psubscribe news.a"), Err(Denied::Channel(1)));
        let u = user("on -@all +select|0");
        assert_eq!(check(&u, "select 0"), Ok(()));
        assert_eq!(check(&u, "select 1"), Err(Denied::Command));
        assert_eq!(check(&u, "auth x"), Ok(()));
    }

    #[test]
    fn rule_errors() {
        let mut u = User::new(b"u", false);
        assert_eq!(u.apply(b"+nosuch", false), Err(RuleError::UnknownCommand));
        assert_eq!(u.apply(b"+@nosuch", false), Err(RuleError::UnknownCommand));
        assert_eq!(u.apply(b"bogus", false), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"#abc", false), Err(RuleError::BadHash));
        assert_eq!(u.apply(b"<x", false), Err(RuleError::NoSuchPassword));
        assert_eq!(
            u.apply(b"+config|get|x", false),
            Err(RuleError::FirstArgOfSub)
        );
        u.apply(b"~*", false).unwrap();
        assert_eq!(u.apply(b"~a", false), Err(RuleError::KeysAfterAll));
    }

    #[test]
    fn selectors_merge_and_describe() {
        let merged = merge_selector_args(&[b"(~a".to_vec(), b"+get)".to_vec()]).unwrap();
        assert_eq!(merged, vec![b"(~a +get)".to_vec()]);
        let mut u = User::new(b"u", false);
        u.apply(b"(~a +get)", false).unwrap();
        assert_eq!(
            u.describe(),
            b"off resetchannels -@all (~a resetchannels -@all +get)".to_vec()
        );
        assert_eq!(check(&u, "get a"), Ok(()));
        assert_eq!(check(&u, "get b"), Err(Denied::Key(1)));
    }
}
