//! `/session/`: `PUT` uploads an image for a while (multipart `files`, one file or a DICOM
//! series), `GET /session/{id}` describes it (`?image=true` downloads it), `DELETE` removes it.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{MultipartBody, P, Q};
use crate::app::{blocking, AppState};
use crate::error::ApiError;
use crate::respond;
use crate::sessions::SessionInfo;

#[derive(Deserialize)]
pub struct CreateQuery {
    #[serde(default)]
    expiry: u64,
}

/// `PUT /session/?expiry=S`: answers `{session_id, session_info}`.
pub async fn create(
    State(app): State<AppState>,
    Q(q): Q<CreateQuery>,
    body: MultipartBody,
) -> Result<Json<Value>, ApiError> {
    let mut form = body.read(&app).await?;
    let files = form.take_files(&["files", "file"]);
    let info = blocking(move || {
        let staged = app.datastore.stage(files)?;
        app.sessions.create(staged, q.expiry)
    })
    .await?;
    Ok(Json(
        json!({ "session_id": info.name, "session_info": info }),
    ))
}

#[derive(Deserialize)]
pub struct GetQuery {
    #[serde(default)]
    update_ts: bool,
    #[serde(default)]
    image: bool,
}

/// `GET /session/{id}[?update_ts=true][&image=true]`.
pub async fn get(
    State(app): State<AppState>,
    P(id): P<String>,
    Q(q): Q<GetQuery>,
) -> Result<Response, ApiError> {
    let (info, path) = blocking(move || app.sessions.get(&id, q.update_ts)).await?;
    if !q.image {
        return Ok(Json(info).into_response());
    }
    if path.is_dir() {
        return Err(ApiError::bad_request(
            "series_download",
            "this session holds a DICOM series (a folder); only single-file images download",
        ));
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read the session image: {e}")))?;
    Ok(respond::file(
        bytes,
        &info.image,
        "application/octet-stream",
    ))
}

/// `DELETE /session/{id}`: answers what the session was.
pub async fn remove(
    State(app): State<AppState>,
    P(id): P<String>,
) -> Result<Json<SessionInfo>, ApiError> {
    blocking(move || app.sessions.remove(&id)).await.map(Json)
}
