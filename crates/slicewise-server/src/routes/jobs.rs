//! `GET /jobs/`: progress of running jobs, and the recently finished ones.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::P;
use crate::app::AppState;
use crate::error::ApiError;
use crate::jobs::JobStatus;

/// `GET /jobs/`: `{"active": n, "jobs": [...]}`, newest first.
pub async fn list(State(app): State<AppState>) -> Json<Value> {
    Json(json!({ "active": app.jobs.active(), "jobs": app.jobs.list() }))
}

/// `GET /jobs/{id}`.
pub async fn get(
    State(app): State<AppState>,
    P(id): P<String>,
) -> Result<Json<JobStatus>, ApiError> {
    app.jobs
        .get(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("unknown_job", format!("no job {id:?}")))
}
