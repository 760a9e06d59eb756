//! Training sources: an LGG slice folder read as the engine reads it (mixed-case masks,
//! unpadded numbers), NIfTI (MSD) slicing and labels, COCO polygon masks against a numpy
//! rasteriser.

use std::path::Path;

use slicewise::infer::Normalization;
use slicewise::volume::tiff::read_mask_folder;
use slicewise::Volume;
use slicewise_train::coco::{coco_volumes, read_coco};
use slicewise_train::data::{self, DataConfig, DataKind, SourceKind};
use slicewise_train::sources;

use crate::harness;

#[test]
fn coco_polygons_match_numpy_and_copies_stay_together() {
    let val = harness::data("coco-brain-tumor/val");
    let dir = harness::tmpdir();
    let js = harness::py(
        "coco_masks.py",
        &[&val.join("_annotations.coco.json"), &dir.path()],
    );
    let sources = coco_volumes(&val).expect("coco");
    let mut images = 0;
    for src in &sources {
        let SourceKind::Coco(list) = &src.what else {
            panic!("not coco")
        };
        let raw = read_coco(&src.name, list).expect("read");
        for (im, ours) in list.iter().zip(&raw.masks) {
            let name = im.path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with(&format!("{}_", src.name)),
                "{name} grouped under {}",
                src.name
            );
            let theirs = harness::read_u8(&dir.path().join(format!("{name}.u8")));
            assert_eq!(theirs.len(), ours.len(), "{name}");
            let differ = ours
                .iter()
                .zip(&theirs)
                .filter(|(a, b)| (**a != 0) != (**b != 0))
                .count();
            let n_ref = js["images"][&name][2].as_u64().unwrap();
            assert!(
                differ <= 2,
                "{name}: {differ} pixels differ ({n_ref} inside)"
            );
            assert!(n_ref > 0, "{name}: no polygon");
            images += 1;
        }
    }
    assert_eq!(images, js["images"].as_object().unwrap().len());
}

#[test]
fn msd_nifti_slices_carry_all_labels() {
    let root = harness::data("msd-hippocampus");
    let cfg = DataConfig::new(root.to_string_lossy().into_owned())
        .with_kind(DataKind::Nifti)
        .with_channels(vec![0])
        .with_size(32)
        .with_normalization(Normalization::ZScore)
        .with_axis(2)
        .with_classes(3)
        .with_max_volumes(3);
    let ds = data::load(&cfg).expect("load MSD");
    assert_eq!(ds.volumes.len(), 3);
    let mut expected = 0;
    for name in &ds.volumes {
        let v = Volume::open(root.join("images").join(format!("{name}.nii.gz"))).expect("nifti");
        expected += v.dims_xyz()[2];
    }
    assert_eq!(ds.slices.len(), expected, "one slice per z");
    for k in 1..=2u8 {
        assert!(
            ds.slices.iter().any(|s| s.mask.contains(&k)),
            "label {k} never seen"
        );
    }
    assert!(ds.slices.iter().all(|s| s.mask.iter().all(|&m| m <= 2)));
}

/// An LZW-compressed LGG patient with more than 9 slices, so that text order and numeric order
/// differ.
const LGG_PATIENT: &str = "TCGA_HT_7690_19960312";

/// The names slice `n` and its mask get in the renamed folder: `X_<n>.tif` (`.TIF` for every
/// third), `X_<n>_MASK.tif` for even `n`, `X_<n>_Mask.tif` for odd.
fn renamed(n: usize) -> (String, String) {
    let ext = if n.is_multiple_of(3) { "TIF" } else { "tif" };
    let mask = if n.is_multiple_of(2) { "MASK" } else { "Mask" };
    (format!("X_{n}.{ext}"), format!("X_{n}_{mask}.tif"))
}

