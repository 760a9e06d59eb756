//! Errors: [`ApiError`], what a request answers when it fails (the one place errors become HTTP
//! responses), and [`ServeError`], why the server could not start.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use slicewise::error::ErrorKind;

/// A failed request: an HTTP status, a stable machine-readable `error` code and a human
/// `detail`, answered as JSON `{"detail": ..., "error": ...}` (FastAPI's `detail`, so MONAI Label
/// clients show the message).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short code, e.g. `"unknown_model"`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub detail: String,
    /// Seconds for `Retry-After` (503 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with the given status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }
    /// 400: the request itself is wrong.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    /// 404: what the request names does not exist.
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }
    /// 401: the bearer token is missing or wrong.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server requires `Authorization: Bearer <token>`",
        )
    }
    /// 503 with `Retry-After`: every worker and queue place is taken.
    pub fn busy(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "all workers are busy and the queue is full; retry later",
            )
        }
    }
    /// 500: the server failed.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            log::error!("{} {}: {}", self.status.as_u16(), self.code, self.detail);
        } else {
            log::info!("{} {}: {}", self.status.as_u16(), self.code, self.detail);
        }
        let body = Json(json!({ "detail": self.detail, "error": self.code }));
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<slicewise::Error> for ApiError {
    /// Input problems are the client's (400, 413 for size); the rest is the server's (500).
    fn from(e: slicewise::Error) -> Self {
        let (status, code) = match e.kind() {
            ErrorKind::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_argument"),
            ErrorKind::Format => (StatusCode::BAD_REQUEST, "bad_image"),
            ErrorKind::Unsupported => (StatusCode::BAD_REQUEST, "unsupported_image"),
            ErrorKind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "image_too_large"),
            ErrorKind::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "cancelled"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "engine"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<crate::dicomweb::PacsError> for ApiError {
    /// The PACS failing is a bad gateway (502), whatever it answered: the request was fine and
    /// this server is working, so clients should not read it as their fault (4xx) or ours
    /// (500). A series the PACS does not have is a 404, one too large a 413, a cache folder that
    /// cannot be written a 500, a forwarded path that would leave the PACS root a 400.
    fn from(e: crate::dicomweb::PacsError) -> Self {
        use crate::dicomweb::PacsError as P;
        let (status, code) = match &e {
            P::Unreachable { .. } => (StatusCode::BAD_GATEWAY, "pacs_unreachable"),
            P::Status { .. } => (StatusCode::BAD_GATEWAY, "pacs_error"),
            P::BadAnswer { .. } => (StatusCode::BAD_GATEWAY, "pacs_bad_answer"),
            P::NoSuchSeries { .. } => (StatusCode::NOT_FOUND, "unknown_series"),
            P::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "image_too_large"),
            P::Cache(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            P::OutsideRoot { .. } => (StatusCode::BAD_REQUEST, "bad_proxy_path"),
            // A failure the PACS client may add later: still the PACS's.
            _ => (StatusCode::BAD_GATEWAY, "pacs_error"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<crate::dicomweb::SetupError> for ServeError {
    /// An unusable `--dicomweb` URL is an option error, its cache folder an I/O one.
    fn from(e: crate::dicomweb::SetupError) -> Self {
        use crate::dicomweb::SetupError as S;
        match e {
            S::Cache { path, source } => ServeError::Io {
                action: "create folder",
                path,
                source,
            },
            // The client's message starts with the URL: name the option that gave it.
            other => ServeError::Options(format!("--dicomweb {other}")),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A folder could not be read or created.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The folder or file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// No model could be loaded from the models folder.
    #[error("{}: {message}", dir.display())]
    NoModels {
        /// The models folder.
        dir: PathBuf,
        /// Why (no `*.onnx` files, or each failed to load).
        message: String,
    },
    /// An option is unusable (an empty token, a CORS origin that is no header value, …).
    #[error("{0}")]
    Options(String),
    /// The async runtime could not be built, or the server stopped with an I/O error.
    #[error("server: {0}")]
    Runtime(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_input_problems_to_4xx() {
        let e: ApiError = slicewise::Error::format("x.nii", "bad magic").into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e: ApiError = slicewise::Error::too_large("x.nii", "huge").into();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e: ApiError = slicewise::Error::inference("boom").into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn pacs_failures_are_bad_gateway_and_a_missing_series_404() {
        use crate::dicomweb::PacsError;
        let e: ApiError = PacsError::Unreachable {
            url: "http://pacs/".into(),
            what: "QIDO-RS series 1.2".into(),
            reason: "Connection refused".into(),
        }
        .into();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_GATEWAY, "pacs_unreachable")
        );
        assert!(e.detail.contains("Connection refused") && e.detail.contains("http://pacs/"));
        let e: ApiError = PacsError::NoSuchSeries {
            url: "http://pacs/".into(),
            uid: "1.2".into(),
        }
        .into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn busy_carries_retry_after_and_unauthorized_a_challenge() {
        let r = ApiError::busy(7).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        let r = ApiError::unauthorized().into_response();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
