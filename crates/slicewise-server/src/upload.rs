//! Reading `multipart/form-data` request bodies: text fields into memory (bounded), file parts
//! streamed to temporary files in the datastore's staging folder (removed unless kept).

use std::collections::HashMap;
use std::path::Path;

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::Multipart;
use axum::http::StatusCode;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;

/// Longest text field (`params` and the like) accepted.
const MAX_TEXT_FIELD: usize = 1 << 20;

/// One uploaded file, held in a temporary file until moved elsewhere.
#[derive(Debug)]
pub struct Upload {
    /// The form field it came in (`file`, `files`, `label`, …).
    pub field: String,
    /// The client's file name, reduced to its last component (clients send full paths).
    pub file_name: String,
    /// The temporary file; removed when dropped.
    pub path: TempPath,
}

/// A parsed form.
#[derive(Debug, Default)]
pub struct Form {
    /// Text fields by name (a repeated name keeps the last).
    pub fields: HashMap<String, String>,
    /// File parts in order.
    pub files: Vec<Upload>,
}

impl Form {
    /// Takes the files sent in any of `fields`, leaving the others.
    pub fn take_files(&mut self, fields: &[&str]) -> Vec<Upload> {
        let (take, keep) = std::mem::take(&mut self.files)
            .into_iter()
            .partition(|u| fields.contains(&u.field.as_str()));
        self.files = keep;
        take
    }
}

/// Reads every part of `multipart`, streaming file parts into `staging`.
pub async fn read_form(mut multipart: Multipart, staging: &Path) -> Result<Form, ApiError> {
    let mut form = Form::default();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(base_name) {
            Some(file_name) => {
                let path = stream_to_file(field, staging).await?;
                form.files.push(Upload {
                    field: name,
                    file_name,
                    path,
                });
            }
            None => {
                let text = read_text(field, &name).await?;
                form.fields.insert(name, text);
            }
        }
    }
    Ok(form)
}

/// The last component of a client's file name (`/home/u/x.nii.gz` → `x.nii.gz`).
pub fn base_name(name: &str) -> String {
    name.rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_string()
}

async fn stream_to_file(mut field: Field<'_>, staging: &Path) -> Result<TempPath, ApiError> {
    let io = |e: std::io::Error| ApiError::internal(format!("cannot stage an upload: {e}"));
    let (file, path) = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(staging)
        .map_err(io)?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(path)
}

async fn read_text(mut field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "field_too_large",
                format!("form field `{name}` is longer than {MAX_TEXT_FIELD} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf)
        .map_err(|_| ApiError::bad_request("bad_form", format!("form field `{name}` is not UTF-8")))
}

/// A multipart parse failure: 413 past the body limit, else 400 naming the problem.
pub fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_large",
            "the request body is larger than this server's upload limit",
        )
    } else {
        ApiError::bad_request(
            "malformed_multipart",
            format!("malformed multipart/form-data body: {}", e.body_text()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_name_drops_client_folders() {
        assert_eq!(base_name("/tmp/a/b.nii.gz"), "b.nii.gz");
        assert_eq!(base_name("C:\\x\\y.nii"), "y.nii");
        assert_eq!(base_name("plain.nii"), "plain.nii");
        assert_eq!(base_name("../../etc/passwd"), "passwd");
    }
}
