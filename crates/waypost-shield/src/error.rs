//! Error type for everything in the crate that can fail: reading data sets, lists and model
//! files. Messages name the file and line so an operator can fix the input.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ShieldError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: line {line}: {message}")]
    Tsv {
        file: String,
        line: usize,
        message: String,
    },
    #[error("list {file}: line {line}: {message}")]
    List {
        file: String,
        line: usize,
        message: String,
    },
    #[error("model: {0}")]
    Model(String),
    #[error("invalid input: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, ShieldError>;
