//! Series selection on a study folder: real series of the shared data (T1post, a hippocampus
//! crop, two CTs) beside pydicom copies that differ only in what a model's rules read
//! (`tests/python/study_fixture.py`). Each bundled model segments exactly the series its card
//! declares it is for, the report and the console name every other series with the rule it
//! failed, `--series` and `--all-series` override the rules, and the masks are named by series
//! number and description, the same in every run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{read_json, run};
use crate::harness::{self, shared_data, tmpdir};

/// The study: its folder and each fixture series' facts by folder name.
struct Study {
    dir: PathBuf,
    series: BTreeMap<String, Value>,
}

impl Study {
    fn build(root: &Path) -> Study {
        let dir = root.join("study");
        let made = harness::py("study_fixture.py", &[&shared_data(), &dir]);
        let series = made["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["folder"].as_str().unwrap().to_string(), s.clone()))
            .collect();
        Study { dir, series }
    }

    fn uid(&self, folder: &str) -> &str {
        self.series[folder]["uid"].as_str().unwrap()
    }
}

fn tumour_model() -> PathBuf {
    harness::repo().join("models/lgg-flair-small.onnx")
}

/// `segment STUDY --model MODEL` into `out` with a report; the run and the report.
fn segment(study: &Path, model: &Path, out: &Path, extra: &[&str]) -> (super::Run, Value) {
    let report = out.join("report.json");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"segment",
        &study,
        &"--model",
        &model,
        &"--out",
        &out,
        &"--device",
        &"cpu",
        &"--report",
        &report,
    ];
    for e in extra {
        args.push(e);
    }
    let r = run(&args);
    assert!(r.code == 0 || r.code == 2, "{}", r.stderr);
    let rep = if r.code == 0 {
        read_json(&report)
    } else {
        Value::Null
    };
    (r, rep)
}

/// The report's jobs by series UID (the CT without a SeriesInstanceUID as "").
fn by_uid(rep: &Value) -> BTreeMap<String, Value> {
    rep["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["series_uid"].as_str().unwrap_or("").to_string(),
                j.clone(),
            )
        })
        .collect()
}

fn mask_name(job: &Value) -> String {
    let p = PathBuf::from(job["mask"]["path"].as_str().expect("mask"));
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Asserts that exactly the series of `selected` ran (status `ok`, a mask) and that every other
/// one is `not_selected` with a reason, `reasons` giving the exact words for some; returns the
/// jobs by folder.
fn assert_selection(
    study: &Study,
    rep: &Value,
    selected: &[&str],
    reasons: &[(&str, &str)],
) -> BTreeMap<String, Value> {
    let jobs = by_uid(rep);
    assert_eq!(jobs.len(), study.series.len(), "{rep}");
    let mut out = BTreeMap::new();
    for (folder, s) in &study.series {
        let j = &jobs[s["uid"].as_str().unwrap()];
        if selected.contains(&folder.as_str()) {
            assert_eq!(j["status"], "ok", "{folder}: {j}");
            assert!(j["reason"].is_null(), "{folder}: {j}");
        } else {
            assert_eq!(j["status"], "not_selected", "{folder}: {j}");
            assert!(j["mask"].is_null(), "{folder}: {j}");
            assert!(!j["reason"].as_str().unwrap().is_empty(), "{folder}");
        }
        assert_eq!(j["series_number"], s["number"], "{folder}");
        assert_eq!(j["series_description"], s["description"], "{folder}");
        out.insert(folder.clone(), j.clone());
    }
    for (folder, why) in reasons {
        assert_eq!(out[*folder]["reason"], *why, "{folder}");
    }
    let summary = &rep["summary"];
    assert_eq!(summary["ok"], selected.len());
    assert_eq!(summary["not_selected"], study.series.len() - selected.len());
    out
}

/// The console names every series not selected with its reason, and the summary counts them.
fn assert_console(stderr: &str, jobs: &BTreeMap<String, Value>, selected: usize) {
    for j in jobs.values().filter(|j| j["status"] == "not_selected") {
        let why = j["reason"].as_str().unwrap();
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(": not selected: ") && l.ends_with(why)),
            "no console line for {why}:\n{stderr}"
        );
    }
    let line = format!(
        "slicewise: {selected} jobs: {selected} segmented, 0 already complete, 0 failed; {} series \
         not selected (--all-series runs them)",
        jobs.len() - selected
    );
    assert!(stderr.contains(&line), "{line}\n{stderr}");
}

