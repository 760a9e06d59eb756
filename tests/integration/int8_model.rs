//! The int8 variants of the bundled models, `models/*.int8.onnx` (static QDQ, per-channel,
//! written by `scripts/quantize`): the file its card describes, the fp32 model's contract, and
//! (hippocampus here, the tumour model in `bundled_model.rs` with the rest of its figures) on the
//! card's test split within 0.01 Dice of fp32 on every label, as its card says.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use serde_json::Value;
use slicewise::infer::{Device, Model, ModelOptions};

use crate::cli;
use crate::harness::{self, data, tmpdir};

const FP32: &str = "msd-hippocampus-small";
const INT8: &str = "msd-hippocampus-small.int8";
const LABELS: [&str; 2] = ["anterior hippocampus", "posterior hippocampus"];

fn model_path(name: &str) -> PathBuf {
    harness::repo().join(format!("models/{name}.onnx"))
}

fn card(name: &str) -> Value {
    cli::read_json(&harness::repo().join(format!("models/{name}.card.json")))
}

fn open(name: &str) -> Model {
    Model::open(
        model_path(name),
        &ModelOptions::default().device(Device::Cpu).threads(1),
    )
    .expect("the model opens")
}

/// sha256 of a file, from coreutils.
fn sha256(path: &Path) -> String {
    let out = std::process::Command::new(harness::tool("sha256sum"))
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn int8_model_is_the_file_its_card_describes_with_the_fp32_contract() {
    check_variant(FP32, INT8);
}

#[test]
fn tumour_int8_model_is_the_file_its_card_describes_with_the_fp32_contract() {
    check_variant("lgg-flair-small", "lgg-flair-small.int8");
}

/// `int8` is the file its card describes, quantised from `fp32` as it is now, with its contract.
fn check_variant(fp32: &str, int8: &str) {
    let (card8, card32) = (card(int8), card(fp32));
    let path = model_path(int8);
    let bytes = std::fs::metadata(&path).unwrap().len();
    assert_eq!(bytes, card8["bytes"].as_u64().unwrap());
    assert_eq!(sha256(&path), card8["sha256"].as_str().unwrap());
    // Quantised from the bundled fp32 file as it is now.
    assert_eq!(card8["quantization"]["from_sha256"], card32["sha256"]);
    assert_eq!(card8["quantization"]["format"], "QDQ");
    assert_eq!(card8["split"], card32["split"]);
    // The contract travels in the file: the engine reads the same one from both.
    let (m8, m32) = (open(int8), open(fp32));
    let (c8, c32) = (m8.contract(), m32.contract());
    assert_eq!((&c8.name, &c8.version), (&c32.name, &c32.version));
    assert_eq!((c8.height, c8.width), (c32.height, c32.width));
    assert_eq!(c8.source_channels, c32.source_channels);
    let json = |v: serde_json::Result<Value>| v.unwrap();
    assert_eq!(
        json(serde_json::to_value(&c8.normalization)),
        json(serde_json::to_value(&c32.normalization))
    );
    assert_eq!(
        json(serde_json::to_value(&c8.labels)),
        json(serde_json::to_value(&c32.labels))
    );
    assert_eq!(c8.label_codes, c32.label_codes);
    assert_eq!(c8.crop_foreground, c32.crop_foreground);
    assert_eq!(c8.tta_flips, c32.tta_flips);
    assert_eq!(m8.classes(), m32.classes());
}

/// Mean volume Dice per label of `model` over `volumes`, segmented into `out`.
fn mean_dice(model: &Path, volumes: &[&str], out: &Path) -> [f64; 2] {
    let mut args: Vec<OsString> = vec!["segment".into()];
    args.extend(
        volumes
            .iter()
            .map(|v| data(&format!("msd-hippocampus/images/{v}.nii.gz")).into_os_string()),
    );
    for a in [
        "--model".as_ref(),
        model.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--threads".as_ref(),
        "1".as_ref(),
    ] {
        args.push(OsString::from(a));
    }
    let refs: Vec<&dyn AsRef<OsStr>> = args.iter().map(|a| a as &dyn AsRef<OsStr>).collect();
    let r = cli::run(&refs);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut sums = [0.0; 2];
    for v in volumes {
        let pred = out.join(format!("{v}_mask.nii.gz"));
        let truth = data(&format!("msd-hippocampus/labels/{v}.nii.gz"));
        let e = cli::run(&[&"evaluate", &"--pred", &pred, &"--truth", &truth, &"--json"]);
        assert_eq!(e.code, 0, "{}", e.stderr);
        let labels = e.json()["cases"][0]["labels"].clone();
        for (k, sum) in sums.iter_mut().enumerate() {
            assert_eq!(labels[k]["label"], k + 1, "{v}");
            *sum += labels[k]["volume"]["dice"].as_f64().unwrap();
        }
    }
    sums.map(|s| s / volumes.len() as f64)
}

#[test]
fn int8_model_stays_within_0_01_dice_of_fp32_on_the_test_split_as_carded() {
    let card8 = card(INT8);
    let test: Vec<&str> = card8["split"]["test"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(test.len(), 39);
    let dir = tmpdir();
    let d8 = mean_dice(&model_path(INT8), &test, &dir.path().join("int8"));
    let d32 = mean_dice(&model_path(FP32), &test, &dir.path().join("fp32"));
    for (k, name) in LABELS.iter().enumerate() {
        assert!(
            d32[k] - d8[k] <= 0.01,
            "{name}: int8 {:.4} vs fp32 {:.4}",
            d8[k],
            d32[k]
        );
        let carded = card8["evaluation"]["mean"][*name]["dice"].as_f64().unwrap();
        assert!(
            (d8[k] - carded).abs() <= 6e-4,
            "{name}: int8 mean {:.4}, its card says {carded:.4}",
            d8[k]
        );
    }
}
