//! RESP wire protocol: decoding client requests (multibulk and inline) and
//! encoding replies in RESP2 or RESP3.
//!
//! Requests are decoded by hand rather than with a generic RESP decoder because
//! a server must reproduce Redis's exact behaviour at the edges: its protocol
//! error strings byte for byte, its limits checked from the headers alone
//! (a `$600000000` header is refused before any payload arrives), the
//! unauthenticated-client limits, and inline commands with redis-server's
//! quoting rules. Replies are written straight into the connection's output
//! buffer so a pipelined batch goes out in one write.
//!
//! This module knows nothing of the database, files or sockets.

pub mod parse;
mod reply;

pub use parse::{parse_request, split_args, Decoder, ParseLimits, Parsed, ProtocolError};
pub use reply::{format_double, Out};
