//! The exported ONNX model, run by onnxruntime (Python), equals Burn's eval-mode forward.

use burn::tensor::Device;
use slicewise::infer::Normalization;
use slicewise_train::augment::AugmentConfig;
use slicewise_train::export::{contract, model_bytes, ExportOptions};
use slicewise_train::inference::predict;
use slicewise_train::model::libtorch_device;
use slicewise_train::model::{OutputActivation, UNet, UNetConfig};
use slicewise_train::{DataConfig, TrainingConfig};

use crate::common::{inputs, warmed_model};
use crate::harness;

const TOL: f32 = 1e-4;

fn config_for(model: UNetConfig, size: usize) -> TrainingConfig {
    let channels: Vec<usize> = (0..model.in_channels).collect();
    let data = DataConfig::new("synthetic".into())
        .with_channels(channels)
        .with_size(size)
        .with_normalization(Normalization::ZScore);
    TrainingConfig::new(model, data, AugmentConfig::none()).with_name("parity".into())
}

/// Exports, runs onnxruntime, compares; returns the reference script's JSON.
fn check(
    model: &UNet,
    tc: &TrainingConfig,
    fold: bool,
    n: usize,
    dev: &Device,
) -> serde_json::Value {
    let (c, s) = (tc.model.in_channels, tc.data.size);
    let dir = harness::tmpdir();
    let onnx = dir.path().join("m.onnx");
    let opts = ExportOptions {
        fold_batchnorm: fold,
        ..Default::default()
    };
    std::fs::write(&onnx, model_bytes(model, tc, &opts).expect("export")).expect("write onnx");
    let x = inputs(n * c * s * s, 7);
    let inp = dir.path().join("x.f32");
    std::fs::write(
        &inp,
        x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .expect("write input");
    let out = dir.path().join("y.f32");
    let (ns, cs, ss) = (n.to_string(), c.to_string(), s.to_string());
    let js = harness::py("onnx_run.py", &[&onnx, &inp, &ns, &cs, &ss, &ss, &out]);
    let ort = harness::read_f32(&out);
    let burn = predict(model, dev, &x, [n, c, s, s]).expect("burn forward");
    assert_eq!(ort.len(), n * tc.model.out_channels * s * s, "output size");
    harness::assert_close(&burn, &ort, TOL, "Burn eval forward vs onnxruntime");
    // Not a trivially constant output: the comparison means something.
    let spread =
        burn.iter().fold(0f32, |m, v| m.max(*v)) - burn.iter().fold(1f32, |m, v| m.min(*v));
    assert!(spread > 1e-3, "output is constant ({spread})");
    js
}

#[test]
fn small_preset_folded_matches_onnxruntime_and_carries_the_contract() {
    let cfg = UNetConfig::small(1);
    let model = warmed_model(&cfg, 64, 1);
    let tc = config_for(cfg, 64);
    let js = check(&model, &tc, true, 2, &libtorch_device(None));
    // Dynamic N, H, W.
    assert_eq!(js["inputs"][0][0], "input");
    assert_eq!(js["inputs"][0][1], serde_json::json!(["N", 1, "H", "W"]));
    assert_eq!(js["outputs"][0][1], serde_json::json!(["N", 1, "H", "W"]));
    let ops: Vec<String> = serde_json::from_value(js["ops"].clone()).expect("ops");
    assert!(
        !ops.contains(&"BatchNormalization".to_string()),
        "folded: {ops:?}"
    );
    assert!(ops.contains(&"ConvTranspose".to_string()), "{ops:?}");
    // The model-package keys the engine reads.
    let meta = &js["metadata"];
    let c = contract(&tc, &ExportOptions::default()).expect("contract");
    assert_eq!(meta["slicewise.height"], "64");
    assert_eq!(meta["slicewise.width"], "64");
    assert_eq!(meta["slicewise.channels"], "1");
    assert_eq!(meta["slicewise.source_channels"], "0");
    assert_eq!(meta["slicewise.output_kind"], "sigmoid");
    assert_eq!(meta["slicewise.normalization"], "zscore");
    assert_eq!(meta["slicewise.input"], "input");
    assert_eq!(meta["slicewise.output"], "output");
    assert_eq!(meta["slicewise.format_version"], "1");
    let labels: Vec<slicewise::LabelInfo> =
        serde_json::from_str(meta["slicewise.labels"].as_str().expect("labels"))
            .expect("labels JSON");
    assert_eq!(labels, c.labels);
}

#[test]
fn small_preset_batchnorm_nodes_upsample_softmax_match_onnxruntime() {
    let cfg = UNetConfig::small(3)
        .with_transposed(false)
        .with_output(OutputActivation::Softmax)
        .with_out_channels(3)
        .with_dropout(0.2);
    let model = warmed_model(&cfg, 32, 2);
    let tc = config_for(cfg, 32);
    let js = check(&model, &tc, false, 3, &libtorch_device(None));
    let ops: Vec<String> = serde_json::from_value(js["ops"].clone()).expect("ops");
    for op in [
        "BatchNormalization",
        "Resize",
        "Softmax",
        "Concat",
        "MaxPool",
    ] {
        assert!(ops.contains(&op.to_string()), "{op} missing from {ops:?}");
    }
}

#[test]
fn unet_preset_matches_onnxruntime_at_64() {
    let cfg = UNetConfig::unet(1);
    let model = warmed_model(&cfg, 64, 3);
    let tc = config_for(cfg, 64);
    check(&model, &tc, true, 1, &libtorch_device(None));
}

/// Deep supervision: the training forward gives the main logits at full resolution and each
/// extra head's at 1/2, 1/4; the exported graph is the main head alone and equals Burn's eval
/// forward.
#[test]
fn deep_supervision_heads_train_only_and_export_the_main_head() {
    use burn::tensor::{Distribution, Tensor};
    let cfg = UNetConfig::small(1).with_deep_supervision(Some(2));
    let dev = libtorch_device(None);
    let model = warmed_model(&cfg, 64, 3);
    assert_eq!(model.aux.len(), 2);
    let x = Tensor::<4>::random([2, 1, 64, 64], Distribution::Normal(0.0, 1.0), &dev);
    let outs = model.forward_deep(x.clone());
    let sizes: Vec<[usize; 4]> = outs.iter().map(|o| o.dims()).collect();
    assert_eq!(sizes, vec![[2, 1, 64, 64], [2, 1, 32, 32], [2, 1, 16, 16]]);
    let main = model.forward_logits(x);
    let diff = (main - outs[0].clone()).abs().max().into_scalar::<f32>();
    assert!(diff == 0.0, "forward_logits is the main head ({diff})");
    let tc = config_for(cfg, 64);
    check(&model, &tc, true, 2, &dev);
}
