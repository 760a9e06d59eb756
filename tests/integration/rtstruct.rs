//! RTSTRUCT output read back independently (tests/python/rtstruct_check.py: rt-utils on square
//! images, an even-odd rasterisation from pydicom's geometry on every image, the references
//! checked against the series folder, dciodvfy) on real series: dcmqi's 3-slice CT with its liver
//! SEG plus drawn islands and holes, and the bundled hippocampus model's structures from
//! `slicewise segment --format rtstruct` on a real MR hippocampus crop series.

use std::path::{Path, PathBuf};

use serde_json::Value;
use slicewise::mask::coding::{Code, LabelCodes};
use slicewise::mask::LabelInfo;
use slicewise::output::rtstruct::{self, RtstructOptions};

use crate::harness;

const CT3: &str = "dcmqi-ct3slice-seg/segmentations";
const HIPPO_SERIES: &str = "mr-dicom-series/Study3/11_HCropVolume";

/// Asserts what every RTSTRUCT check must give: no dciodvfy error, references that resolve in
/// the series folder, contours in the planes of the images they reference.
fn assert_valid(check: &Value, what: &str) {
    let errors = check["dciodvfy_errors"].as_array().unwrap();
    assert!(errors.is_empty(), "{what}: dciodvfy errors: {errors:#?}");
    for w in check["dciodvfy_warnings"].as_array().unwrap() {
        eprintln!("{what}: dciodvfy {}", w.as_str().unwrap_or_default());
    }
    assert_eq!(
        check["sop_class"],
        rtstruct::RT_STRUCTURE_SET_STORAGE,
        "{what}"
    );
    assert_eq!(check["modality"], "RTSTRUCT", "{what}");
    assert_eq!(check["series_differs"], true, "{what}: a new series");
    let r = &check["references"];
    assert_eq!(r["frame_of_reference_ok"], true, "{what}: {r}");
    // A series anonymised down to no UIDs (TotalSegmentator's) gets new study and frame of
    // reference UIDs and is not listed; its instances are still referenced by each contour.
    assert_eq!(r["study_listed"], r["source_has_uids"], "{what}: {r}");
    if r["study_listed"] == true {
        assert_eq!(r["study_ok"], true, "{what}: {r}");
        assert_eq!(r["series_ok"], true, "{what}: {r}");
        assert_eq!(r["listed_missing"], serde_json::json!([]), "{what}: {r}");
        assert_eq!(r["listed_instances"], r["series_instances"], "{what}: {r}");
    }
    assert_eq!(
        check["contour_refs_missing"].as_array().unwrap().len(),
        0,
        "{what}"
    );
    let off = check["max_off_plane_mm"].as_f64().unwrap();
    assert!(
        off < 1e-3,
        "{what}: a contour lies {off} mm off its image's plane"
    );
}

/// The ROI numbered `n` in the check.
fn roi(check: &Value, n: u64) -> &Value {
    check["rois"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["number"] == n)
        .unwrap_or_else(|| panic!("no ROI {n}: {check}"))
}

