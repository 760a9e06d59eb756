//! DICOM SEG: our writer checked by pydicom, highdicom, dciodvfy and dcmdump on real series (and
//! on re-oriented copies of one); our reader checked against dcmqi's SEGs and NRRD label maps; the
//! bundled two-label model's SEG from `slicewise segment` checked segment by segment.

use std::path::{Path, PathBuf};

use ndarray::Array3;
use serde_json::Value;
use slicewise::mask::LabelInfo;
use slicewise::output::dicom_seg::{self, DicomSegOptions, SegKind};
use slicewise::volume::{DType, DicomRefs, Geometry, SliceRef, SourceFormat, VolumeMeta};
use slicewise::Mask;

use crate::harness;

const MR: &str = "mr-dicom-series/Study3/11-T1post-18670";
const CT_J2K: &str = "totalseg-ref/tests/reference_files/example_ct_dicom";

/// A mask on a real series, described by pydicom (geometry, references) and thresholded in
/// Python: independent of slicewise's DICOM reader.
struct SeriesMask {
    mask: Mask,
    info: Value,
    folder: PathBuf,
}

fn series_mask(series: &Path, out: &Path, mode: &str) -> SeriesMask {
    let info = harness::py("seg_series.py", &[&series, &out, &mode]);
    let shape: Vec<usize> = harness::f64s(&info["shape"])
        .iter()
        .map(|&v| v as usize)
        .collect();
    let labels = harness::read_u8(&out.join("mask.u8"));
    let labels = Array3::from_shape_vec((shape[0], shape[1], shape[2]), labels).unwrap();
    let mut direction = [[0.0; 3]; 3];
    for (r, row) in info["direction"].as_array().unwrap().iter().enumerate() {
        for (c, v) in harness::f64s(row).into_iter().enumerate() {
            direction[r][c] = v;
        }
    }
    let o = harness::f64s(&info["origin"]);
    let s = harness::f64s(&info["spacing"]);
    let geometry = Geometry {
        spacing: [s[0], s[1], s[2]],
        origin: [o[0], o[1], o[2]],
        direction,
    };
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let refs = DicomRefs {
        study_uid: str_of(&info["study_uid"]),
        series_uid: str_of(&info["series_uid"]),
        frame_of_reference_uid: info["frame_of_reference_uid"].as_str().map(str::to_string),
        slices: info["slices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| SliceRef {
                sop_class_uid: str_of(&s[0]),
                sop_instance_uid: str_of(&s[1]),
                frame: 0,
            })
            .collect(),
        copied_attributes: info["copied"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (str_of(&kv[0]), str_of(&kv[1])))
            .collect(),
    };
    let mut meta = VolumeMeta::new(series, SourceFormat::Dicom, DType::I16);
    meta.dicom = Some(refs);
    let mask = Mask {
        labels,
        geometry,
        label_info: vec![
            LabelInfo {
                value: 1,
                name: "bright".into(),
                color: [255, 200, 0],
            },
            LabelInfo {
                value: 2,
                name: "brightest".into(),
                color: [200, 0, 255],
            },
        ],
        source: Some(meta),
    };
    let folder = PathBuf::from(info["folder"].as_str().unwrap());
    SeriesMask { mask, info, folder }
}

