//! `slicewise merge-reports`: the shard reports of one sharded batch merged into one report, as
//! if one process had run the whole manifest.
//!
//! The shards must be those of one batch: the same N, every index 0..N-1 exactly once, the same
//! manifest and model. Jobs come out in manifest row order (a row's jobs in their shard's order),
//! which is the order of an unsharded run. The counts are summed; `seconds` is the longest
//! shard's (the batch's wall time when the shards run side by side, as an Indexed Job runs them),
//! and each shard's own figures stay under `shards`.

use std::path::{Path, PathBuf};

use crate::report::{BatchReport, ShardRecord, ShardSummary, Summary};

/// Merges shard reports (read from `paths`, in any order) into one report.
pub fn merge(paths: &[PathBuf]) -> Result<BatchReport, String> {
    let mut parts = Vec::with_capacity(paths.len());
    for p in paths {
        let report = crate::report::read(p).map_err(|e| e.to_string())?;
        let shard = report.shard.clone().ok_or_else(|| {
            format!(
                "{}: not a shard report (written without --shard)",
                p.display()
            )
        })?;
        parts.push((p.clone(), shard, report));
    }
    parts.sort_by_key(|(_, s, _)| s.index);
    check_complete(&parts)?;
    Ok(combine(parts))
}

type Part = (PathBuf, ShardRecord, BatchReport);

/// The shards are one batch's, each present once.
fn check_complete(parts: &[Part]) -> Result<(), String> {
    let Some((p0, first, r0)) = parts.first() else {
        return Err("no reports to merge".into());
    };
    for (p, s, r) in parts {
        if s.count != first.count || s.manifest != first.manifest || s.rows != first.rows {
            return Err(format!(
                "{} is shard {}/{} of {} ({} rows) but {} is of {}/{} of {} ({} rows): not one batch",
                p.display(),
                s.index,
                s.count,
                s.manifest.display(),
                s.rows,
                p0.display(),
                first.index,
                first.count,
                first.manifest.display(),
                first.rows
            ));
        }
        if (r.model.name.as_str(), r.model.version.as_str())
            != (r0.model.name.as_str(), r0.model.version.as_str())
        {
            return Err(format!(
                "{} used model {} {} but {} used {} {}",
                p.display(),
                r.model.name,
                r.model.version,
                p0.display(),
                r0.model.name,
                r0.model.version
            ));
        }
    }
    let indices: Vec<usize> = parts.iter().map(|(_, s, _)| s.index).collect();
    let missing: Vec<String> = (0..first.count)
        .filter(|i| !indices.contains(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shards {} of {} are missing",
            missing.join(", "),
            first.count
        ));
    }
    if let Some(w) = indices.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("shard {} is given twice", w[0]));
    }
    Ok(())
}

/// One report from the (complete, ordered) shards.
fn combine(parts: Vec<Part>) -> BatchReport {
    let mut shards = Vec::with_capacity(parts.len());
    let mut jobs = Vec::new();
    let mut summary = Summary::default();
    let mut base: Option<BatchReport> = None;
    for (path, shard, report) in parts {
        let s = &report.summary;
        summary.jobs += s.jobs;
        summary.ok += s.ok;
        summary.skipped += s.skipped;
        summary.failed += s.failed;
        summary.not_selected += s.not_selected;
        summary.seconds = summary.seconds.max(s.seconds);
        shards.push(ShardSummary {
            index: shard.index,
            report: path,
            provider: report.model.provider.used.clone(),
            load_seconds: report.model.load_seconds,
            summary: s.clone(),
        });
        // Stable: a row's jobs keep their shard's order.
        jobs.extend(report.jobs.iter().cloned().enumerate().map(|(i, j)| {
            let row = j.row.unwrap_or(usize::MAX);
            ((row, shard.index, i), j)
        }));
        base.get_or_insert(report);
    }
    jobs.sort_by_key(|(k, _)| *k);
    let mut merged = base.expect("check_complete saw at least one shard");
    merged.jobs = jobs.into_iter().map(|(_, j)| j).collect();
    merged.summary = summary;
    merged.shard = None;
    merged.shards = shards;
    merged
}

/// Writes the merged report of `paths` at `out` (JSON, CSV next to it).
pub fn merge_to(paths: &[PathBuf], out: &Path) -> Result<BatchReport, String> {
    let merged = merge(paths)?;
    crate::report::write(out, &merged).map_err(|e| e.to_string())?;
    Ok(merged)
}
