//! Why a session of the link to the primary ended: each is logged as
//! `MASTER <-> REPLICA sync with host:port: <text>` and the link retries
//! (the texts are Redis's where Redis logs the same condition).

/// See the module doc.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("Error condition on socket for SYNC: {0}")]
    Connect(std::io::Error),
    #[error("Timeout connecting to the MASTER...")]
    ConnectTimeout,
    #[error("error writing to MASTER: {0}")]
    Write(std::io::Error),
    #[error("timeout writing to MASTER")]
    WriteTimeout,
    #[error("connection lost")]
    Lost,
    #[error("error reading from MASTER: {0}")]
    Read(std::io::Error),
    #[error("Timeout reading from the MASTER (repl-timeout)")]
    ReadTimeout,
    #[error("MASTER sent a line too long")]
    LineTooLong,
    #[error("Error reply to PING from master: '{0}'")]
    Ping(String),
    #[error("Unable to AUTH to MASTER: {0}")]
    Auth(String),
    #[error("Master replied with wrong +FULLRESYNC syntax: '{0}'")]
    BadFullResync(String),
    #[error("Master replied with wrong +CONTINUE syntax: '{0}'")]
    BadContinue(String),
    #[error("Master is currently unable to PSYNC but should be in the future: {0}")]
    TryLater(String),
    #[error("Unexpected reply to PSYNC from master: {0}")]
    PsyncRefused(String),
    #[error("MASTER aborted replication with an error: {0}")]
    Aborted(String),
    #[error("Bad protocol from MASTER, the first byte is not '$' (we received '{0}'), are you sure the host and port are right?")]
    NotBulk(String),
    #[error("Bad EOF mark from MASTER: '{0}'")]
    BadEofMark(String),
    #[error("Bad RDB length from MASTER: '{0}'")]
    BadRdbLength(String),
    #[error("the MASTER's RDB was refused: {0}")]
    RdbRefused(crate::rdb::file::FileError),
    #[error("the RDB check did not finish: {0}")]
    Task(tokio::task::JoinError),
    #[error("Failed trying to load the MASTER synchronization DB: {0}")]
    Load(String),
    #[error("the MASTER synchronization DB could not be logged: {0}")]
    NotLogged(String),
    #[error("Protocol error from MASTER: {0}")]
    Protocol(String),
    #[error("the master client was killed")]
    Killed,
    #[error("MASTER timeout: no data nor PING received...")]
    MasterTimeout,
    #[error("the link was stopped")]
    Stopped,
    #[error("shutting down")]
    ShuttingDown,
}
