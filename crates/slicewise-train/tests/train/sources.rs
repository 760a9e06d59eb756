//! NIfTI (MSD) and COCO sources: slicing, labels, polygon masks against a numpy rasteriser.

use slicewise::infer::Normalization;
use slicewise::Volume;
use slicewise_train::data::{self, DataConfig, DataKind, SourceKind};
use slicewise_train::sources::{coco_volumes, read_coco};

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
