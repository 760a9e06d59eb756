//! The crate's error type: every error names what went wrong and, where there is one, the file;
//! errors that wrap another one keep it as their [`source`](std::error::Error::source), so a
//! caller can walk the chain.
//!
//! Each error has an [`ErrorKind`], whose number is the C ABI's status code: this file is the one
//! place that assigns them. The numbers are part of the ABI and are never renumbered; new kinds
//! are appended.

use std::path::{Path, PathBuf};

/// Result alias used throughout slicewise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An underlying error kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is; its value is the stable C status code
/// (`slicewise_status`). Never renumbered: new kinds take the next free number. The C ABI has two
/// codes of its own, 12 `NULL_POINTER` and 13 `BUFFER_TOO_SMALL`, which no kind may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(i32)]
pub enum ErrorKind {
    /// An argument is out of range or inconsistent.
    InvalidArgument = 1,
    /// An operating-system I/O error on a file.
    Io = 2,
    /// A file is not a valid file of its format.
    Format = 3,
    /// A valid input uses a feature slicewise does not support.
    Unsupported = 4,
    /// An input would need more memory than the configured limit allows.
    TooLarge = 5,
    /// A model file cannot be honoured.
    Model = 6,
    /// ONNX Runtime could not be loaded or initialised.
    Runtime = 7,
    /// An explicitly requested execution provider cannot run.
    Provider = 8,
    /// Inference failed inside ONNX Runtime.
    Inference = 9,
    /// The operation was cancelled by the caller.
    Cancelled = 10,
    /// A panic was caught at an API boundary.
    Panic = 11,
    /// Training failed (a non-finite loss, a diverged run); only the trainer returns it.
    Training = 14,
}

impl ErrorKind {
    /// Every kind, in code order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::InvalidArgument,
        ErrorKind::Io,
        ErrorKind::Format,
        ErrorKind::Unsupported,
        ErrorKind::TooLarge,
        ErrorKind::Model,
        ErrorKind::Runtime,
        ErrorKind::Provider,
        ErrorKind::Inference,
        ErrorKind::Cancelled,
        ErrorKind::Panic,
        ErrorKind::Training,
    ];

    /// The stable status code (the C ABI's `SLICEWISE_<NAME>`).
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The name of the kind as the C constant spells it after `SLICEWISE_`, e.g. `"IO"`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::Io => "IO",
            ErrorKind::Format => "FORMAT",
            ErrorKind::Unsupported => "UNSUPPORTED",
            ErrorKind::TooLarge => "TOO_LARGE",
            ErrorKind::Model => "MODEL",
            ErrorKind::Runtime => "RUNTIME",
            ErrorKind::Provider => "PROVIDER",
            ErrorKind::Inference => "INFERENCE",
            ErrorKind::Cancelled => "CANCELLED",
            ErrorKind::Panic => "PANIC",
            ErrorKind::Training => "TRAINING",
        }
    }
}