/// The lowest Dice over the slices of `roi` by rasterisation `key`, with the slices printed.
fn min_dice(roi: &Value, key: &str) -> f64 {
    roi["slices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[key].as_f64().unwrap())
        .fold(1.0, f64::min)
}

/// dcmqi's liver SEG read onto its CT series (slicewise's SEG reader), plus on the middle slice
/// a drawn ring (an island with a hole, and an island inside the hole) and two squares touching
/// at a corner, in the air beside the patient; and a declared label with no voxels.
fn ct_mask() -> slicewise::Mask {
    let series = harness::data(&format!("{CT3}/ct-3slice"));
    let vol = slicewise::Volume::open(&series).unwrap();
    let seg = harness::data(&format!("{CT3}/liver.dcm"));
    let mut mask = slicewise::mask::dicom_seg::read_seg(&seg, Some(&vol))
        .unwrap()
        .to_mask()
        .unwrap();
    mask.source = Some(vol.meta.clone());
    mask.label_info[0].name = "liver".into();
    for y in 10..40 {
        for x in 10..40 {
            let ring = !(15..35).contains(&y) || !(15..35).contains(&x);
            let core = (22..28).contains(&y) && (22..28).contains(&x);
            if ring || core {
                mask.labels[[1, y, x]] = 2;
            }
        }
    }
    for (y0, x0) in [(50, 50), (55, 55)] {
        for y in y0..y0 + 5 {
            for x in x0..x0 + 5 {
                mask.labels[[1, y, x]] = 2;
            }
        }
    }
    mask.label_info.push(LabelInfo {
        value: 2,
        name: "drawn".into(),
        color: [10, 200, 30],
    });
    mask.label_info.push(LabelInfo {
        value: 3,
        name: "empty".into(),
        color: [0, 0, 255],
    });
    mask
}

/// Writes `mask` as an RTSTRUCT and as NIfTI into `dir` and checks the RTSTRUCT against the
/// series folder and the NIfTI.
fn write_and_check(
    mask: &slicewise::Mask,
    series: &Path,
    options: &RtstructOptions,
    dir: &Path,
) -> Value {
    let rt = dir.join("rt.dcm");
    rtstruct::write_mask_with(&rt, mask, options).unwrap();
    let nii = dir.join("mask.nii.gz");
    slicewise::output::write_mask(&nii, mask).unwrap();
    harness::py("rtstruct_check.py", &[&rt, &series, &nii])
}

#[test]
fn ct_liver_islands_holes_and_an_empty_label_read_back_exactly() {
    let tmp = harness::tmpdir();
    let mask = ct_mask();
    let liver = LabelCodes {
        value: 1,
        category: Code::new("91723000", "SCT", "Anatomical Structure"),
        property_type: Code::new("10200004", "SCT", "Liver"),
        property_type_modifier: None,
        anatomic_region: Some(Code::new("818981001", "SCT", "Abdomen")),
    };
    let options = RtstructOptions::default().with_label_codes(&[liver]);
    let series = harness::data(&format!("{CT3}/ct-3slice"));
    let check = write_and_check(&mask, &series, &options, tmp.path());
    assert_valid(&check, "CT liver");
    assert_eq!(check["transfer_syntax"], "1.2.840.10008.1.2");
    assert_eq!(check["rois"].as_array().unwrap().len(), 3, "{check}");

    let liver = roi(&check, 1);
    assert_eq!(liver["name"], "liver");
    assert_eq!(liver["generation"], "AUTOMATIC");
    assert_eq!(liver["interpreted_type"], "ORGAN");
    assert_eq!(liver["type"]["meaning"], "Liver");
    assert_eq!(liver["category"]["value"], "91723000");
    assert_eq!(liver["region"]["meaning"], "Abdomen");

    let drawn = roi(&check, 2);
    assert_eq!(drawn["color"], serde_json::json!([10, 200, 30]));
    assert_eq!(drawn["interpreted_type"], "", "uncoded: unknown type");
    assert!(drawn["type"].is_null(), "uncoded labels carry no codes");
    // Ring, its hole, the island in the hole, and the two squares touching at a corner.
    assert_eq!(drawn["contours"], 5, "{drawn}");

    // An empty label is listed, without contours (and so without a ContourSequence).
    let empty = roi(&check, 3);
    assert_eq!(empty["name"], "empty");
    assert_eq!(empty["contours"], 0);
    assert_eq!(empty["has_contour_sequence"], false);

    // Both readers give every label back voxel for voxel on every slice: rt-utils (rounding the
    // vertices to pixel centres, filling inclusively) and centre sampling (even-odd).
    for r in check["rois"].as_array().unwrap() {
        let what = format!("ROI {}", r["name"]);
        for s in r["slices"].as_array().unwrap() {
            assert_eq!(s["dice_even_odd"], 1.0, "{what}: {s}");
            if r["contours"] != 0 {
                assert_eq!(s["dice_rt_utils"], 1.0, "{what}: {s}");
            }
        }
        if r["contours"] == 0 {
            continue;
        }
        eprintln!(
            "{what}: Dice rt-utils {} even-odd {}",
            min_dice(r, "dice_rt_utils"),
            min_dice(r, "dice_even_odd")
        );
    }
    assert!(liver["slices"][0]["truth"].as_u64().unwrap() > 10_000);
}

/// The lowest and the mean Dice by rasterisation `key` over the slices where an ROI has voxels,
/// all ROIs with contours together.
fn dice_summary(check: &Value, key: &str) -> (f64, f64) {
    let d: Vec<f64> = check["rois"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["slices"].as_array().unwrap())
        .filter(|s| s["truth"].as_u64().unwrap() > 0)
        .map(|s| s[key].as_f64().unwrap())
        .collect();
    let min = d.iter().copied().fold(1.0, f64::min);
    (min, d.iter().sum::<f64>() / d.len() as f64)
}

/// Why the vertices lie just inside the voxel boundaries: on the boundaries themselves (inset 0)
/// rt-utils, which rounds vertices to pixel centres and fills inclusively, grows the structures;
/// through the boundary pixels' centres (rt-utils' own writer) a reader sampling pixel centres
/// loses boundary pixels. Slicewise's inset contours are exact for both (the test above).
#[test]
fn boundary_and_centre_conventions_each_fail_one_reader() {
    let tmp = harness::tmpdir();
    let mut mask = ct_mask();
    mask.label_info.retain(|l| l.value != 3);
    let series = harness::data(&format!("{CT3}/ct-3slice"));
    let on_boundary = RtstructOptions {
        contour_inset: 0.0,
        ..Default::default()
    };
    let check = write_and_check(&mask, &series, &on_boundary, tmp.path());
    let (eo, ru) = (
        dice_summary(&check, "dice_even_odd"),
        dice_summary(&check, "dice_rt_utils"),
    );
    eprintln!("vertices on the voxel boundaries: Dice min/mean even-odd {eo:?}, rt-utils {ru:?}");
    assert_eq!(eo, (1.0, 1.0));
    assert!(
        ru.0 < 1.0,
        "rt-utils reads boundary vertices exactly? {ru:?}"
    );

    let theirs = tmp.path().join("rt-utils.dcm");
    let nii = tmp.path().join("mask.nii.gz");
    let w = harness::py("rtstruct_rtutils_write.py", &[&series, &nii, &theirs]);
    assert_eq!(w["labels"], serde_json::json!([1, 2]));
    let check = harness::py("rtstruct_check.py", &[&theirs, &series, &nii]);
    let (eo, ru) = (
        dice_summary(&check, "dice_even_odd"),
        dice_summary(&check, "dice_rt_utils"),
    );
    eprintln!(
        "rt-utils' own contours (pixel centres): Dice min/mean even-odd {eo:?}, rt-utils {ru:?}"
    );
    assert!(
        eo.0 < 0.99,
        "centre sampling reads centre vertices exactly? {eo:?}"
    );
}

/// The TotalSegmentator reference segmentation (NIfTI, LAS) put on the grid of its real
/// 20-slice JPEG 2000 CT series, anonymised down to blank UIDs: many anatomical labels, each
/// read back exactly by even-odd centre sampling on every slice, every contour referencing its
/// image (by the file meta's instance UID).
#[test]
fn j2k_ct_series_with_many_labels_reads_back_exactly() {
    let dir = "totalseg-ref/tests/reference_files";
    let series = harness::data(&format!("{dir}/example_ct_dicom"));
    let vol = slicewise::Volume::open(&series).unwrap();
    let seg =
        slicewise::Volume::open(harness::data(&format!("{dir}/example_seg_dicom.nii.gz"))).unwrap();
    let mask = resampled_labels(&vol, &seg);
    let tmp = harness::tmpdir();
    let check = write_and_check(&mask, &series, &RtstructOptions::default(), tmp.path());
    assert_valid(&check, "TotalSegmentator CT");
    let rois = check["rois"].as_array().unwrap();
    assert!(rois.len() >= 10, "{} labels", rois.len());
    let holes_or_islands = rois
        .iter()
        .flat_map(|r| r["slices"].as_array().unwrap())
        .filter(|s| s["contours"].as_u64().unwrap() > 1)
        .count();
    eprintln!(
        "{} ROIs, {} contours, {holes_or_islands} slices with several contours of one ROI",
        rois.len(),
        rois.iter()
            .map(|r| r["contours"].as_u64().unwrap())
            .sum::<u64>()
    );
    assert!(holes_or_islands > 0);
    assert_eq!(dice_summary(&check, "dice_even_odd"), (1.0, 1.0));
    // Its data sets have blank SOPInstanceUIDs: slicewise references the file meta's, which
    // rt-utils does not look at.
    assert_eq!(check["rt_utils_read"], false);
}

/// `seg`'s labels (nearest voxel) on `vol`'s grid, as a mask of `vol`'s series named
/// "label N".
fn resampled_labels(vol: &slicewise::Volume, seg: &slicewise::Volume) -> slicewise::Mask {
    let g = &seg.geometry;
    let shape = [
        vol.data.shape()[1],
        vol.data.shape()[2],
        vol.data.shape()[3],
    ];
    let sshape = [
        seg.data.shape()[1],
        seg.data.shape()[2],
        seg.data.shape()[3],
    ];
    let mut mask = slicewise::Mask::zeros(shape, vol.geometry);
    for ((k, j, i), v) in mask.labels.indexed_iter_mut() {
        let p = vol.geometry.index_to_lps([i as f64, j as f64, k as f64]);
        let idx: Vec<i64> = (0..3)
            .map(|c| {
                let a = g.axis(c);
                let d: f64 = (0..3).map(|r| a[r] * (p[r] - g.origin[r])).sum();
                (d / g.spacing[c]).round() as i64
            })
            .collect();
        let (si, sj, sk) = (idx[0], idx[1], idx[2]);
        if si >= 0 && sj >= 0 && sk >= 0 {
            let (si, sj, sk) = (si as usize, sj as usize, sk as usize);
            if sk < sshape[0] && sj < sshape[1] && si < sshape[2] {
                *v = seg.data[[0, sk, sj, si]] as u8;
            }
        }
    }
    mask.source = Some(vol.meta.clone());
    mask
}

/// A mask whose source is not a DICOM series is refused, naming the source.
#[test]
fn a_mask_of_a_nifti_image_is_refused_naming_it() {
    let nii = harness::data("msd-hippocampus/images/hippocampus_001.nii.gz");
    let vol = slicewise::Volume::open(&nii).unwrap();
    let mut mask = slicewise::Mask::zeros(
        [
            vol.data.shape()[1],
            vol.data.shape()[2],
            vol.data.shape()[3],
        ],
        vol.geometry,
    );
    mask.source = Some(vol.meta.clone());
    let tmp = harness::tmpdir();
    let out = tmp.path().join("rt.dcm");
    let e = rtstruct::write_mask(&out, &mask).unwrap_err().to_string();
    assert!(
        e.contains("RTSTRUCT") && e.contains("hippocampus_001.nii.gz"),
        "{e}"
    );
    assert!(!out.exists());
}

/// The one file of `dir` whose name ends with `suffix`.
fn only(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// `slicewise segment --format rtstruct` with the bundled hippocampus model on a real MR crop
/// series: one ROI per card label, named, coloured and coded as the card says (ORGAN), whose
/// contours give back the NIfTI mask of the same series voxel for voxel; dciodvfy accepts it.
#[test]
fn cli_rtstruct_of_the_hippocampus_model_matches_its_nifti_mask_and_card() {
    let tmp = harness::tmpdir();
    let series = harness::data(HIPPO_SERIES);
    let b = harness::bundled_hippocampus();
    let (rt_dir, nii_dir) = (tmp.path().join("rt"), tmp.path().join("nii"));
    crate::cli::segment_ok(&series, &b.model, &rt_dir, &[&"--format", &"rtstruct"]);
    crate::cli::segment_ok(&series, &b.model, &nii_dir, &[&"--format", &"nifti"]);
    let rt = only(&rt_dir, "_rtstruct.dcm");
    let nii = only(&nii_dir, "_mask.nii.gz");
    let check = harness::py("rtstruct_check.py", &[&rt, &series, &nii]);
    assert_valid(&check, "hippocampus");
    let card = crate::cli::read_json(&b.card);
    let labels = card["contract"]["labels"].as_array().unwrap();
    let codes = card["contract"]["label_codes"].as_array().unwrap();
    assert_eq!(check["rois"].as_array().unwrap().len(), labels.len());
    for l in labels {
        let r = roi(&check, l["value"].as_u64().unwrap());
        let what = format!("ROI {}", r["name"]);
        assert_eq!(r["name"], l["name"], "{what}");
        assert_eq!(r["color"], l["color"], "{what}");
        assert_eq!(r["interpreted_type"], "ORGAN", "{what}");
        let c = codes.iter().find(|c| c["value"] == l["value"]).unwrap();
        assert_eq!(r["category"], c["category"], "{what}");
        assert_eq!(r["type"], c["property_type"], "{what}");
        assert_eq!(r["modifier"], c["property_type_modifier"], "{what}");
        let voxels: u64 = r["slices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["truth"].as_u64().unwrap())
            .sum();
        assert!(voxels > 0, "{what}: the model found nothing");
        let d = min_dice(r, "dice_even_odd");
        assert_eq!(d, 1.0, "{what}: {r}");
    }
}

/// `--format rtstruct` on a NIfTI input fails the job, naming the input and the reason.
#[test]
fn cli_rtstruct_refuses_a_nifti_input_by_name() {
    let tmp = harness::tmpdir();
    let nifti = harness::data("msd-hippocampus/images/hippocampus_001.nii.gz");
    let model = harness::bundled_hippocampus().model;
    let r = crate::cli::run(&[
        &"segment",
        &nifti,
        &"--model",
        &model,
        &"--out",
        &tmp.path(),
        &"--device",
        &"cpu",
        &"--format",
        &"rtstruct",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("RTSTRUCT"), "{}", r.stderr);
    assert!(r.stderr.contains("hippocampus_001.nii.gz"), "{}", r.stderr);
    let written: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".dcm"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
}
