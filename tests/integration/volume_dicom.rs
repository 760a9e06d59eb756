//! DICOM reading against pydicom (+ pylibjpeg): voxels, LPS affines, slice order and
//! references; series selection; alignment with TotalSegmentator's dcm2niix-style NIfTI; and a
//! malformed corpus that must give errors naming the file, never panics.

use std::path::Path;

use slicewise::volume::{dicom, ReadOptions};
use slicewise::Error;

use crate::harness;

const CT_J2K: &str = "totalseg-ref/tests/reference_files/example_ct_dicom";
const MR_T1: &str = "mr-dicom-series/Study3/11-T1post-18670";
const CT3: &str = "dcmqi-ct3slice-seg/segmentations/ct-3slice";

/// Reads `path` with slicewise and with pydicom and compares shape, voxels, slice references and
/// (when the reference has positions) the LPS affine to 1e-4.
fn compare(path: &Path, uid: Option<&str>) -> slicewise::volume::Volume {
    let opts = match uid {
        Some(u) => ReadOptions::default().series_uid(u),
        None => ReadOptions::default(),
    };
    let vol = dicom::read(path, &opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = harness::tmpdir();
    let raw = dir.path().join("ref.f32");
    let r = match uid {
        Some(u) => harness::py("dicom_ref.py", &[&raw, &path, &u]),
        None => harness::py("dicom_ref.py", &[&raw, &path]),
    };
    let what = path.display().to_string();
    let shape: Vec<usize> = harness::f64s(&r["shape"])
        .iter()
        .map(|&v| v as usize)
        .collect();
    assert_eq!(vol.data.shape(), shape.as_slice(), "{what}: shape");
    let reference = harness::read_f32(&raw);
    let ours: Vec<f32> = vol.data.iter().copied().collect();
    let scale = reference.iter().fold(1f32, |m, v| m.max(v.abs()));
    harness::assert_close(&ours, &reference, scale * 1e-6, &what);
    if !r["affine_lps"].is_null() {
        let a = harness::mat4(&r["affine_lps"]);
        harness::assert_affine_close(&vol.geometry.affine_lps(), &a, 1e-4, &what);
    }
    let refs = vol.meta.dicom.as_ref().expect("dicom refs");
    let uids: Vec<String> = r["sop_instance_uids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let ours_uids: Vec<String> = refs
        .slices
        .iter()
        .map(|s| s.sop_instance_uid.clone())
        .collect();
    assert_eq!(ours_uids, uids, "{what}: slice order");
    let frames: Vec<u32> = harness::f64s(&r["frames"])
        .iter()
        .map(|&v| v as u32)
        .collect();
    let ours_frames: Vec<u32> = refs.slices.iter().map(|s| s.frame).collect();
    assert_eq!(ours_frames, frames, "{what}: frame numbers");
    assert_eq!(refs.series_uid, r["series_uid"].as_str().unwrap(), "{what}");
    assert_eq!(refs.study_uid, r["study_uid"].as_str().unwrap(), "{what}");
    vol
}

#[test]
fn dicom_mr_t1post_matches_pydicom() {
    let v = compare(&harness::data(MR_T1), None);
    assert_eq!(v.dims_xyz(), [280, 320, 22]);
    assert_eq!(v.meta.modality.as_deref(), Some("MR"));
}

#[test]
fn dicom_mr_hcrop_series_match_pydicom() {
    for s in [
        "Study1/13_HCropVolume",
        "Study2/14_HCropVolume",
        "Study3/11_HCropVolume",
    ] {
        compare(&harness::data(&format!("mr-dicom-series/{s}")), None);
    }
}

#[test]
fn dicom_several_series_error_lists_them_and_uid_selects() {
    let root = harness::data("mr-dicom-series");
    let series = dicom::list_series(&root).unwrap();
    assert_eq!(series.len(), 4);
    let err = dicom::read(&root, &ReadOptions::default()).unwrap_err();
    let msg = err.to_string();
    for s in &series {
        assert!(msg.contains(&s.uid), "{msg}");
        assert!(msg.contains(&format!("({} slices)", s.slices)), "{msg}");
    }
    assert!(msg.contains("T1post") && msg.contains("HippoCrop"), "{msg}");
    let t1 = series
        .iter()
        .find(|s| s.description.as_deref() == Some("T1post"))
        .unwrap();
    assert_eq!(t1.dims, [280, 320, 22]);
    assert_eq!(t1.modality.as_deref(), Some("MR"));
    // Selection by UID over the whole tree equals pydicom's view of that series.
    let v = compare(&root, Some(&t1.uid));
    assert_eq!(v.meta.series_uid.as_deref(), Some(t1.uid.as_str()));
    let err = dicom::read(&root, &ReadOptions::default().series_uid("1.2.3.4")).unwrap_err();
    assert!(
        err.to_string().contains("no series with UID 1.2.3.4"),
        "{err}"
    );
}

#[test]
fn dicom_ct_j2k_matches_pydicom_and_keeps_references() {
    let v = compare(&harness::data(CT_J2K), None);
    assert_eq!(v.dims_xyz(), [512, 512, 20]);
    assert!((v.geometry.spacing[2] - 2.0).abs() < 1e-6);
    let min = v.data.iter().fold(f32::INFINITY, |m, x| m.min(*x));
    assert!(min < -1000.0, "intercept -1024 applied (min {min})");
    let refs = v.meta.dicom.as_ref().unwrap();
    assert_eq!(refs.slices.len(), 20);
    assert!(refs.frame_of_reference_uid.is_some());
    let keys: Vec<&str> = refs
        .copied_attributes
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    for k in ["PatientID", "StudyInstanceUID"] {
        assert!(keys.contains(&k), "{keys:?}");
    }
    assert!(v.meta.warnings.is_empty(), "{:?}", v.meta.warnings);
}

#[test]
fn dicom_ct_3slice_and_its_seg_match_pydicom() {
    compare(&harness::data(CT3), None);
    // A real enhanced multi-frame object: 1-bit BINARY SEG with per-frame functional groups.
    let seg = compare(
        &harness::data("dcmqi-ct3slice-seg/segmentations/liver.dcm"),
        None,
    );
    assert_eq!(seg.meta.original_dtype, slicewise::volume::DType::Bool);
    assert!(seg.data.iter().any(|&x| x == 1.0));
}

/// Our RAS grid of the J2K CT and the dcm2niix-style NIfTI written for it by TotalSegmentator
/// cover the same world points: the 8 corner voxel centres coincide as sets.
#[test]
fn dicom_ct_lines_up_with_totalseg_nifti() {
    let v = dicom::read(&harness::data(CT_J2K), &ReadOptions::default()).unwrap();
    let nii = harness::data("totalseg-ref/tests/reference_files/example_seg_dicom.nii.gz");
    let r = harness::py("dicom_nifti_grid.py", &[&nii]);
    let shape = harness::f64s(&r["shape"]);
    assert_eq!(shape, vec![512.0, 512.0, 20.0]);
    let a = harness::mat4(&r["affine"]);
    let ours = v.geometry.affine_ras();
    let corners = |m: &[[f64; 4]; 4], dims: [f64; 3]| -> Vec<[f64; 3]> {
        let mut out = Vec::new();
        for c in 0..8 {
            let ijk = [
                if c & 1 == 1 { dims[0] - 1.0 } else { 0.0 },
                if c & 2 == 2 { dims[1] - 1.0 } else { 0.0 },
                if c & 4 == 4 { dims[2] - 1.0 } else { 0.0 },
            ];
            out.push(std::array::from_fn(|r| {
                m[r][3] + (0..3).map(|k| m[r][k] * ijk[k]).sum::<f64>()
            }));
        }
        out
    };
    let dims = [512.0, 512.0, 20.0];
    let theirs = corners(&a, dims);
    for p in corners(&ours, dims) {
        let best = theirs
            .iter()
            .map(|q| (0..3).map(|i| (p[i] - q[i]).abs()).fold(0.0, f64::max))
            .fold(f64::INFINITY, f64::min);
        assert!(
            best < 1e-3,
            "corner {p:?} not in the NIfTI grid (nearest {best} mm): {theirs:?}"
        );
    }
}

#[test]
fn dicom_pydicom_test_files_match() {
    let dir = harness::tmpdir();
    let r = harness::py("dicom_fixtures.py", &[&dir.path(), &harness::data(CT3)]);
    for name in r["files"].as_array().unwrap() {
        let p = dir.path().join(name.as_str().unwrap());
        let v = compare(&p, None);
        let n = name.as_str().unwrap();
        if n.contains("rgb") || n.contains("planar") {
            assert_eq!(v.channels(), 3, "{n}");
        }
        if n == "gen_monochrome1.dcm" {
            assert!(v.meta.warnings.iter().any(|w| w.contains("MONOCHROME1")));
        }
        if n == "gen_no_meta.dcm" {
            assert!(v.meta.warnings.iter().any(|w| w.contains("meta group")));
        }
    }
}

/// 12-bit JPEG Extended (1.2.840.10008.1.2.4.51) was refused; now our decoder reads it, and
/// reads it exactly as dcmtk's dcmdjpeg (libjpeg-6b, the same accurate integer IDCT) decodes it.
/// A frame header that declares another size than Rows x Columns is refused naming the file.
#[test]
fn dicom_jpeg_extended_12bit_reads_as_dcmtk_decodes_it() {
    let src = harness::repo().join(".venv/lib");
    let found = walk_find(&src, "JPGExtended.dcm").expect("pydicom's JPGExtended.dcm");
    let dir = harness::tmpdir();
    let native = dir.path().join("native.dcm");
    let st = std::process::Command::new(harness::tool("dcmdjpeg"))
        .arg(&found)
        .arg(&native)
        .status()
        .unwrap();
    assert!(st.success(), "dcmdjpeg");
    let ours = dicom::read(&found, &ReadOptions::default()).unwrap();
    let reference = dicom::read(&native, &ReadOptions::default()).unwrap();
    assert_eq!(ours.dims_xyz(), [256, 1024, 1]);
    assert_eq!(ours.data, reference.data);
    // Real structure, not a flat image: the values span the 12-bit data's range.
    let max = ours.data.iter().fold(0f32, |m, &v| m.max(v));
    assert!(max > 200.0, "{max}");

    let mut bytes = std::fs::read(&found).unwrap();
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC1])
        .expect("an SOF1 marker");
    bytes[sof + 7..sof + 9].copy_from_slice(&[0x7F, 0xFF]); // width 32767
    let bad = dir.path().join("bad_width.dcm");
    std::fs::write(&bad, &bytes).unwrap();
    let msg = dicom::read(&bad, &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bad_width.dcm") && msg.contains("32767x1024"),
        "{msg}"
    );
}

