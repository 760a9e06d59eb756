//! `/proxy/dicom/*`: the OHIF viewer's DICOMweb requests, forwarded to the PACS (`--dicomweb`)
//! as MONAI Label's proxy forwards them, so that the viewer needs no CORS access to the PACS.
//! The HTTP side is here (which paths may be forwarded, the body limit, passing the PACS's
//! answer back); the exchange with the PACS is
//! [`DicomWeb::forward`](crate::dicomweb::DicomWeb::forward)'s.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;

use crate::app::AppState;
use crate::error::ApiError;

/// `GET|POST /proxy/dicom/{qido,wado,stow}/PATH` and `/proxy/dicom/PATH` go to `<root>/PATH`.
/// The PACS's answer is passed through (status, type, body streamed); only a PACS that cannot
/// be reached becomes an error. Paths that could leave the DICOMweb root (`..`, encoded
/// slashes) are refused.
pub async fn proxy(State(app): State<AppState>, req: Request) -> Result<Response<Body>, ApiError> {
    let pacs = app.dicomweb.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "no_pacs",
            "this server has no PACS (start it with --dicomweb URL)",
        )
    })?;
    let (parts, body) = req.into_parts();
    let rel = proxied_path(parts.uri.path())?;
    // Bodies (STOW-RS from the viewer) are bounded like uploads.
    let body: Bytes = axum::body::to_bytes(body, pacs.max_bytes())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload_too_large",
                "the request body is larger than this server's upload limit",
            )
        })?;
    let resp = pacs
        .forward(parts.method, rel, parts.uri.query(), &parts.headers, body)
        .await?;
    let mut out = Response::builder().status(resp.status());
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
    ] {
        if let Some(v) = resp.headers().get(&name) {
            out = out.header(name, v.clone());
        }
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .map_err(|e| ApiError::internal(format!("cannot forward the PACS's answer: {e}")))
}

/// The part of a `/proxy/dicom/...` path to forward: without the prefix and without a leading
/// `qido/`, `wado/` or `stow/` (MONAI Label's prefixes, none by default).
fn proxied_path(path: &str) -> Result<&str, ApiError> {
    let rest = path
        .strip_prefix("/proxy/dicom/")
        .ok_or_else(|| bad_proxy_path(path))?;
    let rest = ["qido/", "wado/", "stow/"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))
        .unwrap_or(rest);
    let escapes = rest.split('/').any(|seg| {
        let s = seg.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".." || s.contains("%2f") || s.contains("%5c") || s.contains('\\')
    });
    if rest.is_empty() || rest.starts_with('/') || escapes {
        return Err(bad_proxy_path(path));
    }
    Ok(rest)
}

fn bad_proxy_path(path: &str) -> ApiError {
    ApiError::bad_request(
        "bad_proxy_path",
        format!("{path:?} does not name a DICOMweb resource under this server's PACS"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_stay_under_the_root() {
        assert_eq!(
            proxied_path("/proxy/dicom/qido/studies").unwrap(),
            "studies"
        );
        assert_eq!(
            proxied_path("/proxy/dicom/wado/studies/1.2/series/3/metadata").unwrap(),
            "studies/1.2/series/3/metadata"
        );
        assert_eq!(proxied_path("/proxy/dicom/studies").unwrap(), "studies");
        for bad in [
            "/proxy/dicom/../system",
            "/proxy/dicom/qido/%2e%2e/%2E%2e/tools",
            "/proxy/dicom/qido/studies/..",
            "/proxy/dicom/a%2Fb",
            "/proxy/dicom/",
            "/proxy/dicom//x",
        ] {
            assert!(proxied_path(bad).is_err(), "{bad}");
        }
    }
}
