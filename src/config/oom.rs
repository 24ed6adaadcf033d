//! `oom-score-adj` and `oom-score-adj-values`: the kernel's OOM-killer
//! preference for this process, written to `/proc/self/oom_score_adj` as
//! Redis's `setOOMScoreAdj` does. `yes`/`relative` add the value to the
//! score the process had before redlog first changed it, `absolute` writes
//! it as is (both clamped to -1000..=1000), `no` puts back the original
//! score if redlog had changed it. redlog is always a master, so the
//! first of the three values applies.

use super::Config;

const PATH: &str = "/proc/self/oom_score_adj";

/// Whether redlog has changed the score, and the score from before.
struct State {
    adjusted: bool,
    base: i64,
}

static STATE: parking_lot::Mutex<State> = parking_lot::Mutex::new(State {
    adjusted: false,
    base: 0,
});

/// Rust's io error text without its "(os error N)" suffix (strerror).
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The three values of `oom-score-adj-values` (master, replica, child).
pub fn values(cfg: &Config) -> [i64; 3] {
    let mut out = [0; 3];
    let text = cfg.get("oom-score-adj-values").unwrap_or("0 200 800");
    for (slot, v) in out.iter_mut().zip(text.split(' ')) {
        *slot = v.parse().unwrap_or(0);
    }
    out
}

/// Redis's warning for values a non-privileged process may not be able
/// to apply (a replica or child below the master would lower the score).
pub fn warn_if_unordered(cfg: &Config) {
    let v = values(cfg);
    if v[1] < v[0] || v[2] < v[1] {
        tracing::warn!("The oom-score-adj-values configuration may not work for non-privileged processes! Please consult the documentation.");
    }
}

/// Why the score could not be applied (Redis's log texts; the cause is
/// `strerror`'s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OomError {
    #[error("Unable to read oom_score_adj: {0}")]
    Read(String),
    #[error("Unable to write oom_score_adj: {0}")]
    Write(String),
}

/// Applies the settings (Redis's `setOOMScoreAdj(-1)`); errors are logged
/// with Redis's texts and returned.
pub fn apply(cfg: &Config) -> Result<(), OomError> {
    let mode = cfg.get("oom-score-adj").unwrap_or("no");
    let mut st = STATE.lock();
    let val = if mode != "no" {
        if !st.adjusted {
            // Marked first, as Redis (a failed read leaves base 0).
            st.adjusted = true;
            let text = std::fs::read_to_string(PATH).map_err(|e| {
                let e = OomError::Read(strerror(&e));
                tracing::warn!("{e}");
                e
            })?;
            // atoi
            st.base = text.trim().parse().unwrap_or(0);
        }
        let mut val = values(cfg)[0];
        if mode != "absolute" {
            val += st.base;
        }
        val.clamp(-1000, 1000)
    } else if st.adjusted {
        st.adjusted = false;
        st.base
    } else {
        return Ok(());
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(PATH)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{val}\n").as_bytes()))
        .map_err(|e| {
            let e = OomError::Write(strerror(&e));
            tracing::warn!("{e}");
            e
        })
}