/// Writes the SEG, runs the independent checks and asserts them; returns the check's JSON.
fn write_and_check(sm: &SeriesMask, out: &Path, opts: &DicomSegOptions, name: &str) -> Value {
    let seg = out.join(name);
    dicom_seg::write_mask_with(&seg, &sm.mask, opts).unwrap();
    let check = harness::py("seg_check.py", &[&seg, &sm.folder, &out]);
    let what = format!("{name} ({:?})", opts.kind);
    assert_eq!(
        check["dcmdump_status"], 0,
        "{what}: dcmdump: {}",
        check["dcmdump_stderr"]
    );
    let errors: Vec<&str> = check["dciodvfy_errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        // dicom3tools 2022 predates Supplement 243 (Label Map Segmentation): it knows neither the
        // SOP class nor the background segment numbered 0 that label maps describe.
        .filter(|e| {
            opts.kind != SegKind::Labelmap
                || !(e.contains("Information Object Not found")
                    || e.contains("SegmentNumber not monotonically increasing from one by one - have SegmentSequence item number 1 (from one) with SegmentNumber of 0"))
        })
        .collect();
    assert!(errors.is_empty(), "{what}: dciodvfy errors: {errors:#?}");
    for w in check["dciodvfy_warnings"].as_array().unwrap() {
        eprintln!("{what}: dciodvfy {}", w.as_str().unwrap_or_default());
    }
    assert!(check["elements"].as_u64().unwrap() > 100);
    // Frames lie on the referenced source slices, with the source's orientation.
    let pos = check["max_position_diff"].as_f64().unwrap();
    assert!(
        pos < 1e-3,
        "{what}: frame positions differ from the source slices by {pos} mm"
    );
    let iop = check["max_orientation_diff"].as_f64().unwrap();
    assert!(iop < 1e-6, "{what}: orientation differs by {iop}");
    if sm.info["study_uid"] != "" {
        assert_eq!(check["study_uid"], sm.info["study_uid"]);
    }
    if sm.info["series_uid"] != "" {
        assert_eq!(check["referenced_series"], sm.info["series_uid"]);
    }
    assert_eq!(
        check["frame_of_reference_uid"],
        sm.info["frame_of_reference_uid"]
    );
    // highdicom's label volume on the source slices equals the mask voxel for voxel.
    let hd = harness::read_u8(&out.join("hd_labels.u8"));
    let ours = sm.mask.labels.as_standard_layout();
    let ours = ours.as_slice().unwrap();
    assert_eq!(
        hd.len(),
        ours.len(),
        "{what}: highdicom shape {}",
        check["hd_shape"]
    );
    let diff = hd.iter().zip(ours).filter(|(a, b)| a != b).count();
    assert_eq!(
        diff, 0,
        "{what}: {diff} voxels differ from highdicom's reconstruction"
    );
    // highdicom's volume from frame positions, mapped onto the source slices via its affine.
    let grid = check["hd_volume_grid_error"].as_f64().unwrap();
    let inplane = check["hd_volume_inplane_error"].as_f64().unwrap();
    assert!(
        grid < 1e-3 && inplane < 1e-4,
        "{what}: highdicom volume off grid: {grid} {inplane}"
    );
    let hv = harness::read_u8(&out.join("hd_volume_labels.u8"));
    if opts.omit_empty_frames {
        // The volume spans the first to the last frame present; slices outside it read 0.
        let diff = hv.iter().zip(ours).filter(|(a, b)| a != b).count();
        assert_eq!(
            diff, 0,
            "{what}: {diff} voxels differ from highdicom's volume"
        );
    } else {
        assert_eq!(hv, ours, "{what}: highdicom's volume differs");
    }
    assert!(ours.contains(&2), "test mask should hold label 2");
    eprintln!(
        "{what}: hd volume {} {}",
        check["hd_volume_shape"], check["hd_volume_affine"]
    );
    check
}

#[test]
fn mr_series_binary_and_labelmap() {
    let tmp = harness::tmpdir();
    let sm = series_mask(&harness::data(MR), tmp.path(), "asis");
    let check = write_and_check(&sm, tmp.path(), &DicomSegOptions::default(), "bin.dcm");
    assert_eq!(check["sop_class"], dicom_seg::SEGMENTATION_STORAGE);
    assert_eq!(check["segmentation_type"], "BINARY");
    assert_eq!(check["patient_name"], "Albus^Dumbledore");
    // Frame omission: one empty slice in the mask, so fewer than 2 × 22 frames.
    assert!(check["frames"].as_u64().unwrap() < 44);
    let opts = DicomSegOptions {
        kind: SegKind::Labelmap,
        omit_empty_frames: false,
        ..Default::default()
    };
    let check = write_and_check(&sm, tmp.path(), &opts, "lm.dcm");
    assert_eq!(
        check["sop_class"],
        dicom_seg::LABEL_MAP_SEGMENTATION_STORAGE
    );
    assert_eq!(check["frames"], 22);
}

#[test]
fn j2k_ct_series_binary() {
    let tmp = harness::tmpdir();
    let sm = series_mask(&harness::data(CT_J2K), tmp.path(), "asis");
    // This series is anonymised down to blank SOP instance/series/study UIDs: the SEG cannot
    // reference its instances and highdicom rebuilds the volume from frame positions alone, so
    // keep every frame to span the whole series.
    let opts = DicomSegOptions {
        omit_empty_frames: false,
        ..DicomSegOptions::default().with_model("test-model", "1.2")
    };
    let check = write_and_check(&sm, tmp.path(), &opts, "ct.dcm");
    assert_eq!(check["referenced_frames"], 0);
}

#[test]
fn negated_and_sagittal_series_frames_lie_on_source_slices() {
    for mode in ["negated", "sagittal"] {
        let tmp = harness::tmpdir();
        let sm = series_mask(&harness::data(MR), tmp.path(), mode);
        let code = sm.mask.geometry.orientation_code();
        eprintln!("{mode}: orientation {code}");
        write_and_check(&sm, tmp.path(), &DicomSegOptions::default(), "bin.dcm");
        let opts = DicomSegOptions::default().kind(SegKind::Labelmap);
        write_and_check(&sm, tmp.path(), &opts, "lm.dcm");
    }
}

/// The whole path: slicewise's DICOM reader → a threshold mask → SEG and NIfTI of the same mask;
/// highdicom's SEG and nibabel's NIfTI agree voxel for voxel in world space, and the SEG's frames
/// lie on the source slices (checked against pydicom).
fn end_to_end(series: &Path, kind: SegKind) {
    let tmp = harness::tmpdir();
    let vol = slicewise::Volume::open(series).unwrap();
    let data = vol.data.index_axis(ndarray::Axis(0), 0);
    let n = data.len() as f64;
    let mean = data.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let labels = data.mapv(|v| {
        let v = v as f64;
        if v > mean + 3.0 * sd {
            2u8
        } else if v > mean + 1.5 * sd {
            1
        } else {
            0
        }
    });
    assert!(labels.iter().any(|&v| v == 2));
    let mask = Mask {
        labels,
        geometry: vol.geometry,
        label_info: vec![LabelInfo {
            value: 1,
            name: "bright".into(),
            color: [255, 0, 0],
        }],
        source: Some(vol.meta.clone()),
    };
    let seg = tmp.path().join("mask.dcm");
    let nii = tmp.path().join("mask.nii.gz");
    let opts = DicomSegOptions::default().kind(kind);
    dicom_seg::write_mask_with(&seg, &mask, &opts).unwrap();
    slicewise::output::write_mask(&nii, &mask).unwrap();
    let cmp = harness::py("seg_vs_nifti.py", &[&seg, &nii]);
    assert_eq!(cmp["differ"], 0, "{kind:?} SEG vs NIfTI: {cmp}");
    assert!(cmp["max_index_error"].as_f64().unwrap() < 1e-3, "{cmp}");
    assert_eq!(cmp["nonzero_nifti"], cmp["seg_volume_nonzero"], "{cmp}");
    assert!(cmp["nonzero_nifti"].as_u64().unwrap() > 0);
    // Our reader, on the source series' grid, gives the mask back.
    let back = slicewise::mask::dicom_seg::read_seg(&seg, Some(&vol)).unwrap();
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    assert_eq!(
        back.label_map().unwrap(),
        mask.labels,
        "{kind:?}: read back"
    );
    // Frame positions against the source files, through pydicom.
    let check = harness::py("seg_check.py", &[&seg, &series, &tmp.path()]);
    assert!(
        check["max_position_diff"].as_f64().unwrap() < 1e-3,
        "{check}"
    );
    assert!(
        check["max_orientation_diff"].as_f64().unwrap() < 1e-6,
        "{check}"
    );
}

#[test]
fn end_to_end_mr_series_seg_equals_nifti() {
    end_to_end(&harness::data(MR), SegKind::Binary);
    end_to_end(&harness::data(MR), SegKind::Labelmap);
}

#[test]
fn end_to_end_j2k_ct_series_seg_equals_nifti() {
    end_to_end(&harness::data(CT_J2K), SegKind::Binary);
}

#[test]
fn end_to_end_sagittal_series_seg_equals_nifti() {
    let tmp = harness::tmpdir();
    let sm = series_mask(&harness::data(MR), tmp.path(), "sagittal");
    end_to_end(&sm.folder, SegKind::Binary);
}

const DCMQI: &str = "dcmqi-ct3slice-seg/segmentations";

/// Our reader's per-segment masks equal dcmqi's NRRD label maps (segment number = NRRD value),
/// compared on our grid through the NRRD headers' geometry.
fn assert_matches_nrrd(seg: &slicewise::mask::dicom_seg::Segmentation, nrrds: &[&str], what: &str) {
    let tmp = harness::tmpdir();
    let [z, y, x] = seg.shape();
    let g = &seg.geometry;
    let grid = serde_json::json!({
        "shape": [z, y, x], "origin": g.origin, "spacing": g.spacing, "direction": g.direction,
    })
    .to_string();
    let paths: Vec<PathBuf> = nrrds
        .iter()
        .map(|n| harness::data(&format!("{DCMQI}/{n}")))
        .collect();
    let dir = tmp.path().to_path_buf();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&dir, &grid];
    for p in &paths {
        args.push(p);
    }
    let r = harness::py("seg_nrrd_ref.py", &args);
    assert!(r["max_index_error"].as_f64().unwrap() < 1e-3, "{what}: {r}");
    assert_eq!(r["outside"], 0, "{what}: grid leaves the NRRD: {r}");
    let numbers: Vec<u64> = seg.segments.iter().map(|s| s.number as u64).collect();
    let labels: Vec<u64> = r["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(numbers, labels, "{what}: segments vs NRRD labels");
    for (s, m) in seg.segments.iter().zip(&seg.masks) {
        let want = harness::read_u8(&tmp.path().join(format!("label_{}.u8", s.number)));
        let ours = m.as_standard_layout();
        let ours = ours.as_slice().unwrap();
        let diff = want.iter().zip(ours).filter(|(a, b)| a != b).count();
        let n = want.iter().filter(|&&v| v != 0).count();
        assert!(n > 0, "{what}: segment {} empty in the NRRD", s.number);
        assert_eq!(
            diff, 0,
            "{what}: segment {} differs in {diff} of {n} voxels",
            s.number
        );
    }
}

#[test]
fn reader_reproduces_dcmqi_liver_nrrd() {
    let seg_path = harness::data(&format!("{DCMQI}/liver.dcm"));
    let own = slicewise::mask::dicom_seg::read_seg(&seg_path, None).unwrap();
    assert_eq!(own.kind, SegKind::Binary);
    assert_eq!(own.shape(), [3, 512, 512]);
    assert_matches_nrrd(&own, &["liver_seg.nrrd"], "liver (own grid)");
    let vol = slicewise::Volume::open(harness::data(&format!("{DCMQI}/ct-3slice"))).unwrap();
    let on_series = slicewise::mask::dicom_seg::read_seg(&seg_path, Some(&vol)).unwrap();
    assert!(on_series.warnings.is_empty(), "{:?}", on_series.warnings);
    assert_eq!(on_series.geometry, vol.geometry);
    assert_matches_nrrd(&on_series, &["liver_seg.nrrd"], "liver (series grid)");
    let lm = on_series.label_map().unwrap();
    assert_eq!(lm.iter().filter(|&&v| v == 1).count(), 107098);
}

#[test]
fn reader_keeps_dcmqi_partial_overlaps_separate() {
    let seg_path = harness::data(&format!("{DCMQI}/partial_overlaps.dcm"));
    let nrrds = [
        "partial_overlaps-1.nrrd",
        "partial_overlaps-2.nrrd",
        "partial_overlaps-3.nrrd",
    ];
    let own = slicewise::mask::dicom_seg::read_seg(&seg_path, None).unwrap();
    assert_eq!(own.segments.len(), 5);
    assert_matches_nrrd(&own, &nrrds, "partial overlaps (own grid)");
    assert!(own.overlapping());
    assert!(own.label_map().is_err());
    let vol = slicewise::Volume::open(harness::data(&format!("{DCMQI}/ct-3slice"))).unwrap();
    let on_series = slicewise::mask::dicom_seg::read_seg(&seg_path, Some(&vol)).unwrap();
    assert_matches_nrrd(&on_series, &nrrds, "partial overlaps (series grid)");
}

// ---- the bundled 2-label (softmax) model through `slicewise segment --format dicom-seg` --------

/// Runs `slicewise segment INPUT --format FORMAT` with the bundled hippocampus model into `out`;
/// returns the one mask written.
fn segment_hippocampus(input: &Path, format: &str, out: &Path) -> PathBuf {
    let model = harness::bundled_hippocampus().model;
    crate::cli::segment_ok(input, &model, out, &[&"--format", &format]);
    let masks: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("_mask."))
        .collect();
    assert_eq!(masks.len(), 1, "{masks:?}");
    masks[0].clone()
}

