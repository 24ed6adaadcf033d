//! Built-in formats. The Loghub systems (`android`, `apache-error`, `bgl`,
//! `hadoop`, `hdfs`, `healthapp`, `hpc`, `linux`, `mac`, `openssh`,
//! `openstack`, `proxifier`, `spark`, `thunderbird`, `windows`,
//! `zookeeper`) carry logparser's Drain benchmark settings (log_format,
//! masks, `st`, `depth`) so their templates match the published accuracy
//! (Linux's `<Level>` field, which holds the host name, is called `<Host>`
//! here); the others are the formats users expect to find: syslog,
//! nginx/apache combined access logs, logfmt and JSON lines.

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
        (
            "android",
            spec(
                "<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
                &[
                    r"(/[\w-]+)+",
                    r"([\w-]+\.){2,}[\w-]+",
                    r"\b(\-?\+?\d+)\b|\b0[Xx][a-fA-F\d]+\b|\b[a-fA-F\d]{4,}\b",
                ],
                0.2,
                6,
                Some(("<Date> <Time>", "%m-%d %H:%M:%S.%3f")),
            ),
        ),
        ("apache", spec(access, GENERIC_MASKS, 0.4, 4, access_time)),
        (
            "apache-error",
            spec(
                r"\[<Time>\] \[<Level>\] <Content>",
                &[r"(\d+\.){3}\d+"],
                0.5,
                4,
                Some(("<Time>", "%a %b %d %H:%M:%S %Y")),
            ),
        ),
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
        (
            "healthapp",
            spec(
                r"<Time>\|<Component>\|<Pid>\|<Content>",
                &[],
                0.2,
                4,
                Some(("<Time>", "%Y%m%d-%H:%M:%S:%3f")),
            ),
        ),
        (
            "hpc",
            spec(
                "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
                &[r"=\d+"],
                0.5,
                4,
                Some(("<Time>", "%s")),
            ),
        ),
        ("json", spec("json", GENERIC_MASKS, 0.4, 4, None)),
        (
            "linux",
            spec(
                r"<Month> <Date> <Time> <Host> <Component>(\[<PID>\])?: <Content>",
                &[r"(\d+\.){3}\d+", r"\d{2}:\d{2}:\d{2}"],
                0.39,
                6,
                Some(("<Month> <Date> <Time>", "%b %d %H:%M:%S")),
            ),
        ),
        ("logfmt", spec("logfmt", GENERIC_MASKS, 0.4, 4, None)),
        (
            "mac",
            spec(
                r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
                &[r"([\w-]+\.){2,}[\w-]+"],
                0.7,
                6,
                Some(("<Month> <Date> <Time>", "%b %d %H:%M:%S")),
            ),
        ),
        ("nginx", spec(access, GENERIC_MASKS, 0.4, 4, access_time)),
        (
            "openssh",
            spec(
                r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
                &[r"(\d+\.){3}\d+", r"([\w-]+\.){2,}[\w-]+"],
                0.6,
                5,
                Some(("<Date> <Day> <Time>", "%b %d %H:%M:%S")),
            ),
        ),
        (
            "openstack",
            spec(
                r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
                &[r"((\d+\.){3}\d+,?)+", r"/.+?\s", r"\d+"],
                0.5,
                5,
                Some(("<Date> <Time>", "%Y-%m-%d %H:%M:%S.%3f")),
            ),
        ),
        (
            "proxifier",
            spec(
                r"\[<Time>\] <Program> - <Content>",
                &[
                    r"<\d+\ssec",
                    r"([\w-]+\.)+[\w-]+(:\d+)?",
                    r"\d{2}:\d{2}(:\d{2})*",
                    r"[KGTM]B",
                ],
                0.6,
                3,
                Some(("<Time>", "%m.%d %H:%M:%S")),
            ),
        ),
        (
            "spark",
            spec(
                "<Date> <Time> <Level> <Component>: <Content>",
                &[r"(\d+\.){3}\d+", r"\b[KGTM]?B\b", r"([\w-]+\.){2,}[\w-]+"],
                0.5,
                4,
                Some(("<Date> <Time>", "%y/%m/%d %H:%M:%S")),
            ),
        ),
        ("syslog", spec("syslog", GENERIC_MASKS, 0.4, 4, None)),
        (
            "thunderbird",
            spec(
                r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>",
                &[r"(\d+\.){3}\d+"],
                0.5,
                4,
                Some(("<Timestamp>", "%s")),
            ),
        ),
        (
            "windows",
            spec(
                "<Date> <Time>, <Level>                  <Component>    <Content>",
                &[r"0x.*?\s"],
                0.7,
                5,
                Some(("<Date> <Time>", "%Y-%m-%d %H:%M:%S")),
            ),
        ),
        (
            "zookeeper",
            spec(
                r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
                &[r"(/|)(\d+\.){3}\d+(:\d+)?"],
                0.5,
                4,
                Some(("<Date> <Time>", "%Y-%m-%d %H:%M:%S,%3f")),
            ),
        ),
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
            (
                "spark",
                "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]",
                "2017-06-09T20:10:40",
            ),
            (
                "zookeeper",
                "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200",
                "2015-07-29T17:41:44.747",
            ),
            (
                "hpc",
                "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component is in the unavailable state (HWID=1973)",
                "2004-02-26T14:12:22+00:00",
            ),
            (
                "thunderbird",
                "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root",
                "2005-11-09T20:01:01+00:00",
            ),
            (
                "linux",
                "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0",
                "2024-06-14T15:16:01",
            ),
            (
                "mac",
                "Jul  1 09:00:55 calvisitor-10-105-160-95 kernel[0]: IOThunderboltSwitch<0>(0x0)::listenerCallback - Thunderbolt HPD packet",
                "2024-07-01T09:00:55",
            ),
            (
                "android",
                "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening app wtoken = AppWindowToken{9f4ef63}",
                "2024-03-17T16:13:38.811",
            ),
            (
                "healthapp",
                "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
                "2017-12-23T22:15:29.606",
            ),
            (
                "windows",
                r"2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601.23505 with Core: C:\Windows\winsxs\cbscore.dll",
                "2016-09-28T04:30:30",
            ),
            (
                "openstack",
                r#"nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [req-38101a0b-2096 113d3a99 54fadb41 - - -] 10.11.10.1 "GET /v2/54fadb41/servers/detail HTTP/1.1" status: 200 len: 1893 time: 0.2477829"#,
                "2017-05-16T00:00:00.008",
            ),
            (
                "proxifier",
                "[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS",
                "2024-10-30T16:49:06",
            ),
            (
                "openssh",
                "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.example.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!",
                "2024-12-10T06:55:46",
            ),
            (
                "apache-error",
                "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
                "2005-12-04T04:47:44",
            ),
        ];
        for (name, line, iso) in cases {
            let f = super::get(name.as_bytes()).unwrap();
            let r = f.parse(line.as_bytes(), 2024).unwrap();
            assert_eq!(r.ts.map(|t| t.iso()).as_deref(), Some(*iso), "{name}");
        }
    }
}
