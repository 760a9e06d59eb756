//! The bundled models against their own cards: each file is the one its card describes, ONNX
//! Runtime in Python computes what the engine computes on a real volume, and `slicewise segment`
//! + `evaluate` reproduce every held-out figure the card (and the README) quote.
//!
//! - `models/lgg-flair-small.onnx`: FLAIR abnormality, sigmoid, validation patients of `lgg/`.
//! - `models/msd-hippocampus-small.onnx`: anterior / posterior hippocampus, softmax, the test
//!   volumes of MSD Task04, and the bundled sample in `models/samples/msd-hippocampus/`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use slicewise::infer::{Device, Model, ModelOptions, OutputKind};
use slicewise::Volume;

use crate::cli;
use crate::engine::check_pipeline;
use crate::harness::{self, data, tmpdir};

const TUMOUR: &str = "lgg-flair-small";
const HIPPOCAMPUS: &str = "msd-hippocampus-small";

fn model_path(name: &str) -> PathBuf {
    harness::repo().join(format!("models/{name}.onnx"))
}

fn open_model(name: &str) -> Model {
    Model::open(
        model_path(name),
        &ModelOptions::default().device(Device::Cpu).threads(1),
    )
    .expect("the bundled model opens")
}

fn card(name: &str) -> Value {
    cli::read_json(&harness::repo().join(format!("models/{name}.card.json")))
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// Size and sha256 as the card states them, and the contract the engine reads is the card's.
fn check_file_against_card(name: &str, max_bytes: usize) -> Model {
    let card = card(name);
    let bytes = std::fs::read(model_path(name)).unwrap();
    assert_eq!(bytes.len() as u64, card["bytes"].as_u64().unwrap());
    assert!(
        bytes.len() <= max_bytes,
        "{name} must stay <= {max_bytes} bytes"
    );
    let out = std::process::Command::new(harness::tool("sha256sum"))
        .arg(model_path(name))
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        sum.split_whitespace().next(),
        card["sha256"].as_str(),
        "models/{name}.onnx changed without its card"
    );
    let m = open_model(name);
    let c = m.contract();
    assert_eq!(c.source_channels.len(), 1);
    let norm = serde_json::to_value(&c.normalization).unwrap();
    assert_eq!(norm, card["contract"]["normalization"]);
    assert!(norm["kind"].as_str().unwrap().starts_with("percentile"));
    let labels = serde_json::to_value(&c.labels).unwrap();
    assert_eq!(labels, card["contract"]["labels"]);
    m
}

/// The held-out cases share no name with the cases that trained or chose the model.
fn check_split_disjoint(card: &Value, held_out: &str) {
    let held = names(&card["split"][held_out]);
    for other in ["train", "val", "test"]
        .into_iter()
        .filter(|s| *s != held_out)
    {
        if let Some(list) = card["split"].get(other) {
            let list = names(list);
            assert!(
                held.iter().all(|h| !list.contains(h)),
                "a {held_out} case is also in {other}"
            );
        }
    }
}

/// `slicewise segment INPUTS --model M --out DIR --threads 1`, asserting success.
fn segment_all(model: &Path, inputs: &[PathBuf], out: &Path) {
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"segment"];
    for i in inputs {
        args.push(i);
    }
    args.extend([
        &"--model" as &dyn AsRef<OsStr>,
        &model,
        &"--out",
        &out,
        &"--threads",
        &"1",
    ]);
    let r = cli::run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `slicewise evaluate --json` of one prediction: its per-label results.
fn evaluate(pred: &Path, truth: &Path) -> Vec<Value> {
    let e = cli::run(&[&"evaluate", &"--pred", &pred, &"--truth", &truth, &"--json"]);
    assert_eq!(e.code, 0, "{}", e.stderr);
    e.json()["cases"][0]["labels"].as_array().unwrap().clone()
}

fn assert_dice(case: &str, got: &Value, want: f64) {
    let got = got["volume"]["dice"].as_f64().unwrap();
    assert!(
        (got - want).abs() <= 6e-4,
        "{case}: volume Dice {got:.4}, the card says {want:.4}"
    );
}

#[test]
fn tumour_model_is_the_file_its_card_describes() {
    let m = check_file_against_card(TUMOUR, 20 << 20);
    assert_eq!(m.contract().output, OutputKind::Sigmoid);
}

#[test]
fn tumour_model_matches_onnxruntime_on_a_real_patient() {
    let patient = card(TUMOUR)["split"]["val"][0]
        .as_str()
        .unwrap()
        .to_string();
    let vol = Volume::open(data(&format!("lgg/{patient}"))).unwrap();
    check_pipeline(&open_model(TUMOUR), &vol, 8, false);
}

#[test]
fn tumour_model_reproduces_the_validation_figures_of_its_card() {
    let card = card(TUMOUR);
    let figures = card["evaluation"]["patients"].as_object().unwrap();
    let val = names(&card["split"]["val"]);
    assert_eq!(
        figures.len(),
        val.len(),
        "every validation patient has figures"
    );
    check_split_disjoint(&card, "val");
    let dir = tmpdir();
    let inputs: Vec<PathBuf> = val.iter().map(|p| data(&format!("lgg/{p}"))).collect();
    segment_all(&model_path(TUMOUR), &inputs, dir.path());
    for (p, input) in val.iter().zip(&inputs) {
        let labels = evaluate(&dir.path().join(format!("{p}_mask.tif")), input);
        assert_dice(p, &labels[0], figures[*p]["volume_dice"].as_f64().unwrap());
    }
}

