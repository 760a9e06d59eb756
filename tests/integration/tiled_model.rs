//! The tiled model family (nnU-Net 2d inference) against an independent numpy/scipy reference
//! (`tests/python/tiled_ref.py`: scipy's hole filling and Gaussian, skimage's resize in numpy,
//! onnxruntime one tile at a time) on real volumes: MSD hippocampus as two channels at its own
//! 1 mm and rewritten to 0.7 mm, 1.6 mm and 0.69 × 0.69 × 5 mm (separate z), zero-padded with a
//! cavity (crop, the hole-filled ZScore mask), and a CT window (CT normalisation); logits and
//! regions, TTA on and off. Masks must be equal except where the reference's top-two logits are
//! within 1e-3 (f32 summation order). Also the contract's refusals.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};
use slicewise::infer::{segment, Device, Model, ModelOptions, SegmentOptions};
use slicewise::Volume;

use crate::harness::{self, tmpdir};

fn fixture(name: &str) -> PathBuf {
    harness::repo().join("tests/data").join(name)
}

fn opts() -> ModelOptions {
    ModelOptions::default().device(Device::Cpu).threads(1)
}

/// The test inputs (`tests/python/tiled_inputs.py`), written once per test run.
fn inputs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tmpdir();
        harness::py("tiled_inputs.py", &[&harness::shared_data(), &d.path()]);
        d
    })
    .path()
}

/// A copy of `model` with a card overriding `keys` (the card wins over embedded metadata).
fn with_card(dir: &Path, model: &str, keys: Value) -> PathBuf {
    let dst = dir.join(model);
    std::fs::copy(fixture(model), &dst).unwrap();
    std::fs::write(dst.with_extension("json"), keys.to_string()).unwrap();
    dst
}

/// The embedded `slicewise.tiled` of a fixture with `edit` applied.
fn tiled_of(model: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let m = Model::open(fixture(model), &opts()).unwrap();
    let mut v = serde_json::to_value(m.contract().tiled.as_ref().unwrap()).unwrap();
    edit(&mut v);
    v
}

/// Runs the engine and the reference on one input; asserts the masks agree and returns
/// (differing voxels, voxels, labels present).
fn compare(model: &Path, input: &str, tta: bool) -> (usize, usize, usize) {
    let m = Model::open(model, &opts()).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let image = inputs().join(input);
    let volume = Volume::open(&image).unwrap();
    let options = SegmentOptions::default().tta(tta).batch_size(7);
    let seg = segment(&m, &volume, &options, &mut |_| true).unwrap();
    let out = tmpdir();
    let card = model.with_extension("json");
    let out_dir = out.path();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&model, &image, &out_dir];
    if tta {
        args.push(&"--tta");
    }
    if card.exists() {
        args.push(&"--card");
        args.push(&card);
    }
    let info = harness::py("tiled_ref.py", &args);
    let want = harness::read_u8(&out.path().join("mask.u8"));
    let margin = harness::read_f32(&out.path().join("margin.f32"));
    let got = seg.mask.labels.as_slice().expect("standard layout");
    assert_eq!(got.len(), want.len(), "{input}: {info}");
    let mut differ = 0;
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        if g != w {
            differ += 1;
            assert!(
                margin[i] < 1e-3,
                "{input} (tta {tta}): voxel {i} engine {g} reference {w}, top-two logits {} apart ({info})",
                margin[i]
            );
        }
    }
    eprintln!(
        "{input} (tta {tta}): {differ} of {} voxels differ",
        want.len()
    );
    assert_eq!(seg.mask.geometry, volume.geometry, "the input's grid");
    let present = (1..=255u8).filter(|v| want.contains(v)).count();
    (differ, want.len(), present)
}

#[test]
fn tiled_logits_match_the_reference_at_the_native_spacing_with_and_without_tta() {
    for tta in [false, true] {
        let (differ, n, present) = compare(&fixture("unet_tiled.onnx"), "hippo2ch.nii.gz", tta);
        assert!(present >= 2, "the test model labels both classes");
        assert!(differ * 1000 <= n, "{differ} of {n} voxels differ");
        // Planes smaller than the patch: padded centred with zeros, cropped back.
        let (_, _, present) = compare(&fixture("unet_tiled.onnx"), "hippo2ch_small.nii.gz", tta);
        assert!(present >= 1);
    }
}

