//! `POST /infer/{model}?image=ID[&session_id=S][&output=image|json|all|dicom_seg]`, with the
//! form field `params` (JSON) and optionally a `file` part (an image sent with the request).
//! The image comes from the session if `session_id` is given, else from the `file` part, else
//! from the datastore (MONAI Label's order) — or, with a PACS, from the PACS when the id is a
//! SeriesInstanceUID not uploaded here. Without `output` (or `all`) the answer is multipart:
//! `params` JSON + the label file as `image`. `output=dicom_seg` of a PACS series also stores
//! the SEG in the PACS (STOW-RS) before answering it.
//!
//! A model taking C > 1 input channels reads one datastore image per channel, named the nnU-Net
//! way: `image=CASE` (or `image=CASE_0000`) segments the images `CASE_0000` … `CASE_{C-1}` as
//! channels 0 … C−1 (one voxel grid, or a 400 naming both images' files and what differs; a
//! missing channel is a 404 naming it). An image stored as `CASE` itself (a multi-channel file)
//! is read as it is. Ids stay datastore ids: a client never names a path.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{MultipartBody, P, Q};
use crate::app::{blocking, AppState};
use crate::datastore::Staged;
use crate::dicomweb::{is_uid, DicomWeb, Stored};
use crate::error::ApiError;
use crate::infer::{self, parse_params, InferJob, InferResult, LabelFile};
use crate::respond;
use crate::upload::Form;

#[derive(Deserialize)]
pub struct InferQuery {
    image: Option<String>,
    session_id: Option<String>,
    output: Option<String>,
}

/// What the answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    All,
    Image,
    Json,
    DicomSeg,
    Rtstruct,
}

impl Output {
    /// The DICOM object this output answers with (and stores back in a PACS), if it is one.
    fn dicom_file(self) -> Option<LabelFile> {
        match self {
            Output::DicomSeg => Some(LabelFile::DICOM_SEG),
            Output::Rtstruct => Some(LabelFile::RTSTRUCT),
            _ => None,
        }
    }
}

fn parse_output(o: Option<&str>) -> Result<Output, ApiError> {
    match o {
        None | Some("") | Some("all") => Ok(Output::All),
        Some("image") => Ok(Output::Image),
        Some("json") => Ok(Output::Json),
        Some("dicom_seg") => Ok(Output::DicomSeg),
        Some("rtstruct") => Ok(Output::Rtstruct),
        Some(o) => Err(ApiError::bad_request(
            "bad_query",
            format!("output={o:?}: use image, json, all, dicom_seg or rtstruct"),
        )),
    }
}

/// The infer endpoint.
pub async fn infer(
    State(app): State<AppState>,
    P(model_name): P<String>,
    Q(q): Q<InferQuery>,
    body: MultipartBody,
) -> Result<Response, ApiError> {
    let model = app.models.get(&model_name).cloned().ok_or_else(|| {
        let known: Vec<&str> = app.models.names().collect();
        ApiError::not_found(
            "unknown_model",
            format!(
                "no model {model_name:?}; this server has {}",
                known.join(", ")
            ),
        )
    })?;
    let output = parse_output(q.output.as_deref())?;
    let mut form = body.read(&app).await?;
    let mut params = parse_params(form.fields.get("params").map(String::as_str))?;
    if let Some(file) = output.dicom_file() {
        params.file = file;
    }
    let channels = model.contract().source_channels.len();
    let source = resolve_image(&app, q, &mut form, channels).await?;
    let ticket = app.jobs.admit(&model_name, &source.label)?;
    // A PACS series is fetched once admitted, so that the queue bounds downloads too.
    let (image, pacs) = fetch(&app, source.path)
        .await
        .inspect_err(|e| ticket.fail(e))?;
    let job = InferJob {
        id: ticket.id(),
        model_name,
        model,
        image,
        channels: source.channels,
        params,
        batch_size: app.batch_size,
    };
    let upload = source.upload;
    let result = app
        .jobs
        .run(ticket, move |cancel, progress| {
            // An image sent with the request lives until its job ends.
            let _upload = upload;
            infer::run(&job, cancel, progress)
        })
        .await?;
    // A SEG or RTSTRUCT of a PACS series goes back to the PACS, whole, before it is answered.
    let stored = match pacs {
        Some(pacs) if output.dicom_file().is_some() => Some(pacs.store(&result.label).await?),
        _ => None,
    };
    Ok(answer(output, result, stored))
}