/// Asserts highdicom's and pydicom's reading of the SEG (`check`, from seg_multilabel.py) against
/// the card: segment `k` is the card's label of value `k`, named and coloured from it, and its
/// frames hold exactly the NIfTI mask's voxels of value `k`.
fn assert_segments_match_card(check: &Value, labels: &[Value], what: &str) {
    assert_eq!(
        check["sop_class"],
        dicom_seg::SEGMENTATION_STORAGE,
        "{what}"
    );
    assert_eq!(check["segmentation_type"], "BINARY", "{what}");
    let segments = check["segments"].as_array().unwrap();
    assert_eq!(segments.len(), labels.len(), "{what}: {check}");
    for (s, l) in segments.iter().zip(labels) {
        let value = l["value"].to_string();
        let name = &l["name"];
        let seg = format!("{what}: segment {}", s["number"]);
        assert_eq!(s["number"], l["value"], "{seg}");
        assert_eq!((&s["label"], &s["hd_label"]), (name, name), "{seg}");
        let (got, want) = (
            harness::f64s(&s["cielab"]),
            harness::f64s(&check["card_cielab"][&value]),
        );
        assert!(
            got.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1.0),
            "{seg}: CIELab {got:?}, highdicom says {want:?} for {}",
            l["color"]
        );
        assert!(s["frames"].as_u64().unwrap() > 0, "{seg}: no frames");
        assert!(s["max_index_error"].as_f64().unwrap() < 1e-3, "{seg}: {s}");
        assert_eq!(s["differ"][&value], 0, "{seg} differs from mask == {value}");
        let n = &check["nifti_counts"][&value];
        assert!(n.as_u64().unwrap() > 0, "{seg}: label {value} absent");
        assert_eq!((&s["sampled_voxels"], &s["seg_voxels"]), (n, n), "{seg}");
    }
}

