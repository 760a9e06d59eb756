//! One series, start to finish, for each model that selected it: unless the PACS already holds
//! its result (QIDO-RS for the result's deterministic SeriesInstanceUID), fetch it (WADO-RS)
//! into a private folder, run it as a job of the job layer (the same `run_job` as `slicewise
//! segment`), give the result its deterministic UIDs and store it (STOW-RS) — then journal it
//! `stored`. Any crash before that line leaves the pair `claimed`, so the next start redoes
//! it, and finds the stored result rather than storing a second one.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use slicewise_batch::batch::{run_job, InputGuard, JobSettings};
use slicewise_batch::jobs;
use slicewise_batch::report::{JobRecord, JobStatus};
use slicewise_dicomweb::PacsError;

use crate::journal::{Entry, State};
use crate::options::stored_format_name;
use crate::select::card_refuses;
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
    let uid = item.info.series_uid.clone();
    // A result stored by an earlier run that died before journalling it is found first, so
    // that the series is neither stored twice nor segmented again for it.
    let mut todo = Vec::new();
    for &m in &item.models {
        match in_pacs(shared, &item, m).await {
            Ok(true) => {
                if let Err(why) = stored(shared, &item, m, true) {
                    fail(shared, &item, m, &why);
                }
            }
            Ok(false) => todo.push(m),
            Err(why) => fail(shared, &item, m, &why),
        }
    }
    if todo.is_empty() {
        return;
    }
    let info = &item.info;
    let fetched = shared
        .patiently(&format!("WADO-RS series {uid}"), || shared.pacs.fetch(info))
        .await;
    let dir = match fetched {
        Ok(dir) => dir,
        Err(e) => {
            for &m in &todo {
                fail(shared, &item, m, &e.to_string());
            }
            return;
        }
    };
    shared.audit.event(
        "fetched",
        json!({"series": uid, "seconds": item.arrived.elapsed().as_secs_f64()}),
    );
    for m in todo {
        if let Err(why) = one_model(shared, &item, m, dir.path().to_path_buf()).await {
            fail(shared, &item, m, &why);
        }
    }
}

/// The UIDs of model `m`'s result for the item's series.
fn uids(shared: &Shared, item: &WorkItem, m: usize) -> ResultUids {
    let format = stored_format_name(shared.opts.format).unwrap_or("seg");
    ResultUids::of(&item.info.series_uid, &shared.models[m].key, format)
}

/// Whether the PACS already holds model `m`'s result for the series (QIDO-RS for its UID).
async fn in_pacs(shared: &Shared, item: &WorkItem, m: usize) -> Result<bool, String> {
    let series = uids(shared, item, m).series;
    let found = shared
        .patiently(&format!("QIDO-RS result series {series}"), || {
            shared.pacs.find_series(&series)
        })
        .await;
    match found {
        Ok(_) => Ok(true),
        Err(PacsError::NoSuchSeries { .. }) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Journals and audits model `m`'s result as stored.
fn stored(shared: &Shared, item: &WorkItem, m: usize, already: bool) -> Result<(), String> {
    let (key, uid) = (&shared.models[m].key, &item.info.series_uid);
    let uids = uids(shared, item, m);
    let mut entry = Entry::new(uid, &item.info.study_uid, key, State::Stored);
    entry.result = Some(uids.instance.clone());
    shared.record(entry).map_err(|e| e.to_string())?;
    shared.audit.event(
        "stored",
        json!({
            "series": uid, "model": key, "format": stored_format_name(shared.opts.format),
            "result_series": uids.series, "result": uids.instance,
            "already_in_pacs": already,
            "seconds": item.arrived.elapsed().as_secs_f64(),
        }),
    );
    Ok(())
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
    if let Some(why) = card_refuses(&loaded.model, &dir) {
        return not_selected(shared, item, m, &why);
    }
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
    let bytes = restamp(&mask, &uids(shared, item, m))?;
    // Its UIDs make a repeated STOW-RS (two watchers on one PACS) store the same instance.
    shared
        .patiently(&format!("STOW-RS result of series {uid}"), || {
            shared.pacs.store(&bytes)
        })
        .await
        .map_err(|e| e.to_string())?;
    debug_abort();
    stored(shared, item, m, false)
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

/// Journals and audits (series, model `m`) as skipped: the model card's rules refuse the
/// fetched series.
fn not_selected(shared: &Shared, item: &WorkItem, m: usize, why: &str) -> Result<(), String> {
    let key = &shared.models[m].key;
    let uid = &item.info.series_uid;
    let mut entry = Entry::new(uid, &item.info.study_uid, key, State::Skipped);
    entry.reason = Some(why.to_string());
    shared.record(entry).map_err(|e| e.to_string())?;
    shared.audit.event(
        "skipped",
        json!({"series": uid, "model": key, "reason": why,
               "seconds": item.arrived.elapsed().as_secs_f64()}),
    );
    Ok(())
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
