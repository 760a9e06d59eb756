//! The bundled model, `models/lgg-flair-small.onnx`, against its own card: the file is the one
//! the card describes, ONNX Runtime in Python computes what the engine computes on a real
//! patient, and `slicewise segment` + `evaluate` reproduce every validation figure the card (and
//! the README) quote.

use std::path::PathBuf;

use serde_json::Value;
use slicewise::infer::{Device, Model, ModelOptions};
use slicewise::Volume;

use crate::cli;
use crate::engine::check_pipeline;
use crate::harness::{self, data, tmpdir};

fn model_path() -> PathBuf {
    harness::repo().join("models/lgg-flair-small.onnx")
}

fn open_model() -> Model {
    Model::open(
        model_path(),
        &ModelOptions::default().device(Device::Cpu).threads(1),
    )
    .expect("the bundled model opens")
}

fn card() -> Value {
    let p = harness::repo().join("models/lgg-flair-small.card.json");
    serde_json::from_slice(&std::fs::read(&p).expect("card")).expect("card is JSON")
}

#[test]
fn bundled_model_is_the_file_its_card_describes() {
    let card = card();
    let bytes = std::fs::read(model_path()).unwrap();
    assert_eq!(bytes.len() as u64, card["bytes"].as_u64().unwrap());
    assert!(
        bytes.len() <= 20 << 20,
        "the bundled model must stay <= 20 MB"
    );
    let out = std::process::Command::new(harness::tool("sha256sum"))
        .arg(model_path())
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        sum.split_whitespace().next(),
        card["sha256"].as_str(),
        "models/lgg-flair-small.onnx changed without its card"
    );
    // The contract the engine reads is the card's: FLAIR only, scanner-independent normalisation.
    let m = open_model();
    let c = m.contract();
    assert_eq!(c.source_channels.len(), 1);
    let norm = serde_json::to_value(&c.normalization).unwrap();
    assert_eq!(norm, card["contract"]["normalization"]);
    assert!(norm["kind"].as_str().unwrap().starts_with("percentile"));
}

#[test]
fn bundled_model_matches_onnxruntime_on_a_real_patient() {
    let patient = card()["split"]["val"][0].as_str().unwrap().to_string();
    let vol = Volume::open(data(&format!("lgg/{patient}"))).unwrap();
    let m = open_model();
    check_pipeline(&m, &vol, 8, false);
}

#[test]
fn bundled_model_reproduces_the_validation_figures_of_its_card() {
    let card = card();
    let figures = card["evaluation"]["patients"].as_object().unwrap();
    let val: Vec<&str> = card["split"]["val"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        figures.len(),
        val.len(),
        "every validation patient has figures"
    );
    for p in &val {
        assert!(
            !card["split"]["train"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == p),
            "{p} is in both splits"
        );
    }
    let dir = tmpdir();
    let inputs: Vec<PathBuf> = val.iter().map(|p| data(&format!("lgg/{p}"))).collect();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"segment"];
    for i in &inputs {
        args.push(i);
    }
    let (model, out) = (model_path(), dir.path().to_path_buf());
    args.extend([
        &"--model" as &dyn AsRef<std::ffi::OsStr>,
        &model,
        &"--out",
        &out,
        &"--threads",
        &"1",
    ]);
    let r = cli::run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (p, input) in val.iter().zip(&inputs) {
        let pred = out.join(format!("{p}_mask.tif"));
        let e = cli::run(&[&"evaluate", &"--pred", &pred, &"--truth", input, &"--json"]);
        assert_eq!(e.code, 0, "{}", e.stderr);
        let got = e.json()["cases"][0]["labels"][0]["volume"]["dice"]
            .as_f64()
            .unwrap();
        let want = figures[*p]["volume_dice"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 6e-4,
            "{p}: volume Dice {got:.4}, the card says {want:.4}"
        );
    }
}
