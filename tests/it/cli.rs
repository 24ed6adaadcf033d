//! The `redlog` binary's command line: options, exit statuses, `redlog check`.

use redlog::storage::{LogOptions, SegmentedLog, SyncPolicy};
use std::process::Command;

fn redlog(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_redlog"))
        .args(args)
        .output()
        .expect("run redlog")
}

#[test]
fn help_version_and_bad_options() {
    let out = redlog(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: redlog"));
    let out = redlog(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("redlog v="));
    for bad in [
        &["--no-such-option", "1"][..],
        &["--port", "notaport"],
        &["--port"],
        &["/no/such/config.conf"],
    ] {
        let out = redlog(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!out.stderr.is_empty(), "{bad:?} explains itself");
    }
}

#[test]
fn check_finds_and_repairs_mid_log_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    {
        let opts = LogOptions {
            sync: SyncPolicy::No,
            segment_bytes: 4096,
            ..LogOptions::default()
        };
        let (log, _) = SegmentedLog::open(&wal, opts).unwrap();
        for k in 1..=200u128 {
            log.append(k, &[7u8; 100]).unwrap();
        }
        log.sync().unwrap();
    }
    let out = redlog(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Flip a byte inside a record of the first (sealed) segment.
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segs.sort();
    let first = &segs[0];
    let mut bytes = std::fs::read(first).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(first, &bytes).unwrap();

    let out = redlog(&["check", dir.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let name = first.file_name().unwrap().to_str().unwrap();
    assert!(text.contains(name), "names the damaged file: {text}");

    let out = redlog(&["check", "--repair", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = redlog(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "clean after repair: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(redlog(&["check"]).status.code(), Some(2));
}
