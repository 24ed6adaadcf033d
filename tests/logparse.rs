use redlog::logparse::{lines, Ingestor, Registry};
// ---- grouping accuracy on Loghub 2k (GA, as logparser's evaluator) ----

fn loghub(file: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/loghub")
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// RFC 4180 rows (quoted cells may hold commas, quotes doubled), CRLF.
fn csv_rows(text: &[u8]) -> Vec<Vec<String>> {
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
fn grouping_accuracy(truth: &[String], predicted: &[u64]) -> f64 {
    use std::collections::HashMap;
    let mut truth_size: HashMap<&str, usize> = HashMap::new();
    for t in truth {
        *truth_size.entry(t).or_default() += 1;
    }
    let mut groups: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, p) in predicted.iter().enumerate() {
        groups.entry(*p).or_default().push(i);
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

fn ga(dataset: &str, format: &str) -> f64 {
    let log = loghub(&format!("{dataset}_2k.log"));
    let rows = csv_rows(&loghub(&format!("{dataset}_2k.log_structured.csv")));
    let header = &rows[0];
    let col = header.iter().position(|h| h == "EventId").unwrap();
    let truth: Vec<String> = rows[1..].iter().map(|r| r[col].clone()).collect();
    let (f, _) = Registry::new().format(format.as_bytes()).unwrap();
    let mut ing = Ingestor::new(f);
    let mut ids = Vec::new();
    for line in lines(&log) {
        let p = ing
            .parse(line, 2024)
            .unwrap_or_else(|e| panic!("{dataset}: {e}: {line:?}"));
        ids.push(p.learned.unwrap().id);
    }
    assert_eq!(ids.len(), truth.len(), "{dataset} line count");
    let a = grouping_accuracy(&truth, &ids);
    if std::env::var_os("LOGPARSE_GA_DEBUG").is_some() {
        use std::collections::BTreeMap;
        let mut by_pred: BTreeMap<u64, BTreeMap<&str, usize>> = BTreeMap::new();
        let mut by_truth: BTreeMap<&str, BTreeMap<u64, usize>> = BTreeMap::new();
        for (t, p) in truth.iter().zip(&ids) {
            *by_pred.entry(*p).or_default().entry(t).or_default() += 1;
            *by_truth.entry(t).or_default().entry(*p).or_default() += 1;
        }
        let tcol = header.iter().position(|h| h == "EventTemplate").unwrap();
        let ttext: std::collections::HashMap<&str, &str> = rows[1..]
            .iter()
            .map(|r| (r[col].as_str(), r[tcol].as_str()))
            .collect();
        for (p, ts) in &by_pred {
            if ts.len() > 1 {
                eprintln!(
                    "MERGED pred {p} {:?}: {:?}",
                    String::from_utf8_lossy(&ing.miner().cluster(*p).unwrap().template()),
                    ts.iter().map(|(t, n)| (ttext[t], n)).collect::<Vec<_>>()
                );
            }
        }
        for (t, ps) in &by_truth {
            if ps.len() > 1 {
                eprintln!(
                    "SPLIT truth {t} {:?}: {:?}",
                    ttext[t],
                    ps.iter()
                        .map(|(p, n)| (
                            String::from_utf8_lossy(&ing.miner().cluster(*p).unwrap().template())
                                .into_owned(),
                            n
                        ))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
    eprintln!("GA {dataset}: {a:.4} ({} templates)", ing.miner().len());
    a
}

#[test]
fn grouping_accuracy_hdfs() {
    assert!(ga("HDFS", "hdfs") >= 0.998);
}

#[test]
fn grouping_accuracy_bgl() {
    assert!(ga("BGL", "bgl") >= 0.963);
}

#[test]
fn grouping_accuracy_hadoop() {
    assert!(ga("Hadoop", "hadoop") >= 0.948);
}
