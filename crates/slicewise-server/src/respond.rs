//! Answers that are not plain JSON: a file download, and the `multipart/form-data` answer of
//! `POST /infer/` — a `params` JSON part and an `image` part holding the label file — laid out
//! as MONAI Label's server writes it (requests_toolbelt's `MultipartEncoder`) and as
//! `MONAILabelClient` parses it (`cgi.FieldStorage`: the part with a file name is the file).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A file answer: `Content-Disposition: attachment; filename="<name>"`.
pub fn file(bytes: Vec<u8>, name: &str, content_type: &'static str) -> Response {
    let mut resp = (StatusCode::OK, Body::from(bytes)).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", quoted(name))) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The multipart answer: `params` (JSON) then `image` (the label file).
pub fn multipart(params: &Value, label: &[u8], file_name: &str) -> Response {
    let boundary = format!("slicewise-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::with_capacity(label.len() + 1024);
    let part_head = |body: &mut Vec<u8>, disposition: String, content_type: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
    };
    part_head(&mut body, "name=\"params\"".to_string(), "application/json");
    body.extend_from_slice(params.to_string().as_bytes());
    body.extend_from_slice(b"\r\n");
    part_head(
        &mut body,
        format!("name=\"image\"; filename=\"{}\"", quoted(file_name)),
        "application/octet-stream",
    );
    body.extend_from_slice(label);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut resp = (StatusCode::OK, Body::from(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}")) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// A file name made safe inside a quoted header parameter.
fn quoted(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}