#[test]
fn tiled_crop_and_hole_filled_zscore_mask_match_the_reference() {
    let dir = tmpdir();
    let masked = tiled_of("unet_tiled.onnx", |t| {
        t["normalization"][0] = json!({"scheme": "zscore", "use_mask": true});
    });
    let model = with_card(dir.path(), "unet_tiled.onnx", json!({ "tiled": masked }));
    for m in [fixture("unet_tiled.onnx"), model] {
        let (_, _, present) = compare(&m, "hippo2ch_padded.nii.gz", false);
        assert!(present >= 2);
    }
}

#[test]
fn tiled_resampling_matches_the_reference_at_other_spacings() {
    for input in ["hippo2ch_07.nii.gz", "hippo2ch_16.nii.gz"] {
        let (_, _, present) = compare(&fixture("unet_tiled.onnx"), input, true);
        assert!(present >= 2, "{input}");
    }
    // 0.69 × 0.69 × 5 mm sliced along x: the coarse z is in-plane (a1), so it is resampled
    // separately, nearest (order_z 0), after each plane orthogonal to it.
    compare(&fixture("unet_tiled.onnx"), "hippo2ch_aniso.nii.gz", false);
    // Sliced along z: separate along a0, each plane clipped to its own range.
    let dir = tmpdir();
    let along_z = tiled_of("unet_tiled.onnx", |t| t["transpose"] = json!([0, 1, 2]));
    let model = with_card(dir.path(), "unet_tiled.onnx", json!({ "tiled": along_z }));
    compare(&model, "hippo2ch_aniso.nii.gz", false);
}

#[test]
fn tiled_ct_normalisation_matches_the_reference() {
    let (_, _, present) = compare(&fixture("unet_tiled_ct.onnx"), "ct.nii.gz", true);
    assert!(present >= 1);
}

#[test]
fn tiled_regions_match_the_reference() {
    let dir = tmpdir();
    let labels = json!([
        {"value": 1, "name": "whole", "color": [255, 0, 0]},
        {"value": 2, "name": "core", "color": [0, 255, 0]},
        {"value": 3, "name": "enhancing", "color": [0, 0, 255]}
    ]);
    let model = with_card(
        dir.path(),
        "unet_tiled.onnx",
        json!({"output_kind": "regions", "labels": labels}),
    );
    let (_, _, present) = compare(&model, "hippo2ch.nii.gz", true);
    assert!(present >= 2);
}

#[test]
fn tiled_contracts_with_unsupported_values_are_refused_naming_the_key() {
    let dir = tmpdir();
    for (edit, want) in [
        (
            json!({"scheme": "histogram"}),
            "tiled.normalization[0]: unknown scheme `histogram`",
        ),
        (json!(null), "tiled.patch has 3 entries"),
    ] {
        let tiled = tiled_of("unet_tiled.onnx", |t| {
            if edit.is_null() {
                t["patch"] = json!([24, 20, 16]);
            } else {
                t["normalization"][0] = edit.clone();
            }
        });
        let model = with_card(dir.path(), "unet_tiled.onnx", json!({ "tiled": tiled }));
        let e = Model::open(&model, &opts())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(want) && e.contains("unet_tiled.onnx"), "{e}");
    }
    let model = with_card(
        dir.path(),
        "unet_tiled.onnx",
        json!({"normalization": "zscore"}),
    );
    let e = Model::open(&model, &opts())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("slicewise.normalization `zscore` does not apply to a tiled model"),
        "{e}"
    );
}

#[test]
fn tiled_model_refuses_a_volume_missing_a_channel_and_warns_on_threshold() {
    let m = Model::open(fixture("unet_tiled.onnx"), &opts()).unwrap();
    assert_eq!(m.contract().channel_names, ["T1", "T1 mirrored"]);
    assert!(m.contract().provenance.is_some());
    let one = Volume::open(harness::data(
        "msd-hippocampus/images/hippocampus_001.nii.gz",
    ))
    .unwrap();
    let e = segment(&m, &one, &SegmentOptions::default(), &mut |_| true).unwrap_err();
    assert!(
        e.to_string().contains("model channel 1 (T1 mirrored)"),
        "{e}"
    );
    let two = Volume::open(inputs().join("hippo2ch.nii.gz")).unwrap();
    let options = SegmentOptions::default().threshold(Some(0.3));
    let seg = segment(&m, &two, &options, &mut |_| true).unwrap();
    assert!(
        seg.warnings
            .iter()
            .any(|w| w.contains("threshold option does not apply")),
        "{:?}",
        seg.warnings
    );
}
