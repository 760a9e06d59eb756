//! The segmentation engine against Python onnxruntime and a numpy reimplementation of the
//! preprocessing (tests/python/engine_ref.py), scipy for the connected components
//! (engine_cc_ref.py), nibabel for the mask geometry (engine_geom_ref.py).
//!
//! Runtime-loading failures run in a child process (this test binary re-run on one ignored
//! test), because the first successful load of ONNX Runtime is final for a process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ndarray::{s, Array3, Array4};
use slicewise::error::Error;
use slicewise::infer::postprocess::{clean, Cleanup};
use slicewise::infer::preprocess::volume_norm;
use slicewise::infer::{
    init_runtime, predict_slices, prepare_slices, segment, CancelToken, Device, Model,
    ModelOptions, Normalization, SegmentOptions, TtaFlips,
};
use slicewise::volume::{DType, SourceFormat, VolumeMeta};
use slicewise::{Geometry, Volume};

use crate::harness;

fn model_path(name: &str) -> PathBuf {
    harness::repo().join("tests/data").join(name)
}

fn opts() -> ModelOptions {
    ModelOptions::default().device(Device::Cpu).threads(1)
}

fn sigmoid() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::open(model_path("unet_sigmoid.onnx"), &opts()).expect("open"))
}

/// A smooth blob pattern plus noise, `[c, z, y, x]`, in scanner-like units.
fn synthetic_volume(c: usize, z: usize, y: usize, x: usize, axis: usize) -> Volume {
    let noise = harness::uniform(7, c * z * y * x);
    let data = Array4::from_shape_fn((c, z, y, x), |(ch, k, j, i)| {
        let (fz, fy, fx) = (
            k as f32 / z as f32,
            j as f32 / y as f32,
            i as f32 / x as f32,
        );
        let d = (fy - 0.5).powi(2) + (fx - 0.45).powi(2) + 0.3 * (fz - 0.5).powi(2);
        let n = noise[((ch * z + k) * y + j) * x + i];
        300.0 * (-d * 12.0).exp() + 40.0 * n + 100.0 * ch as f32 + 10.0 * (fx * 6.0).sin()
    });
    let mut meta = VolumeMeta::new("synthetic", SourceFormat::Memory, DType::F32);
    meta.acquisition_axis = axis;
    Volume {
        data,
        geometry: Geometry::identity(),
        meta,
    }
}

