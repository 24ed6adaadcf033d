//! Online template mining after Drain (He, Zhu, Zheng, Lyu: "Drain: An
//! Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017), with the
//! exact decisions of logparser's reference implementation, so the
//! Loghub benchmark settings (similarity `st`, `depth`) mean the same here.
//! That is `MinerKind::Drain`; `MinerKind::Typed` (the default) is the same
//! tree with another similarity (`typed_dist`: positions that carry no
//! information left out, different enumeration constants never merged),
//! mining tokens its preprocessing classified (`logparse::classify`).
//!
//! A message is a sequence of tokens (its masked content split on
//! whitespace). The prefix tree routes it in fixed depth: first by its token
//! count, then by its first `depth - 3` tokens (depth counts the root, the length
//! layer and the leaf) (a token holding a digit, or
//! one that does not fit under a node with `children_max` children, goes to
//! the `<*>` child). The leaf holds a list of clusters; the message joins the
//! cluster whose template is most similar (share of positions where template
//! and message agree, wildcard positions not counted; ties go to the
//! template with more wildcards) when that similarity reaches `similarity`,
//! and the template then turns the positions where they differ into `<*>`.
//! Otherwise the message starts a new cluster.
//!
//! Cluster ids are 1-based in creation order and never change, so an id is
//! stable for as long as the miner lives, and across restarts when its state
//! (`encode` / `decode`) is persisted. The tree changes only when a cluster
//! is created (inserted under its first template), so the state stores each
//! cluster's first template and its current one: `decode` replays the
//! insertions in id order and gets the same tree, leaf order included, which
//! the tie-breaking above depends on.
//!
//! One departure from logparser: a message shorter than `depth - 2` tokens
//! is stored at the node its tokens lead to (logparser's loop ends before
//! storing it, so such messages never find their cluster again and each
//! starts a new one).
//!
//! Another bounds the cost of a line whatever the input. In Drain a leaf's
//! cluster list grows without limit on input with no shared structure
//! (lines of random words all land in the leaf under `<*>`), and every line
//! is compared with every cluster of its leaf: quadratic time. Here a node
//! holds at most `LEAF_CLUSTERS_MAX` clusters; a full leaf *spills*: a new
//! cluster goes one layer deeper, routed by the message's next token as
//! the inner layers route (digits and overflow to `<*>`), at most
//! `SPILL_LAYERS` layers below the leaf. A message is compared with the
//! clusters of its leaf and of the spill nodes its tokens lead to, so at
//! most `COMPARED_MAX` clusters per line; when the last node it can reach
//! is full, no new cluster is made (the line gets no template, as when
//! `CLUSTERS_MAX` is reached). Real logs stay far below the cap (the
//! Loghub 2k samples of the benchmark formats have at most 3 clusters a
//! leaf), so their grouping is Drain's exactly.

use crate::storage::bytes::{Malformed, Reader};

/// Maps with foldhash: tree lookups hash a token per layer for every
/// line, and SipHash's DoS resistance buys nothing here (a node's
/// children are capped at `children_max`).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The wildcard token, as logparser writes it in templates.
pub const WILDCARD: &[u8] = b"<*>";

/// logparser's default `maxChild`: children per inner tree node before new
/// tokens are routed to the `<*>` child.
pub const CHILDREN_MAX_DEFAULT: u32 = 100;

/// Clusters per miner: bounds memory against input with no structure (every
/// line new). Past it, lines that match no cluster get no template.
pub const CLUSTERS_MAX: usize = 100_000;

/// Clusters per tree node (leaf or spill node): see the module doc.
pub const LEAF_CLUSTERS_MAX: usize = 32;

/// Layers of spill nodes below a full leaf.
pub const SPILL_LAYERS: usize = 2;

/// Clusters compared with one message, at most: its leaf and the spill
/// nodes on its path.
pub const COMPARED_MAX: usize = LEAF_CLUSTERS_MAX * (1 + SPILL_LAYERS);

/// Tokens per message: a template is a line's shape, and real log
/// messages have tens of tokens; longer ones are cut (see
/// `logparse::mining_tokens`) so one huge line costs bounded memory.
pub const TOKENS_MAX: usize = 1024;

/// Template bytes per miner (tokens of first and current templates):
/// with `CLUSTERS_MAX` it bounds a miner's memory whatever the input.
pub const TEMPLATE_BYTES_MAX: usize = 64 << 20;

/// Smallest and largest `depth` (logparser requires at least 3: the length
/// layer, one token layer, the leaf). 16 layers is already far past what
/// benchmarks use (4 to 6).
pub const DEPTH_MIN: u32 = 3;
pub const DEPTH_MAX: u32 = 16;

/// State layout written by `encode` for a Drain miner; `decode` also
/// reads version 1 (no generation).
const STATE_VERSION: u8 = 2;
/// State layout of a typed miner: version 2 with the kind byte.
const STATE_VERSION_KIND: u8 = 3;

