//! The `redlog` binary: `redlog [config-file] [--option value ...]`, as
//! redis-server's command line.

use redlog::config::Config;
use std::process::ExitCode;

const USAGE: &str = "Usage: redlog [/path/to/redlog.conf] [--option value ...]
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
        .try_init();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
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
