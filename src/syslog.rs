//! `syslog-enabled`, `syslog-ident`, `syslog-facility`: every log line
//! also goes to the system log through libc's `openlog`/`syslog`, as
//! redis-server's `serverLogRaw` sends it: the message without the
//! `pid:M date` prefix, at the priority of its level (Redis's
//! `syslogLevelMap`: debug LOG_DEBUG, verbose LOG_INFO, notice LOG_NOTICE,
//! warning LOG_WARNING).

use std::ffi::CString;
use tracing::field::{Field, Visit};

/// The facility a `syslog-facility` name stands for (the names Redis's
/// config accepts: `user`, `local0` .. `local7`).
pub fn facility(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "user" => libc::LOG_USER,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => return None,
    })
}

/// The syslog priority of a tracing level, as redlog maps Redis's levels
/// onto tracing's (warning: WARN and ERROR, notice: INFO, verbose: DEBUG,
/// debug: TRACE).
pub fn priority(level: &tracing::Level) -> libc::c_int {
    match *level {
        tracing::Level::ERROR | tracing::Level::WARN => libc::LOG_WARNING,
        tracing::Level::INFO => libc::LOG_NOTICE,
        tracing::Level::DEBUG => libc::LOG_INFO,
        tracing::Level::TRACE => libc::LOG_DEBUG,
    }
}

/// Redis's `openlog(ident, LOG_PID | LOG_NDELAY | LOG_NOWAIT, facility)`.
/// The ident must outlive every later `syslog` call: it is leaked (once
/// per process).
pub fn open(ident: &str, facility: libc::c_int) {
    let ident = CString::new(ident.replace('\0', "")).unwrap_or_default();
    let ident: &'static std::ffi::CStr = Box::leak(ident.into_boxed_c_str());
    // SAFETY: `ident` lives for the rest of the process, as openlog needs.
    unsafe {
        libc::openlog(
            ident.as_ptr(),
            libc::LOG_PID | libc::LOG_NDELAY | libc::LOG_NOWAIT,
            facility,
        )
    };
}

/// Sends one message at `priority` (`syslog(priority, "%s", msg)`).
pub fn send(priority: libc::c_int, msg: &str) {
    let Ok(msg) = CString::new(msg.replace('\0', "")) else {
        return;
    };
    // SAFETY: a constant format with one C string argument.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr()) };
}

/// The text of an event as the log prints it after the prefix: the
/// message, then ` name=value` for each other field.
pub fn event_text(event: &tracing::Event<'_>) -> String {
    struct Text(String, String);
    impl Visit for Text {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.0.push_str(value);
            } else {
                self.1.push_str(&format!(" {}={value}", field.name()));
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0.push_str(&format!("{value:?}"));
            } else {
                self.1.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
    }
    let mut t = Text(String::new(), String::new());
    event.record(&mut t);
    t.0 + &t.1
}

/// A tracing layer handing every event that passes the filter to `sink`
/// (`send` in the server; a recorder in tests).
pub struct Layer<F: Fn(libc::c_int, &str) + Send + Sync + 'static> {
    pub sink: F,
}

impl<S, F> tracing_subscriber::Layer<S> for Layer<F>
where
    S: tracing::Subscriber,
    F: Fn(libc::c_int, &str) + Send + Sync + 'static,
{
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        (self.sink)(priority(event.metadata().level()), &event_text(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn facilities_are_redis_names() {
        assert_eq!(facility("local0"), Some(libc::LOG_LOCAL0));
        assert_eq!(facility("local7"), Some(libc::LOG_LOCAL7));
        assert_eq!(facility("user"), Some(libc::LOG_USER));
        assert_eq!(facility("daemon"), None);
    }

    #[test]
    fn events_reach_the_sink_at_redis_priorities() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let sub = tracing_subscriber::registry().with(Layer {
            sink: move |p, m: &str| g.lock().unwrap().push((p, m.to_string())),
        });
        tracing::subscriber::with_default(sub, || {
            tracing::warn!("disk is {}", "full");
            tracing::info!(port = 6379, "Ready to accept connections");
            tracing::debug!("verbose line");
            tracing::trace!("debug line");
        });
        assert_eq!(
            *got.lock().unwrap(),
            vec![
                (libc::LOG_WARNING, "disk is full".to_string()),
                (
                    libc::LOG_NOTICE,
                    "Ready to accept connections port=6379".to_string()
                ),
                (libc::LOG_INFO, "verbose line".to_string()),
                (libc::LOG_DEBUG, "debug line".to_string()),
            ]
        );
    }
}