/// Which miner: `Drain` is logparser's Drain exactly (what formats defined
/// before miners had a kind use); `Typed` is the default (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MinerKind {
    Drain,
    #[default]
    Typed,
}

impl MinerKind {
    /// The name `LOGPARSE FORMAT SET ... MINER` takes and `FORMAT GET` shows.
    pub fn name(self) -> &'static str {
        match self {
            MinerKind::Drain => "drain",
            MinerKind::Typed => "typed",
        }
    }

    /// The kind named `name` (case-insensitive).
    pub fn from_name(name: &[u8]) -> Option<MinerKind> {
        [MinerKind::Drain, MinerKind::Typed]
            .into_iter()
            .find(|k| name.eq_ignore_ascii_case(k.name().as_bytes()))
    }

    /// The byte persisted states and specs use.
    pub fn code(self) -> u8 {
        match self {
            MinerKind::Drain => 0,
            MinerKind::Typed => 1,
        }
    }

    pub fn from_code(c: u8) -> Option<MinerKind> {
        match c {
            0 => Some(MinerKind::Drain),
            1 => Some(MinerKind::Typed),
            _ => None,
        }
    }
}

/// Miner settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MinerConfig {
    /// Similarity threshold `st` in 0..=1.
    pub similarity: f64,
    /// Tree depth as logparser counts it (root and leaf included).
    pub depth: u32,
    pub children_max: u32,
    pub kind: MinerKind,
}

