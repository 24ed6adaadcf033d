//! The `redlog` binary: `redlog [config-file] [--option value ...]`, as
//! redis-server's command line.

use redlog::config::Config;
use std::process::ExitCode;

const USAGE: &str = "Usage: redlog [/path/to/redlog.conf] [--option value ...]
       redlog check [--repair] <dir>
       redlog --version
       redlog --help

Options are redis.conf directives, e.g.:
       redlog --port 6380 --dir /var/lib/redlog --appendfsync everysec
       redlog /etc/redlog.conf --loglevel verbose

Defaults: bind 127.0.0.1, port 6379, dir ./redlog-data.";

fn init_tracing(level: &str) {
    let filter = match level {
        "debug" => "debug",
        "verbose" => "debug",
        "notice" => "info",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// `redlog check [--repair] <dir>`: verifies (and optionally repairs)
/// every log under a data directory. Exit status 0 when clean (or repaired),
/// 1 when problems remain, 2 on a usage error.
fn check(args: &[String]) -> ExitCode {
    let (repair, dir) = match args {
        [dir] if !dir.starts_with("--") => (false, dir),
        [flag, dir] if flag == "--repair" => (true, dir),
        _ => {
            eprintln!("Usage: redlog check [--repair] <dir>");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout();
    let opts = redlog::storage::CheckOptions {
        repair,
        unit_keys: Some(&redlog::server::persist::unit_keys),
    };
    let fs = redlog::storage::RealFs;
    match redlog::storage::check_dir_opts(&fs, std::path::Path::new(dir), &opts, &mut stdout) {
        // After a repair every problem found was cut away (and printed).
        Ok(summary) if summary.is_clean() || repair => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("redlog check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => return check(&args[1..]),
        Some("--help") | Some("-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("--version") | Some("-v") => {
            println!(
                "redlog v={} (Redis {} compatible)",
                redlog::VERSION,
                redlog::REDIS_COMPAT_VERSION
            );
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redlog: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.loglevel);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.io_threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("redlog: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match redlog::server::spawn(config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot start the server: {e}");
                return ExitCode::FAILURE;
            }
        };
        let shared = server.shared().clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("received SIGINT, shutting down");
                shared.request_shutdown();
            }
        });
        server.wait().await;
        tracing::info!("redlog is now ready to exit, bye bye...");
        ExitCode::SUCCESS
    })
}
