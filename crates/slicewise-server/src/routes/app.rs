//! `/info/` and `/auth/`.

use axum::extract::State;
use axum::Form;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::constant_time_eq;
use crate::app::AppState;
use crate::error::ApiError;

/// `GET /info/`: the app and its models, in the shape MONAI Label's `MONAILabelApp.info()`
/// gives. No top-level `config` key: Slicer's extension takes one for an outdated server.
pub async fn info(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "name": "slicewise",
        "description": "slicewise: slice-by-slice ONNX U-Net segmentation (MONAI Label API subset)",
        "version": env!("CARGO_PKG_VERSION"),
        "labels": app.models.all_labels(),
        "models": app.models.info(),
        "trainers": {},
        "strategies": {},
        "scoring": {},
        "train_stats": {},
        "datastore": app.datastore.stats_json(),
    }))
}

/// `GET /auth/`: `enabled` tells clients whether to log in (MONAI Label's shape).
pub async fn auth_status(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "enabled": app.token.is_some(),
        "client_id": "slicewise",
        "realm": "",
    }))
}

/// The OAuth2 password form MONAILabelClient's `auth_token` posts.
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    password: String,
}

/// `POST /auth/token`: exchanges the server's token, given as the password, for itself as a
/// bearer token — what Slicer's login dialog needs. Without a token configured, MONAI Label's
/// answer for disabled auth.
pub async fn auth_token(
    State(app): State<AppState>,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Result<Json<Value>, ApiError> {
    let Some(token) = &app.token else {
        return Ok(Json(json!({ "access_token": null, "token_type": null })));
    };
    let Form(form) = form.map_err(|e| ApiError::bad_request("bad_form", e.body_text()))?;
    if !constant_time_eq(form.password.as_bytes(), token.as_bytes()) {
        return Err(ApiError::unauthorized());
    }
    Ok(Json(
        json!({ "access_token": token, "token_type": "bearer" }),
    ))
}

/// `GET /auth/token/valid`: reached only with a valid token (or none configured).
pub async fn auth_valid() -> Json<Value> {
    Json(json!({ "username": "slicewise", "email": null, "name": "slicewise", "roles": ["user"] }))
}