impl Default for MinerConfig {
    /// logparser's Drain defaults.
    fn default() -> Self {
        MinerConfig {
            similarity: 0.4,
            depth: 4,
            children_max: CHILDREN_MAX_DEFAULT,
            kind: MinerKind::Drain,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: HashMap<Box<[u8]>, u32>,
    clusters: Vec<u32>,
}

/// One template and the lines it grouped.
#[derive(Debug, Clone)]
pub struct Cluster {
    first: Vec<Box<[u8]>>,
    template: Vec<Box<[u8]>>,
    /// `token_hash` of each template token, side by side so a comparison
    /// reads one array and touches a token's bytes only when the hashes
    /// agree.
    hashes: Vec<u64>,
    /// Lines that joined this cluster while this process ran, plus those
    /// persisted in the state.
    pub size: u64,
}

impl Cluster {
    /// The template's tokens (`<*>` for variable positions).
    pub fn tokens(&self) -> &[Box<[u8]>] {
        &self.template
    }

    /// The template as text: tokens joined by single spaces.
    pub fn template(&self) -> Vec<u8> {
        self.template.join(&b' ')
    }
}

/// What `learn` did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    /// 1-based cluster id.
    pub id: u64,
    /// A new cluster was created or the template changed: the miner's state
    /// (beyond cluster sizes) is different now.
    pub changed: bool,
}

/// A miner state that cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed miner state: {0}")]
pub struct StateError(pub &'static str);

/// The Drain miner.
#[derive(Debug, Clone)]
pub struct Miner {
    config: MinerConfig,
    by_len: HashMap<usize, u32>,
    nodes: Vec<Node>,
    clusters: Vec<Cluster>,
    /// Bytes of all clusters' tokens (first and current templates).
    template_bytes: usize,
    /// Learning batches applied (see `generation`).
    generation: u64,
    /// Clusters compared by the last `learn`.
    compared: usize,
}

fn has_digit(t: &[u8]) -> bool {
    t.iter().any(u8::is_ascii_digit)
}

/// A token's hash for `seq_dist`: 0 for the wildcard, even for a token
/// holding a wildcard (`<*>:`, `AirPort_<*>`), odd otherwise.
fn token_hash(t: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    if t == WILDCARD {
        return 0;
    }
    let h = foldhash::fast::FixedState::with_seed(0x5eed).hash_one(t);
    if memchr::memmem::find(t, WILDCARD).is_some() {
        (h & !1).max(2)
    } else {
        h | 1
    }
}

/// Fewest positions equal out of `len` whose share reaches `floor`,
/// computed as `search` compares shares (so a cut on it is exact, rounding
/// included); `len + 1` when no share reaches it.
fn positions_needed(floor: f64, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let reaches = |k: usize| k as f64 / len as f64 >= floor;
    let mut need = ((floor * len as f64).ceil().max(0.0) as usize).min(len + 1);
    while need > 0 && reaches(need - 1) {
        need -= 1;
    }
    while need <= len && !reaches(need) {
        need += 1;
    }
    need
}

/// logparser's `seqDist`: share of template positions equal to the
/// message (wildcards excluded), and the number of wildcards. None as soon
/// as fewer than `need` positions can be equal (`positions_needed`: the
/// caller would discard the template, below the threshold or the best so
/// far).
fn seq_dist(c: &Cluster, tokens: &[&[u8]], hashes: &[u64], need: usize) -> Option<(f64, usize)> {
    if c.template.is_empty() {
        return Some((1.0, 0));
    }
    let len = c.template.len();
    let mut same = 0usize;
    let mut params = 0usize;
    for (i, (&th, &mh)) in c.hashes.iter().zip(hashes).enumerate() {
        if th == 0 {
            params += 1;
        } else if th == mh && *c.template[i] == *tokens[i] {
            same += 1;
        } else if same + (len - i - 1) < need {
            return None;
        }
    }
    Some((same as f64 / len as f64, params))
}

/// An upper-case word (`LOOKING`, `TIME_WAIT`, `YES`): an enumeration's
/// value (a state, a level, a flag), which the typed miner takes for a
/// constant.
fn is_enum_word(t: &[u8]) -> bool {
    t.len() >= 2
        && t[0].is_ascii_uppercase()
        && t[1..].iter().all(|&b| b.is_ascii_uppercase() || b == b'_')
}

/// A constant's name in upper snake case (`SCREEN_ON`, `TIME_TICK`).
fn is_snake_constant(t: &[u8]) -> bool {
    t.contains(&b'_')
        && t.split(|&b| b == b'_')
            .all(|w| !w.is_empty() && w.iter().all(u8::is_ascii_uppercase))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Which boolean word (`true`, `No`, `enabled`, ...) `t` is once the
/// brackets, quotes and punctuation around it are cut, in any case.
fn boolean_word(t: &[u8]) -> Option<usize> {
    const BOOLEANS: [&[u8]; 10] = [
        b"true",
        b"false",
        b"yes",
        b"no",
        b"on",
        b"off",
        b"enabled",
        b"disabled",
        b"enable",
        b"disable",
    ];
    let edge = |b: &u8| b"'\"(),.;:[]{}".contains(b);
    let start = t.iter().position(|b| !edge(b))?;
    let end = t.len() - t.iter().rev().position(|b| !edge(b))?;
    let w = &t[start..end];
    BOOLEANS.iter().position(|b| b.eq_ignore_ascii_case(w))
}

/// `key=value` with an alphabetic value (`user=root`, `state=idle`), as
/// (key, value); trailing `,` / `;` ignored.
fn keyword_setting(t: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = t.len()
        - t.iter()
            .rev()
            .take_while(|&&b| b == b',' || b == b';')
            .count();
    let t = &t[..end];
    let eq = t.iter().position(|&b| b == b'=')?;
    let (key, value) = (&t[..eq], &t[eq + 1..]);
    let key_ok = key
        .first()
        .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_')
        && key
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    let value_ok = !value.is_empty() && value.iter().all(u8::is_ascii_alphabetic);
    (key_ok && value_ok).then_some((key, value))
}

/// Whether template constant `a` and token `b` name two different
/// constants, which the typed miner never merges into one `<*>`: two
/// upper-case words (`is_enum_word`); the same qualified name but for a
/// last part in upper snake case (`android.intent.action.SCREEN_ON` /
/// `...TIME_TICK`, Java's constants); two different booleans (`true` /
/// `false`, `On` / `Off`); or the same key set to two different words
/// (`user=root` / `user=guest`: a setting, not a measurement).
fn enum_conflict(a: &[u8], b: &[u8]) -> bool {
    if is_enum_word(a) && is_enum_word(b) {
        return true;
    }
    if let (Some(x), Some(y)) = (boolean_word(a), boolean_word(b)) {
        if x != y {
            return true;
        }
    }
    if let (Some((ka, va)), Some((kb, vb))) = (keyword_setting(a), keyword_setting(b)) {
        if ka == kb && va != vb {
            return true;
        }
    }
    let n = a.len().min(b.len());
    // The common prefix and suffix, cut back to whole words.
    let mut p = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    while p > 0 && is_word_byte(a[p - 1]) {
        p -= 1;
    }
    if p == 0 || a[p - 1] != b'.' {
        return false;
    }
    let mut s = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(n - p)
        .take_while(|(x, y)| x == y)
        .count();
    while s > 0 && is_word_byte(a[a.len() - s]) {
        s -= 1;
    }
    is_snake_constant(&a[p..a.len() - s]) && is_snake_constant(&b[p..b.len() - s])
}

/// The typed miner's similarity: the share of the template's positions
/// equal to the message, over the positions that hold information: a
/// wildcard in both, or the same token holding a wildcard (`<*>:`), says
/// nothing about whether two lines are one event, so it counts on neither
/// side (in Drain, the variables the masks turned into `<*>` would have
/// differed, so each counted as a mismatch). A template wildcard facing a
/// constant counts as a mismatch, as in Drain. Second: the number of
/// template wildcards (ties go to more). None when a template constant and
/// the message's token name different constants (`enum_conflict`:
/// `LOOKING` and `LEADING` are two events, never one `<*>`).
fn typed_dist(c: &Cluster, tokens: &[&[u8]], hashes: &[u64]) -> Option<(f64, usize)> {
    let mut same = 0usize;
    let mut params = 0usize;
    let mut void = 0usize;
    for (i, (&th, &mh)) in c.hashes.iter().zip(hashes).enumerate() {
        if th == 0 {
            params += 1;
            void += usize::from(mh == 0);
        } else if th == mh && *c.template[i] == *tokens[i] {
            if th & 1 == 0 {
                void += 1;
            } else {
                same += 1;
            }
        } else if enum_conflict(&c.template[i], tokens[i]) {
            return None;
        }
    }
    let informative = c.template.len() - void;
    if informative == 0 {
        return Some((1.0, params));
    }
    Some((same as f64 / informative as f64, params))
}

impl Miner {
    /// An empty miner. `config.depth` is clamped to `DEPTH_MIN..=DEPTH_MAX`.
    pub fn new(mut config: MinerConfig) -> Miner {
        config.depth = config.depth.clamp(DEPTH_MIN, DEPTH_MAX);
        config.children_max = config.children_max.max(2);
        Miner {
            config,
            by_len: HashMap::default(),
            nodes: Vec::new(),
            clusters: Vec::new(),
            template_bytes: 0,
            generation: 0,
            compared: 0,
        }
    }

    /// Learning batches recorded with `set_generation`: persisted with the
    /// state, so a replayed batch the state already holds can be skipped.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn set_generation(&mut self, g: u64) {
        self.generation = g;
    }

    /// Clusters the last `learn` compared the message with (at most
    /// `COMPARED_MAX`, plus the clusters of a leaf filled by a version-1
    /// state).
    pub fn last_compared(&self) -> usize {
        self.compared
    }

    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    /// Number of clusters (templates).
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// The cluster with 1-based id `id`.
    pub fn cluster(&self, id: u64) -> Option<&Cluster> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.clusters.get(i)
    }

    /// Counts `n` more lines in cluster `id` (no such cluster: nothing).
    pub fn add_hits(&mut self, id: u64, n: u64) {
        let Some(i) = usize::try_from(id).ok().and_then(|i| i.checked_sub(1)) else {
            return;
        };
        if let Some(c) = self.clusters.get_mut(i) {
            c.size = c.size.saturating_add(n);
        }
    }

    /// Every cluster with its id, in id order.
    pub fn clusters(&self) -> impl Iterator<Item = (u64, &Cluster)> {
        self.clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (i as u64 + 1, c))
    }

