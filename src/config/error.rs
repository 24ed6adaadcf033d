//! The configuration's errors. Their texts are Redis's: a value error is
//! what follows `- ` in CONFIG SET's reply and `': ` in a startup error,
//! and `ConfigSetError` is the whole CONFIG SET reply.

/// Why a value is not valid for its parameter (Redis's per-type checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// `dbfilename`, `appendfilename` (a file) or `appenddirname` (a dir).
    #[error("{param} can't be a path, just a {what}")]
    IsAPath {
        param: &'static str,
        what: &'static str,
    },
    #[error("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution")]
    ActiveDefrag,
    #[error("argument must be 'yes' or 'no'")]
    NotBool,
    #[error("argument couldn't be parsed into an integer")]
    NotInteger,
    #[error("argument must be between {0} and {1} inclusive")]
    OutOfRange(i64, i64),
    #[error("argument must be a memory value")]
    NotMemory,
    #[error("argument(s) must be one of the following: {}", .0.join(", "))]
    NotOneOf(&'static [&'static str]),
    #[error("{}", crate::db::notify::INVALID_FLAGS)]
    KeyspaceEvents,
    #[error("percentage argument must be less or equal to 100")]
    PercentAbove100,
    #[error("argument must be a memory or percent value")]
    NotMemoryOrPercent,
    #[error("wrong number of arguments")]
    OomArity,
    #[error("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")]
    OomValue,
    #[error("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")]
    Percentile,
    #[error("Invalid save parameters")]
    Save,
    #[error("Wrong number of arguments in buffer limit configuration.")]
    ObufArity,
    #[error("Invalid client class specified in buffer limit configuration.")]
    ObufClass,
    #[error("Error in hard, soft or soft_seconds setting in buffer limit configuration.")]
    ObufValue,
}

/// A startup setting (config file line or command-line option) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartupError {
    #[error("Bad directive or wrong number of arguments: '{0}'")]
    BadDirective(String),
    #[error("'{name} {value}': {source}")]
    Value {
        name: String,
        value: String,
        source: ValueError,
    },
}

/// CONFIG SET refused; the Display is the error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigSetError {
    #[error("ERR Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    #[error("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")]
    Failed { name: String, why: SetFailure },
}

/// Why CONFIG SET refused one parameter (`ConfigSetError::Failed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetFailure {
    #[error("can't set immutable config")]
    Immutable,
    #[error("can't set protected config")]
    Protected,
    #[error("duplicate parameter")]
    Duplicate,
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error(transparent)]
    Clients(#[from] crate::fdlimit::TooManyClients),
}

/// `rename-command` refused (Redis's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenameError {
    #[error("Bad directive or wrong number of arguments: 'rename-command'")]
    Arity,
    #[error("No such command in rename-command")]
    NoSuchCommand,
    #[error("Target command name already exists")]
    TargetExists,
}

/// A config file (or an included one) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("line {line}: {source}")]
    Line { line: usize, source: LineError },
    /// An error inside an included file, named by its path.
    #[error("{path}: {source}")]
    Included {
        path: String,
        source: Box<FileError>,
    },
}

/// What is wrong with one line of a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("unbalanced quotes")]
    Quotes,
    #[error("Bad directive or wrong number of arguments: 'include'")]
    IncludeArity,
    #[error("too many nested includes (at most {0})")]
    IncludeDepth(usize),
    #[error("Fatal error, can't open config file '{path}': {cause}")]
    IncludeOpen { path: String, cause: String },
    #[error(transparent)]
    Rename(#[from] RenameError),
    #[error(transparent)]
    Setting(#[from] StartupError),
}

/// The command line (`Config::from_args`) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("can't open config file '{path}': {cause}")]
    Open { path: String, cause: String },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("unexpected argument '{0}'")]
    Unexpected(String),
    #[error("option '--{0}' needs a value")]
    NeedsValue(String),
    #[error(transparent)]
    Rename(#[from] RenameError),
    #[error(transparent)]
    Setting(#[from] StartupError),
}
