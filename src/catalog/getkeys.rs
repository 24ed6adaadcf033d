//! The keys of the commands whose key specs cannot say (Redis 7.0's
//! `sortGetKeys`, `migrateGetKeys`): `Table::keys` and the ACL check use
//! them.

use super::is_opt;
use bytes::Bytes;

/// Redis's `sortGetKeys`: the sorted key, and the last STORE's key.
pub fn sort(args: &[Bytes]) -> Vec<usize> {
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is_opt(a, "limit") {
            i += 2;
        } else if is_opt(a, "get") || is_opt(a, "by") {
            i += 1;
        } else if is_opt(a, "store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store);
    keys
}

/// MIGRATE's keys (Redis 7.0's `migrateGetKeys`): argument 3, or the
/// arguments after a KEYS option (AUTH and AUTH2 values skipped); none
/// when KEYS comes with a non-empty key argument.
pub fn migrate(args: &[Bytes]) -> &[Bytes] {
    if args.len() < 4 {
        return &[];
    }
    let mut i = 6;
    while i < args.len() {
        if is_opt(&args[i], "keys") {
            if !args[3].is_empty() {
                return &[];
            }
            return &args[i + 1..];
        }
        if is_opt(&args[i], "auth") {
            i += 1;
        } else if is_opt(&args[i], "auth2") {
            i += 2;
        }
        i += 1;
    }
    &args[3..4]
}
