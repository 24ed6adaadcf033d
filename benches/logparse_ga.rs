//! LOGPARSE grouping accuracy (GA, as logparser's `evaluator.py`) on the
//! eleven Loghub 2k samples of `tests/data/loghub`: `MINER DRAIN` with the
//! published Drain settings (the built-in formats) against the default
//! (typed) miner with the same settings, per system and on average.
//!
//! Run: `cargo bench --bench logparse_ga`. `tests/it/logparse.rs`
//! (`grouping_accuracy_drain_and_typed`) asserts the same figures.

#[allow(dead_code)]
#[path = "../tests/it/common/loghub.rs"]
mod loghub;

use loghub::{grouping_accuracy, mine, SYSTEMS};
use redlog::logparse::MinerKind;

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    println!(
        "{:<12} {:>8} {:>8} {:>10}",
        "system", "drain", "typed", "templates"
    );
    let (mut sd, mut st) = (0.0, 0.0);
    for (dataset, format) in SYSTEMS {
        let (truth, ids, _) = mine(dataset, format, MinerKind::Drain);
        let d = grouping_accuracy(&truth, &ids);
        let (truth, ids, ing) = mine(dataset, format, MinerKind::Typed);
        let t = grouping_accuracy(&truth, &ids);
        println!("{dataset:<12} {d:>8.4} {t:>8.4} {:>10}", ing.miner().len());
        sd += d;
        st += t;
    }
    let n = SYSTEMS.len() as f64;
    println!("{:<12} {:>8.4} {:>8.4}", "average", sd / n, st / n);
}
