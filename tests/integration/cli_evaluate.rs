//! `slicewise evaluate` against tests/python/metrics_ref.py (numpy/scipy, MONAI-style formulas)
//! on real masks, and exact values on synthetic shapes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::run;
use crate::harness::{self, data, py, tmpdir};

const LGG: &str = "lgg/TCGA_CS_4943_20000902";

/// Asserts one metrics object equals the reference: counts exactly, ratios and distances to 1e-6.
fn assert_metrics(got: &Value, want: &Value, what: &str) {
    for k in ["tp", "fp", "fn_", "tn", "both_empty"] {
        assert_eq!(got[k], want[k], "{what}: {k}");
    }
    for k in [
        "dice",
        "iou",
        "precision",
        "recall",
        "accuracy",
        "hd95_mm",
        "assd_mm",
    ] {
        match (got[k].as_f64(), want[k].as_f64()) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-6, "{what}: {k} {a} vs {b}"),
            (None, None) => {}
            (a, b) => panic!("{what}: {k} {a:?} vs {b:?}"),
        }
    }
}

/// Compares every label's volume and per-slice metrics of case 0 with the reference.
fn assert_case_matches(rust: &Value, reference: &Value) {
    let labels = rust["cases"][0]["labels"].as_array().expect("labels");
    let want = reference["labels"].as_object().expect("labels");
    assert_eq!(labels.len(), want.len(), "label sets differ");
    for l in labels {
        let key = l["label"].to_string();
        let r = &want[&key];
        assert_metrics(&l["volume"], &r["volume"], &format!("label {key} volume"));
        let (gs, ws) = (
            l["slices"].as_array().unwrap(),
            r["slices"].as_array().unwrap(),
        );
        assert_eq!(gs.len(), ws.len());
        for (z, (g, w)) in gs.iter().zip(ws).enumerate() {
            assert_metrics(g, w, &format!("label {key} slice {z}"));
        }
    }
}

