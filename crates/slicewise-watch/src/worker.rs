//! One series, start to finish, for each model that selected it: fetch it (WADO-RS) into a
//! private folder, run it as a job of the job layer (the same `run_job` as `slicewise
//! segment`), give the result its deterministic UIDs, and store it (STOW-RS) unless the PACS
//! already holds it — then journal it `stored`. Any crash before that line leaves the pair
//! `claimed`, so the next start redoes it, and finds the stored result rather than storing a
//! second one.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use slicewise_batch::batch::{run_job, InputGuard, JobSettings};
use slicewise_batch::jobs;
use slicewise_batch::report::{JobRecord, JobStatus};
use slicewise_dicomweb::PacsError;

use crate::journal::{Entry, State};
use crate::options::stored_format_name;
use crate::shared::{Shared, WorkItem};
use crate::stamp::{restamp, ResultUids};

/// Debug builds only (tests): seconds a worker waits after taking a series, before fetching
/// it, so that a test can kill the watcher with the series claimed but not done.
pub const DEBUG_STALL_VAR: &str = "SLICEWISE_DEBUG_WATCH_STALL";
/// Debug builds only (tests): when set, the watcher aborts right after its first STOW-RS, before
/// journalling the result: the crash that the PACS check at the next start must catch.
pub const DEBUG_ABORT_VAR: &str = "SLICEWISE_DEBUG_WATCH_ABORT_AFTER_STORE";

/// Processes one series; every outcome is journalled and audited.
pub async fn process(shared: &Arc<Shared>, item: WorkItem) {
    debug_stall().await;
    let info = &item.info;
    let uid = info.series_uid.clone();
    let fetched = shared
        .patiently(&format!("WADO-RS series {uid}"), || shared.pacs.fetch(info))
        .await;
    let dir = match fetched {
        Ok(dir) => dir,
        Err(e) => {
            for &m in &item.models {
                fail(shared, &item, m, &e.to_string());
            }
            return;
        }
    };
    shared.audit.event(
        "fetched",
        json!({"series": uid, "seconds": item.arrived.elapsed().as_secs_f64()}),
    );
    for &m in &item.models {
        if let Err(why) = one_model(shared, &item, m, dir.path().to_path_buf()).await {
            fail(shared, &item, m, &why);
        }
    }
}

/// Segments, stamps and stores the result of model `m`.
async fn one_model(
    shared: &Arc<Shared>,
    item: &WorkItem,
    m: usize,
    dir: PathBuf,
) -> Result<(), String> {
    let loaded = &shared.models[m];
    let uid = &item.info.series_uid;
    let (rec, _out) = segment(shared, m, dir).await?;
    if rec.status != JobStatus::Ok {
        return Err(rec.error.unwrap_or_else(|| "the job failed".into()));
    }
    shared.audit.event(
        "segmented",
        json!({
            "series": uid, "model": loaded.key,
            "seconds": item.arrived.elapsed().as_secs_f64(),
            "labels": rec.labels, "warnings": rec.warnings,
        }),
    );
    let mask = rec.mask.ok_or("the job wrote no result")?.path;
    let format = stored_format_name(shared.opts.format).unwrap_or("seg");
    let uids = ResultUids::of(uid, &loaded.key, format);
    let bytes = restamp(&mask, &uids)?;
    let already = match shared
        .patiently(&format!("QIDO-RS result series {}", uids.series), || {
            shared.pacs.find_series(&uids.series)
        })
        .await
    {
        Ok(_) => true,
        Err(PacsError::NoSuchSeries { .. }) => false,
        Err(e) => return Err(e.to_string()),
    };
    if !already {
        shared
            .patiently(&format!("STOW-RS result of series {uid}"), || {
                shared.pacs.store(&bytes)
            })
            .await
            .map_err(|e| e.to_string())?;
        debug_abort();
    }
    let mut entry = Entry::new(uid, &item.info.study_uid, &loaded.key, State::Stored);
    entry.result = Some(uids.instance.clone());
    shared.record(entry).map_err(|e| e.to_string())?;
    shared.audit.event(
        "stored",
        json!({
            "series": uid, "model": loaded.key, "format": format,
            "result_series": uids.series, "result": uids.instance,
            "already_in_pacs": already,
            "seconds": item.arrived.elapsed().as_secs_f64(),
        }),
    );
    Ok(())
}

/// Runs the series as one job of the job layer, on a blocking thread, writing into a private
/// folder under the staging folder (removed when the returned folder is dropped).
async fn segment(
    shared: &Arc<Shared>,
    m: usize,
    dir: PathBuf,
) -> Result<(JobRecord, tempfile::TempDir), String> {
    let out = tempfile::Builder::new()
        .prefix("result-")
        .tempdir_in(&shared.staging)
        .map_err(|e| format!("cannot make a result folder: {e}"))?;
    let settings = JobSettings {
        format: Some(shared.opts.format),
        options: shared.opts.segment.clone(),
        overwrite: true,
        ..JobSettings::new(out.path())
    };
    let model = shared.models[m].model.clone();
    let rec = tokio::task::spawn_blocking(move || {
        // The fetched folder holds the one series: one job.
        let job = jobs::expand(&[dir]).into_iter().next()?;
        Some(run_job(
            &job,
            &model,
            &settings,
            &InputGuard::default(),
            &mut |_| true,
        ))
    })
    .await
    .map_err(|e| format!("the job's thread failed: {e}"))?
    .ok_or("the fetched series is no volume")?;
    Ok((rec, out))
}

/// Journals and audits (series, model `m`) as failed for good.
fn fail(shared: &Shared, item: &WorkItem, m: usize, why: &str) {
    let key = &shared.models[m].key;
    let uid = &item.info.series_uid;
    log::error!("series {uid}, model {key}: {why}");
    let mut entry = Entry::new(uid, &item.info.study_uid, key, State::Failed);
    entry.reason = Some(why.to_string());
    let _ = shared.record(entry);
    shared.audit.event(
        "failed",
        json!({"series": uid, "model": key, "reason": why,
               "seconds": item.arrived.elapsed().as_secs_f64()}),
    );
}

async fn debug_stall() {
    if !cfg!(debug_assertions) {
        return;
    }
    let secs = std::env::var(DEBUG_STALL_VAR)
        .ok()
        .and_then(|s| s.parse::<f64>().ok());
    if let Some(s) = secs.filter(|s| *s > 0.0) {
        tokio::time::sleep(std::time::Duration::from_secs_f64(s)).await;
    }
}

fn debug_abort() {
    if cfg!(debug_assertions) && std::env::var_os(DEBUG_ABORT_VAR).is_some() {
        std::process::abort();
    }
}
