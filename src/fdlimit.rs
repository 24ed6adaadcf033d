//! The open-file limit behind `maxclients`, as Redis's
//! `adjustOpenFilesLimit` (server.c): every client is a file descriptor, and
//! 32 more are kept for the server's own files (WAL segments, stream logs,
//! listeners). When the soft limit is too low the server raises it if the
//! system lets it; otherwise `maxclients` is lowered to the limit minus the
//! reserve, so extra clients get `-ERR max number of clients reached`
//! instead of an `accept` that fails with EMFILE.

/// Descriptors kept for the server itself (`CONFIG_MIN_RESERVED_FDS`).
pub const RESERVED_FDS: u64 = 32;

/// What `adjust` did, for the caller to log and apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adjusted {
    /// The limit already allowed `maxclients` (nothing changed).
    Enough,
    /// The soft limit was raised from `from` to `to`.
    Raised { from: u64, to: u64 },
    /// The limit could not be raised past `limit`: `maxclients` must become
    /// `maxclients` (the limit minus the reserve). `error` is the OS error of
    /// the last attempt.
    Reduced {
        limit: u64,
        maxclients: u64,
        error: String,
    },
    /// Not even the reserve fits under the limit: the server cannot start.
    TooLow { limit: u64, wanted: u64 },
}

/// Makes the soft `RLIMIT_NOFILE` hold `maxclients` plus the reserve, trying
/// lower values in steps of 16 as Redis does. The hard limit is raised along
/// when the process may (root), never lowered.
pub fn adjust(maxclients: u64) -> Adjusted {
    let wanted = maxclients.saturating_add(RESERVED_FDS);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        // Redis assumes 1024 when the limit cannot be read.
        return reduced_or_too_low(1024, wanted, std::io::Error::last_os_error());
    }
    let old = lim.rlim_cur;
    if old >= wanted {
        return Adjusted::Enough;
    }
    let mut best = wanted;
    let mut error = std::io::Error::from_raw_os_error(0);
    while best > old {
        let new = libc::rlimit {
            rlim_cur: best,
            rlim_max: lim.rlim_max.max(best),
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            break;
        }
        // An unprivileged process cannot pass the hard limit: try it.
        let capped = libc::rlimit {
            rlim_cur: best.min(lim.rlim_max),
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if capped.rlim_cur > old && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) } == 0 {
            error = std::io::Error::from_raw_os_error(libc::EPERM);
            best = capped.rlim_cur;
            break;
        }
        error = std::io::Error::last_os_error();
        if best < 16 {
            best = old;
            break;
        }
        best -= 16;
    }
    let best = best.max(old);
    if best >= wanted {
        Adjusted::Raised {
            from: old,
            to: best,
        }
    } else {
        reduced_or_too_low(best, wanted, error)
    }
}

fn reduced_or_too_low(limit: u64, wanted: u64, error: std::io::Error) -> Adjusted {
    if limit <= RESERVED_FDS {
        Adjusted::TooLow { limit, wanted }
    } else {
        Adjusted::Reduced {
            limit,
            maxclients: limit - RESERVED_FDS,
            error: error.to_string(),
        }
    }
}

/// CONFIG SET maxclients asked for more clients than the descriptor limit
/// allows: Redis's text, with the highest value that fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The operating system is not able to handle the specified number of clients, try with {0}")]
pub struct TooManyClients(pub u64);

/// For CONFIG SET maxclients: `Ok` when the limit holds `maxclients` (after
/// raising it if needed), else the highest value that fits.
pub fn check_runtime(maxclients: u64) -> Result<(), TooManyClients> {
    match adjust(maxclients) {
        Adjusted::Enough | Adjusted::Raised { .. } => Ok(()),
        Adjusted::Reduced { maxclients, .. } => Err(TooManyClients(maxclients)),
        Adjusted::TooLow { .. } => Err(TooManyClients(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_request_fits_the_current_limit() {
        assert_eq!(adjust(1), Adjusted::Enough);
        assert_eq!(check_runtime(1), Ok(()));
    }
}
