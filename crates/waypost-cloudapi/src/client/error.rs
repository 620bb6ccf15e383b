//! The client's error: what failed, the parsed Meta error when there is one,
//! and the [`ErrorClass`] callers act on. Messages never contain the access
//! token (it is only ever in a sensitive header) nor request URLs.

use std::fmt;

use crate::classify::ErrorClass;
use crate::error::MetaError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Meta answered with its error envelope.
    #[error("Graph API error (HTTP {status}, {}): {}", class.as_str(), MetaSummary(error))]
    Api {
        status: u16,
        error: Box<MetaError>,
        class: ErrorClass,
    },
    /// A non-2xx response without a Meta error body (proxy, load balancer).
    #[error("HTTP {status} without a Graph error body ({})", class.as_str())]
    Http { status: u16, class: ErrorClass },
    #[error("request timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("transport error: {0}")]
    Transport(String),
    /// A 2xx whose body isn't what the endpoint returns.
    #[error("unexpected response body (HTTP {status}): {detail}")]
    Decode { status: u16, detail: String },
    #[error("response body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The target address is one the client's owner does not connect to.
    #[error("refused: {0}")]
    Refused(String),
}

impl ClientError {
    /// What the caller should do. Transport failures are retryable; a 2xx we
    /// can't read is permanent, since retrying a send that Meta may have
    /// accepted would duplicate it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api { class, .. } | Self::Http { class, .. } => *class,
            Self::Timeout | Self::Connect(_) | Self::Transport(_) => ErrorClass::Retryable,
            Self::Decode { .. }
            | Self::TooLarge { .. }
            | Self::InvalidArgument(_)
            | Self::Config(_)
            | Self::Refused(_) => ErrorClass::Permanent,
        }
    }

    /// The parsed Meta error, if Meta sent one.
    pub fn meta(&self) -> Option<&MetaError> {
        match self {
            Self::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status, if a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Http { status, .. } | Self::Decode { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    pub(crate) fn from_transport(e: reqwest::Error) -> Self {
        // Drop the URL: it carries ids and query strings we don't want in logs.
        let e = e.without_url();
        if e.is_timeout() {
            return Self::Timeout;
        }
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        if e.is_connect() {
            Self::Connect(text)
        } else {
            Self::Transport(text)
        }
    }
}

/// `code 131056/2494010: (#131056) … [details] (fbtrace_id …)`.
struct MetaSummary<'a>(&'a MetaError);

impl fmt::Display for MetaSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        write!(f, "code {}", e.code)?;
        if let Some(sub) = e.error_subcode {
            write!(f, "/{sub}")?;
        }
        write!(f, ": {}", e.message)?;
        if let Some(d) = e.details() {
            write!(f, " [{d}]")?;
        }
        if let Some(t) = &e.fbtrace_id {
            write!(f, " (fbtrace_id {t})")?;
        }
        Ok(())
    }
}
