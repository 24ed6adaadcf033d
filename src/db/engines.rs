//! The two Lua engines as the keyspace holds them: the EVAL script cache
//! ([`ScriptCache`], `scripting::Scripting`) and the function libraries
//! ([`FunctionLibrary`], `scripting::functions::Functions`), and INFO's
//! figures of both as of their last change or call.
//!
//! `scripting` sits above `db` (it runs commands), so the keyspace knows
//! the engines through these traits: what replay, snapshots and the
//! pause check need. The command handlers that run scripts downcast to
//! the one implementation (`as_any_mut`).

use bytes::Bytes;
use std::any::Any;
use std::fmt;

/// The EVAL engine (`Keyspace::scripting`).
pub trait ScriptCache: Send + fmt::Debug {
    /// The flags of a cached script by its SHA1 (lower-case hex).
    fn flags_of(&self, sha: &str) -> Option<u32>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A logged change of the function libraries (WAL replay, a replica's
/// stream): `Effect::FunctionLoad`, `FunctionDelete`, `FunctionFlush`,
/// `FunctionRestore`.
#[derive(Debug, Clone, Copy)]
pub enum LibraryChange<'a> {
    Load {
        code: &'a Bytes,
        replace: bool,
    },
    Delete {
        name: &'a [u8],
    },
    Flush,
    Restore {
        codes: &'a [Bytes],
        policy: RestorePolicy,
    },
}

/// Why a logged library change no longer applies (its text).
pub type LibraryError = Box<dyn std::error::Error + Send + Sync>;

/// The function libraries (`Keyspace::functions`).
pub trait FunctionLibrary: Send + fmt::Debug {
    /// Applies a logged change.
    fn apply(&mut self, change: LibraryChange<'_>) -> Result<(), LibraryError>;
    fn stats(&self) -> FunctionStats;
    /// Every library's source, in load order (snapshots, RDB).
    fn codes(&self) -> Vec<Bytes>;
    /// The flags of a function by name.
    fn flags_of(&self, name: &[u8]) -> Option<u32>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// INFO's view of the EVAL engine.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScriptStats {
    /// `used_memory_vm_eval`.
    pub vm_memory: usize,
    /// `used_memory_scripts_eval`.
    pub scripts_memory: usize,
    /// `number_of_cached_scripts`.
    pub scripts: usize,
}

/// INFO's view of the functions.
#[derive(Debug, Default, Clone, Copy)]
pub struct FunctionStats {
    /// `used_memory_vm_functions`.
    pub vm_memory: usize,
    /// `used_memory_functions`.
    pub memory: usize,
    /// `number_of_functions`.
    pub functions: usize,
    /// `number_of_libraries`.
    pub libraries: usize,
}

/// How FUNCTION RESTORE treats the existing libraries (logged by code in
/// `Effect::FunctionRestore`; `scripting::functions` re-exports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Flush,
    Append,
    Replace,
}

impl RestorePolicy {
    pub fn code(self) -> u8 {
        match self {
            RestorePolicy::Flush => 0,
            RestorePolicy::Append => 1,
            RestorePolicy::Replace => 2,
        }
    }

    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => RestorePolicy::Flush,
            1 => RestorePolicy::Append,
            2 => RestorePolicy::Replace,
            _ => return None,
        })
    }
}
