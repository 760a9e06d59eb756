//! `slicewise segment --jobs K`: the pipelined batch writes exactly what one job at a time
//! writes, in the same report order, on real volumes with the bundled hippocampus model (real
//! weights): MSD hippocampus NIfTI volumes (NIfTI masks) and LGG patient folders (TIFF masks),
//! with a broken input among them that must fail alone.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::{cmd, read_json, Run};
use crate::harness::{bundled_hippocampus, data, tmpdir};

/// Four hippocampus volumes, a truncated NIfTI (written into `dir`), two LGG patients.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let images = data("msd-hippocampus/images");
    let mut hippo: Vec<PathBuf> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".nii.gz"))
        .collect();
    hippo.sort();
    let broken = dir.join("broken.nii.gz");
    let whole = std::fs::read(&hippo[0]).unwrap();
    std::fs::write(&broken, &whole[..whole.len() / 2]).unwrap();
    let mut v: Vec<PathBuf> = hippo[..2].to_vec();
    v.push(broken);
    v.extend_from_slice(&hippo[2..4]);
    v.push(data("lgg/TCGA_DU_6399_19830416"));
    v.push(data("lgg/TCGA_CS_4943_20000902"));
    v
}

/// `segment INPUTS --jobs JOBS EXTRA` into `out`, with a report there; returns the run and the
/// report.
fn segment(inputs: &[PathBuf], out: &Path, jobs: &str, extra: &[&str]) -> (Run, Value) {
    let model = bundled_hippocampus().model;
    let report = out.join("report.json");
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"segment"];
    for p in inputs {
        args.push(p);
    }
    args.extend([
        &"--model" as &dyn AsRef<OsStr>,
        &model,
        &"--out",
        &out,
        &"--device",
        &"cpu",
        &"--jobs",
        &jobs,
        &"--report",
        &report,
    ]);
    for e in extra {
        args.push(e);
    }
    let run = Run::from_output(cmd(&args).output().expect("start slicewise"));
    (run, read_json(&report))
}

fn jobs(report: &Value) -> &Vec<Value> {
    report["jobs"].as_array().expect("jobs")
}

/// A job's mask file's bytes and the size its sidecar records.
fn mask_and_sidecar(job: &Value) -> (Vec<u8>, u64) {
    let mask = PathBuf::from(job["mask"]["path"].as_str().expect("mask path"));
    let name = mask.file_name().unwrap().to_string_lossy().into_owned();
    let base = name.split("_mask.").next().unwrap().to_string();
    let sidecar = read_json(&mask.with_file_name(format!("{base}.slicewise.json")));
    let bytes = std::fs::read(&mask).unwrap_or_else(|e| panic!("{}: {e}", mask.display()));
    (
        bytes,
        sidecar["mask"]["bytes"]
            .as_u64()
            .expect("sidecar mask bytes"),
    )
}

/// What must not depend on `--jobs`, per job: the input, status, error, mask name and bytes,
/// the size in the sidecar, and the label counts.
#[derive(PartialEq)]
struct Outcome {
    input: String,
    status: String,
    error: String,
    mask_name: String,
    mask: Vec<u8>,
    sidecar_bytes: u64,
    labels: String,
}

/// The report's jobs' [`Outcome`]s, in report order.
fn outcome(report: &Value) -> Vec<Outcome> {
    jobs(report)
        .iter()
        .map(|j| {
            let mut o = Outcome {
                input: j["input"].to_string(),
                status: j["status"].to_string(),
                error: j["error"].to_string(),
                mask_name: String::new(),
                mask: Vec::new(),
                sidecar_bytes: 0,
                labels: j["labels"].to_string(),
            };
            if j["status"] == "ok" {
                (o.mask, o.sidecar_bytes) = mask_and_sidecar(j);
                let p = PathBuf::from(j["mask"]["path"].as_str().unwrap());
                o.mask_name = p.file_name().unwrap().to_string_lossy().into_owned();
            }
            o
        })
        .collect()
}

#[test]
fn jobs_2_writes_byte_for_byte_the_masks_of_one_job_at_a_time() {
    let dir = tmpdir();
    let inputs = inputs(dir.path());
    let (serial_run, serial) = segment(&inputs, &dir.path().join("serial"), "1", &[]);
    // The broken input fails alone: exit 1, every other job written.
    assert_eq!(serial_run.code, 1, "{}", serial_run.stderr);
    let statuses: Vec<&str> = jobs(&serial)
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "failed", "ok", "ok", "ok", "ok"]);
    let error = jobs(&serial)[2]["error"].as_str().unwrap();
    assert!(error.contains("broken.nii.gz"), "{error}");

    let want = outcome(&serial);
    // Two sessions (the default on CPU) and two workers sharing one session.
    for (out, extra) in [
        ("jobs2", &[][..]),
        ("jobs2-shared", &["--sessions", "1"][..]),
    ] {
        let (run, report) = segment(&inputs, &dir.path().join(out), "2", extra);
        assert_eq!(run.code, 1, "{out}: {}", run.stderr);
        let got = outcome(&report);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(g == w, "{out}: {} differs from the serial run's", w.input);
        }
        let p = &report["summary"]["parallel"];
        assert_eq!(p["jobs"], 2, "{out}");
        assert_eq!(p["volumes_in_flight"], 4, "{out}");
        let sessions = if extra.is_empty() { 2 } else { 1 };
        assert_eq!(p["sessions"], sessions, "{out}");
        // The options are the serial run's: --jobs changes how, not what.
        assert_eq!(report["options"], serial["options"], "{out}");
    }
}

#[test]
fn jobs_2_resumes_a_finished_batch_without_redoing_a_job() {
    let dir = tmpdir();
    let inputs = inputs(dir.path());
    let out = dir.path().join("out");
    let (first, _) = segment(&inputs, &out, "2", &[]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let masks: Vec<(PathBuf, std::time::SystemTime)> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("_mask."))
        .map(|p| {
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, t)
        })
        .collect();
    assert_eq!(masks.len(), 6);
    let (again, report) = segment(&inputs, &out, "2", &[]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    let statuses: Vec<&str> = jobs(&report)
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["skipped", "skipped", "failed", "skipped", "skipped", "skipped", "skipped"]
    );
    for (p, t) in &masks {
        let now = std::fs::metadata(p).unwrap().modified().unwrap();
        assert_eq!(now, *t, "a finished job was redone: {}", p.display());
    }
    // --overwrite redoes them all, and they come out the same.
    let before: Vec<Vec<u8>> = masks
        .iter()
        .map(|(p, _)| std::fs::read(p).unwrap())
        .collect();
    let (redo, report) = segment(&inputs, &out, "2", &["--overwrite"]);
    assert_eq!(redo.code, 1, "{}", redo.stderr);
    assert_eq!(report["summary"]["ok"], 6);
    for ((p, _), b) in masks.iter().zip(&before) {
        assert!(std::fs::read(p).unwrap() == *b, "{} changed", p.display());
    }
}