/// Asserts that every segment of the SEG (`check`, from seg_multilabel.py: highdicom's segment
/// descriptions, the modifier from pydicom) carries the codes the card gives its label, and that
/// the card codes every label: each bundled model states what its labels mean.
fn assert_codes_match_card(check: &Value, card: &Value, what: &str) {
    let codes = card["contract"]["label_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: the card codes no label"));
    let segments = check["segments"].as_array().unwrap();
    assert_eq!(codes.len(), segments.len(), "{what}: {codes:?}");
    for s in segments {
        let mut want = codes
            .iter()
            .find(|c| c["value"] == s["number"])
            .unwrap_or_else(|| panic!("{what}: segment {} has no card codes", s["number"]))
            .clone();
        want.as_object_mut().unwrap().remove("value");
        assert_eq!(s["codes"], want, "{what}: segment {}", s["number"]);
    }
}

/// Asserts that dciodvfy reports no error and dcmdump reads `seg`, a BINARY SEG of `series`.
fn assert_dciodvfy_accepts(seg: &Path, series: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let check = harness::py("seg_check.py", &[&seg, &series, &out]);
    assert_eq!(check["dcmdump_status"], 0, "{}", check["dcmdump_stderr"]);
    let errors = check["dciodvfy_errors"].as_array().unwrap();
    assert!(errors.is_empty(), "dciodvfy errors: {errors:#?}");
    for w in check["dciodvfy_warnings"].as_array().unwrap() {
        eprintln!(
            "{}: dciodvfy {}",
            seg.display(),
            w.as_str().unwrap_or_default()
        );
    }
}

