//! Argument parsing and reply pieces shared by several command families:
//! the HELP reply of container commands, COUNT arguments of the random
//! sampling commands, and the options and replies of the per-key SCANs.
//! They live here, not in one family's file, so that families do not
//! import each other.

use super::keys::SCAN_COUNT_DEFAULT;
use super::{arg_i64, is_opt, CmdError, Ctx};
use bytes::Bytes;

/// Writes a help reply: the first line then the others, as simple strings
/// (Redis's `addReplyHelp`).
pub fn help_reply(ctx: &mut Ctx, container: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        ctx.out.simple(l);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Prints this help.");
}

/// A count argument bounded as Redis's `getRangeLongFromObjectOrReply`
/// with -LONG_MAX..LONG_MAX.
pub(super) fn arg_count(a: &[u8]) -> Result<i64, CmdError> {
    let n = arg_i64(a)?;
    if n == i64::MIN {
        return Err(CmdError::new(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok(n)
}

/// SCAN options of HSCAN / SSCAN (Redis's `scanGenericCommand` on a
/// collection: COUNT and MATCH; TYPE is a syntax error).
pub(super) struct ScanOpts<'a> {
    pub count: usize,
    pub pattern: Option<&'a Bytes>,
}

pub(super) fn parse_scan_opts(args: &[Bytes], start: usize) -> Result<ScanOpts<'_>, CmdError> {
    let mut o = ScanOpts {
        count: SCAN_COUNT_DEFAULT,
        pattern: None,
    };
    let mut i = start;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if is_opt(&args[i], "count") && more {
            let n = arg_i64(&args[i + 1])?;
            if n < 1 {
                return Err(CmdError::syntax());
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is_opt(&args[i], "match") && more {
            o.pattern = Some(&args[i + 1]).filter(|p| p.as_ref() != b"*");
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    Ok(o)
}

/// The reply of a scan with nothing to iterate (`shared.emptyscan`).
pub(super) fn empty_scan(ctx: &mut Ctx) {
    ctx.out.array(2);
    ctx.out.bulk(b"0");
    ctx.out.array(0);
}

pub(super) fn invalid_cursor() -> CmdError {
    CmdError::new("ERR invalid cursor")
}

/// `h`'s CLIENT LIST / CLIENT INFO line (`ClientHandle::info_line`), its
/// `cmd=` field named from the command table.
pub fn client_info_line(h: &crate::node::ClientHandle) -> String {
    let cmd = super::table()
        .entries
        .get(h.last_cmd.load(std::sync::atomic::Ordering::Relaxed))
        .map_or("NULL", |e| e.full_name.as_str());
    h.info_line(cmd)
}
