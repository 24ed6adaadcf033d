//! Online template mining after Drain (He, Zhu, Zheng, Lyu: "Drain: An
//! Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017), with the
//! exact decisions of logparser's reference implementation, so the
//! Loghub benchmark settings (similarity `st`, `depth`) mean the same here.
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

const STATE_VERSION: u8 = 1;

/// Miner settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MinerConfig {
    /// Similarity threshold `st` in 0..=1.
    pub similarity: f64,
    /// Tree depth as logparser counts it (root and leaf included).
    pub depth: u32,
    pub children_max: u32,
}

impl Default for MinerConfig {
    /// logparser's Drain defaults.
    fn default() -> Self {
        MinerConfig {
            similarity: 0.4,
            depth: 4,
            children_max: CHILDREN_MAX_DEFAULT,
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
}

fn has_digit(t: &[u8]) -> bool {
    t.iter().any(u8::is_ascii_digit)
}

/// logparser's `seqDist`: share of template positions equal to the
/// message (wildcards excluded), and the number of wildcards.
fn seq_dist(template: &[Box<[u8]>], tokens: &[&[u8]]) -> (f64, usize) {
    if template.is_empty() {
        return (1.0, 0);
    }
    let mut same = 0usize;
    let mut params = 0usize;
    for (t, m) in template.iter().zip(tokens) {
        if &**t == WILDCARD {
            params += 1;
        } else if &**t == *m {
            same += 1;
        }
    }
    (same as f64 / template.len() as f64, params)
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
        }
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

    fn search(&self, tokens: &[&[u8]]) -> Option<u32> {
        let mut node = *self.by_len.get(&tokens.len())?;
        let layers = self.token_layers();
        for (i, tok) in tokens.iter().enumerate() {
            let level = i + 1;
            if level >= layers || level > tokens.len() {
                break;
            }
            let children = &self.nodes[node as usize].children;
            node = match children.get(*tok).or_else(|| children.get(WILDCARD)) {
                Some(&n) => n,
                None => return None,
            };
        }
        let mut best = None;
        let mut best_sim = -1.0f64;
        let mut best_params = -1i64;
        for &c in &self.nodes[node as usize].clusters {
            let (sim, params) = seq_dist(&self.clusters[c as usize].template, tokens);
            if sim > best_sim || (sim == best_sim && params as i64 > best_params) {
                best_sim = sim;
                best_params = params as i64;
                best = Some(c);
            }
        }
        best.filter(|_| best_sim >= self.config.similarity)
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

    /// logparser's `addSeqToPrefixTree`.
    fn insert(&mut self, cluster: u32) {
        let tokens: Vec<Box<[u8]>> = self.clusters[cluster as usize].first.clone();
        let len = tokens.len();
        let mut node = match self.by_len.get(&len) {
            Some(&n) => n,
            None => {
                let n = self.new_node();
                self.by_len.insert(len, n);
                n
            }
        };
        let layers = self.token_layers();
        let max = self.config.children_max as usize;
        for (i, tok) in tokens.iter().enumerate() {
            let level = i + 1;
            if level >= layers || level > len {
                break;
            }
            let children = &self.nodes[node as usize].children;
            if let Some(&n) = children.get(&**tok) {
                node = n;
            } else if !has_digit(tok) {
                let wild = children.get(WILDCARD).copied();
                let count = children.len();
                node = match wild {
                    Some(w) if count >= max => w,
                    Some(_) => self.add_child(node, tok),
                    None if count + 1 < max => self.add_child(node, tok),
                    None => self.add_child(node, WILDCARD),
                };
            } else {
                node = match children.get(WILDCARD) {
                    Some(&w) => w,
                    None => self.add_child(node, WILDCARD),
                };
            }
        }
        self.nodes[node as usize].clusters.push(cluster);
    }

    /// Finds the cluster of a message without changing anything.
    pub fn find(&self, tokens: &[&[u8]]) -> Option<u64> {
        self.search(tokens).map(|c| u64::from(c) + 1)
    }

    /// Adds a message: joins its cluster (generalising the template) or
    /// starts one. None when no cluster matches and `CLUSTERS_MAX` or
    /// `TEMPLATE_BYTES_MAX` is reached.
    pub fn learn(&mut self, tokens: &[&[u8]]) -> Option<Learned> {
        if let Some(c) = self.search(tokens) {
            let cl = &mut self.clusters[c as usize];
            cl.size += 1;
            let mut changed = false;
            for (t, m) in cl.template.iter_mut().zip(tokens) {
                if &**t != *m && &**t != WILDCARD {
                    *t = WILDCARD.to_vec().into_boxed_slice();
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
        self.template_bytes += bytes;
        let toks: Vec<Box<[u8]>> = tokens
            .iter()
            .map(|t| t.to_vec().into_boxed_slice())
            .collect();
        self.clusters.push(Cluster {
            first: toks.clone(),
            template: toks,
            size: 1,
        });
        let id = self.clusters.len() as u32 - 1;
        self.insert(id);
        Some(Learned {
            id: u64::from(id) + 1,
            changed: true,
        })
    }

    /// Serialises the state:
    ///
    /// ```text
    /// state   = u8 version(=1) | u32 depth | u64 similarity(f64 bits) | u32 children_max
    ///           | u32 count | cluster{count}
    /// cluster = u64 size | tokens first | tokens template
    /// tokens  = u32 n | (u32 len | u8{len}){n}
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(STATE_VERSION);
        out.extend_from_slice(&self.config.depth.to_le_bytes());
        out.extend_from_slice(&self.config.similarity.to_bits().to_le_bytes());
        out.extend_from_slice(&self.config.children_max.to_le_bytes());
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

    /// Rebuilds a miner from `encode`'s output.
    pub fn decode(buf: &[u8]) -> Result<Miner, StateError> {
        let mut r = Reader { buf };
        if r.u8()? != STATE_VERSION {
            return Err(StateError("unknown version"));
        }
        let depth = r.u32()?;
        let similarity = f64::from_bits(r.u64()?);
        let children_max = r.u32()?;
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
        });
        for i in 0..count {
            let size = r.u64()?;
            let first = r.tokens()?;
            let template = r.tokens()?;
            if first.len() != template.len() {
                return Err(StateError("template length differs"));
            }
            m.template_bytes += 2 * first.iter().map(|t| t.len() + 16).sum::<usize>();
            m.clusters.push(Cluster {
                first,
                template,
                size,
            });
            m.insert(i as u32);
        }
        if !r.buf.is_empty() {
            return Err(StateError("trailing bytes"));
        }
        Ok(m)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        if self.buf.len() < n {
            return Err(StateError("truncated"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, StateError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn tokens(&mut self) -> Result<Vec<Box<[u8]>>, StateError> {
        let n = self.u32()? as usize;
        // Each token takes at least 4 bytes: bound the allocation by the input.
        let mut v = Vec::with_capacity(n.min(self.buf.len() / 4));
        for _ in 0..n {
            let len = self.u32()? as usize;
            v.push(self.take(len)?.to_vec().into_boxed_slice());
        }
        Ok(v)
    }
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
}
