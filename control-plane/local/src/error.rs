//! What can go wrong starting or stopping a private server. Each message says
//! what failed and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The server binaries are not installed (or not where we look).
    #[error("{what} not found (looked in: {looked}); install it: {install}")]
    NotInstalled { what: &'static str, looked: String, install: String },

    /// An override variable names a directory or file without the binaries.
    #[error("{var}={path} does not hold {needs}; point {var} at the directory (or file) that does")]
    BadOverride { var: &'static str, path: PathBuf, needs: &'static str },

    /// PostgreSQL refuses to run as root and there is no user to run it as.
    #[error(
        "running as root, but PostgreSQL refuses to run as root and there is no `postgres` OS \
         user to run it as: create one (`useradd --system postgres`) or run as another user"
    )]
    NoPostgresUser,

    /// A file-system or process-spawn step failed.
    #[error("could not {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },

    /// A helper program (initdb, pg_ctl) exited unsuccessfully.
    #[error("`{program}` failed ({status}): {output}")]
    Command { program: String, status: String, output: String },

    /// The server did not come up; `log_tail` is the end of its log, quoted
    /// here because a throw-away data directory is removed with the log in it.
    #[error(
        "{what} did not start on 127.0.0.1:{port} within {waited:?}; its log is {log}:\n{log_tail}"
    )]
    NotReady { what: &'static str, port: u16, waited: Duration, log: PathBuf, log_tail: String },

    /// Another server already runs on this data directory.
    #[error(
        "a PostgreSQL server (pid {pid}) already runs on {data_dir}: stop it \
         (`pg_ctl stop -D {data_dir}`) or use another data directory"
    )]
    AlreadyRunning { data_dir: PathBuf, pid: u32 },
}

impl LocalError {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { action: action.into(), source }
    }
}