/// The image as a local path, fetching a PACS series (or finding it cached); and the PACS it
/// came from.
async fn fetch(app: &AppState, place: Place) -> Result<(PathBuf, Option<&DicomWeb>), ApiError> {
    match (place, app.dicomweb.as_ref()) {
        (Place::Local(path), _) => Ok((path, None)),
        (Place::Pacs(uid), Some(pacs)) => Ok((pacs.series(&uid).await?.path, Some(pacs))),
        (Place::Pacs(_), None) => Err(ApiError::internal("no PACS is configured")),
    }
}

/// Where the image of a request is.
struct Source {
    path: Place,
    /// How `/jobs/` names it.
    label: String,
    /// A `file` part sent with the request, removed when dropped.
    upload: Option<Staged>,
    /// For a multi-channel case: one datastore image per channel (`path` is the first).
    channels: Vec<PathBuf>,
}

/// A file or folder here, or a series in the PACS (fetched once the job is admitted).
enum Place {
    Local(PathBuf),
    Pacs(String),
}

/// Where the request's image is, for a model taking `channels` input channels.
async fn resolve_image(
    app: &AppState,
    q: InferQuery,
    form: &mut Form,
    channels: usize,
) -> Result<Source, ApiError> {
    if let Some(id) = q.session_id.filter(|s| !s.is_empty()) {
        let (_, path) = app.sessions.get(&id, true)?;
        return Ok(Source {
            path: Place::Local(path),
            label: format!("session {id}"),
            upload: None,
            channels: Vec::new(),
        });
    }
    let files = form.take_files(&["file"]);
    if !files.is_empty() {
        let label = format!("upload {}", files[0].file_name);
        let a = app.clone();
        let staged = blocking(move || a.datastore.stage(files)).await?;
        return Ok(Source {
            path: Place::Local(staged.path().to_path_buf()),
            label,
            upload: Some(staged),
            channels: Vec::new(),
        });
    }
    match q.image.filter(|s| !s.is_empty()) {
        Some(id) if channels > 1 => {
            let files = case_images(app, &id, channels)?;
            Ok(Source {
                path: Place::Local(files[0].clone()),
                label: id,
                upload: None,
                channels: if files.len() > 1 { files } else { Vec::new() },
            })
        }
        Some(id) => {
            // An upload of that name wins; otherwise a UID names a series in the PACS.
            let path = match app.datastore.image_path(&id)? {
                Some(path) => Place::Local(path),
                None if app.dicomweb.is_some() && is_uid(&id) => Place::Pacs(id.clone()),
                None => Place::Local(app.datastore.require_image(&id)?),
            };
            Ok(Source {
                path,
                label: id,
                upload: None,
                channels: Vec::new(),
            })
        }
        None => Err(ApiError::bad_request(
            "missing_image",
            "give image=ID (an image in the datastore), session_id=ID or a `file` part",
        )),
    }
}

/// The datastore images of case `id` for a model taking `channels` channels: `CASE_0000` …
/// (`id` being `CASE` or `CASE_0000`), or the image `id` itself when it is stored and not
/// named as channel 0. A missing channel image is a 404 naming it.
fn case_images(app: &AppState, id: &str, channels: usize) -> Result<Vec<PathBuf>, ApiError> {
    let case = match id.strip_suffix("_0000") {
        Some(case) if !case.is_empty() => case,
        _ => {
            if let Some(path) = app.datastore.image_path(id)? {
                return Ok(vec![path]);
            }
            id
        }
    };
    (0..channels)
        .map(|i| {
            let channel = format!("{case}_{i:04}");
            app.datastore.image_path(&channel)?.ok_or_else(|| {
                ApiError::not_found(
                    "unknown_image",
                    format!(
                        "no image {channel:?} in the datastore: the model takes {channels} \
                         channels, images {case}_0000 … {case}_{:04}",
                        channels - 1
                    ),
                )
            })
        })
        .collect()
}

/// The answer, in MONAI Label's shapes. A SEG stored in the PACS is still answered as the file
/// (what MONAI Label's `output=dicom_seg` gives), with `Content-Location` naming its copy there.
fn answer(output: Output, r: InferResult, stored: Option<Stored>) -> Response {
    match output {
        Output::Json => Json(r.params).into_response(),
        Output::Image => respond::file(r.label, &r.file_name, "application/octet-stream"),
        Output::DicomSeg | Output::Rtstruct => {
            let mut resp = respond::file(r.label, &r.file_name, "application/dicom");
            let location = stored.and_then(|s| s.retrieve_url);
            if let Some(v) = location.and_then(|u| HeaderValue::from_str(&u).ok()) {
                resp.headers_mut().insert(header::CONTENT_LOCATION, v);
            }
            resp
        }
        Output::All => respond::multipart(&r.params, &r.label, &r.file_name),
    }
}