#[test]
fn each_bundled_model_segments_exactly_its_series_and_reports_why_not_the_others() {
    let tmp = tmpdir();
    let study = Study::build(tmp.path());

    // The tumour model: axial FLAIR, by description or by inversion time.
    let out = tmp.path().join("tumour");
    let (r, rep) = segment(&study.dir, &tumour_model(), &out, &[]);
    let jobs = assert_selection(
        &study,
        &rep,
        &["flair", "ir_by_sequence"],
        &[
            ("ct_body", "Modality CT not in [MR]"),
            ("screen", "Modality OT not in [MR]"),
            (
                "localizer",
                "ImageType ORIGINAL\\PRIMARY\\LOCALIZER contains LOCALIZER",
            ),
            ("sagittal", "orientation sagittal not in [axial]"),
        ],
    );
    assert_console(&r.stderr, &jobs, 2);
    let t1 = jobs["t1post"]["reason"].as_str().unwrap();
    assert!(
        t1.contains("FLAIR by description: SeriesDescription 'T1post'")
            && t1.contains("FLAIR by sequence: ScanningSequence SE holds none of [IR]"),
        "{t1}"
    );
    assert_eq!(
        mask_name(&jobs["flair"]),
        "study_004_AX_T2_FLAIR_mask.nii.gz"
    );
    assert_eq!(
        mask_name(&jobs["ir_by_sequence"]),
        "study_005_AX_2D_IR_mask.nii.gz"
    );
    // The sidecar keeps the UID beside the readable name.
    let side = read_json(&out.join("study_004_AX_T2_FLAIR.slicewise.json"));
    assert_eq!(side["series_uid"], study.uid("flair"));
    assert_eq!(side["series_number"], 4);
    assert_eq!(side["series_description"], "AX T2 FLAIR");
    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    assert!(
        csv.lines().next().unwrap().ends_with(",error,reason"),
        "{csv}"
    );
    assert!(csv.contains(",not_selected,"), "{csv}");

    // The hippocampus model: axial T1-weighted (by description, timing) or its crops.
    let out = tmp.path().join("hippocampus");
    let hippo = harness::bundled_hippocampus().model;
    let (r, rep) = segment(&study.dir, &hippo, &out, &[]);
    let jobs = assert_selection(
        &study,
        &rep,
        &["t1post", "t1post_again", "hippocrop"],
        &[
            ("flair", "SeriesDescription 'AX T2 FLAIR' matches /flair/i"),
            ("sagittal", "orientation sagittal not in [axial]"),
            ("ct_3slice", "Modality CT not in [MR]"),
        ],
    );
    assert_console(&r.stderr, &jobs, 3);
    assert_eq!(mask_name(&jobs["hippocrop"]), "study_HippoCrop_mask.nii.gz");
    // The T1post sent twice: one number and description, two series; each gets a suffix hashed
    // from its UID, the same in the next run (which finds both complete).
    let (a, b) = (mask_name(&jobs["t1post"]), mask_name(&jobs["t1post_again"]));
    assert_ne!(a, b);
    for n in [&a, &b] {
        assert!(
            n.starts_with("study_011_T1post_") && n.ends_with("_mask.nii.gz"),
            "{n}"
        );
    }
    let (_, again) = segment(&study.dir, &hippo, &out, &[]);
    let again = by_uid(&again);
    for folder in ["t1post", "t1post_again", "hippocrop"] {
        let j = &again[study.uid(folder)];
        assert_eq!(j["status"], "skipped", "{folder}: {j}");
        assert_eq!(mask_name(j), mask_name(&jobs[folder]), "{folder}");
    }
}

#[test]
fn series_and_all_series_override_the_rules() {
    let tmp = tmpdir();
    let study = Study::build(tmp.path());
    let ct = study.uid("ct_3slice").to_string();

    // --series: exactly that series, although the model's rules refuse it (a warning says so).
    let out = tmp.path().join("one");
    let (_, rep) = segment(&study.dir, &tumour_model(), &out, &["--series", &ct]);
    let jobs = by_uid(&rep);
    for (uid, j) in &jobs {
        if *uid == ct {
            assert_eq!(j["status"], "ok", "{j}");
            let warned = j["warnings"].as_array().unwrap().iter().any(|w| {
                w.as_str()
                    .unwrap()
                    .contains("would skip this series (Modality CT not in [MR])")
            });
            assert!(warned, "{j}");
            assert_eq!(
                mask_name(j),
                "study_002_CT_mask.nii.gz",
                "no description: the modality"
            );
        } else {
            assert_eq!(j["status"], "not_selected", "{j}");
            assert_eq!(j["reason"], format!("not the series asked for ({ct})"));
        }
    }

    // A UID the study does not hold stops the batch before any work, naming what it holds.
    let (r, _) = segment(&study.dir, &tumour_model(), &out, &["--series", "9.9.9"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no series with UID 9.9.9"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("\"AX T2 FLAIR\""), "{}", r.stderr);

    // --all-series: every series (what segment did before models declared rules), the ones the
    // rules refuse with the warning; the names are those of a run by the rules.
    let out = tmp.path().join("all");
    let hippo = harness::bundled_hippocampus().model;
    let (_, rep) = segment(&study.dir, &hippo, &out, &["--all-series"]);
    let jobs = by_uid(&rep);
    assert_eq!(jobs.len(), study.series.len());
    let refused: BTreeSet<&str> = [
        "flair",
        "ir_by_sequence",
        "localizer",
        "sagittal",
        "dwi",
        "screen",
        "ct_body",
        "ct_3slice",
    ]
    .into();
    for (folder, s) in &study.series {
        let j = &jobs[s["uid"].as_str().unwrap()];
        assert_eq!(j["status"], "ok", "{folder}: {j}");
        let warned = j["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("would skip this series"));
        assert_eq!(warned, refused.contains(folder.as_str()), "{folder}: {j}");
    }
    assert_eq!(
        mask_name(&jobs[study.uid("flair")]),
        "study_004_AX_T2_FLAIR_mask.nii.gz"
    );
}
