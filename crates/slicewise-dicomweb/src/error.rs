//! Every way an exchange with the PACS, or setting up its client, can fail.

use std::path::PathBuf;

/// Why an exchange with the PACS failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PacsError {
    /// No connection, or it broke or went silent mid-answer.
    #[error("the PACS at {url} cannot be reached ({what}): {reason}")]
    Unreachable {
        /// The PACS root (without credentials).
        url: String,
        /// The exchange, e.g. "QIDO-RS series 1.2.3".
        what: String,
        /// The transport's message.
        reason: String,
    },
    /// An HTTP error status.
    #[error("the PACS at {url} answered {status} to {what}: {body}")]
    Status {
        /// The PACS root.
        url: String,
        /// The exchange.
        what: String,
        /// The status code.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// A success status with an answer that is not what DICOMweb prescribes.
    #[error("the PACS at {url} gave an unusable answer to {what}: {why}")]
    BadAnswer {
        /// The PACS root.
        url: String,
        /// The exchange.
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// QIDO-RS found no such series.
    #[error("no series {uid} in the PACS at {url}")]
    NoSuchSeries {
        /// The PACS root.
        url: String,
        /// The SeriesInstanceUID asked for.
        uid: String,
    },
    /// The series is larger than this client accepts (the server's `--max-upload-mb`).
    #[error("series {uid} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The SeriesInstanceUID.
        uid: String,
        /// The limit.
        limit: usize,
    },
    /// The cache folder could not be written.
    #[error("DICOMweb cache: {0}")]
    Cache(String),
    /// A forwarded request names a path that would leave the DICOMweb root.
    #[error("{path:?} does not name a DICOMweb resource under this server's PACS")]
    OutsideRoot {
        /// The path, relative to the root.
        path: String,
    },
}

/// Why a [`DicomWeb`](crate::DicomWeb) client cannot be made: the front end cannot start with
/// it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The URL is unusable, or this build cannot speak its scheme. The message starts with the
    /// URL; front ends put the option that gave it in front (`--dicomweb`, `--pacs`).
    #[error("{url}: {why}")]
    Url {
        /// The URL as given, without credentials.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The cache folder cannot be created.
    #[error("{}: cannot create folder: {source}", path.display())]
    Cache {
        /// The folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl PacsError {
    /// Whether trying again later may succeed: the PACS could not be reached, or it answered
    /// that it is busy or broken for now (408, 429, 5xx). A watcher waits and retries these;
    /// the others (no such series, a refusal, an unusable answer) are final for the request.
    pub fn is_transient(&self) -> bool {
        match self {
            PacsError::Unreachable { .. } => true,
            PacsError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_absent_or_overloaded_pacs_is_worth_waiting_for() {
        let status = |status| PacsError::Status {
            url: "u".into(),
            what: "w".into(),
            status,
            body: String::new(),
        };
        assert!(status(503).is_transient() && status(429).is_transient());
        assert!(!status(404).is_transient() && !status(400).is_transient());
        let gone = PacsError::Unreachable {
            url: "u".into(),
            what: "w".into(),
            reason: "r".into(),
        };
        assert!(gone.is_transient());
        assert!(!PacsError::NoSuchSeries {
            url: "u".into(),
            uid: "1.2".into()
        }
        .is_transient());
    }
}