/// Everything that can go wrong in slicewise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error on a file.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// What was being done, as a verb phrase after "cannot": "open", "write", "rename", ….
        action: &'static str,
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
        /// The decoder's own error, when one reported it.
        #[source]
        source: Option<BoxError>,
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
        /// The underlying error (ONNX Runtime's, a JSON parser's), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// ONNX Runtime could not be loaded or initialised.
    #[error("ONNX Runtime: {message}")]
    Runtime {
        /// What failed.
        message: String,
        /// ONNX Runtime's or the dynamic loader's own error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// An explicitly requested execution provider cannot run.
    #[error("execution provider: {0}")]
    Provider(String),
    /// Inference failed inside ONNX Runtime.
    #[error("inference: {message}")]
    Inference {
        /// What failed.
        message: String,
        /// ONNX Runtime's own error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// A panic was caught at an API boundary.
    #[error("internal error (panic): {0}")]
    Panic(String),
    /// Training failed: the loss became non-finite, or the run cannot go on.
    #[error("training: {0}")]
    Training(String),
}

impl Error {
    /// An I/O error on `path` while doing `action` (a verb phrase after "cannot": "open",
    /// "read", "write", "create folder", "rename into place", …).
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A format error in `path`.
    pub fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
            source: None,
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
            source: None,
        }
    }

    /// ONNX Runtime could not be loaded or initialised.
    pub fn runtime(message: impl Into<String>) -> Self {
        Error::Runtime {
            message: message.into(),
            source: None,
        }
    }

    /// Inference failed inside ONNX Runtime.
    pub fn inference(message: impl Into<String>) -> Self {
        Error::Inference {
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` as the underlying error of a `Format`, `Model`, `Runtime` or `Inference`
    /// error (the kinds that wrap another library's error); other kinds are returned unchanged.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        match &mut self {
            Error::Format { source: s, .. }
            | Error::Model { source: s, .. }
            | Error::Runtime { source: s, .. }
            | Error::Inference { source: s, .. } => *s = Some(source.into()),
            _ => {}
        }
        self
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Io { .. } => ErrorKind::Io,
            Error::Format { .. } => ErrorKind::Format,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::Model { .. } => ErrorKind::Model,
            Error::Runtime { .. } => ErrorKind::Runtime,
            Error::Provider(_) => ErrorKind::Provider,
            Error::Inference { .. } => ErrorKind::Inference,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::Panic(_) => ErrorKind::Panic,
            Error::Training(_) => ErrorKind::Training,
        }
    }

    /// The stable status code of this error (the C ABI's `slicewise_status`). Never renumbered.
    pub fn status_code(&self) -> i32 {
        self.kind().code()
    }
}

/// The message of a caught panic's payload (`panic!("...")` carries a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

thread_local! {
    // Where this thread's last panic happened, recorded by the quiet hook for whoever catches it.
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Set to any value, [`quiet_panics`] leaves Rust's usual panic report on stderr in place.
pub const PANIC_TRACE_VAR: &str = "SLICEWISE_PANIC_TRACE";

/// Replaces Rust's default panic report (a message, and with `RUST_BACKTRACE` a backtrace, on
/// stderr) with a record of where the panic happened, once per process. Every slicewise front
/// end catches panics and reports them as errors carrying that place ([`catch_panic`],
/// [`caught_panic`]): a decoder's panic on a corrupt file is then one clean error, not a Rust
/// report before it on the user's (or a host application's) stderr. Front ends call this
/// first; the engine itself never sets a process-wide hook.
pub fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os(PANIC_TRACE_VAR).is_some() {
            return;
        }
        std::panic::set_hook(Box::new(|info| {
            let at = info.location().map(|l| l.to_string());
            // try_with: a panic while the thread is being torn down must not panic again.
            let _ = PANIC_AT.try_with(|p| *p.borrow_mut() = at);
        }));
    });
}

/// A caught panic's message and, when the quiet hook recorded it, where it happened
/// (`boom (at src/x.rs:3:5)`). The payload is dropped behind a panic guard of its own (a
/// payload's destructor may panic too).
pub fn caught_panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let mut msg = panic_message(payload.as_ref());
    // Taken before the drop: a panicking drop would record its own location.
    if let Ok(Some(at)) = PANIC_AT.try_with(|p| p.borrow_mut().take()) {
        msg = format!("{msg} (at {at})");
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
    msg
}

/// An [`Error::Panic`] from a caught panic's payload ([`caught_panic_message`]).
pub fn caught_panic(payload: Box<dyn std::any::Any + Send>) -> Error {
    Error::Panic(caught_panic_message(payload))
}

/// Runs `f`, turning a panic into [`Error::Panic`] with its message and location.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(caught_panic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn kinds_keep_their_codes() {
        let codes: Vec<i32> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14]);
        let p = Path::new("x");
        let cases = [
            Error::InvalidArgument(String::new()),
            Error::io("open", p, std::io::Error::other("x")),
            Error::format(p, ""),
            Error::unsupported(p, ""),
            Error::too_large(p, ""),
            Error::model(p, ""),
            Error::runtime(""),
            Error::Provider(String::new()),
            Error::inference(""),
            Error::Cancelled,
            Error::Panic(String::new()),
            Error::Training(String::new()),
        ];
        let kinds: Vec<ErrorKind> = cases.iter().map(Error::kind).collect();
        assert_eq!(kinds, ErrorKind::ALL);
    }

    #[test]
    fn io_error_says_what_was_being_done_and_keeps_its_source() {
        let e = Error::io(
            "write",
            "/out/mask.nii.gz",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(
            e.to_string(),
            "/out/mask.nii.gz: cannot write: permission denied"
        );
        let src = e.source().expect("source");
        assert_eq!(
            src.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );
    }

    #[test]
    fn wrapped_kinds_expose_their_source() {
        let inner = std::io::Error::other("decoder said no");
        let e = Error::format("a.tif", "bad strip").with_source(inner);
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("decoder said no")
        );
        let e = Error::runtime("no library").with_source("dlopen failed");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("dlopen failed")
        );
        assert!(Error::Cancelled.with_source("ignored").source().is_none());
    }

    #[test]
    fn a_caught_panic_carries_its_message_and_location_and_prints_nothing() {
        quiet_panics();
        let line = line!() + 1;
        let e = catch_panic(|| panic!("boom {}", 3)).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Panic(_)), "{text}");
        assert!(text.contains("boom 3"), "{text}");
        assert!(
            text.contains(&format!("error.rs:{line}")),
            "{text}: no location"
        );
        assert_eq!(catch_panic(|| 7).unwrap(), 7);
        // Back to the default report, so other tests' failures still print theirs.
        let _ = std::panic::take_hook();
    }

    #[test]
    fn panic_message_reads_both_payload_types() {
        let a = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(a.as_ref()), "plain");
        let n = 3;
        let b = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(b.as_ref()), "formatted 3");
        let c = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(c.as_ref()), "unknown panic payload");
    }
}
