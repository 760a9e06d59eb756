//! `/datastore/`: listing, uploading (`PUT /datastore/?image=ID`, multipart `file` + `params`),
//! downloading and removing images.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{MultipartBody, Q};
use crate::app::{blocking, AppState};
use crate::datastore::{image_extension, validate_id};
use crate::dicomweb;
use crate::error::ApiError;
use crate::respond;

/// `/datastore/`: GET lists, PUT uploads, DELETE removes (MONAI Label's deprecated aliases of
/// `/datastore/image`, which its client still uses for uploads).
pub fn collection() -> MethodRouter<AppState> {
    get(list).put(upload).delete(remove)
}

/// `/datastore/image`: GET downloads, PUT uploads, DELETE removes.
pub fn image() -> MethodRouter<AppState> {
    get(download).put(upload).delete(remove)
}

#[derive(Deserialize)]
struct ListQuery {
    output: Option<String>,
}

/// `GET /datastore/?output=stats|all|train`.
async fn list(State(app): State<AppState>, Q(q): Q<ListQuery>) -> Result<Json<Value>, ApiError> {
    // With a PACS, its image series are listed too (one QIDO-RS request).
    let pacs = app.dicomweb.as_ref();
    match q.output.as_deref() {
        None | Some("stats") => match pacs {
            Some(p) => Ok(Json(
                dicomweb::stats_json(p, app.datastore.stats_json()).await?,
            )),
            None => Ok(Json(app.datastore.stats_json())),
        },
        Some("all") => match pacs {
            Some(p) => Ok(Json(dicomweb::all_json(p, app.datastore.all_json()).await?)),
            None => Ok(Json(app.datastore.all_json())),
        },
        // No labels are stored, so there is nothing to train on.
        Some("train") => Ok(Json(json!([]))),
        Some(o) => Err(ApiError::bad_request(
            "bad_query",
            format!("output={o:?}: use stats, all or train"),
        )),
    }
}

#[derive(Deserialize)]
struct UploadQuery {
    image: Option<String>,
}

/// `PUT /datastore/?image=ID`: stores the uploaded volume as image `ID` (default: the file
/// name without its extension) after checking that slicewise reads it. Answers `{"image": ID}`.
async fn upload(
    State(app): State<AppState>,
    Q(q): Q<UploadQuery>,
    body: MultipartBody,
) -> Result<Json<Value>, ApiError> {
    let mut form = body.read(&app).await?;
    let files = form.take_files(&["file", "files", "image"]);
    let id = match q.image.filter(|s| !s.is_empty()) {
        Some(id) => id,
        None => default_id(files.first().map(|f| f.file_name.as_str()))?,
    };
    validate_id(&id)?;
    let stored = id.clone();
    blocking(move || {
        let staged = app.datastore.stage(files)?;
        app.datastore.add_image(&stored, staged)
    })
    .await?;
    Ok(Json(json!({ "image": id })))
}

/// The id MONAI Label gives an upload without `image=`: its file name less the extension.
fn default_id(file_name: Option<&str>) -> Result<String, ApiError> {
    let name = file_name
        .ok_or_else(|| ApiError::bad_request("missing_file", "the form holds no file part"))?;
    let ext = image_extension(name).unwrap_or("");
    Ok(name[..name.len() - ext.len()].to_string())
}

#[derive(Deserialize)]
struct ImageQuery {
    image: Option<String>,
    id: Option<String>,
}

impl ImageQuery {
    /// `image=` (downloads) or `id=` (removal), whichever is given.
    fn id(self) -> Result<String, ApiError> {
        self.image
            .or(self.id)
            .ok_or_else(|| ApiError::bad_request("missing_image", "give the image id as image=ID"))
    }
}

/// `GET /datastore/image?image=ID`: the stored file.
async fn download(State(app): State<AppState>, Q(q): Q<ImageQuery>) -> Result<Response, ApiError> {
    let id = q.id()?;
    let path = app.datastore.require_image(&id)?;
    if path.is_dir() {
        return Err(ApiError::bad_request(
            "series_download",
            format!("image {id:?} is a DICOM series (a folder); only single-file images download"),
        ));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read image {id:?}: {e}")))?;
    Ok(respond::file(bytes, &name, "application/octet-stream"))
}

/// `DELETE /datastore/image?id=ID`.
async fn remove(State(app): State<AppState>, Q(q): Q<ImageQuery>) -> Result<Json<Value>, ApiError> {
    let id = q.id()?;
    blocking(move || app.datastore.remove_image(&id)).await?;
    Ok(Json(json!({})))
}