#[test]
fn evaluate_lgg_patient_folder_truth_matches_scipy_reference() {
    let dir = tmpdir();
    let truth = data(LGG);
    let pred = dir.path().join("pred.nii.gz");
    py("metrics_ref.py", &[&"perturb-lgg", &truth, &pred]);
    let r = run(&[&"evaluate", &"--json", &"--pred", &pred, &"--truth", &truth]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.json();
    let reference = py("metrics_ref.py", &[&"eval", &pred, &truth, &"binary"]);
    assert_case_matches(&out, &reference);
    // Slices where both are empty are excluded from the slice mean.
    let l = &out["cases"][0]["labels"][0];
    let slices = l["slices"].as_array().unwrap();
    let used: Vec<f64> = slices
        .iter()
        .filter(|s| !s["both_empty"].as_bool().unwrap())
        .map(|s| s["dice"].as_f64().unwrap())
        .collect();
    assert!(
        used.len() < slices.len(),
        "the case should have empty slices"
    );
    let mean = used.iter().sum::<f64>() / used.len() as f64;
    assert!((l["slice_mean"]["dice"].as_f64().unwrap() - mean).abs() < 1e-12);
}

#[test]
fn evaluate_multi_label_nifti_matches_scipy_reference_per_label() {
    let dir = tmpdir();
    let truth = data("msd-hippocampus/labels/hippocampus_001.nii.gz");
    let pred = dir.path().join("pred.nii.gz");
    py("metrics_ref.py", &[&"perturb-nifti", &truth, &pred]);
    let r = run(&[&"evaluate", &"--json", &"--pred", &pred, &"--truth", &truth]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.json();
    let reference = py("metrics_ref.py", &[&"eval", &pred, &truth, &"labels"]);
    assert_eq!(out["cases"][0]["labels"].as_array().unwrap().len(), 2);
    assert_case_matches(&out, &reference);
    // --binary merges the labels.
    let r = run(&[
        &"evaluate",
        &"--json",
        &"--binary",
        &"--pred",
        &pred,
        &"--truth",
        &truth,
    ]);
    let reference = py("metrics_ref.py", &[&"eval", &pred, &truth, &"binary"]);
    assert_case_matches(&r.json(), &reference);
}

#[test]
fn hd95_of_plates_offset_by_k_slices_is_exactly_k_times_slice_spacing() {
    let dir = tmpdir();
    let (a, b) = (dir.path().join("a.nii.gz"), dir.path().join("b.nii.gz"));
    py("metrics_ref.py", &[&"plates", &a, &b, &"2"]);
    let r = run(&[&"evaluate", &"--json", &"--pred", &a, &"--truth", &b]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = &r.json()["cases"][0]["labels"][0]["volume"];
    assert_eq!(v["hd95_mm"].as_f64(), Some(5.0));
    assert_eq!(v["assd_mm"].as_f64(), Some(5.0));
    assert_eq!(v["dice"].as_f64(), Some(0.0));
}

#[test]
fn hd95_of_offset_cubes_with_anisotropic_spacing_matches_reference() {
    let dir = tmpdir();
    let (a, b) = (dir.path().join("a.nii.gz"), dir.path().join("b.nii.gz"));
    py("metrics_ref.py", &[&"cubes", &a, &b, &"3"]);
    let r = run(&[&"evaluate", &"--json", &"--pred", &a, &"--truth", &b]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.json();
    assert_case_matches(&out, &py("metrics_ref.py", &[&"eval", &a, &b, &"binary"]));
    // Every directed distance is a multiple of the 2.5 mm slice step, up to 3 steps.
    let hd = out["cases"][0]["labels"][0]["volume"]["hd95_mm"]
        .as_f64()
        .unwrap();
    assert!(hd > 0.0 && hd <= 7.5 + 1e-12, "{hd}");
}

#[test]
fn evaluate_folder_pair_matches_names_and_prints_means() {
    let pred_dir = tmpdir();
    let truth_dir = data("msd-hippocampus/labels");
    for n in ["hippocampus_001", "hippocampus_003"] {
        let p = pred_dir.path().join(format!("{n}_mask.nii.gz"));
        py(
            "metrics_ref.py",
            &[&"perturb-nifti", &truth_dir.join(format!("{n}.nii.gz")), &p],
        );
    }
    std::fs::write(pred_dir.path().join("notes.txt"), "not a mask").unwrap();
    let r = run(&[
        &"evaluate",
        &"--json",
        &"--pred",
        &pred_dir.path(),
        &"--truth",
        &truth_dir,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.json();
    let cases = out["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hippocampus_001", "hippocampus_003"]);
    let d1: Vec<f64> = cases
        .iter()
        .map(|c| c["labels"][0]["volume"]["dice"].as_f64().unwrap())
        .collect();
    let mean = out["mean"]["label 1"]["dice"].as_f64().unwrap();
    assert!((mean - (d1[0] + d1[1]) / 2.0).abs() < 1e-12);
    // The table form: one row per case and label, plus the means.
    let t = run(&[
        &"evaluate",
        &"--pred",
        &pred_dir.path(),
        &"--truth",
        &truth_dir,
    ]);
    assert_eq!(t.code, 0);
    assert_eq!(
        t.stdout
            .lines()
            .filter(|l| l.starts_with("hippocampus_"))
            .count(),
        4
    );
    assert_eq!(
        t.stdout
            .lines()
            .filter(|l| l.starts_with("mean of 2 cases"))
            .count(),
        2
    );
}

/// The table rows of one label: `(label, dice, name)` per row whose case column is `case`.
fn table_rows<'a>(table: &'a str, case: &str) -> Vec<(&'a str, &'a str, String)> {
    table
        .lines()
        .filter(|l| l.starts_with(case) && l[case.len()..].starts_with("  "))
        .map(|l| {
            let cells: Vec<&str> = l[case.len()..].split_whitespace().collect();
            (cells[0], cells[1], cells[9..].join(" "))
        })
        .collect()
}

/// The bundled 2-label model's mask of its bundled sample, against the sample's truth: per-label
/// metrics equal the scipy reference, each label is named from the mask's sidecar (the model
/// card's names) in the JSON (a `name` next to the unchanged keys) and in the table, whose Dice
/// is the JSON's; one case reads "mean of 1 case". A mask without its sidecar, or with a sidecar
/// describing another file, has no names.
#[test]
fn evaluate_names_the_bundled_models_labels_from_the_sidecar() {
    let dir = tmpdir();
    let out = dir.path().join("seg");
    let h = harness::bundled_hippocampus();
    let truth = &h.truth;
    super::segment_ok(&h.image, &h.model, &out, &[]);
    let pred = out.join("hippocampus_375_mask.nii.gz");
    let out_json = run(&[&"evaluate", &"--json", &"--pred", &pred, &"--truth", &truth]).json();
    assert_case_matches(
        &out_json,
        &py("metrics_ref.py", &[&"eval", &pred, &truth, &"labels"]),
    );

    let card = super::read_json(&h.card);
    let names: Vec<&Value> = card["contract"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["name"])
        .collect();
    let labels = out_json["cases"][0]["labels"].as_array().unwrap();
    let got: Vec<&Value> = labels.iter().map(|l| &l["name"]).collect();
    assert_eq!(got, names);
    let mut keys: Vec<&String> = labels[0].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["label", "name", "slice_mean", "slices", "volume"]);
    assert_eq!(out_json["mean"]["label 2"]["name"], *names[1]);

    let table = run(&[&"evaluate", &"--pred", &pred, &"--truth", &truth]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    for case in ["hippocampus_375_labels", "mean of 1 case"] {
        let rows = table_rows(&table.stdout, case);
        assert_eq!(rows.len(), 2, "{case}:\n{}", table.stdout);
        for ((label, dice, name), l) in rows.iter().zip(labels) {
            assert_eq!(*label, l["label"].to_string());
            assert_eq!(
                *dice,
                format!("{:.4}", l["volume"]["dice"].as_f64().unwrap())
            );
            assert_eq!(name, l["name"].as_str().unwrap());
        }
    }
    assert!(!table.stdout.contains("1 cases"), "{}", table.stdout);

    // The same mask elsewhere: alone, then beside the sidecar of another (renamed) mask.
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    for (mask, sidecar) in [
        ("hippocampus_375_mask.nii.gz", None),
        ("x_mask.nii.gz", Some("x")),
    ] {
        let p = bare.join(mask);
        std::fs::copy(&pred, &p).unwrap();
        if let Some(base) = sidecar {
            let from = out.join("hippocampus_375.slicewise.json");
            std::fs::copy(from, bare.join(format!("{base}.slicewise.json"))).unwrap();
        }
        let j = run(&[&"evaluate", &"--json", &"--pred", &p, &"--truth", &truth]).json();
        let l = &j["cases"][0]["labels"];
        assert_eq!(
            (&l[0]["name"], &l[1]["name"]),
            (&Value::Null, &Value::Null),
            "{mask}"
        );
        let t = run(&[&"evaluate", &"--pred", &p, &"--truth", &truth]).stdout;
        assert!(!t.lines().next().unwrap().ends_with("name"), "{mask}: {t}");
    }
}

#[test]
fn evaluate_refuses_masks_of_different_grids_naming_both_files() {
    let dir = tmpdir();
    let pred = dir.path().join("pred.nii.gz");
    py(
        "metrics_ref.py",
        &[
            &"perturb-nifti",
            &data("msd-hippocampus/labels/hippocampus_001.nii.gz"),
            &pred,
        ],
    );
    let truth = data("msd-hippocampus/labels/hippocampus_003.nii.gz");
    let r = run(&[&"evaluate", &"--pred", &pred, &"--truth", &truth]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("pred.nii.gz") && r.stderr.contains("hippocampus_003.nii.gz"),
        "{}",
        r.stderr
    );
    let _ = harness::repo();
}

/// Asserts that two `evaluate --json` runs give the same figures for case 0: the same labels,
/// each with the same volume and per-slice metrics.
fn assert_same_figures(a: &Value, b: &Value, what: &str) {
    let (la, lb) = (
        a["cases"][0]["labels"].as_array().expect("labels"),
        b["cases"][0]["labels"].as_array().expect("labels"),
    );
    assert_eq!(la.len(), lb.len(), "{what}: label sets differ");
    for (x, y) in la.iter().zip(lb) {
        let l = format!("{what}: label {}", x["label"]);
        assert_eq!(x["label"], y["label"], "{l}");
        assert_metrics(&x["volume"], &y["volume"], &l);
        let (sx, sy) = (
            x["slices"].as_array().unwrap(),
            y["slices"].as_array().unwrap(),
        );
        assert_eq!(sx.len(), sy.len(), "{l}");
        for (z, (p, q)) in sx.iter().zip(sy).enumerate() {
            assert_metrics(p, q, &format!("{l} slice {z}"));
        }
    }
}

/// `evaluate --json --pred PRED --truth TRUTH EXTRA...`, asserting it succeeds.
fn evaluate_json(pred: &Path, truth: &Path, extra: &[&dyn AsRef<std::ffi::OsStr>]) -> Value {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"evaluate", &"--json", &"--pred", &pred, &"--truth", &truth];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()
}

/// The one mask `slicewise segment` wrote into `dir`.
fn only_mask(dir: &Path) -> PathBuf {
    let masks: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("_mask."))
        .collect();
    assert_eq!(masks.len(), 1, "{masks:?}");
    masks[0].clone()
}

/// A DICOM SEG scores as the NIfTI mask it encodes, as prediction and as truth: the bundled
/// sample made a DICOM series, segmented by the bundled 2-label model into a SEG and into a
/// NIfTI; its expert labels made a NIfTI on the series' grid and, by highdicom (a foreign tool),
/// a SEG of the series. Each SEG is placed on the other mask's grid, or on the series' with
/// `--series` (two SEGs); both labels' figures equal the NIfTI ones, slice by slice.
#[test]
fn evaluate_reads_dicom_seg_as_prediction_or_truth_with_the_nifti_figures() {
    let dir = tmpdir();
    let h = harness::bundled_hippocampus();
    let (series, label_series) = (dir.path().join("series"), dir.path().join("labels"));
    py("seg_multilabel.py", &[&"dicom-series", &h.image, &series]);
    py(
        "seg_multilabel.py",
        &[&"dicom-series", &h.truth, &label_series],
    );
    // The expert labels on the series' grid, as slicewise reads a DICOM series.
    let truth = dir.path().join("truth.nii.gz");
    let r = run(&[&"convert", &label_series, &truth]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    super::segment_ok(
        &series,
        &h.model,
        &dir.path().join("seg"),
        &[&"--format", &"dicom-seg"],
    );
    super::segment_ok(
        &series,
        &h.model,
        &dir.path().join("nii"),
        &[&"--format", &"nifti"],
    );
    let (seg, nii) = (
        only_mask(&dir.path().join("seg")),
        only_mask(&dir.path().join("nii")),
    );
    let foreign = dir.path().join("highdicom.dcm");
    let made = py(
        "seg_multilabel.py",
        &[&"highdicom-seg", &series, &truth, &foreign],
    );
    assert_eq!(made["segments"], serde_json::json!([1, 2]), "{made}");

    let want = evaluate_json(&nii, &truth, &[]);
    assert_eq!(want["cases"][0]["labels"].as_array().unwrap().len(), 2);
    let seg_pred = evaluate_json(&seg, &truth, &[]);
    assert_same_figures(&seg_pred, &want, "SEG as prediction");
    // The SEG names its segments as the card names the labels.
    assert_eq!(
        seg_pred["cases"][0]["labels"][1]["name"],
        "posterior hippocampus"
    );
    assert_same_figures(
        &evaluate_json(&nii, &foreign, &[]),
        &want,
        "highdicom's SEG as truth",
    );
    assert_same_figures(
        &evaluate_json(&seg, &foreign, &[&"--series", &series]),
        &want,
        "two SEGs on --series",
    );
    assert_same_figures(
        &evaluate_json(&truth, &seg, &[]),
        &evaluate_json(&truth, &nii, &[]),
        "SEG as truth",
    );
    // Two SEGs without the series they reference: refused, saying what to give.
    let r = run(&[&"evaluate", &"--pred", &seg, &"--truth", &foreign]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--series"), "{}", r.stderr);
}
