//! `/proxy/dicom/*`: the OHIF viewer's DICOMweb requests, forwarded to the PACS (`--dicomweb`)
//! as MONAI Label's proxy forwards them, so that the viewer needs no CORS access to the PACS.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

use crate::app::AppState;
use crate::error::ApiError;

/// `GET|POST /proxy/dicom/{qido,wado,stow}/PATH` and `/proxy/dicom/PATH`.
pub async fn proxy(State(app): State<AppState>, req: Request) -> Result<Response<Body>, ApiError> {
    let pacs = app.dicomweb.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "no_pacs",
            "this server has no PACS (start it with --dicomweb URL)",
        )
    })?;
    pacs.proxy(req).await
}
