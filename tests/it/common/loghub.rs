//! Loghub 2k samples (tests/data/loghub, copied byte for byte with their
//! licence and attribution) and logparser's grouping
//! accuracy, for the LOGPARSE accuracy tests.

use std::collections::HashMap;
use std::hash::Hash;

/// A file of tests/data/loghub.
pub fn loghub(file: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/loghub")
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The EventId column of a Loghub structured CSV: the ground-truth group
/// of each line.
pub fn truth_ids(text: &[u8]) -> Vec<String> {
    let rows = csv_rows(text);
    let col = rows[0].iter().position(|h| h == "EventId").unwrap();
    rows[1..].iter().map(|r| r[col].clone()).collect()
}

/// RFC 4180 rows (quoted cells may hold commas, quotes doubled), CRLF.
pub fn csv_rows(text: &[u8]) -> Vec<Vec<String>> {
    let s = String::from_utf8_lossy(text);
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

/// logparser's `get_accuracy`: a predicted group counts (all its lines)
/// when its lines are exactly the lines of one ground-truth event.
pub fn grouping_accuracy<P: Eq + Hash>(truth: &[String], predicted: &[P]) -> f64 {
    let mut truth_size: HashMap<&str, usize> = HashMap::new();
    for t in truth {
        *truth_size.entry(t).or_default() += 1;
    }
    let mut groups: HashMap<&P, Vec<usize>> = HashMap::new();
    for (i, p) in predicted.iter().enumerate() {
        groups.entry(p).or_default().push(i);
    }
    let mut accurate = 0;
    for lines in groups.values() {
        let first = &truth[lines[0]];
        if lines.iter().all(|&i| &truth[i] == first) && truth_size[first.as_str()] == lines.len() {
            accurate += lines.len();
        }
    }
    accurate as f64 / truth.len() as f64
}

/// The eleven Loghub systems of tests/data/loghub with their built-in
/// format.
pub const SYSTEMS: [(&str, &str); 11] = [
    ("HDFS", "hdfs"),
    ("Hadoop", "hadoop"),
    ("Spark", "spark"),
    ("Zookeeper", "zookeeper"),
    ("BGL", "bgl"),
    ("HPC", "hpc"),
    ("Thunderbird", "thunderbird"),
    ("Linux", "linux"),
    ("Android", "android"),
    ("HealthApp", "healthapp"),
    ("Mac", "mac"),
];

/// The ground truth of `dataset`'s 2k sample, and the template ids a
/// fresh ingestor of built-in format `format` (its Loghub settings) with
/// miner `kind` gives its lines, with that ingestor.
pub fn mine(
    dataset: &str,
    format: &str,
    kind: redlog::logparse::MinerKind,
) -> (Vec<String>, Vec<u64>, redlog::logparse::Ingestor) {
    use redlog::logparse::{builtin, lines, Format, Ingestor};
    let log = loghub(&format!("{dataset}_2k.log"));
    let truth = truth_ids(&loghub(&format!("{dataset}_2k.log_structured.csv")));
    let (_, mut spec) = builtin::specs()
        .into_iter()
        .find(|(n, _)| *n == format)
        .unwrap_or_else(|| panic!("no built-in {format}"));
    spec.miner = kind;
    let mut ing = Ingestor::new(std::sync::Arc::new(Format::compile(spec).unwrap()));
    let mut ids = Vec::new();
    for line in lines(&log) {
        let p = ing
            .parse(line, 2024)
            .unwrap_or_else(|e| panic!("{dataset}: {e}: {line:?}"));
        ids.push(p.learned.unwrap().id);
    }
    assert_eq!(ids.len(), truth.len(), "{dataset} line count");
    (truth, ids, ing)
}