    /// logparser's `self.depth` (`depth - 2`): tokens are routed while
    /// their 1-based position is below it.
    fn token_layers(&self) -> usize {
        (self.config.depth - 2) as usize
    }

    /// The node the length layer and the token layers route a message to,
    /// and how many tokens routed it. None when no such path exists.
    fn route(&self, tokens: &[&[u8]]) -> Option<(u32, usize)> {
        let mut node = *self.by_len.get(&tokens.len())?;
        let mut used = 0;
        for (i, tok) in tokens.iter().enumerate() {
            let level = i + 1;
            if level >= self.token_layers() {
                break;
            }
            let children = &self.nodes[node as usize].children;
            node = *children.get(*tok).or_else(|| children.get(WILDCARD))?;
            used = level;
        }
        Some((node, used))
    }

    /// The most similar cluster reaching the threshold, and the number of
    /// clusters compared: those of the leaf, then of the spill nodes the
    /// following tokens lead to (only a full node has spill children).
    fn search(&self, tokens: &[&[u8]], hashes: &[u64]) -> (Option<u32>, usize) {
        let Some((mut node, mut next)) = self.route(tokens) else {
            return (None, 0);
        };
        let mut compared = 0;
        let mut best = None;
        let mut best_sim = -1.0f64;
        let mut best_params = -1i64;
        let mut spilled = 0;
        // A template below the threshold or the best so far cannot be
        // chosen: its comparison stops as soon as that is sure. Every
        // template here has the message's length (the length layer).
        let mut need = positions_needed(self.config.similarity, tokens.len());
        loop {
            let n = &self.nodes[node as usize];
            for &c in &n.clusters {
                compared += 1;
                let cl = &self.clusters[c as usize];
                let found = match self.config.kind {
                    MinerKind::Drain => seq_dist(cl, tokens, hashes, need),
                    MinerKind::Typed => typed_dist(cl, tokens, hashes),
                };
                let Some((sim, params)) = found else {
                    continue;
                };
                if sim > best_sim || (sim == best_sim && params as i64 > best_params) {
                    if sim > best_sim {
                        need = positions_needed(self.config.similarity.max(sim), tokens.len());
                    }
                    best_sim = sim;
                    best_params = params as i64;
                    best = Some(c);
                }
            }
            if n.clusters.len() < LEAF_CLUSTERS_MAX
                || spilled == SPILL_LAYERS
                || next >= tokens.len()
            {
                break;
            }
            match n
                .children
                .get(tokens[next])
                .or_else(|| n.children.get(WILDCARD))
            {
                Some(&c) => node = c,
                None => break,
            }
            next += 1;
            spilled += 1;
        }
        (
            best.filter(|_| best_sim >= self.config.similarity),
            compared,
        )
    }