#[test]
fn hippocampus_model_is_the_file_its_card_describes() {
    // "A few MB": small enough to bundle and to load in well under a second.
    let m = check_file_against_card(HIPPOCAMPUS, 10 << 20);
    let c = m.contract();
    assert_eq!(c.output, OutputKind::Softmax, "argmax over 3 classes");
    let labels: Vec<(u8, &str)> = c
        .labels
        .iter()
        .map(|l| (l.value, l.name.as_str()))
        .collect();
    assert_eq!(
        labels,
        [(1, "anterior hippocampus"), (2, "posterior hippocampus")]
    );
}

#[test]
fn hippocampus_model_matches_onnxruntime_on_the_bundled_sample() {
    let vol = Volume::open(sample("hippocampus_375.nii.gz")).unwrap();
    check_pipeline(&open_model(HIPPOCAMPUS), &vol, 8, false);
}

#[test]
fn hippocampus_model_reproduces_the_test_figures_of_its_card() {
    let card = card(HIPPOCAMPUS);
    let eval = &card["evaluation"];
    let test = names(&card["split"]["test"]);
    let figures = eval["volumes"].as_object().unwrap();
    assert_eq!(figures.len(), test.len(), "every test volume has figures");
    check_split_disjoint(&card, "test");
    let dir = tmpdir();
    let image = |v: &str| data(&format!("msd-hippocampus/images/{v}.nii.gz"));
    let inputs: Vec<PathBuf> = test.iter().map(|v| image(v)).collect();
    segment_all(&model_path(HIPPOCAMPUS), &inputs, dir.path());
    let mut sums = [0.0; 2];
    for v in &test {
        let pred = dir.path().join(format!("{v}_mask.nii.gz"));
        let labels = evaluate(&pred, &data(&format!("msd-hippocampus/labels/{v}.nii.gz")));
        assert_eq!(labels.len(), 2, "{v}: both labels evaluated");
        for (k, name) in ["anterior hippocampus", "posterior hippocampus"]
            .iter()
            .enumerate()
        {
            assert_eq!(labels[k]["label"], k + 1);
            let want = figures[*v][*name]["dice"].as_f64().unwrap();
            assert_dice(&format!("{v} {name}"), &labels[k], want);
            sums[k] += labels[k]["volume"]["dice"].as_f64().unwrap();
        }
    }
    for (k, name) in ["anterior hippocampus", "posterior hippocampus"]
        .iter()
        .enumerate()
    {
        let mean = sums[k] / test.len() as f64;
        let card_mean = eval["mean"][*name]["dice"].as_f64().unwrap();
        assert!(
            (mean - card_mean).abs() <= 6e-4,
            "{name}: mean {mean:.4} vs card {card_mean:.4}"
        );
        // The bar for a 2D model (nnU-Net's 3D figures are about 0.90 / 0.89).
        assert!(mean >= 0.85, "{name}: test mean Dice {mean:.4} < 0.85");
    }
}

fn sample(file: &str) -> PathBuf {
    harness::repo()
        .join("models/samples/msd-hippocampus")
        .join(file)
}

#[test]
fn bundled_sample_is_an_unchanged_test_volume_with_its_licence() {
    let card = card(HIPPOCAMPUS);
    assert!(names(&card["split"]["test"]).contains(&"hippocampus_375"));
    for (ours, theirs) in [
        ("hippocampus_375.nii.gz", "images/hippocampus_375.nii.gz"),
        (
            "hippocampus_375_labels.nii.gz",
            "labels/hippocampus_375.nii.gz",
        ),
    ] {
        let a = std::fs::read(sample(ours)).unwrap();
        let b = std::fs::read(data(&format!("msd-hippocampus/{theirs}"))).unwrap();
        assert!(a == b, "{ours} differs from the published {theirs}");
    }
    let licence = std::fs::read_to_string(sample("LICENSE")).unwrap();
    assert!(licence.contains("Attribution-ShareAlike 4.0 International Public License"));
    let readme = std::fs::read_to_string(sample("README.md")).unwrap();
    assert!(readme.contains("Simpson") && readme.contains("CC BY-SA 4.0"));
}

#[test]
fn bundled_sample_segments_to_the_card_figures_without_shared_data() {
    // What `scripts/demo` runs from a bare clone: only files in the repository.
    let card = card(HIPPOCAMPUS);
    let dir = tmpdir();
    segment_all(
        &model_path(HIPPOCAMPUS),
        &[sample("hippocampus_375.nii.gz")],
        dir.path(),
    );
    let labels = evaluate(
        &dir.path().join("hippocampus_375_mask.nii.gz"),
        &sample("hippocampus_375_labels.nii.gz"),
    );
    let figures = &card["evaluation"]["volumes"]["hippocampus_375"];
    assert_dice(
        "sample anterior",
        &labels[0],
        figures["anterior hippocampus"]["dice"].as_f64().unwrap(),
    );
    assert_dice(
        "sample posterior",
        &labels[1],
        figures["posterior hippocampus"]["dice"].as_f64().unwrap(),
    );
}
