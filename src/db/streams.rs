//! The keyspace's side of opening streams after WAL replay. Streams sit
//! below the keyspace (a `Value::Stream` holds a `StreamRef`; `stream`
//! never imports `db`), so walking the keys for their streams happens here
//! and `stream::Registry::attach_refs` does the opening.

use super::{Keyspace, Value};
use crate::stream::{Registry, StreamError};
use std::sync::Arc;

impl Registry {
    /// After WAL replay: opens every stream a key references, removes the
    /// directories no key references, and starts ids after the largest one
    /// seen. A referenced stream that cannot be opened fails the start; a
    /// key whose stream has no directory (only after a power loss that lost
    /// the WAL unit deleting it, under everysec) is removed with a warning.
    pub fn attach(self: &Arc<Self>, ks: &mut Keyspace) -> Result<(), StreamError> {
        let mut refs = Vec::new();
        for (dbi, db) in ks.dbs.iter().enumerate() {
            for (key, e) in db.iter() {
                if let Value::Stream(s) = &e.value {
                    refs.push((dbi, bytes::Bytes::copy_from_slice(key), s.clone()));
                }
            }
        }
        for (dbi, key) in self.attach_refs(refs)? {
            tracing::warn!(
                "stream of key {:?} (db {dbi}) has no directory: key removed",
                String::from_utf8_lossy(&key)
            );
            ks.dbs[dbi].remove(&key);
        }
        Ok(())
    }
}
