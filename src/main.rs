//! The `redlog` binary: `redlog [config-file] [--option value ...]`, as
//! redis-server's command line.

use redlog::config::Config;
use std::process::ExitCode;

const USAGE: &str = "Usage: redlog [/path/to/redlog.conf] [--option value ...]
       redlog check [--repair] <dir>
       redlog import-rdb <dump.rdb> [config-file] [--option value ...]
       redlog export-rdb <dir> <file>
       redlog --version
       redlog --help

Options are redis.conf directives, e.g.:
       redlog --port 6380 --dir /var/lib/redlog --appendfsync everysec
       redlog /etc/redlog.conf --loglevel verbose

Defaults: bind 127.0.0.1, port 6379, dir ./redlog-data.";

/// `logfile` could not be opened (Redis's text).
#[derive(Debug, thiserror::Error)]
#[error("Can't open the log file: {0}")]
struct LogFileError(std::io::Error);

/// The log: stderr or `logfile`, in redis-server's line format, and the
/// system log too with `syslog-enabled yes`.
fn init_tracing(
    level: &str,
    logfile: &str,
    syslog: Option<(&str, &str)>,
) -> Result<(), LogFileError> {
    use tracing_subscriber::layer::SubscriberExt;
    let filter = match level {
        "debug" => "debug",
        "verbose" => "debug",
        "notice" => "info",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .event_format(RedisLogFormat);
    let syslog_layer = syslog.map(|(ident, facility)| {
        redlog::syslog::open(
            ident,
            redlog::syslog::facility(facility).unwrap_or(libc::LOG_LOCAL0),
        );
        redlog::syslog::Layer {
            sink: redlog::syslog::send,
        }
    });
    if logfile.is_empty() {
        let sub = builder
            .with_writer(std::io::stderr)
            .finish()
            .with(syslog_layer);
        let _ = tracing::subscriber::set_global_default(sub);
    } else {
        // `logfile <path>`: appended to, as redis-server does.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logfile)
            .map_err(LogFileError)?;
        let sub = builder
            .with_writer(std::sync::Mutex::new(file))
            .finish()
            .with(syslog_layer);
        let _ = tracing::subscriber::set_global_default(sub);
    }
    Ok(())
}

/// Events with this target are written raw, without the line prefix
/// (Redis's LL_RAW: the ASCII logo).
const RAW_TARGET: &str = "redlog::raw";

/// Redis's `redisAsciiArt`: the logo when the log is a terminal's (no
/// syslog, no log file, stdout a tty) or `always-show-logo yes`, else one
/// `Running mode=..., port=...` line.
fn ascii_art(config: &Config) {
    let port = if config.port != 0 {
        config.port.to_string()
    } else {
        config.get("tls-port").unwrap_or("0").to_string()
    };
    // SAFETY: isatty on a standard descriptor.
    let tty = unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1;
    let show = (config.get("syslog-enabled") != Some("yes")
        && config.get("logfile").unwrap_or("").is_empty()
        && tty)
        || config.get("always-show-logo") == Some("yes");
    if !show {
        tracing::info!("Running mode=standalone, port={port}.");
        return;
    }
    let version = format!(
        "redlog {} (Redis {} compatible) {} bit",
        redlog::VERSION,
        redlog::REDIS_COMPAT_VERSION,
        usize::BITS
    );
    let logo = format!(
        r#"                _._                                                  
           _.-``__ ''-._                                             
      _.-``    `.  `_.  ''-._           {version}
  .-`` .-```.  ```\/    _.,_ ''-._                                  
 (    '      ,       .-`  | `,    )     Running in standalone mode
 |`-._`-...-` __...-.``-._|'` _.-'|     Port: {port}
 |    `-._   `._    /     _.-'    |     PID: {pid}
  `-._    `-._  `-./  _.-'    _.-'                                   
 |`-._`-._    `-.__.-'    _.-'_.-'|                                  
 |    `-._`-._        _.-'_.-'    |                                  
  `-._    `-._`-.__.-'_.-'    _.-'                                   
 |`-._`-._    `-.__.-'    _.-'_.-'|                                  
 |    `-._`-._        _.-'_.-'    |                                  
  `-._    `-._`-.__.-'_.-'    _.-'                                   
      `-._    `-.__.-'    _.-'                                       
          `-._        _.-'                                           
              `-.__.-'                                               
"#,
        pid = std::process::id()
    );
    tracing::info!(target: RAW_TARGET, "{logo}");
}

/// redis-server's log line: `pid:M dd Mon yyyy hh:mm:ss.mmm <c> message`
/// (`S` instead of `M` on a replica)
/// in local time, where `<c>` is `.` debug, `-` verbose, `*` notice, `#`
/// warning, so tools that read Redis logs (or wait for `Ready to accept
/// connections`) read redlog's. Fields of an event follow its message.
struct RedisLogFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for RedisLogFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if event.metadata().target() == RAW_TARGET {
            ctx.field_format().format_fields(writer.by_ref(), event)?;
            return writeln!(writer);
        }
        let mark = match *event.metadata().level() {
            tracing::Level::ERROR | tracing::Level::WARN => '#',
            tracing::Level::INFO => '*',
            tracing::Level::DEBUG => '-',
            tracing::Level::TRACE => '.',
        };
        // `M` for a primary, `S` for a replica, as redis-server.
        let role =
            if redlog::server::replica::LOG_AS_REPLICA.load(std::sync::atomic::Ordering::Relaxed) {
                'S'
            } else {
                'M'
            };
        write!(
            writer,
            "{}:{role} {} {} ",
            std::process::id(),
            local_timestamp(),
            mark
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// `02 Dec 2026 07:14:05.017` in local time (Redis's `%d %b %Y %H:%M:%S.`
/// plus milliseconds).
fn local_timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes only into the struct we pass.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        tm.tm_mday,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis()
    )
}

/// `daemonize yes`: fork, the parent exits 0, the child leaves the
/// terminal's session and its standard streams point at /dev/null (as
/// redis-server's `daemonize`). Must run before any thread starts.
fn daemonize() -> std::io::Result<()> {
    // SAFETY: called from main before the runtime or any other thread
    // exists; the child only continues the single-threaded program.
    unsafe {
        match libc::fork() {
            -1 => return Err(std::io::Error::last_os_error()),
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

/// The pid file (`pidfile`, or Redis's default path when daemonized with
/// none set); removed again at a clean exit.
struct PidFile(Option<std::path::PathBuf>);

impl PidFile {
    fn create(config: &Config) -> PidFile {
        let path = match config.get("pidfile") {
            Some(p) if !p.is_empty() => p.to_string(),
            _ if config.get("daemonize") == Some("yes") => "/var/run/redis.pid".to_string(),
            _ => return PidFile(None),
        };
        match std::fs::write(&path, format!("{}\n", std::process::id())) {
            Ok(()) => PidFile(Some(path.into())),
            Err(e) => {
                tracing::warn!("Failed to write PID file: {e}");
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
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
        unit_keys: Some(&redlog::node::persist::unit_keys),
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

/// The RDB file to import at start: `dir/dbfilename` when it exists and
/// the data directory has no WAL yet (a new data directory).
fn startup_rdb(config: &Config) -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(&config.dir);
    let file = dir.join(config.get("dbfilename").filter(|f| !f.is_empty())?);
    (config.appendonly && !dir.join("wal").exists() && file.is_file()).then_some(file)
}

/// Why `import-rdb` or `export-rdb` failed.
#[derive(Debug, thiserror::Error)]
enum ToolError {
    #[error("config: {0}")]
    Config(redlog::config::StartupError),
    /// The tokio runtime could not be built.
    #[error("{0}")]
    Runtime(std::io::Error),
    #[error("cannot start: {0}")]
    Start(std::io::Error),
    /// The blocking task running the transfer panicked.
    #[error("{0}")]
    Task(tokio::task::JoinError),
    #[error("{0}")]
    Transfer(#[from] redlog::node::rdb_io::RdbIoError),
    /// Writing the exported file (or renaming it into place) failed.
    #[error("{0}")]
    Write(std::io::Error),
}

/// Runs `f` against an in-process server on `config` (listening on a
/// free local port only), then shuts it down, making the WAL durable.
fn with_local_server<T: Send + 'static>(
    mut config: Config,
    f: impl FnOnce(
            &std::sync::Arc<redlog::node::Shared>,
            std::net::SocketAddr,
        ) -> Result<T, redlog::node::rdb_io::RdbIoError>
        + Send
        + 'static,
) -> Result<T, ToolError> {
    config
        .set_startup("port", "0")
        .and_then(|_| config.set_startup("bind", "127.0.0.1"))
        .map_err(ToolError::Config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ToolError::Runtime)?;
    runtime.block_on(async move {
        let server = redlog::server::spawn(config)
            .await
            .map_err(ToolError::Start)?;
        let (shared, addr) = (server.shared().clone(), server.local_addr());
        let r = tokio::task::spawn_blocking(move || f(&shared, addr))
            .await
            .map_err(ToolError::Task)?;
        server.shutdown().await;
        Ok(r?)
    })
}

/// `redlog import-rdb <dump.rdb> [config]`: loads an RDB file of Redis
/// 6.0-7.0 into the data directory the configuration names.
fn import_rdb(args: &[String]) -> ExitCode {
    let Some((file, rest)) = args.split_first() else {
        eprintln!("Usage: redlog import-rdb <dump.rdb> [config-file] [--option value ...]");
        return ExitCode::from(2);
    };
    let config = match Config::from_args(rest, redlog::commands::table()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redlog import-rdb: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = init_tracing("notice", "", None);
    let data = match std::fs::read(file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("redlog import-rdb: {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    match with_local_server(config, move |_, addr| {
        redlog::node::rdb_io::import(addr, &data)
    }) {
        Ok(keys) => {
            println!(
                "imported {keys} keys from {file} in {:.3} seconds",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redlog import-rdb: {file}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `redlog export-rdb <dir> <file>`: writes the data directory `dir` as an
/// RDB file redis-server 7.0 loads.
fn export_rdb(args: &[String]) -> ExitCode {
    let [dir, file] = args else {
        eprintln!("Usage: redlog export-rdb <dir> <file>");
        return ExitCode::from(2);
    };
    let config = match Config::from_args(
        &["--dir".to_string(), dir.clone()],
        redlog::commands::table(),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redlog export-rdb: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = init_tracing("warning", "", None);
    let r = with_local_server(config, |shared, addr| {
        redlog::node::rdb_io::export(shared, addr)
    })
    .and_then(|(bytes, keys)| {
        let tmp = format!("{file}.tmp");
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::rename(&tmp, file))
            .map_err(ToolError::Write)?;
        Ok(keys)
    });
    match r {
        Ok(keys) => {
            println!("exported {keys} keys to {file}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redlog export-rdb: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => return check(&args[1..]),
        Some("import-rdb") => return import_rdb(&args[1..]),
        Some("export-rdb") => return export_rdb(&args[1..]),
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
    let config = match Config::from_args(&args, redlog::commands::table()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redlog: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if config.get("daemonize") == Some("yes") {
        if let Err(e) = daemonize() {
            eprintln!("redlog: cannot daemonize: {e}");
            return ExitCode::FAILURE;
        }
    }
    // After the fork: jemalloc's purging thread gives freed pages back to
    // the OS while the server idles (Redis's `jemalloc-bg-thread yes`).
    redlog::db::memory::start_background_purge();
    let syslog = (config.get("syslog-enabled") == Some("yes")).then(|| {
        (
            config.get("syslog-ident").unwrap_or("redis"),
            config.get("syslog-facility").unwrap_or("local0"),
        )
    });
    if let Err(e) = init_tracing(
        &config.loglevel,
        config.get("logfile").unwrap_or(""),
        syslog,
    ) {
        eprintln!("redlog: {e}");
        return ExitCode::FAILURE;
    }
    tracing::warn!("oO0OoO0OoO0Oo redlog is starting oO0OoO0OoO0Oo");
    tracing::warn!(
        "redlog version={}, bits={}, pid={}, just started",
        redlog::VERSION,
        usize::BITS,
        std::process::id()
    );
    match &config.config_file {
        Some(_) => tracing::warn!("Configuration loaded"),
        None => tracing::warn!("Warning: no config file specified, using the default config. In order to specify a config file use redlog /path/to/redlog.conf"),
    }
    ascii_art(&config);
    let ignored = config.no_effect_settings();
    if !ignored.is_empty() {
        tracing::warn!(
            "These settings are accepted for compatibility with redis-server but have no effect in redlog: {}",
            ignored.join(", ")
        );
    }
    if config.is_given("oom-score-adj-values") {
        redlog::config::oom::warn_if_unordered(&config);
    }
    let _pidfile = PidFile::create(&config);
    let supervision = redlog::supervise::mode(&config);
    redlog::supervise::starting(supervision);
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
        // Handlers first: a signal during loading is not the default
        // (immediate death) but a shutdown once the server is up.
        let signals = match ShutdownSignals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("redlog: cannot install signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (up_tx, up_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(signals.serve(up_rx));
        let startup_rdb = startup_rdb(&config);
        let server = match redlog::server::spawn(config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot start the server: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(path) = startup_rdb {
            let mut addr = server.local_addr();
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            tracing::info!(
                "The data directory is new and {} exists: importing it",
                path.display()
            );
            let started = std::time::Instant::now();
            let r = tokio::task::spawn_blocking(move || {
                let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                redlog::node::rdb_io::import(addr, &data).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            match r {
                Ok(keys) => tracing::info!(
                    "RDB import done: {keys} keys in {:.3} seconds",
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => {
                    tracing::error!("RDB import failed: {e}");
                    server.shutdown().await;
                    return ExitCode::FAILURE;
                }
            }
        }
        let _ = up_tx.send(server.shared().clone());
        redlog::supervise::ready(supervision);
        // Redis's setOOMScoreAdj(-1) before its event loop; a failure is
        // logged and the server serves on.
        let _ = redlog::config::oom::apply(&server.shared().config.read());
        let shared = server.shared().clone();
        tokio::spawn(async move {
            shared.shutdown_requested().await;
            redlog::supervise::stopping(supervision);
        });
        server.wait().await;
        tracing::warn!("redlog is now ready to exit, bye bye...");
        ExitCode::SUCCESS
    })
}

/// SIGTERM and SIGINT, as redis-server handles them: the first schedules
/// the shutdown SHUTDOWN performs (stop accepting, let connections finish
/// their batch, flush and fsync the WAL and stream logs, exit 0); a second
/// one during the shutdown exits at once with status 1.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    async fn serve(
        mut self,
        up: tokio::sync::oneshot::Receiver<std::sync::Arc<redlog::node::Shared>>,
    ) {
        let name = self.next().await;
        tracing::warn!("Received {name} scheduling shutdown...");
        tokio::select! {
            shared = up => {
                if let Ok(shared) = shared {
                    tracing::warn!("User requested shutdown...");
                    shared.request_shutdown();
                }
            }
            _ = self.next() => insist(),
        }
        self.next().await;
        insist();
    }
}

fn insist() -> ! {
    tracing::warn!("You insist... exiting now.");
    std::process::exit(1);
}