fn write_f32(path: &Path, v: impl Iterator<Item = f32>) {
    let bytes: Vec<u8> = v.flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn shape_arg(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn predict_matches_onnxruntime_for_batches_1_3_16() {
    for name in ["unet_sigmoid.onnx", "unet_softmax.onnx"] {
        let m = Model::open(model_path(name), &opts()).unwrap();
        let input = Array4::from_shape_vec((16, 1, 64, 64), harness::uniform(3, 16 * 64 * 64))
            .unwrap()
            .mapv(|v| v * 4.0 - 2.0);
        let dir = harness::tmpdir();
        let inp = dir.path().join("in.f32");
        write_f32(&inp, input.iter().copied());
        let r = harness::py(
            "engine_ref.py",
            &[
                &"predict",
                &model_path(name),
                &inp,
                &"16,1,64,64",
                &dir.path(),
            ],
        );
        let k = m.classes();
        assert_eq!(r["shape"], serde_json::json!([16, k, 64, 64]));
        let reference = harness::read_f32(&dir.path().join("probs.f32"));
        for batch in [1usize, 3, 16] {
            let mut got = Vec::new();
            let mut start = 0;
            while start < 16 {
                let end = (start + batch).min(16);
                let chunk = input.slice(s![start..end, .., .., ..]).to_owned();
                let out = predict_slices(&m, &chunk).unwrap();
                assert_eq!(out.shape(), &[end - start, k, 64, 64]);
                got.extend(out.iter().copied());
                start = end;
            }
            harness::assert_close(&got, &reference, 1e-5, &format!("{name} batch {batch}"));
        }
    }
}

/// Runs the whole pipeline and the numpy reference; compares the preprocessed input (1e-5),
/// the model output on the reference's input (1e-5) and the labels (exact, except voxels whose
/// reference probability lies within 1e-4 of the decision boundary).
/// Returns the reference's crop box `[top, bottom, left, right]`.
pub(crate) fn check_pipeline(model: &Model, vol: &Volume, batch: usize, tta: bool) -> [usize; 4] {
    let dir = harness::tmpdir();
    let vpath = dir.path().join("vol.f32");
    write_f32(&vpath, vol.data.iter().copied());
    let axis = vol.meta.acquisition_axis;
    let r = harness::py(
        "engine_ref.py",
        &[
            &"pipeline",
            &model.path(),
            &vpath,
            &shape_arg(vol.data.shape()),
            &dir.path(),
            &axis.to_string(),
            &(if tta { "1" } else { "0" }),
        ],
    );
    let n = r["slices"].as_u64().unwrap() as usize;
    let (rows, cols) = (
        r["rows"].as_u64().unwrap() as usize,
        r["cols"].as_u64().unwrap() as usize,
    );
    let k = r["classes"].as_u64().unwrap() as usize;
    let crop: Vec<usize> = serde_json::from_value(r["crop"].clone()).unwrap();
    let c = model.contract();
    let prep_ref = harness::read_f32(&dir.path().join("prep.f32"));
    let prep = prepare_slices(model, vol, 0, n).unwrap();
    harness::assert_close(
        prep.as_slice().unwrap(),
        &prep_ref,
        1e-5,
        "preprocessed input",
    );
    let prep_ref =
        Array4::from_shape_vec((n, c.input_channels(), c.height, c.width), prep_ref).unwrap();
    let probs = predict_slices(model, &prep_ref).unwrap();
    let probs_ref = harness::read_f32(&dir.path().join("probs.f32"));
    harness::assert_close(probs.as_slice().unwrap(), &probs_ref, 1e-5, "model output");

    let options = SegmentOptions::default().batch_size(batch).tta(tta);
    let mut calls = 0;
    let seg = segment(model, vol, &options, &mut |p| {
        calls += 1;
        assert!(p.done <= p.total && p.total == n);
        true
    })
    .unwrap();
    assert_eq!(calls, n.div_ceil(batch), "progress once per batch");
    let labels = &seg.mask.labels;
    assert_eq!(labels.shape(), &vol.data.shape()[1..]);
    assert_eq!(seg.mask.geometry, vol.geometry);
    assert_eq!(seg.mask.label_info, c.labels);
    assert!(seg.mask.source.is_some());
    let want = harness::read_u8(&dir.path().join("labels.u8"));
    let back = harness::read_f32(&dir.path().join("back.f32"));
    // back is [S, K, rows, cols] in slice order; labels are [z, y, x].
    let vaxis = 3 - axis;
    let mut mismatches = 0;
    let mut fg = 0;
    for (idx, (&g, &w)) in labels.iter().zip(&want).enumerate() {
        fg += (w != 0) as usize;
        if g == w {
            continue;
        }
        let sh = labels.shape();
        let (z, y, x) = (idx / (sh[1] * sh[2]), (idx / sh[2]) % sh[1], idx % sh[2]);
        let (sl, r_, c_) = match vaxis {
            1 => (z, y, x),
            2 => (y, z, x),
            _ => (x, z, y),
        };
        // Outside the crop box the engine must write background, as the reference does.
        assert!(
            (crop[0]..crop[1]).contains(&r_) && (crop[2]..crop[3]).contains(&c_),
            "label {g} vs reference {w} at {idx}, outside the crop box {crop:?}"
        );
        let (r_, c_) = (r_ - crop[0], c_ - crop[2]);
        let p: Vec<f32> = (0..k)
            .map(|cl| back[((sl * k + cl) * rows + r_) * cols + c_])
            .collect();
        let tie = if k == 1 {
            (p[0] - c.threshold).abs() < 1e-4
        } else {
            let mut q = p.clone();
            q.sort_by(|a, b| b.total_cmp(a));
            q[0] - q[1] < 1e-4
        };
        assert!(
            tie,
            "label {g} vs reference {w} at {idx} with probabilities {p:?}"
        );
        mismatches += 1;
    }
    assert!(mismatches <= 3, "{mismatches} boundary mismatches");
    assert!(
        fg > 0 && fg < want.len(),
        "the test volume should give a non-trivial mask ({fg} of {})",
        want.len()
    );
    [crop[0], crop[1], crop[2], crop[3]]
}

#[test]
fn pipeline_matches_numpy_reference_with_resize_and_batches() {
    // Slices 50x70 against the model's 64x64; z-scored volume-wide.
    let vol = synthetic_volume(1, 7, 50, 70, 2);
    for batch in [1, 3, 16] {
        check_pipeline(sigmoid(), &vol, batch, false);
    }
}

/// 2.5D context (k = 1): the engine stacks each slice's neighbours as the numpy reference does
/// (channel order, the first and last slices replicated), with the foreground crop and TTA's
/// flips, on two slicing axes and with batches that split the volume unevenly.
#[test]
fn context_pipeline_matches_numpy_reference_with_crop_tta_and_axes() {
    let m = Model::open(model_path("unet_context.onnx"), &opts()).unwrap();
    assert_eq!(m.contract().context_slices, 1);
    assert_eq!(m.contract().input_channels(), 3);
    for (axis, batch, tta) in [(2, 1, false), (2, 3, true), (1, 4, true)] {
        let vol = synthetic_volume(1, 5, 50, 70, axis);
        check_pipeline(&m, &vol, batch, tta);
    }
}

/// Two source channels with context k = 1 (six graph channels): the stacking order, channel 0's
/// three slices then channel 1's, is the numpy reference's; a slice-major stack would differ.
#[test]
fn two_channel_context_pipeline_matches_numpy_reference() {
    let m = Model::open(model_path("unet_context_2ch.onnx"), &opts()).unwrap();
    assert_eq!(m.contract().input_channels(), 6);
    let vol = synthetic_volume(2, 4, 40, 48, 2);
    check_pipeline(&m, &vol, 3, true);
    let prep = prepare_slices(&m, &vol, 1, 1).unwrap();
    let plane = |c: usize| prep.slice(s![0, c, .., ..]).to_owned();
    // Model channels 0-2 are source 0 at slices 0-2 (each the centre channel, 1, of that slice),
    // channels 3-5 source 1 (centre channel 4).
    let centre = |z: usize, c: usize| {
        prepare_slices(&m, &vol, z, 1)
            .unwrap()
            .slice_move(s![0, c, .., ..])
    };
    for d in 0..3 {
        assert_eq!(plane(d), centre(d, 1), "source 0, slice {d}");
        assert_eq!(plane(3 + d), centre(d, 4), "source 1, slice {d}");
    }
    assert_ne!(plane(1), plane(4));
}

#[test]
fn softmax_pipeline_with_card_keep_aspect_percentile_tta_and_y_axis() {
    let dir = harness::tmpdir();
    let m = dir.path().join("soft.onnx");
    std::fs::copy(model_path("unet_softmax.onnx"), &m).unwrap();
    // The sidecar card overrides the embedded contract.
    std::fs::write(
        dir.path().join("soft.json"),
        r#"{"keep_aspect": true, "normalization": "percentile:1,99", "slicewise.version": "9"}"#,
    )
    .unwrap();
    let model = Model::open(&m, &opts()).unwrap();
    assert!(model.contract().keep_aspect);
    assert_eq!(model.contract().version, "9");
    assert_eq!(
        model.contract().normalization,
        Normalization::Percentile {
            lower: 1.0,
            upper: 99.0
        }
    );
    // Acquired along y: slices are [z, x] = 30x80.
    let vol = synthetic_volume(2, 30, 5, 80, 1);
    check_pipeline(&model, &vol, 2, true);
}

#[test]
fn minmax_slice_and_window_normalisation() {
    for norm in ["minmax-slice", "window:150,300"] {
        let dir = harness::tmpdir();
        let m = dir.path().join("m.onnx");
        std::fs::copy(model_path("unet_sigmoid.onnx"), &m).unwrap();
        std::fs::write(
            dir.path().join("m.onnx.json"),
            format!(r#"{{"normalization": "{norm}"}}"#),
        )
        .unwrap();
        let model = Model::open(&m, &opts()).unwrap();
        let vol = synthetic_volume(1, 4, 64, 40, 2);
        check_pipeline(&model, &vol, 4, false);
    }
}

/// A skull-stripped volume: everything outside a centred disc set to one constant below the data.
fn masked_volume(background: f32) -> Volume {
    let mut vol = synthetic_volume(1, 5, 60, 48, 2);
    let (_, _, y, x) = vol.data.dim();
    for ((_, _, j, i), v) in vol.data.indexed_iter_mut() {
        let (dy, dx) = (j as f32 / y as f32 - 0.5, i as f32 / x as f32 - 0.5);
        if dy * dy + dx * dx > 0.22 {
            *v = background;
        }
    }
    vol
}

/// The softmax test model (the random sigmoid one marks nothing on these inputs) opened with the
/// sidecar card `card` (`m.onnx.json`); the folder lives as long as the returned guard.
fn softmax_model_with_card(card: &str) -> (tempfile::TempDir, Model) {
    let dir = harness::tmpdir();
    let m = dir.path().join("m.onnx");
    std::fs::copy(model_path("unet_softmax.onnx"), &m).unwrap();
    std::fs::write(dir.path().join("m.onnx.json"), card).unwrap();
    let model = Model::open(&m, &opts()).unwrap();
    (dir, model)
}

#[test]
fn four_flip_tta_averages_both_mirrors_as_the_numpy_reference_does() {
    let card = r#"{"tta_flips": "hv", "keep_aspect": true}"#;
    let (_dir, model) = softmax_model_with_card(card);
    assert_eq!(model.contract().tta_flips, TtaFlips::Hv);
    // Acquired along y (slices [z, x] = 30x80, padded to the square input); 5 slices in
    // batches of 2 leave a partial last batch.
    let vol = synthetic_volume(2, 30, 5, 80, 1);
    check_pipeline(&model, &vol, 2, true);
    // The front-back mirrors change the labels: the card's flips are what the run used.
    let (_dir_h, model_h) = softmax_model_with_card(r#"{"keep_aspect": true}"#);
    let labels = |m: &Model| {
        let options = SegmentOptions::default().tta(true);
        segment(m, &vol, &options, &mut |_| true)
            .unwrap()
            .mask
            .labels
    };
    assert_ne!(labels(&model), labels(&model_h));
}

#[test]
fn percentile_fg_normalisation_ignores_the_background_value() {
    let (_dir, model) = softmax_model_with_card(r#"{"normalization": "percentile-fg:1,99"}"#);
    assert_eq!(
        model.contract().normalization,
        Normalization::PercentileForeground {
            lower: 1.0,
            upper: 99.0
        }
    );
    // Same as numpy/onnxruntime on a BraTS-like volume (z-scored inside, constant outside).
    let vol = masked_volume(-3.55);
    check_pipeline(&model, &vol, 2, false);
    // The model sees the same input whatever constant the background holds, and that input is 0
    // there (a plain percentile would take its lower clip from the background's value).
    let a = prepare_slices(&model, &vol, 0, 5).unwrap();
    let b = prepare_slices(&model, &masked_volume(-1000.0), 0, 5).unwrap();
    harness::assert_close(
        a.as_slice().unwrap(),
        b.as_slice().unwrap(),
        0.0,
        "fg input",
    );
    assert!(a.iter().filter(|v| **v == 0.0).count() > a.len() / 4);
}

#[test]
fn percentile_tissue_normalisation_puts_the_tissue_median_where_the_card_says() {
    let (_dir, model) =
        softmax_model_with_card(r#"{"normalization": "percentile-tissue:1,99,0.4"}"#);
    assert_eq!(
        model.contract().normalization,
        Normalization::PercentileTissue {
            lower: 1.0,
            upper: 99.0,
            median: 0.4
        }
    );
    // Same as numpy/onnxruntime on a BraTS-like volume (z-scored inside, constant outside).
    let vol = masked_volume(-3.55);
    check_pipeline(&model, &vol, 2, false);
    // The tissue (what percentile-fg maps above 0.1) has its median at 0.4.
    let fg = Normalization::PercentileForeground {
        lower: 1.0,
        upper: 99.0,
    };
    let fg = volume_norm(&fg, vol.data.iter()).unwrap();
    let tn = volume_norm(&model.contract().normalization, vol.data.iter()).unwrap();
    let mut tissue: Vec<f32> = (vol.data.iter())
        .filter(|v| fg.apply(**v) > 0.1)
        .map(|v| tn.apply(*v))
        .collect();
    tissue.sort_by(f32::total_cmp);
    let median = tissue[tissue.len() / 2];
    assert!((median - 0.4).abs() < 1e-3, "tissue median {median}");
    assert!(
        tn.scale != fg.scale,
        "the test volume's median is already 0.4"
    );
    // The model's input does not change with the scanner's gain and offset.
    let a = prepare_slices(&model, &vol, 0, 5).unwrap();
    let mut brighter = vol.clone();
    brighter.data.mapv_inplace(|v| v * 3.0 + 100.0);
    let b = prepare_slices(&model, &brighter, 0, 5).unwrap();
    harness::assert_close(
        a.as_slice().unwrap(),
        b.as_slice().unwrap(),
        1e-4,
        "gain and offset",
    );
}

#[test]
fn crop_foreground_pipeline_matches_numpy_reference() {
    // Tissue only in rows 4..56, columns 4..34 of 60x48 slices; a constant below it elsewhere.
    let mut vol = masked_volume(-3.55);
    for ((_, _, j, i), v) in vol.data.indexed_iter_mut() {
        if !(4..56).contains(&j) || !(4..34).contains(&i) {
            *v = -3.55;
        }
    }
    for keep_aspect in [false, true] {
        let (_dir, model) = softmax_model_with_card(&format!(
            r#"{{"normalization": "percentile-fg:1,99", "crop_foreground": 0.1, "keep_aspect": {keep_aspect}}}"#
        ));
        assert_eq!(model.contract().crop_foreground, Some(0.1));
        let crop = check_pipeline(&model, &vol, 2, keep_aspect);
        // The box hugs the tissue (grown by 4 % of its size), well inside the 60x48 slice.
        assert!(
            crop[0] >= 2 && crop[1] <= 58 && crop[2] >= 2 && crop[3] <= 36,
            "crop box {crop:?}"
        );
    }
}

#[test]
fn auto_provider_reports_cpu_and_why_cuda_was_skipped() {
    let m = Model::open(
        model_path("unet_sigmoid.onnx"),
        &ModelOptions::default().threads(1),
    )
    .unwrap();
    let p = m.provider();
    assert_eq!(p.requested, Device::Auto);
    // From ONNX Runtime's placement log, not from our registration result.
    assert_eq!(p.used, "CPUExecutionProvider");
    assert!(
        !p.notes.iter().any(|n| n.contains("inferred")),
        "placement log not captured: {:?}",
        p.notes
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.starts_with("CUDA:") && n.contains("not available")),
        "{:?}",
        p.notes
    );
    assert!(
        p.notes.iter().any(|n| n.starts_with("TensorRT:")),
        "{:?}",
        p.notes
    );
}

#[test]
fn explicit_cuda_and_tensorrt_fail_clearly() {
    for d in [Device::Cuda, Device::TensorRt] {
        let e = Model::open(model_path("unet_sigmoid.onnx"), &opts().device(d))
            .err()
            .expect("must fail on a CPU-only runtime");
        assert!(matches!(e, Error::Provider(_)), "{e:?}");
        assert_eq!(e.status_code(), 8);
        assert!(
            e.to_string()
                .contains("not available in this ONNX Runtime build"),
            "{e}"
        );
    }
}

#[test]
fn refused_models_name_the_reason() {
    let cases = [
        ("unet_nometa.onnx", "no `slicewise.*` metadata"),
        (
            "unet_badchannels.onnx",
            "declares 3 input channels but the graph",
        ),
        ("unet_nhwc.onnx", "layout NHWC is not supported"),
    ];
    for (file, why) in cases {
        let e = Model::open(model_path(file), &opts()).err().expect(file);
        assert!(matches!(e, Error::Model { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(file) && msg.contains(why), "{msg}");
    }
    // Not an ONNX file at all.
    let dir = harness::tmpdir();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    let e = Model::open(&junk, &opts()).err().unwrap();
    assert!(
        matches!(e, Error::Model { .. }) && e.to_string().contains("junk.onnx"),
        "{e}"
    );
    // A card that breaks the contract.
    let m = dir.path().join("m.onnx");
    std::fs::copy(model_path("unet_sigmoid.onnx"), &m).unwrap();
    std::fs::write(
        dir.path().join("m.json"),
        r#"{"normalization": "histogram-eq"}"#,
    )
    .unwrap();
    let e = Model::open(&m, &opts()).err().unwrap();
    assert!(e.to_string().contains("unknown normalization"), "{e}");
}

#[test]
fn cancellation_from_another_thread_and_from_progress() {
    let vol = synthetic_volume(1, 60, 64, 64, 2);
    let token = CancelToken::new();
    let options = SegmentOptions::default()
        .batch_size(1)
        .cancel(token.clone());
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t2 = token.clone();
    let canceller = std::thread::spawn(move || {
        rx.recv().unwrap();
        t2.cancel();
    });
    let mut seen = 0;
    let r = segment(sigmoid(), &vol, &options, &mut |p| {
        seen = p.done;
        if p.done == 3 {
            tx.send(()).unwrap();
            while !token.is_cancelled() {
                std::thread::yield_now();
            }
        }
        true
    });
    canceller.join().unwrap();
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert!((3..60).contains(&seen), "stopped mid-volume, at {seen}");

    let r = segment(sigmoid(), &vol, &SegmentOptions::default(), &mut |p| {
        p.done < 16
    });
    assert!(matches!(r, Err(Error::Cancelled)));
    // The model still works afterwards.
    let ok = segment(
        sigmoid(),
        &synthetic_volume(1, 2, 64, 64, 2),
        &SegmentOptions::default(),
        &mut |_| true,
    );
    assert!(ok.is_ok());
}

#[test]
fn connected_components_match_scipy() {
    // Random blobs: threshold a smoothed noise field.
    let (z, y, x) = (12, 20, 24);
    let noise = harness::uniform(11, z * y * x);
    let base = Array3::from_shape_fn((z, y, x), |(k, j, i)| noise[(k * y + j) * x + i]);
    let mut m = Array3::<u8>::zeros((z, y, x));
    for ((k, j, i), v) in m.indexed_iter_mut() {
        let mut acc = 0.0;
        let mut n = 0.0;
        for dk in k.saturating_sub(1)..(k + 2).min(z) {
            for dj in j.saturating_sub(1)..(j + 2).min(y) {
                for di in i.saturating_sub(1)..(i + 2).min(x) {
                    acc += base[[dk, dj, di]];
                    n += 1.0;
                }
            }
        }
        *v = (acc / n > 0.52) as u8;
    }
    // Add enclosed holes: a hollow cube.
    m.slice_mut(s![2..8, 2..8, 2..8]).fill(1);
    m.slice_mut(s![4..6, 4..6, 4..6]).fill(0);
    let dir = harness::tmpdir();
    let p = dir.path().join("m.u8");
    std::fs::write(&p, m.as_slice().unwrap()).unwrap();
    let r = harness::py(
        "engine_cc_ref.py",
        &[&p, &shape_arg(m.shape()), &dir.path(), &"5"],
    );
    assert!(
        r["components"].as_u64().unwrap() > 3,
        "need several components: {r}"
    );
    for (name, cleanup) in [
        (
            "largest",
            Cleanup {
                largest: true,
                ..Default::default()
            },
        ),
        (
            "minsize",
            Cleanup {
                min_voxels: 5,
                ..Default::default()
            },
        ),
        (
            "fill",
            Cleanup {
                fill_holes: true,
                ..Default::default()
            },
        ),
        (
            "all",
            Cleanup {
                largest: true,
                min_voxels: 5,
                fill_holes: true,
            },
        ),
    ] {
        let mut got = m.clone();
        clean(&mut got, cleanup);
        let want = harness::read_u8(&dir.path().join(format!("{name}.u8")));
        assert_eq!(got.as_slice().unwrap(), &want[..], "{name}");
    }
}

#[test]
fn mask_of_odd_orientation_nifti_keeps_affine_and_shape() {
    let input = harness::data("sct-spinalcord/t2/t2.nii.gz");
    let vol = Volume::open(&input).unwrap();
    let seg = segment(
        sigmoid(),
        &vol,
        &SegmentOptions::default().batch_size(16),
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(seg.mask.labels.shape(), &vol.data.shape()[1..]);
    let dir = harness::tmpdir();
    let out = dir.path().join("mask.nii.gz");
    slicewise::output::write_mask(&out, &seg.mask).unwrap();
    let voxels = dir.path().join("mask.u8");
    let r = harness::py("engine_geom_ref.py", &[&input, &out, &voxels]);
    assert_eq!(r["mask_shape"], r["input_shape"]);
    assert_eq!(r["mask_dtype"], "uint8");
    let a = harness::mat4(&r["input_affine"]);
    let b = harness::mat4(&r["mask_affine"]);
    harness::assert_affine_close(&a, &b, 1e-4, "mask vs input affine");
    assert_ne!(r["orientation"], "RAS", "the test wants a non-RAS input");
    // Our labels equal what nibabel reads back, voxel for voxel, on the input's grid.
    let back = harness::read_u8(&voxels);
    let ours = seg.mask.labels.as_standard_layout();
    assert_eq!(back.len(), ours.len());
    let first_diff = ours.iter().zip(&back).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "mask differs from nibabel's read-back");
    assert!(back.iter().any(|&v| v != 0), "an empty mask proves nothing");
}

/// Runtime loading failures, in a child process with no runtime loaded yet.
#[test]
fn bad_runtime_path_fails_cleanly_in_a_fresh_process() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "engine::runtime_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("SLICEWISE_ENGINE_CHILD", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "child did not run:\n{text}");
}

#[test]
#[ignore = "run by bad_runtime_path_fails_cleanly_in_a_fresh_process"]
fn runtime_child() {
    if std::env::var_os("SLICEWISE_ENGINE_CHILD").is_none() {
        return;
    }
    let e = init_runtime(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
    assert!(matches!(e, Error::Runtime { .. }), "{e:?}");
    assert!(
        e.to_string().contains("/nonexistent/libonnxruntime.so")
            && e.to_string().contains("not found"),
        "{e}"
    );
    // A shared library that is not ONNX Runtime.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists());
    if let Some(p) = libc {
        let e = init_runtime(Some(Path::new(p))).unwrap_err();
        assert!(e.to_string().contains("not an ONNX Runtime library"), "{e}");
    }
    // A model open with a bad runtime path is the same clean error.
    let e = Model::open(
        model_path("unet_sigmoid.onnx"),
        &opts().runtime_path("/nope/libort.so"),
    )
    .err()
    .unwrap();
    assert!(matches!(e, Error::Runtime { .. }), "{e:?}");
    // The good one still loads afterwards; then a different explicit path is refused.
    let lib = harness::repo().join(".cache/onnxruntime/libonnxruntime.so.1.31.1");
    let info = init_runtime(Some(&lib)).unwrap();
    assert_eq!(info.version, "1.31.1");
    let e = init_runtime(Some(Path::new("/other/libonnxruntime.so"))).unwrap_err();
    assert!(e.to_string().contains("already loaded"), "{e}");
    assert_eq!(init_runtime(None).unwrap().path, info.path);
}

/// A model whose graph has dynamic H and W and whose metadata claims 65536×65536 opened fine
/// and then aborted the process on a 34 GB batch allocation. Sizes past the engine's bound are
/// refused when the model is opened, naming the file and the size.
#[test]
fn model_claiming_a_huge_input_size_is_refused_at_open() {
    let dir = harness::tmpdir();
    let model = dir.path().join("huge.onnx");
    // The bundled hippocampus model's graph has dynamic N, H and W; a card next to it overrides
    // its declared size.
    std::fs::copy(harness::bundled_hippocampus().model, &model).unwrap();
    let card = r#"{"slicewise.height": "65536", "slicewise.width": "65536"}"#;
    std::fs::write(dir.path().join("huge.json"), card).unwrap();
    let e = Model::open(&model, &opts()).map(|_| ()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Model { .. }), "{e:?}");
    assert!(
        msg.contains("huge.onnx") && msg.contains("height 65536"),
        "{msg}"
    );
    // At the bound it still opens: the limit refuses only the absurd.
    let card = r#"{"slicewise.height": "4096", "slicewise.width": "4096"}"#;
    std::fs::write(dir.path().join("huge.json"), card).unwrap();
    Model::open(&model, &opts()).expect("4096 is accepted");
}
