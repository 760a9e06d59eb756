//! An ensemble written by `ensemble::write` is one valid ONNX model whose output, run by
//! onnxruntime (Python), is the mean of its members' outputs run the same way.

use std::path::{Path, PathBuf};

use slicewise::infer::Normalization;
use slicewise_train::augment::AugmentConfig;
use slicewise_train::ensemble;
use slicewise_train::export::{export, ExportOptions};
use slicewise_train::model::UNetConfig;
use slicewise_train::{DataConfig, TrainingConfig};

use crate::common::{inputs, warmed_model};
use crate::harness;

const SIZE: usize = 32;
const N: usize = 2;

/// Exports a small warmed U-Net (weights from `seed`) with `norm` to `dir/name.onnx` + card.
fn member(dir: &Path, name: &str, seed: u64, norm: Normalization) -> PathBuf {
    let cfg = UNetConfig::small(1);
    let model = warmed_model(&cfg, SIZE, seed);
    let data = DataConfig::new("synthetic".into())
        .with_channels(vec![0])
        .with_size(SIZE)
        .with_normalization(norm);
    let tc = TrainingConfig::new(cfg, data, AugmentConfig::none()).with_name("member".into());
    let path = dir.join(format!("{name}.onnx"));
    let opts = ExportOptions {
        version: name.into(),
        ..Default::default()
    };
    export(&model, &tc, None, &path, &opts).expect("export member");
    path
}

/// onnxruntime's output for `onnx` on `x` (N×1×SIZE×SIZE), and the reference script's JSON.
fn run(onnx: &Path, x: &Path) -> (Vec<f32>, serde_json::Value) {
    let out = onnx.with_extension("y.f32");
    let (n, c, s) = (N.to_string(), "1".to_string(), SIZE.to_string());
    let js = harness::py("onnx_run.py", &[&onnx, &x, &n, &c, &s, &s, &out]);
    (harness::read_f32(&out), js)
}

#[test]
fn ensemble_output_is_the_mean_of_its_members_under_onnxruntime() {
    let dir = harness::tmpdir();
    let a = member(dir.path(), "a", 1, Normalization::ZScore);
    let b = member(dir.path(), "b", 2, Normalization::ZScore);
    let out = dir.path().join("ab.onnx");
    let card = ensemble::write(&[a.clone(), b.clone()], &out, "7").expect("ensemble");
    let x = dir.path().join("x.f32");
    let values = inputs(N * SIZE * SIZE, 11);
    std::fs::write(
        &x,
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .expect("write input");
    let ((ya, _), (yb, _), (y, js)) = (run(&a, &x), run(&b, &x), run(&out, &x));
    let gap = ya
        .iter()
        .zip(&yb)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(
        gap > 1e-3,
        "members agree everywhere ({gap}): the mean would prove nothing"
    );
    let mean: Vec<f32> = ya.iter().zip(&yb).map(|(p, q)| (p + q) / 2.0).collect();
    harness::assert_close(&y, &mean, 1e-6, "ensemble vs mean of members");
    assert_eq!(js["metadata"]["slicewise.version"], "7");
    assert_eq!(js["metadata"]["slicewise.normalization"], "zscore");
    assert_eq!(js["inputs"][0][1], serde_json::json!(["N", 1, "H", "W"]));
    let members = card["ensemble"]["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    assert_eq!(members[1]["file"], "b.onnx");
    assert_eq!(members[1]["card"]["contract"]["version"], "b");
    assert_eq!(card["contract"]["version"], "7");
    assert!(
        card["data"].is_object(),
        "the members share their data section"
    );
    assert_eq!(card["data"], members[0]["card"]["data"]);
    let member_a = std::fs::read(&a).expect("read a");
    assert_eq!(members[0]["bytes"], member_a.len());
    assert_eq!(
        members[0]["sha256"],
        slicewise_train::export::sha256_hex(&member_a)
    );
    let bytes = std::fs::read(&out).expect("read ensemble");
    assert_eq!(card["bytes"], bytes.len());
    assert_eq!(
        card["parameters"],
        2 * members[0]["card"]["parameters"].as_u64().unwrap()
    );
}

#[test]
fn ensemble_refuses_members_with_different_contracts_and_keeps_its_inputs() {
    let dir = harness::tmpdir();
    let a = member(dir.path(), "a", 1, Normalization::ZScore);
    let b = member(dir.path(), "b", 2, Normalization::MinMaxVolume);
    let before = std::fs::read(&a).expect("read a");
    let out = dir.path().join("ab.onnx");
    let err = ensemble::write(&[a.clone(), b.clone()], &out, "7")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("b.onnx") && err.contains("slicewise.normalization"),
        "{err}"
    );
    assert!(!out.exists(), "no output after a refusal");
    let err = ensemble::write(&[a.clone(), a.clone()], &a, "7")
        .unwrap_err()
        .to_string();
    assert!(err.contains("would replace its member"), "{err}");
    let err = ensemble::write(std::slice::from_ref(&a), &out, "7")
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least two"), "{err}");
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").expect("write junk");
    let err = ensemble::write(&[a.clone(), junk], &out, "7")
        .unwrap_err()
        .to_string();
    assert!(err.contains("junk.onnx"), "{err}");
    assert_eq!(
        std::fs::read(&a).expect("read a"),
        before,
        "member unchanged"
    );
}
