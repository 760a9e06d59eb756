//! The trainer's data path against the engine's: the same patient, preprocessed by
//! `data::load` and by the engine for a model whose contract crops to the foreground, gives the
//! same model input — for an RGB LGG patient (FLAIR = channel 1) and a grey FLAIR-only one, and
//! with 2.5D context; a two-folder run splits each folder on its own, and cross-validation folds
//! hold out every patient exactly once.

use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;
use slicewise::infer::{prepare_slices, Device, Model, ModelOptions, Normalization};
use slicewise::Volume;
use slicewise_train::data::{self, DataConfig};
use slicewise_train::loader::make_batch;

use crate::harness;

const RGB_PATIENT: &str = "TCGA_CS_4943_20000902";
const GREY_PATIENT: &str = "TCGA_CS_4941_19960909";

fn crop_config(root: &Path) -> DataConfig {
    DataConfig::new(root.to_string_lossy().into_owned())
        .with_channels(vec![1])
        .with_size(128)
        .with_normalization(Normalization::PercentileForeground {
            lower: 1.0,
            upper: 99.0,
        })
        .with_crop_foreground(Some(0.1))
}

/// The bundled FLAIR model, its contract told to crop by a sidecar card.
fn cropping_model(dir: &Path) -> Model {
    let m = dir.join("flair.onnx");
    std::fs::copy(harness::repo().join("models/lgg-flair-small.onnx"), &m).expect("copy model");
    std::fs::write(
        dir.join("flair.json"),
        r#"{"crop_foreground": 0.1, "normalization": "percentile-fg:1,99"}"#,
    )
    .expect("card");
    Model::open(&m, &ModelOptions::default().device(Device::Cpu)).expect("open model")
}

fn check_patient(set: &str, patient: &str) {
    let tmp = harness::tmpdir();
    let src = harness::data(set).join(patient);
    let root = tmp.path().join("one");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::os::unix::fs::symlink(&src, root.join(patient)).expect("symlink");
    let ds = data::load(&crop_config(&root)).expect("trainer load");
    let ours: Vec<f32> = ds
        .slices
        .iter()
        .flat_map(|s| s.image.iter().copied())
        .collect();

    let model = cropping_model(tmp.path());
    assert_eq!(model.contract().crop_foreground, Some(0.1));
    let volume = Volume::open(&src).expect("open patient");
    let z = volume.data.shape()[1];
    assert_eq!(ds.slices.len(), z);
    let engine: Vec<f32> = prepare_slices(&model, &volume, 0, z)
        .expect("engine prepare")
        .iter()
        .copied()
        .collect();
    harness::assert_close(
        &engine,
        &ours,
        1e-5,
        &format!("{patient}: engine vs trainer"),
    );

    // The crop did something: the uncropped input differs.
    let plain = data::load(&crop_config(&root).with_crop_foreground(None)).expect("load");
    let uncropped: Vec<f32> = plain
        .slices
        .iter()
        .flat_map(|s| s.image.iter().copied())
        .collect();
    let differ = uncropped
        .iter()
        .zip(&ours)
        .filter(|(a, b)| (*a - *b).abs() > 1e-3)
        .count();
    assert!(
        differ > ours.len() / 10,
        "{patient}: cropping changed only {differ} values"
    );
}

#[test]
fn cropped_rgb_patient_matches_the_engine() {
    check_patient("lgg", RGB_PATIENT);
}

#[test]
fn cropped_grey_flair_patient_matches_the_engine() {
    check_patient("lgg-flair", GREY_PATIENT);
}

