//! The HTTP surface: MONAI Label's routes that OHIF's monai-label mode and 3D Slicer's
//! MONAILabel extension call, plus `/jobs/`, OHIF's `/proxy/dicom/` and the viewer itself.
//! Handlers are thin: they extract, call the library modules and return; every failure is an
//! [`ApiError`], turned into a response in one place.
//!
//! Layers, outermost first: panic catcher (a JSON 500, never a dropped connection), CORS (only
//! for the configured origins), the per-request time limit, the bearer token check, the body
//! size limit.

mod app;
mod datastore;
mod infer;
mod jobs;
mod pacs;
mod session;

use std::time::Duration;

use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, Path, Query, Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde::de::DeserializeOwned;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};

use crate::app::AppState;
use crate::error::{ApiError, ServeError};
use crate::upload::{read_form, Form};

/// The router over `app`, with the layers `options` ask for.
pub fn router(app: AppState, options: &crate::ServeOptions) -> Result<Router, ServeError> {
    let mut routes = Router::new()
        .route("/info/", get(app::info))
        .route("/info", get(app::info))
        .route("/auth/", get(app::auth_status))
        .route("/auth", get(app::auth_status))
        .route("/auth/token", post(app::auth_token))
        .route("/auth/token/valid", get(app::auth_valid))
        .route("/datastore/", datastore::collection())
        .route("/datastore", datastore::collection())
        .route("/datastore/image", datastore::image())
        .route("/infer/{model}", post(infer::infer))
        .route("/session/", put(session::create))
        .route("/session", put(session::create))
        .route("/session/{id}", get(session::get).delete(session::remove))
        .route("/jobs/", get(jobs::list))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get))
        .route("/proxy/dicom/{*path}", get(pacs::proxy).post(pacs::proxy));
    if let Some(dir) = &options.ohif_dir {
        routes = routes.nest_service("/ohif", ohif(dir)?);
    }
    let routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(options.max_upload_bytes))
        .layer(middleware::from_fn_with_state(app.clone(), require_token))
        .layer(middleware::from_fn_with_state(
            options.request_timeout,
            time_limit,
        ));
    let routes = match cors(&options.cors_origins)? {
        Some(layer) => routes.layer(layer),
        None => routes,
    };
    Ok(routes
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("internal error (panic); the server keeps running").into_response()
        }))
        .with_state(app))
}

/// Refuses requests without the configured bearer token. `GET /auth/` and `POST /auth/token`
/// stay open: clients ask them whether auth is on and log in through them (Slicer's login
/// dialog sends the token as the password).
async fn require_token(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &app.token {
        let path = req.uri().path();
        // The viewer's own files hold no data (what it shows comes through /proxy/, which
        // stays closed); a browser loading them could not send a bearer token anyway.
        let viewer = path == "/ohif" || path.starts_with("/ohif/");
        let open = (req.method() == Method::GET && (matches!(path, "/auth/" | "/auth") || viewer))
            || (req.method() == Method::HEAD && viewer)
            || (req.method() == Method::POST && path == "/auth/token");
        if !open && !bearer_matches(req.headers().get(header::AUTHORIZATION), token) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

/// `Authorization: Bearer <token>` (scheme case-blind, as MONAILabelClient sends the
/// `token_type` it was given), compared in constant time.
fn bearer_matches(value: Option<&HeaderValue>, token: &str) -> bool {
    let Some(v) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, given)) = v.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Ends a request that takes longer than `limit`; dropping it cancels its job.
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than this server's limit of {} s",
                limit.as_secs()
            ),
        )
        .into_response(),
    }
}

/// The OHIF viewer's static files in `dir`; any path that is no file there answers its
/// `index.html` (a single-page app: `/ohif/viewer?StudyInstanceUIDs=…` is one of its routes).
fn ohif(dir: &std::path::Path) -> Result<ServeDir<ServeFile>, ServeError> {
    let index = dir.join("index.html");
    if !index.is_file() || !dir.join("app-config.js").is_file() {
        return Err(ServeError::Options(format!(
            "--ohif {}: no OHIF viewer there (index.html and app-config.js expected)",
            dir.display()
        )));
    }
    // Directories are not redirected to a trailing slash: behind `nest_service` the redirect
    // would lose the /ohif prefix.
    Ok(ServeDir::new(dir)
        .append_index_html_on_directories(false)
        .fallback(ServeFile::new(index)))
}

/// The CORS layer for `origins` (`*`: any), or none when there are none.
fn cors(origins: &[String]) -> Result<Option<CorsLayer>, ServeError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o.trim_end_matches('/')).map_err(|_| {
                    ServeError::Options(format!("CORS origin {o:?} is not a valid header value"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([
                header::CONTENT_DISPOSITION,
                header::CONTENT_LOCATION,
                header::RETRY_AFTER,
            ]),
    ))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(
        "no_route",
        format!("no endpoint {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// Query parameters, with a malformed query answered as a JSON 400.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
    }
}

/// A path parameter, with a malformed one answered as a JSON 400.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| P(v))
            .map_err(|e| ApiError::bad_request("bad_path", e.body_text()))
    }
}

/// A `multipart/form-data` body, not yet read (file parts need the datastore's staging
/// folder). A request without any `Content-Type` counts as an empty form, so that
/// `curl -X POST /infer/m?image=x` works.
pub struct MultipartBody(Option<Multipart>);

impl<S: Send + Sync> FromRequest<S> for MultipartBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !req.headers().contains_key(header::CONTENT_TYPE) {
            return Ok(MultipartBody(None));
        }
        Multipart::from_request(req, state)
            .await
            .map(|m| MultipartBody(Some(m)))
            .map_err(|e| {
                ApiError::bad_request(
                    "malformed_multipart",
                    format!("expected a multipart/form-data body: {}", e.body_text()),
                )
            })
    }
}

impl MultipartBody {
    /// Reads the form, staging its files in the datastore.
    pub async fn read(self, app: &AppState) -> Result<Form, ApiError> {
        match self.0 {
            Some(m) => read_form(m, app.datastore.staging()).await,
            None => Ok(Form::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_checked_exactly() {
        let h = |s: &'static str| Some(HeaderValue::from_static(s));
        assert!(bearer_matches(h("Bearer s3cret").as_ref(), "s3cret"));
        assert!(bearer_matches(h("bearer s3cret").as_ref(), "s3cret"));
        assert!(!bearer_matches(h("Bearer s3cre").as_ref(), "s3cret"));
        assert!(!bearer_matches(h("Basic s3cret").as_ref(), "s3cret"));
        assert!(!bearer_matches(h("s3cret").as_ref(), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }
}