/// The bundled tumour model's SEG: an LGG test patient's FLAIR slices made a DICOM series
/// (`slicewise convert` to NIfTI, then pydicom), segmented by `models/lgg-flair-small.onnx`: its
/// one segment carries the card's codes (Morphologically Abnormal Structure / Neoplasm, region
/// Brain) as highdicom reads them, holds the NIfTI mask's voxels, and dciodvfy reports no error.
#[test]
fn tumour_model_seg_carries_the_card_codes() {
    let tmp = harness::tmpdir();
    let patient = harness::data("lgg-flair/TCGA_CS_4942_19970222");
    let nii = tmp.path().join("flair.nii.gz");
    let r = crate::cli::run(&[&"convert", &patient, &nii]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let series = tmp.path().join("series");
    harness::py("seg_multilabel.py", &[&"dicom-series", &nii, &series]);
    let model = harness::repo().join("models/lgg-flair-small.onnx");
    let card_path = harness::repo().join("models/lgg-flair-small.card.json");
    let seg = tmp.path().join("seg");
    crate::cli::segment_ok(&series, &model, &seg, &[&"--format", &"dicom-seg"]);
    let mask_nii = tmp.path().join("nii");
    crate::cli::segment_ok(&series, &model, &mask_nii, &[&"--format", &"nifti"]);
    let only = |dir: &Path| {
        let masks: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("_mask."))
            .collect();
        assert_eq!(masks.len(), 1, "{masks:?}");
        masks[0].clone()
    };
    let (seg, mask_nii) = (only(&seg), only(&mask_nii));
    let card = crate::cli::read_json(&card_path);
    let check = harness::py(
        "seg_multilabel.py",
        &[&"check", &seg, &mask_nii, &card_path],
    );
    assert_segments_match_card(
        &check,
        card["contract"]["labels"].as_array().unwrap(),
        "LGG",
    );
    assert_codes_match_card(&check, &card, "LGG");
    assert_dciodvfy_accepts(&seg, &series, &tmp.path().join("check"));
}