/// The trainer's context-1 batches of every slice of the RGB patient under `cfg` (`root` gets a
/// link to the patient), and the engine's model input for `fixture` (a test model declaring
/// context 1, its source channels set by `card`), compared value for value.
fn check_context(cfg: DataConfig, root: &Path, fixture: &str, card: &str) -> Vec<f32> {
    let src = harness::data("lgg").join(RGB_PATIENT);
    std::fs::create_dir_all(root).expect("mkdir");
    std::os::unix::fs::symlink(&src, root.join(RGB_PATIENT)).expect("symlink");
    let ds = data::load(&cfg.with_context(Some(1))).expect("trainer load");
    let all: Vec<usize> = (0..ds.slices.len()).collect();
    let ours = make_batch(&ds, &all, None, &mut StdRng::seed_from_u64(0)).images;

    let dir = root.parent().expect("parent");
    let m = dir.join("ctx.onnx");
    std::fs::copy(harness::repo().join("tests/data").join(fixture), &m).expect("copy");
    std::fs::write(dir.join("ctx.json"), card).expect("card");
    let model = Model::open(&m, &ModelOptions::default().device(Device::Cpu)).expect("open");
    assert_eq!(model.contract().context_slices, 1);
    let volume = Volume::open(&src).expect("open patient");
    let z = volume.data.shape()[1];
    let engine = prepare_slices(&model, &volume, 0, z).expect("engine prepare");
    assert_eq!(engine.shape(), &[z, ds.input_channels(), 64, 64]);
    harness::assert_close(
        engine.as_slice().expect("contiguous"),
        &ours,
        1e-5,
        &format!("{fixture}: engine vs trainer"),
    );
    ours
}

/// 2.5D context k = 1: the trainer's batches (each slice with its neighbours, the first and last
/// slices replicated) are the engine's model input for a contract declaring `context_slices` 1,
/// slice for slice; with the tumour model's normalisation and crop (FLAIR, 64x64 fixture).
#[test]
fn context_batches_match_the_engine() {
    let tmp = harness::tmpdir();
    let norm = Normalization::PercentileTissue {
        lower: 1.0,
        upper: 99.0,
        median: 0.4,
    };
    let root = tmp.path().join("one");
    let cfg = crop_config(&root).with_size(64).with_normalization(norm);
    let ours = check_context(
        cfg,
        &root,
        "unet_context.onnx",
        r#"{"source_channels": "1"}"#,
    );
    // The neighbours are there: channel 0 of slice 1 is slice 0's centre, and the first
    // slice's channel 0 repeats its own (edge replicated).
    let plane = 64 * 64;
    let centre = |i: usize| &ours[(i * 3 + 1) * plane..(i * 3 + 2) * plane];
    assert_eq!(&ours[3 * plane..4 * plane], centre(0));
    assert_eq!(&ours[..plane], centre(0));
    assert_ne!(centre(0), centre(1));
}

/// Two source channels (the patient's pre-contrast and FLAIR) with context 1: the trainer
/// stacks them channel-major as the engine does (six channels, z-scored, no crop).
#[test]
fn two_channel_context_batches_match_the_engine() {
    let tmp = harness::tmpdir();
    let root = tmp.path().join("one");
    let cfg = DataConfig::new(root.to_string_lossy().into_owned())
        .with_channels(vec![0, 1])
        .with_size(64)
        .with_normalization(Normalization::ZScore);
    let ours = check_context(cfg, &root, "unet_context_2ch.onnx", "{}");
    assert_eq!(ours.len() % (6 * 64 * 64), 0);
}

