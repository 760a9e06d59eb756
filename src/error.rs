//! The crate's error type: every error names what went wrong and, where there is one, the file.
//!
//! Each variant maps to a stable C status code (see [`Error::status_code`]); the numbers are part
//! of the ABI and are never renumbered.

use std::path::{Path, PathBuf};

/// Result alias used throughout slicewise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in slicewise.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The input is not a valid file of its format (bad magic, truncated, inconsistent header).
    #[error("{}: {message}", path.display())]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The input is valid but uses a feature slicewise does not support.
    #[error("{}: unsupported: {message}", path.display())]
    Unsupported {
        /// The offending file.
        path: PathBuf,
        /// Which feature.
        message: String,
    },
    /// The input would need more memory than the configured limit allows.
    #[error("{}: {message}", path.display())]
    TooLarge {
        /// The offending file.
        path: PathBuf,
        /// The size that was asked for and the limit.
        message: String,
    },
    /// A caller passed an invalid argument (null pointer, out-of-range value, wrong shape).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A model file cannot be honoured (missing metadata, unsupported contract).
    #[error("model {}: {message}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// Why it was refused.
        message: String,
    },
    /// ONNX Runtime could not be loaded or initialised.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// An explicitly requested execution provider cannot run.
    #[error("execution provider: {0}")]
    Provider(String),
    /// Inference failed inside ONNX Runtime.
    #[error("inference: {0}")]
    Inference(String),
    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// A panic was caught at an API boundary.
    #[error("internal error (panic): {0}")]
    Panic(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A format error in `path`.
    pub fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    /// An unsupported-feature error in `path`.
    pub fn unsupported(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    /// A size-limit error for `path`.
    pub fn too_large(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::TooLarge {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    /// A model-contract error for `path`.
    pub fn model(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    /// The stable status code of this error (the C ABI's `slicewise_status`). Never renumbered.
    pub fn status_code(&self) -> i32 {
        match self {
            Error::InvalidArgument(_) => 1,
            Error::Io { .. } => 2,
            Error::Format { .. } => 3,
            Error::Unsupported { .. } => 4,
            Error::TooLarge { .. } => 5,
            Error::Model { .. } => 6,
            Error::Runtime(_) => 7,
            Error::Provider(_) => 8,
            Error::Inference(_) => 9,
            Error::Cancelled => 10,
            Error::Panic(_) => 11,
        }
    }
}