/// The whole multi-label path: the bundled sample as a DICOM series (pydicom, lossless), segmented
/// by the bundled 2-label model into a BINARY SEG. highdicom and pydicom read segments 1 and 2
/// named and coloured (CIELab) as the card says, each segment's frames exactly the voxels of its
/// label in the NIfTI masks of the same series and of the sample itself; slicewise's reader gives
/// the names and colours back.
#[test]
fn two_label_model_seg_has_card_names_colours_and_the_nifti_masks_label_voxels() {
    let tmp = harness::tmpdir();
    let (sample, series) = (
        harness::bundled_hippocampus().image,
        tmp.path().join("series"),
    );
    let conv = harness::py("seg_multilabel.py", &[&"dicom-series", &sample, &series]);
    assert!(conv["max_value_error"].as_f64().unwrap() < 1e-3, "{conv}");
    let seg = segment_hippocampus(&series, "dicom-seg", &tmp.path().join("seg"));
    let of_series = segment_hippocampus(&series, "nifti", &tmp.path().join("series-nii"));
    let of_sample = segment_hippocampus(&sample, "nifti", &tmp.path().join("sample-nii"));
    let card_path = harness::bundled_hippocampus().card;
    let card = crate::cli::read_json(&card_path);
    let labels = card["contract"]["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 2, "the bundled model should have two labels");
    for (nii, what) in [(&of_series, "series NIfTI"), (&of_sample, "sample NIfTI")] {
        let check = harness::py("seg_multilabel.py", &[&"check", &seg, nii, &card_path]);
        assert_segments_match_card(&check, labels, what);
        assert_codes_match_card(&check, &card, what);
    }
    assert_dciodvfy_accepts(&seg, &series, &tmp.path().join("check"));

    let vol = slicewise::Volume::open(&series).unwrap();
    let back = slicewise::mask::dicom_seg::read_seg(&seg, Some(&vol))
        .unwrap()
        .to_mask()
        .unwrap();
    assert_eq!(back.label_info.len(), 2);
    for (info, l) in back.label_info.iter().zip(labels) {
        assert_eq!(Some(info.value as u64), l["value"].as_u64());
        assert_eq!(info.name, l["name"].as_str().unwrap());
        let want = harness::f64s(&l["color"]);
        for (c, w) in info.color.iter().zip(want) {
            assert!((*c as f64 - w).abs() <= 1.0, "{info:?} vs {}", l["color"]);
        }
    }
}