    fn new_node(&mut self) -> u32 {
        self.nodes.push(Node::default());
        (self.nodes.len() - 1) as u32
    }

    fn add_child(&mut self, parent: u32, token: &[u8]) -> u32 {
        let n = self.new_node();
        self.nodes[parent as usize]
            .children
            .insert(token.to_vec().into_boxed_slice(), n);
        n
    }

    /// One layer of logparser's `addSeqToPrefixTree`: the child of `node`
    /// for `tok`, created if the node has room, else the `<*>` child.
    fn child_for(&mut self, node: u32, tok: &[u8]) -> u32 {
        let max = self.config.children_max as usize;
        let children = &self.nodes[node as usize].children;
        if let Some(&n) = children.get(tok) {
            return n;
        }
        if has_digit(tok) {
            return match children.get(WILDCARD) {
                Some(&w) => w,
                None => self.add_child(node, WILDCARD),
            };
        }
        let wild = children.get(WILDCARD).copied();
        let count = children.len();
        match wild {
            Some(w) if count >= max => w,
            Some(_) => self.add_child(node, tok),
            None if count + 1 < max => self.add_child(node, tok),
            None => self.add_child(node, WILDCARD),
        }
    }

    /// The node a new cluster whose first template is `tokens` goes to
    /// (logparser's `addSeqToPrefixTree`, then down the spill layers while
    /// the node is full). None when the last node reachable is full, unless
    /// `force` (decoding: a state holds only clusters that were placed, and
    /// a version-1 state may hold fuller leaves) puts it there anyway.
    fn place<T: AsRef<[u8]>>(&mut self, tokens: &[T], force: bool) -> Option<u32> {
        let len = tokens.len();
        let mut node = match self.by_len.get(&len) {
            Some(&n) => n,
            None => {
                let n = self.new_node();
                self.by_len.insert(len, n);
                n
            }
        };
        let mut next = 0;
        for (i, tok) in tokens.iter().enumerate() {
            let level = i + 1;
            if level >= self.token_layers() {
                break;
            }
            node = self.child_for(node, tok.as_ref());
            next = level;
        }
        let mut spilled = 0;
        while self.nodes[node as usize].clusters.len() >= LEAF_CLUSTERS_MAX {
            if spilled == SPILL_LAYERS || next >= len {
                return force.then_some(node);
            }
            node = self.child_for(node, tokens[next].as_ref());
            next += 1;
            spilled += 1;
        }
        Some(node)
    }

    /// Finds the cluster of a message without changing anything.
    pub fn find(&self, tokens: &[&[u8]]) -> Option<u64> {
        let hashes: Vec<u64> = tokens.iter().map(|t| token_hash(t)).collect();
        self.search(tokens, &hashes).0.map(|c| u64::from(c) + 1)
    }

    /// Adds a message: joins its cluster (generalising the template) or
    /// starts one. None when no cluster matches and `CLUSTERS_MAX` or
    /// `TEMPLATE_BYTES_MAX` is reached, or the nodes the message can reach
    /// are full (`LEAF_CLUSTERS_MAX`).
    pub fn learn(&mut self, tokens: &[&[u8]]) -> Option<Learned> {
        let hashes: Vec<u64> = tokens.iter().map(|t| token_hash(t)).collect();
        let (found, compared) = self.search(tokens, &hashes);
        self.compared = compared;
        if let Some(c) = found {
            let cl = &mut self.clusters[c as usize];
            cl.size += 1;
            let mut changed = false;
            for ((t, h), m) in cl.template.iter_mut().zip(&mut cl.hashes).zip(tokens) {
                if &**t != *m && &**t != WILDCARD {
                    *t = WILDCARD.to_vec().into_boxed_slice();
                    *h = 0;
                    changed = true;
                }
            }
            return Some(Learned {
                id: u64::from(c) + 1,
                changed,
            });
        }
        let bytes: usize = 2 * tokens.iter().map(|t| t.len() + 16).sum::<usize>();
        if self.clusters.len() >= CLUSTERS_MAX || self.template_bytes + bytes > TEMPLATE_BYTES_MAX {
            return None;
        }
        let node = self.place(tokens, false)?;
        self.template_bytes += bytes;
        let toks: Vec<Box<[u8]>> = tokens
            .iter()
            .map(|t| t.to_vec().into_boxed_slice())
            .collect();
        self.clusters.push(Cluster {
            first: toks.clone(),
            template: toks,
            hashes,
            size: 1,
        });
        let id = self.clusters.len() as u32 - 1;
        self.nodes[node as usize].clusters.push(id);
        Some(Learned {
            id: u64::from(id) + 1,
            changed: true,
        })
    }