/// Copies the patient's slices `<P>_<n>.tif` into `dir` as `X_<n>.tif` (every third with the
/// extension `.TIF`), masks alternately as `X_<n>_MASK.tif` and `X_<n>_Mask.tif`; returns the
/// slice count.
fn renamed_patient(dir: &Path) -> usize {
    let src = harness::data("lgg").join(LGG_PATIENT);
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut n = 0;
    while src.join(format!("{LGG_PATIENT}_{}.tif", n + 1)).is_file() {
        n += 1;
        let copy = |from: String, to: String| {
            std::fs::copy(src.join(&from), dir.join(to)).expect(&from);
        };
        let (image, mask) = renamed(n);
        copy(format!("{LGG_PATIENT}_{n}.tif"), image);
        copy(format!("{LGG_PATIENT}_{n}_mask.tif"), mask);
    }
    n
}

#[test]
fn mixed_case_unpadded_lgg_folder_reads_as_the_engine_reads_it() {
    let tmp = harness::tmpdir();
    let root = tmp.path().join("data");
    let n = renamed_patient(&root.join("X"));
    assert!(n > 10, "{n} slices");
    let found = sources::pair_volumes(&root).expect("list");
    assert_eq!(found.len(), 1, "one volume");
    assert_eq!(found[0].name, "X");
    let raw = sources::read(&found[0], 2).expect("trainer read");

    // The engine's reading of the same folder: images and masks, slice for slice.
    let image = Volume::open(root.join("X")).expect("engine read");
    let masks = read_mask_folder(&root.join("X"), &Default::default()).expect("engine masks");
    assert_eq!(image.data.shape(), [3, n, 256, 256]);
    assert_eq!((raw.channels.len(), raw.masks.len()), (3, n));
    assert_eq!((raw.height, raw.width), (256, 256));
    for z in 0..n {
        for c in 0..3 {
            let engine: Vec<f32> = image
                .data
                .slice(ndarray::s![c, z, .., ..])
                .iter()
                .copied()
                .collect();
            assert!(
                raw.channels[c][z] == engine,
                "slice {z} channel {c} differs from the engine's"
            );
        }
        let engine: Vec<u8> = masks
            .data
            .slice(ndarray::s![0, z, .., ..])
            .iter()
            .map(|&v| u8::from(v != 0.0))
            .collect();
        assert_eq!(raw.masks[z], engine, "mask {z} differs from the engine's");
    }

    // Slice k is the patient's file k + 1 (numeric order), pixel for pixel, masks included.
    let src = harness::data("lgg").join(LGG_PATIENT);
    for z in 0..n {
        let file = Volume::open(src.join(format!("{LGG_PATIENT}_{}.tif", z + 1))).expect("slice");
        let want: Vec<f32> = file
            .data
            .slice(ndarray::s![1, 0, .., ..])
            .iter()
            .copied()
            .collect();
        assert!(
            raw.channels[1][z] == want,
            "slice {z} is not file {}",
            z + 1
        );
        let mask =
            Volume::open(src.join(format!("{LGG_PATIENT}_{}_mask.tif", z + 1))).expect("mask");
        let want: Vec<u8> = mask.data.iter().map(|&v| u8::from(v != 0.0)).collect();
        assert_eq!(raw.masks[z], want, "mask {z} is not file {}", z + 1);
    }
    assert!(
        raw.masks.iter().flatten().any(|&m| m == 1),
        "the patient has a lesion"
    );

    // And the whole training path sees every slice of it.
    let cfg = DataConfig::new(root.to_string_lossy().into_owned()).with_size(64);
    let ds = data::load(&cfg).expect("load");
    assert_eq!(ds.volumes, ["X"]);
    assert_eq!(ds.slices.len(), n);
}

#[test]
fn a_slice_folder_with_an_image_without_its_mask_is_an_error() {
    let tmp = harness::tmpdir();
    let root = tmp.path().join("data");
    let n = renamed_patient(&root.join("X"));
    std::fs::remove_file(root.join("X").join(renamed(n).1)).expect("remove a mask");
    let e = sources::pair_volumes(&root)
        .expect_err("a mask is missing")
        .to_string();
    assert!(e.contains(&format!("X_{n}.")) && e.contains("mask"), "{e}");
}