fn walk_find(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = walk_find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

#[test]
fn dicom_malformed_corpus_gives_errors_naming_the_file() {
    let dir = harness::tmpdir();
    let real = harness::data(CT3).join("01.dcm");
    let r = harness::py("dicom_malformed.py", &[&dir.path(), &real]);
    for p in r["files"].as_array().unwrap() {
        let p = Path::new(p.as_str().unwrap());
        let res = std::panic::catch_unwind(|| dicom::read(p, &ReadOptions::default()));
        let res = res.unwrap_or_else(|_| panic!("{} panicked", p.display()));
        let err = res
            .err()
            .unwrap_or_else(|| panic!("{} read without error", p.display()));
        let msg = err.to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        if p.ends_with("absurd_dims.dcm") {
            assert!(matches!(err, Error::TooLarge { .. }), "{msg}");
        }
    }
    // A folder mixing junk with a good series: junk skipped with warnings.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    for f in ["01.dcm", "02.dcm", "03.dcm"] {
        std::fs::copy(harness::data(CT3).join(f), mixed.join(f)).unwrap();
    }
    std::fs::write(mixed.join("notes.txt"), b"not dicom").unwrap();
    std::fs::write(mixed.join("DICOMDIR"), b"ignored").unwrap();
    let v = dicom::read(&mixed, &ReadOptions::default()).unwrap();
    assert_eq!(v.dims_xyz()[2], 3);
    assert!(
        v.meta.warnings.iter().any(|w| w.contains("notes.txt")),
        "{:?}",
        v.meta.warnings
    );
    assert!(dicom::folder_has_dicom(&mixed).unwrap());
}