    /// Serialises the state:
    ///
    /// ```text
    /// state   = u8 version(=2 Drain, 3 otherwise) | u32 depth
    ///           | u64 similarity(f64 bits) | u32 children_max
    ///           | [u8 kind, version 3 only: 1 typed]
    ///           | u64 generation | u32 count | cluster{count}
    /// cluster = u64 size | tokens first | tokens template
    /// tokens  = u32 n | (u32 len | u8{len}){n}
    /// ```
    ///
    /// A Drain miner's state is version 2, byte for byte what miners
    /// wrote before they had a kind (and what those states decode to).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let kind = self.config.kind;
        out.push(if kind == MinerKind::Drain {
            STATE_VERSION
        } else {
            STATE_VERSION_KIND
        });
        out.extend_from_slice(&self.config.depth.to_le_bytes());
        out.extend_from_slice(&self.config.similarity.to_bits().to_le_bytes());
        out.extend_from_slice(&self.config.children_max.to_le_bytes());
        if kind != MinerKind::Drain {
            out.push(kind.code());
        }
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&(self.clusters.len() as u32).to_le_bytes());
        let put_tokens = |out: &mut Vec<u8>, toks: &[Box<[u8]>]| {
            out.extend_from_slice(&(toks.len() as u32).to_le_bytes());
            for t in toks {
                out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                out.extend_from_slice(t);
            }
        };
        for c in &self.clusters {
            out.extend_from_slice(&c.size.to_le_bytes());
            put_tokens(out, &c.first);
            put_tokens(out, &c.template);
        }
    }

    /// Rebuilds a miner from `encode`'s output (version 1, without the
    /// generation, is read too: its clusters are placed as version 2 places
    /// them, over the cap where a leaf was fuller).
    pub fn decode(buf: &[u8]) -> Result<Miner, StateError> {
        let mut r = Reader::new(buf);
        let version = r.u8()?;
        if !(1..=STATE_VERSION_KIND).contains(&version) {
            return Err(StateError("unknown version"));
        }
        let depth = r.u32()?;
        let similarity = f64::from_bits(r.u64()?);
        let children_max = r.u32()?;
        let kind = if version == STATE_VERSION_KIND {
            match MinerKind::from_code(r.u8()?) {
                Some(k) if k != MinerKind::Drain => k,
                _ => return Err(StateError("bad miner kind")),
            }
        } else {
            MinerKind::Drain
        };
        let generation = if version >= 2 { r.u64()? } else { 0 };
        if !(DEPTH_MIN..=DEPTH_MAX).contains(&depth)
            || !(0.0..=1.0).contains(&similarity)
            || children_max < 2
        {
            return Err(StateError("bad settings"));
        }
        let count = r.u32()? as usize;
        if count > CLUSTERS_MAX {
            return Err(StateError("too many clusters"));
        }
        let mut m = Miner::new(MinerConfig {
            similarity,
            depth,
            children_max,
            kind,
        });
        m.generation = generation;
        for i in 0..count {
            let size = r.u64()?;
            let first = tokens(&mut r)?;
            let template = tokens(&mut r)?;
            if first.len() != template.len() {
                return Err(StateError("template length differs"));
            }
            m.template_bytes += 2 * first.iter().map(|t| t.len() + 16).sum::<usize>();
            let node = m
                .place(&first, true)
                .ok_or(StateError("cluster not placed"))?;
            m.nodes[node as usize].clusters.push(i as u32);
            let hashes = template.iter().map(|t| token_hash(t)).collect();
            m.clusters.push(Cluster {
                first,
                template,
                hashes,
                size,
            });
        }
        if !r.is_empty() {
            return Err(StateError("trailing bytes"));
        }
        Ok(m)
    }
}

impl From<Malformed> for StateError {
    fn from(e: Malformed) -> StateError {
        StateError(e.0)
    }
}

/// A miner state's token lists, read with the shared byte reader.
fn tokens(r: &mut Reader<'_>) -> Result<Vec<Box<[u8]>>, StateError> {
    let n = r.u32()? as usize;
    // Each token takes at least 4 bytes: bound the allocation by the input.
    let mut v = Vec::with_capacity(n.min(r.remaining() / 4));
    for _ in 0..n {
        v.push(r.slice()?.to_vec().into_boxed_slice());
    }
    Ok(v)
}

