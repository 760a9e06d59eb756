//! `slicewise convert` of a DICOM series equals dcm2niix's conversion as nibabel reads it:
//! same voxels at the same world positions, affines equal to 1e-4 after reorientation.

use std::process::Command;

use crate::harness::{self, data, py, slicewise_bin, tmpdir};

fn check(series: &str) {
    let dir = tmpdir();
    let ours = dir.path().join("ours.nii.gz");
    let st = Command::new(slicewise_bin())
        .arg("convert")
        .arg(data(series))
        .arg(&ours)
        .status()
        .expect("slicewise");
    assert!(st.success(), "convert {series}");
    let out = Command::new(harness::tool("dcm2niix"))
        .args(["-z", "n", "-b", "n", "-f", "ref", "-o"])
        .arg(dir.path())
        .arg(data(series))
        .output()
        .expect("dcm2niix (Debian package dcm2niix; scripts/setup --test installs it)");
    assert!(out.status.success(), "dcm2niix failed on {series}");
    let r = py("dcm2niix_ref.py", &[&ours, &dir.path().join("ref.nii")]);
    assert_eq!(r["ours_shape"], r["ref_shape"], "{series}: {r}");
    let dv = r["max_abs_voxel_diff"].as_f64().expect("voxel diff");
    let da = r["max_abs_affine_diff"].as_f64().expect("affine diff");
    assert!(dv == 0.0, "{series}: voxels differ by {dv}: {r}");
    assert!(da <= 1e-4, "{series}: affines differ by {da}: {r}");
}

#[test]
fn dicom_to_nifti_equals_dcm2niix_mr_oblique_series() {
    check("mr-dicom-series/Study3/11-T1post-18670");
}

#[test]
fn dicom_to_nifti_equals_dcm2niix_j2k_ct_series() {
    check("totalseg-ref/tests/reference_files/example_ct_dicom");
}

#[test]
fn dicom_to_nifti_equals_dcm2niix_ct_3slice() {
    check("dcmqi-ct3slice-seg/segmentations/ct-3slice");
}