/// A missing slice is a gap warning (positions still give the geometry); the same slice twice
/// (same position) is refused: such a series holds more than one volume.
#[test]
fn dicom_gap_warns_and_duplicate_position_errors() {
    let dir = harness::tmpdir();
    let src = harness::data(MR_T1);
    let mut files: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let gap = dir.path().join("gap");
    std::fs::create_dir(&gap).unwrap();
    let full = dicom::read(&src, &ReadOptions::default()).unwrap();
    let refs = full.meta.dicom.unwrap();
    // Drop the file holding the 10th slice in z order.
    let mut dropped = false;
    for f in &files {
        let v = dicom::read(f, &ReadOptions::default()).unwrap();
        let uid = &v.meta.dicom.unwrap().slices[0].sop_instance_uid;
        if !dropped && *uid == refs.slices[10].sop_instance_uid {
            dropped = true;
            continue;
        }
        std::fs::copy(f, gap.join(f.file_name().unwrap())).unwrap();
    }
    assert!(dropped);
    let v = dicom::read(&gap, &ReadOptions::default()).unwrap();
    assert_eq!(v.dims_xyz()[2], 21);
    assert!(
        v.meta
            .warnings
            .iter()
            .any(|w| w.contains("non-uniform slice spacing")),
        "{:?}",
        v.meta.warnings
    );
    let dup = dir.path().join("dup");
    std::fs::create_dir(&dup).unwrap();
    std::fs::copy(&files[0], dup.join("a.dcm")).unwrap();
    std::fs::copy(&files[0], dup.join("b.dcm")).unwrap();
    let err = dicom::read(&dup, &ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("same position"), "{err}");
}

