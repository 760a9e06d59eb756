//! The trainer's data path against the engine's: the same patient, preprocessed by
//! `data::load` and by the engine for a model whose contract crops to the foreground, gives the
//! same model input — for an RGB LGG patient (FLAIR = channel 1) and a grey FLAIR-only one; and
//! a two-folder run splits each folder on its own.

use std::path::Path;

use slicewise::infer::{prepare_slices, Device, Model, ModelOptions, Normalization};
use slicewise::Volume;
use slicewise_train::data::{self, DataConfig};

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

#[test]
fn two_folders_are_split_each_on_its_own() {
    let cfg = DataConfig::new(harness::data("lgg").to_string_lossy().into_owned())
        .with_extra_roots(vec![harness::data("lgg-flair")
            .to_string_lossy()
            .into_owned()])
        .with_val_fraction(0.15)
        .with_test_fraction(0.15);
    let lgg = subdirs(&harness::data("lgg"));
    let flair = subdirs(&harness::data("lgg-flair"));
    let volumes: Vec<String> = lgg.iter().chain(&flair).cloned().collect();
    let strata: Vec<usize> = std::iter::repeat_n(0, lgg.len())
        .chain(std::iter::repeat_n(1, flair.len()))
        .collect();
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
