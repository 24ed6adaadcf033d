//! Built-in formats. `hdfs`, `bgl` and `hadoop` carry the Loghub /
//! logparser Drain benchmark settings (log_format, masks, `st`, `depth`) so
//! their templates match the published accuracy; the others are the formats
//! users expect to find: syslog, nginx/apache combined access logs, logfmt
//! and JSON lines.

use super::format::{Format, FormatSpec};
use std::sync::{Arc, OnceLock};

/// Masks for formats without benchmark settings: IPv4 addresses (with a
/// port), hex numbers, and numbers standing alone or after punctuation.
const GENERIC_MASKS: &[&str] = &[
    r"(\d+\.){3}\d+(:\d+)?",
    r"\b0[xX][0-9a-fA-F]+\b",
    r"\b\d+\b",
];

fn spec(
    log_format: &str,
    masks: &[&str],
    similarity: f64,
    depth: u32,
    time: Option<(&str, &str)>,
) -> FormatSpec {
    let mut s = FormatSpec::new(log_format);
    s.masks = masks.iter().map(|m| m.to_string()).collect();
    s.similarity = similarity;
    s.depth = depth;
    s.time = time.map(|(a, b)| (a.to_string(), b.to_string()));
    s
}

/// The built-in specs, by name, in name order.
pub fn specs() -> Vec<(&'static str, FormatSpec)> {
    let access = r#"<Client> <Ident> <User> \[<Time>\] "<Content>" <Status> <Bytes> "<Referer>" "<UserAgent>""#;
    let access_time = Some(("<Time>", "%d/%b/%Y:%H:%M:%S %z"));
    vec![
        ("apache", spec(access, GENERIC_MASKS, 0.4, 4, access_time)),
        (
            "bgl",
            spec(
                "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
                &[r"core\.\d+"],
                0.5,
                4,
                Some(("<Time>", "%Y-%m-%d-%H.%M.%S.%6f")),
            ),
        ),
        (
            "hadoop",
            spec(
                r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
                &[r"(\d+\.){3}\d+"],
                0.5,
                4,
                Some(("<Date> <Time>", "%Y-%m-%d %H:%M:%S,%3f")),
            ),
        ),
        (
            "hdfs",
            spec(
                "<Date> <Time> <Pid> <Level> <Component>: <Content>",
                &[r"blk_-?\d+", r"(\d+\.){3}\d+(:\d+)?"],
                0.5,
                4,
                Some(("<Date> <Time>", "%y%m%d %H%M%S")),
            ),
        ),
        ("json", spec("json", GENERIC_MASKS, 0.4, 4, None)),
        ("logfmt", spec("logfmt", GENERIC_MASKS, 0.4, 4, None)),
        ("nginx", spec(access, GENERIC_MASKS, 0.4, 4, access_time)),
        ("syslog", spec("syslog", GENERIC_MASKS, 0.4, 4, None)),
    ]
}

/// The compiled built-ins, compiled once per process.
pub fn formats() -> &'static [(&'static str, Arc<Format>)] {
    static ALL: OnceLock<Vec<(&'static str, Arc<Format>)>> = OnceLock::new();
    ALL.get_or_init(|| {
        specs()
            .into_iter()
            .filter_map(|(n, s)| match Format::compile(s) {
                Ok(f) => Some((n, Arc::new(f))),
                Err(e) => {
                    // A built-in that does not compile is a programming
                    // error caught by the unit test below.
                    tracing::error!("built-in format {n} does not compile: {e}");
                    None
                }
            })
            .collect()
    })
}

/// The built-in format `name` (exact, lower-case).
pub fn get(name: &[u8]) -> Option<&'static Arc<Format>> {
    formats()
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|(_, f)| f)
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_compile_and_parse_examples() {
        assert_eq!(super::formats().len(), super::specs().len());
        let cases: &[(&str, &str, &str)] = &[
            (
                "hdfs",
                "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating",
                "2008-11-09T20:36:15",
            ),
            (
                "bgl",
                "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
                "2005-06-03T15:42:50.675872",
            ),
            (
                "hadoop",
                "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster",
                "2015-10-18T18:01:47.978",
            ),
            (
                "nginx",
                r#"93.180.71.3 - - [17/May/2015:08:05:32 +0000] "GET /downloads/product_1 HTTP/1.1" 304 0 "-" "Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.21)""#,
                "2015-05-17T08:05:32+00:00",
            ),
        ];
        for (name, line, iso) in cases {
            let f = super::get(name.as_bytes()).unwrap();
            let r = f.parse(line.as_bytes(), 2024).unwrap();
            assert_eq!(r.ts.map(|t| t.iso()).as_deref(), Some(*iso), "{name}");
        }
    }
}