/// Five cross-validation folds: every patient held out by exactly one fold, each fold holding
/// patients of both data folders, no validation part, and train and test disjoint.
#[test]
fn cross_validation_folds_hold_out_every_patient_once() {
    let (lgg, flair, volumes, strata) = lgg_patients();
    let mut held: Vec<String> = Vec::new();
    for fold in 0..5 {
        let cfg = DataConfig::new("unused".into())
            .with_folds(Some(5))
            .with_fold(Some(fold));
        let s = data::split(&volumes, &strata, &cfg).expect("split");
        assert!(s.val.is_empty());
        assert!(s.test.iter().all(|t| !s.train.contains(t)));
        assert_eq!(s.train.len() + s.test.len(), volumes.len());
        assert!(s.test.iter().any(|n| lgg.contains(n)), "fold {fold}");
        assert!(s.test.iter().any(|n| flair.contains(n)), "fold {fold}");
        assert!(
            (17..=19).contains(&s.test.len()),
            "fold {fold}: {}",
            s.test.len()
        );
        held.extend(s.test);
    }
    held.sort();
    let mut all = volumes.clone();
    all.sort();
    assert_eq!(held, all, "every patient held out exactly once");
    let bad = DataConfig::new("unused".into())
        .with_folds(Some(5))
        .with_fold(Some(5));
    assert!(data::split(&volumes, &strata, &bad).is_err());
}

#[test]
fn two_folders_are_split_each_on_its_own() {
    let cfg = DataConfig::new(harness::data("lgg").to_string_lossy().into_owned())
        .with_extra_roots(vec![harness::data("lgg-flair")
            .to_string_lossy()
            .into_owned()])
        .with_val_fraction(0.15)
        .with_test_fraction(0.15);
    let (lgg, flair, volumes, strata) = lgg_patients();
    let s = data::split(&volumes, &strata, &cfg).expect("split");
    for part in [&s.train, &s.val, &s.test] {
        assert!(
            part.iter().any(|n| lgg.contains(n)),
            "{part:?} lacks lgg/ patients"
        );
        assert!(
            part.iter().any(|n| flair.contains(n)),
            "{part:?} lacks lgg-flair/ patients"
        );
    }
    let mut all: Vec<&String> = s.train.iter().chain(&s.val).chain(&s.test).collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        volumes.len(),
        "every patient in exactly one split"
    );
    // Per folder: round(15 %) of 22 is 3, of 69 is 10.
    assert_eq!(s.test.len(), 13);
    assert_eq!(s.val.len(), 13);
}

/// The patients of `lgg/` and of `lgg-flair/`, all of them in that order, and each one's folder
/// index (the split's strata).
fn lgg_patients() -> (Vec<String>, Vec<String>, Vec<String>, Vec<usize>) {
    let lgg = subdirs(&harness::data("lgg"));
    let flair = subdirs(&harness::data("lgg-flair"));
    let volumes: Vec<String> = lgg.iter().chain(&flair).cloned().collect();
    let strata: Vec<usize> = std::iter::repeat_n(0, lgg.len())
        .chain(std::iter::repeat_n(1, flair.len()))
        .collect();
    (lgg, flair, volumes, strata)
}

fn subdirs(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A `config.json` written before the cross-validation, context, crop and deep-supervision
/// options (none of their keys) still reads, as plain 2-D training on whole slices.
#[test]
fn configs_written_before_the_new_options_still_read() {
    use slicewise_train::augment::AugmentConfig;
    use slicewise_train::config::{load_config, save_config};
    use slicewise_train::{TrainingConfig, UNetConfig};
    let dir = harness::tmpdir();
    let path = dir.path().join("config.json");
    let cfg = TrainingConfig::new(
        UNetConfig::small(1),
        DataConfig::new("data".into()),
        AugmentConfig::none(),
    );
    save_config(&cfg, &path).expect("save");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    for key in ["folds", "fold", "context", "patch", "patch_foreground"] {
        assert!(
            v["data"]
                .as_object_mut()
                .expect("data")
                .remove(key)
                .is_some(),
            "{key}"
        );
    }
    let removed = v["model"]
        .as_object_mut()
        .expect("model")
        .remove("deep_supervision");
    assert!(removed.is_some());
    std::fs::write(&path, v.to_string()).expect("write");
    let old = load_config(&path).expect("an older config reads");
    assert_eq!(
        (
            old.data.cv_folds(),
            old.data.context_slices(),
            old.data.patch
        ),
        (0, 0, None)
    );
    assert_eq!(old.model.deep_heads(), 0);
}