/// Splits masked content into tokens on ASCII whitespace (Python's
/// `str.split()` for ASCII text).
pub fn tokenize<'a>(content: &'a [u8], out: &mut Vec<&'a [u8]>) {
    out.clear();
    out.extend(
        content
            .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
            .filter(|t| !t.is_empty()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learn(m: &mut Miner, s: &str) -> Learned {
        let mut toks = Vec::new();
        tokenize(s.as_bytes(), &mut toks);
        m.learn(&toks).unwrap()
    }

    #[test]
    fn groups_and_generalises() {
        let mut m = Miner::new(MinerConfig {
            similarity: 0.5,
            depth: 4,
            children_max: 100,
            ..MinerConfig::default()
        });
        let a = learn(&mut m, "Receiving block <*> src: <*> dest: <*>");
        assert_eq!(
            a,
            Learned {
                id: 1,
                changed: true
            }
        );
        let b = learn(&mut m, "Deleting block <*> file /a/b");
        assert_eq!(b.id, 2);
        let c = learn(&mut m, "Deleting block <*> file /c/d");
        assert_eq!(
            c,
            Learned {
                id: 2,
                changed: true
            }
        );
        assert_eq!(
            m.cluster(2).unwrap().template(),
            b"Deleting block <*> file <*>"
        );
        let d = learn(&mut m, "Deleting block <*> file /e/f");
        assert_eq!(
            d,
            Learned {
                id: 2,
                changed: false
            }
        );
        assert_eq!(m.cluster(2).unwrap().size, 3);
        // Short messages find their cluster again.
        assert_eq!(learn(&mut m, "x").id, 3);
        assert_eq!(learn(&mut m, "x").id, 3);
        assert_eq!(learn(&mut m, "").id, 4);
        assert_eq!(learn(&mut m, "  ").id, 4);
    }

    #[test]
    fn state_round_trip_gives_same_ids() {
        let lines: Vec<String> = (0..300)
            .map(|i| match i % 5 {
                0 => format!("open file f{i} mode {}", i % 7),
                1 => format!("user u{} logged in from 10.0.0.{i}", i % 13),
                2 => format!("tok{} a b c", i % 150),
                3 => format!("{i} {i} {i}"),
                _ => format!("close file f{i}"),
            })
            .collect();
        let mut m = Miner::new(MinerConfig {
            similarity: 0.5,
            depth: 4,
            children_max: 10,
            ..MinerConfig::default()
        });
        for l in &lines[..150] {
            learn(&mut m, l);
        }
        let mut buf = Vec::new();
        m.encode(&mut buf);
        let mut r = Miner::decode(&buf).unwrap();
        for l in &lines[150..] {
            assert_eq!(learn(&mut m, l), learn(&mut r, l), "{l}");
        }
        for cut in 0..buf.len() {
            assert!(Miner::decode(&buf[..cut]).is_err());
        }
    }

    /// Lines of random lowercase words (no digits, no shared structure).
    fn random_lines(n: usize, seed: u64) -> Vec<String> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|_| {
                let words = 4 + (next() % 6) as usize;
                (0..words)
                    .map(|_| {
                        let len = 3 + (next() % 6) as usize;
                        (0..len)
                            .map(|_| (b'a' + (next() % 26) as u8) as char)
                            .collect::<String>()
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// Input with no structure puts every line in few leaves (the first
    /// token's children overflow to `<*>`); each line must still be
    /// compared with at most `COMPARED_MAX` clusters, while the miner keeps
    /// learning templates.
    #[test]
    fn clusters_compared_per_line_are_bounded() {
        let mut m = Miner::new(MinerConfig {
            similarity: 0.4,
            depth: 4,
            children_max: 100,
            ..MinerConfig::default()
        });
        let lines = random_lines(20_000, 7);
        let mut worst = 0;
        let mut ids = Vec::new();
        for l in &lines {
            let mut toks = Vec::new();
            tokenize(l.as_bytes(), &mut toks);
            ids.push(m.learn(&toks).map(|l| l.id));
            worst = worst.max(m.last_compared());
        }
        assert!(worst <= COMPARED_MAX, "{worst} clusters compared");
        assert!(m
            .nodes
            .iter()
            .all(|n| n.clusters.len() <= LEAF_CLUSTERS_MAX));
        // Spilling keeps making templates past a full leaf (six lengths,
        // one routing layer: far more than six leaves' worth) ...
        assert!(m.len() > 6 * 4 * LEAF_CLUSTERS_MAX, "{} templates", m.len());
        // ... and a line seen again finds its template within the cap.
        for (l, id) in lines.iter().zip(&ids).take(5000) {
            let mut toks = Vec::new();
            tokenize(l.as_bytes(), &mut toks);
            let again = m.learn(&toks).map(|l| l.id);
            if id.is_some() {
                assert_eq!(again, *id, "{l}");
            }
            assert!(m.last_compared() <= COMPARED_MAX);
        }
    }

    /// A state with spilled leaves decodes to the same tree: the same
    /// lines get the same ids afterwards.
    #[test]
    fn spilled_state_round_trips() {
        let lines = random_lines(6000, 11);
        let mut m = Miner::new(MinerConfig::default());
        let learn_line = |m: &mut Miner, l: &str| {
            let mut toks = Vec::new();
            tokenize(l.as_bytes(), &mut toks);
            m.learn(&toks)
        };
        for l in &lines[..4000] {
            learn_line(&mut m, l);
        }
        m.set_generation(9);
        let mut buf = Vec::new();
        m.encode(&mut buf);
        let mut r = Miner::decode(&buf).unwrap();
        assert_eq!(r.generation(), 9);
        // Lines seen before and new ones alike.
        for l in lines[2000..].iter() {
            assert_eq!(learn_line(&mut m, l), learn_line(&mut r, l), "{l}");
        }
    }

    /// A version-1 state (no generation) still decodes.
    #[test]
    fn version_1_state_decodes() {
        let mut m = Miner::new(MinerConfig::default());
        learn(&mut m, "open file a");
        let mut buf = Vec::new();
        m.encode(&mut buf);
        // Version 1: the same without the generation.
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&buf[1..17]);
        v1.extend_from_slice(&buf[25..]);
        let mut r = Miner::decode(&v1).unwrap();
        assert_eq!(r.generation(), 0);
        assert_eq!(learn(&mut r, "open file b").id, 1);
    }

    /// A typed miner's state is version 3 with its kind; it decodes to a
    /// typed miner that continues as the original. A Drain miner's state
    /// stays version 2 (what states were before miners had a kind).
    #[test]
    fn typed_state_round_trips() {
        let typed = MinerConfig {
            kind: MinerKind::Typed,
            ..MinerConfig::default()
        };
        let mut m = Miner::new(typed.clone());
        learn(&mut m, "open <*>: file a");
        learn(&mut m, "open <*>: file b");
        let mut buf = Vec::new();
        m.encode(&mut buf);
        assert_eq!((buf[0], buf[17]), (3, 1));
        let mut r = Miner::decode(&buf).unwrap();
        assert_eq!(r.config(), &typed);
        assert_eq!(
            learn(&mut r, "open <*>: file c"),
            learn(&mut m, "open <*>: file c")
        );
        for cut in 0..buf.len() {
            assert!(Miner::decode(&buf[..cut]).is_err());
        }
        let mut bad = buf.clone();
        bad[17] = 0;
        assert!(Miner::decode(&bad).is_err());
        let mut d = Vec::new();
        Miner::new(MinerConfig::default()).encode(&mut d);
        assert_eq!(d[0], 2);
    }

    /// The typed similarity leaves out positions that say nothing (both
    /// `<*>`, or the same token holding `<*>`): "a <*>: <*> x" and
    /// "a <*>: <*> y" agree on 1 of 2 informative positions.
    #[test]
    fn typed_similarity() {
        let mut m = Miner::new(MinerConfig {
            similarity: 0.5,
            kind: MinerKind::Typed,
            ..MinerConfig::default()
        });
        assert_eq!(learn(&mut m, "a <*>: <*> x").id, 1);
        assert_eq!(learn(&mut m, "a <*>: <*> y").id, 1);
        assert_eq!(m.cluster(1).unwrap().template(), b"a <*>: <*> <*>");
        // Drain counts all four: 2 of 4 (the wildcard is no match).
        let mut d = Miner::new(MinerConfig {
            similarity: 0.6,
            ..MinerConfig::default()
        });
        learn(&mut d, "a <*>: <*> x");
        assert_eq!(learn(&mut d, "a <*>: <*> y").id, 2);
        let mut t = Miner::new(MinerConfig {
            similarity: 0.6,
            kind: MinerKind::Typed,
            ..MinerConfig::default()
        });
        learn(&mut t, "a <*>: <*> x");
        assert_eq!(learn(&mut t, "a <*>: <*> y").id, 2);
        assert_eq!(learn(&mut t, "a <*>: <*> x").id, 1);
        // Upper-case words are constants: never one template.
        let mut t = Miner::new(MinerConfig {
            similarity: 0.1,
            kind: MinerKind::Typed,
            ..MinerConfig::default()
        });
        assert_eq!(learn(&mut t, "state a b c LOOKING").id, 1);
        assert_eq!(learn(&mut t, "state a b c LEADING").id, 2);
        assert_eq!(learn(&mut t, "state a b c Leading").id, 1);
        assert_eq!(learn(&mut t, "got x.y.SCREEN_ON, ok").id, 3);
        assert_eq!(learn(&mut t, "got x.y.TIME_TICK, ok").id, 4);
        assert_eq!(learn(&mut t, "got x.y.Other, ok").id, 3);
        assert_eq!(learn(&mut t, "got x.z.TIME_TICK, ok").id, 3);
        // Booleans and key=word settings are constants too.
        assert_eq!(learn(&mut t, "down true canceled false").id, 5);
        assert_eq!(learn(&mut t, "down (False) canceled false").id, 6);
        assert_eq!(learn(&mut t, "down TRUE, canceled false").id, 5);
        assert_eq!(learn(&mut t, "login user=root, from x").id, 7);
        assert_eq!(learn(&mut t, "login user=guest, from x").id, 8);
        assert_eq!(learn(&mut t, "login uid=guest, from x").id, 7);
        assert_eq!(learn(&mut t, "login user=<*>, from x").id, 7);
        assert_eq!(m.cluster(1).unwrap().template(), b"a <*>: <*> <*>");
        assert_eq!(t.cluster(1).unwrap().template(), b"state a b c <*>");
    }
}