/// A copy of a real SEG file with one element length corrupted by two bytes (0x003C →
/// 0xFFFF003C, the repro).
fn length_bomb(dir: &Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(harness::data(&format!("{CT3}/01.dcm"))).unwrap();
    bytes[1268..1270].copy_from_slice(&[0xff, 0xff]);
    let p = dir.join("bomb.dcm");
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The parser allocates an element's declared length before reading it: without the length
/// pre-flight this file aborted the process (`memory allocation of 4294901820 bytes failed`)
/// under a 4 GB address-space limit. Now: a clear error naming the file and the element, exit 1.
#[test]
fn dicom_corrupt_length_is_refused_by_name_without_allocating_it() {
    let dir = harness::tmpdir();
    let bomb = length_bomb(dir.path());
    let e = dicom::read(&bomb, &ReadOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Format { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("bomb.dcm") && msg.contains("(0020,000D)"),
        "{msg}"
    );
    assert!(msg.contains("declares 4294901820 bytes"), "{msg}");

    let script = "ulimit -v 4000000; exec \"$0\" info \"$1\"";
    let out = std::process::Command::new("bash")
        .args(["-c", script])
        .arg(crate::cli::bin())
        .arg(&bomb)
        .env("SLICEWISE_ORT_LIB", crate::cli::ort_lib())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not a clean error exit: {stderr}"
    );
    assert!(
        stderr.contains("(0020,000D)") && !stderr.contains("memory allocation"),
        "{stderr}"
    );
}

/// One corrupt file in a batch fails its own job; the good series next to it is still segmented.
#[test]
fn dicom_corrupt_length_in_a_batch_fails_only_its_job() {
    let dir = harness::tmpdir();
    let bomb = length_bomb(dir.path());
    let out = dir.path().join("out");
    let good = harness::data(MR_T1);
    let model = crate::cli::test_model();
    let r = crate::cli::run(&[
        &"segment",
        &bomb,
        &good,
        &"--model",
        &model,
        &"--out",
        &out,
        &"--device",
        &"cpu",
    ]);
    assert_eq!(r.code, 1, "a failed job makes exit code 1: {}", r.stderr);
    assert!(r.stderr.contains("bomb.dcm"), "{}", r.stderr);
    let masks: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("_mask"))
        .collect();
    assert_eq!(
        masks.len(),
        1,
        "the good series still has its mask: {}",
        r.stderr
    );
}
