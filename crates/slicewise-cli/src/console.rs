//! What `segment` tells the user on the terminal, worded once: the device line, one line of
//! volumes per job and the batch summary.
//!
//! Everything here goes to stderr (stdout stays free for machine-readable output), prefixed
//! `slicewise:` where it is about the run rather than one job.

use slicewise::infer::Model;

use slicewise_batch::report::{JobRecord, JobStatus, Summary};

/// "1 job", "2 jobs".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A volume for reading at a glance: 3 significant digits, zeros kept so that a column of them
/// lines up (1.60, 37.7, 0.0123), whole mL from 100 up.
pub fn ml(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

/// The one line saying that `--device auto` runs on CPU and why; `None` when a GPU runs or the
/// CPU was asked for. Printed once per run: the engine only records the reason.
pub fn device_line(model: &Model) -> Option<String> {
    model
        .fallback_reason()
        .map(|why| format!("slicewise: running on CPU ({why})"))
}

/// What the job's volumes rest on when the input gave no spacing (or no unit), from the
/// reader's warnings ("no spacing in file; assumed 1 mm"); `None` when the spacing is the file's.
pub fn spacing_note(warnings: &[String]) -> Option<&'static str> {
    let says = |needle: &str| warnings.iter().any(|w| w.contains(needle));
    if says("assumed 1 mm") || says("1 mm assumed") {
        Some("spacing assumed 1 mm")
    } else if says("assumed mm") {
        Some("spacing unit assumed mm")
    } else {
        None
    }
}

/// One line of per-label volumes for a finished job, named by the model's labels:
/// `name: anterior hippocampus 1.82 mL, posterior hippocampus 1.63 mL`, with the spacing
/// assumption and a skipped job's origin in brackets. `None` for a failed job.
pub fn job_line(name: &str, rec: &JobRecord) -> Option<String> {
    match rec.status {
        JobStatus::Failed => return None,
        JobStatus::NotSelected => {
            let why = rec.reason.as_deref().unwrap_or("not selected");
            return Some(format!("{name}: not selected: {why}"));
        }
        JobStatus::Ok | JobStatus::Skipped => {}
    }
    let volumes: Vec<String> = rec
        .labels
        .iter()
        .map(|l| {
            let label = if l.name.is_empty() {
                format!("label {}", l.value)
            } else {
                l.name.clone()
            };
            format!("{label} {} mL", ml(l.ml))
        })
        .collect();
    let mut line = format!("{name}: ");
    line.push_str(&if volumes.is_empty() {
        "no labels".to_string()
    } else {
        volumes.join(", ")
    });
    if let Some(note) = spacing_note(&rec.warnings) {
        line.push_str(&format!(" ({note})"));
    }
    if rec.status == JobStatus::Skipped {
        line.push_str(" (complete from an earlier run)");
    }
    Some(line)
}

/// The closing line of a batch.
pub fn summary_line(s: &Summary) -> String {
    // Series the model does not take are listed, not counted as jobs.
    let mut line = format!(
        "slicewise: {}: {} segmented, {} already complete, {} failed",
        plural(s.jobs - s.not_selected, "job"),
        s.ok,
        s.skipped,
        s.failed,
    );
    if s.not_selected > 0 {
        line.push_str(&format!(
            "; {} series not selected (--all-series runs them)",
            s.not_selected
        ));
    }
    line.push_str(&format!(" ({:.1} s)", s.seconds));
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use slicewise::mask::LabelStats;
    use std::path::Path;

    #[test]
    fn plurals_agree_with_their_count() {
        assert_eq!(plural(1, "job"), "1 job");
        assert_eq!(plural(0, "job"), "0 jobs");
        assert_eq!(plural(3, "input"), "3 inputs");
    }

    #[test]
    fn millilitres_read_at_a_glance() {
        assert_eq!(ml(1.6260000000000001), "1.63");
        assert_eq!(ml(1.6), "1.60");
        assert_eq!(ml(37.651), "37.7");
        assert_eq!(ml(0.01234), "0.0123");
        assert_eq!(ml(1234.56), "1235");
        assert_eq!(ml(0.0), "0");
    }

    #[test]
    fn job_line_names_labels_and_says_when_spacing_was_assumed() {
        let mut r = JobRecord::new(Path::new("a.tif"), None);
        r.status = JobStatus::Ok;
        for (value, name, ml) in [(1, "tumour", 1.82), (2, "", 0.0)] {
            let (voxels, name) = (0, name.to_string());
            r.labels.push(LabelStats {
                value,
                name,
                voxels,
                ml,
            });
        }
        r.warnings.push("no spacing in file; assumed 1 mm".into());
        assert_eq!(
            job_line("a", &r).as_deref(),
            Some("a: tumour 1.82 mL, label 2 0 mL (spacing assumed 1 mm)")
        );
        r.status = JobStatus::Failed;
        assert_eq!(job_line("a", &r), None);
    }
}
