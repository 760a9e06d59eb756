//! NIfTI reading and writing against nibabel, voxel by voxel and affine by affine: the real data,
//! nibabel's own test files, fixtures generated with nibabel (every datatype, NIfTI-2, pairs,
//! scaling corner cases, transforms, byte orders), round trips, and a malformed corpus.

// Matrix comparisons read best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use slicewise::error::Error;
use slicewise::mask::Mask;
use slicewise::output;
use slicewise::volume::{nifti, DType, ReadOptions, Volume};

use crate::harness;

/// nibabel's view (tests/python/nifti_ref.py) of `files`; the temp dir holds the voxel dumps.
fn reference(files: &[PathBuf]) -> (tempfile::TempDir, Vec<Value>) {
    let dir = harness::tmpdir();
    let out = dir.path().to_path_buf();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&out];
    for f in files {
        args.push(f);
    }
    let v = harness::py("nifti_ref.py", &args);
    let files = v["files"].as_array().expect("files").clone();
    (dir, files)
}

fn dtype_of(nib: &str) -> Option<DType> {
    Some(match nib.trim_start_matches(['<', '>', '|', '=']) {
        "u1" | "rgb" => DType::U8,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "u2" => DType::U16,
        "i4" => DType::I32,
        "u4" => DType::U32,
        "i8" => DType::I64,
        "u8" => DType::U64,
        "f4" => DType::F32,
        "f8" => DType::F64,
        _ => return None,
    })
}

/// Values equal to within float32 rounding of the reference (relative 1e-6), NaN = NaN.
fn assert_values(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: value counts differ");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        assert!(ok, "{what}: value {i} is {a}, nibabel says {b}");
    }
}

/// Affines equal to 1e-5 relative to each element's magnitude (NIfTI-1 stores them as f32).
fn assert_affine(ours: &[[f64; 4]; 4], theirs: &[[f64; 4]; 4], what: &str) {
    for r in 0..4 {
        for c in 0..4 {
            let (a, b) = (ours[r][c], theirs[r][c]);
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{what}: affine[{r}][{c}] is {a}, nibabel says {b}\nours {ours:?}\nnibabel {theirs:?}"
            );
        }
    }
}

/// Reads `entry["path"]` with slicewise and checks shape, dtype, voxels and (unless
/// `check_affine` is false) the affine against nibabel's.
fn check(entry: &Value, check_affine: bool) -> Volume {
    let path = PathBuf::from(entry["path"].as_str().expect("path"));
    let what = path.display().to_string();
    assert!(
        entry.get("error").is_none(),
        "nibabel failed on {what}: {}",
        entry["error"]
    );
    let vol = nifti::read(&path, &ReadOptions::default())
        .unwrap_or_else(|e| panic!("slicewise failed on {what}: {e}"));
    let shape: Vec<usize> = harness::f64s(&entry["czyx"])
        .iter()
        .map(|&v| v as usize)
        .collect();
    assert_eq!(vol.data.shape(), &shape[..], "{what}: shape");
    if let Some(dt) = dtype_of(entry["dtype"].as_str().unwrap_or("")) {
        assert_eq!(vol.meta.original_dtype, dt, "{what}: dtype");
    }
    let theirs = harness::read_f32(Path::new(entry["data"].as_str().expect("data")));
    let ours: Vec<f32> = vol.data.iter().copied().collect();
    assert_values(&ours, &theirs, &what);
    if check_affine {
        assert_affine(
            &vol.geometry.affine_ras(),
            &harness::mat4(&entry["affine"]),
            &what,
        );
    }
    vol
}

fn shared(rel: &[&str]) -> Vec<PathBuf> {
    rel.iter().map(|r| harness::data(r)).collect()
}

#[test]
fn nifti_real_data_matches_nibabel() {
    let files = shared(&[
        "msd-hippocampus/images/hippocampus_001.nii.gz",
        "msd-hippocampus/images/hippocampus_003.nii.gz",
        "msd-hippocampus/labels/hippocampus_001.nii.gz",
        "msd-hippocampus/labels/hippocampus_003.nii.gz",
        "brats2015/train/brats_2013_pat0005_1/Flair_subtrMeanDivStd.nii.gz",
        "brats2015/train/brats_2013_pat0005_1/brainmask.nii.gz",
        "brats2015/train/brats_2013_pat0005_1/OTMultiClass.nii.gz",
        "totalseg-ref/tests/reference_files/example_ct_sm.nii.gz",
        "totalseg-ref/tests/reference_files/example_mr_sm.nii.gz",
        "totalseg-ref/tests/reference_files/example_seg.nii.gz",
        "totalseg-ref/tests/reference_files/example_seg_mr.nii.gz",
        "totalseg-ref/tests/reference_files/example_seg_dicom.nii.gz",
        "sct-spinalcord/t1/t1w.nii.gz",
        "sct-spinalcord/t2/t2.nii.gz",
        "sct-spinalcord/t2/t2_seg-manual_labeled.nii.gz",
        "sct-spinalcord/t2s/t2s.nii.gz",
        "sct-spinalcord/mt/mt1.nii.gz",
    ]);
    let (_dir, refs) = reference(&files);
    assert_eq!(refs.len(), files.len());
    let vols: Vec<Volume> = refs.iter().map(|e| check(e, true)).collect();
    // Spot checks of what the data README promises, so a reference mix-up cannot pass.
    assert_eq!(vols[4].dims_xyz(), [240, 240, 155]);
    // brainmask: int32 with scl_slope 2^-32 and scl_inter 0.5 (nibabel's get_fdata gives float64).
    assert_eq!(vols[5].meta.original_dtype, DType::I32);
    assert_eq!(vols[7].meta.original_dtype, DType::I16);
    assert_eq!(vols[8].geometry.orientation_code(), "LPS");
    assert_eq!(vols[13].geometry.orientation_code(), "PSR");
    assert_eq!(vols[15].geometry.orientation_code(), "LAS");
}

#[test]
fn nifti_generated_and_nibabel_test_files_match_nibabel() {
    let dir = harness::tmpdir();
    let made = harness::py("nifti_make.py", &[&dir.path()]);
    let paths = |k: &str| -> Vec<PathBuf> {
        made[k]
            .as_array()
            .expect(k)
            .iter()
            .map(|p| PathBuf::from(p.as_str().expect("path")))
            .collect()
    };
    let generated = paths("generated");
    let nib_files = paths("nibabel");
    assert!(
        nib_files.len() >= 5,
        "nibabel test files missing: {nib_files:?}"
    );
    let all: Vec<PathBuf> = generated.iter().chain(&nib_files).cloned().collect();
    let (_refs_dir, refs) = reference(&all);
    let mut by_name = std::collections::HashMap::new();
    for e in &refs {
        let p = PathBuf::from(e["path"].as_str().expect("path"));
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        // Sheared affines included: they are kept exactly, not orthonormalised.
        let vol = check(e, true);
        by_name.insert(name, (vol, e.clone()));
    }
    let get = |n: &str| {
        &by_name
            .get(n)
            .unwrap_or_else(|| panic!("{n} not generated"))
            .0
    };
    assert!(get("no_transform.nii")
        .meta
        .warnings
        .iter()
        .any(|w| w.contains("neither sform nor qform")));
    assert!(get("shear.nii")
        .meta
        .warnings
        .iter()
        .any(|w| w.contains("shear")));
    sheared_mask_carries_the_input_affine(dir.path(), get("shear.nii"), &by_name["shear.nii"].1);
    let rgb = get("rgb24.nii");
    assert_eq!(rgb.meta.channel_names, ["R", "G", "B"]);
    assert_eq!(get("5d_components.nii").channels(), 4);
    assert_eq!(get("4d.nii.gz").channels(), 3);
    let d = get("dim_info_descrip.nii");
    assert_eq!(d.meta.acquisition_axis, 1); // nibabel's slice=1 is the j (y) axis
    assert_eq!(
        d.meta.description.as_deref(),
        Some("made by nifti_make.py [intent: label]")
    );
    assert_eq!(get("dtype_float32.nii").meta.acquisition_axis, 2);
    // Scaling was really exercised (nibabel reports the slope it applied).
    assert_eq!(
        harness::f64s(&by_name["big_endian_nifti2.nii"].1["slope_inter"]),
        [0.25, 100.0]
    );
    assert_eq!(
        harness::f64s(&by_name["slope_nan.nii"].1["slope_inter"]),
        [1.0, 0.0]
    );

    // nibabel's header-only test files: no image file next to them, or not NIfTI at all.
    for p in paths("nibabel_errors") {
        let e = nifti::read(&p, &ReadOptions::default()).expect_err("header without data");
        assert!(e.to_string().contains(&*p.to_string_lossy()), "{e}");
    }
}

/// A mask written for a sheared input carries the input's affine exactly (nibabel reads the same
/// sform back), so it lines up with its input in every viewer.
fn sheared_mask_carries_the_input_affine(dir: &Path, vol: &Volume, nib: &Value) {
    let s = vol.data.shape();
    let mut mask = Mask::zeros([s[1], s[2], s[3]], vol.geometry);
    mask.labels[[1, 2, 3]] = 1;
    let out = dir.join("shear_mask.nii.gz");
    output::nifti::write_mask(&out, &mask).expect("write sheared mask");
    let (_d, refs) = reference(std::slice::from_ref(&out));
    let input = harness::mat4(&nib["affine"]);
    // The shear is really there (x's column has a y component in nibabel's own affine).
    assert!(input[0][1].abs() > 0.1, "{input:?}");
    for key in ["affine", "sform"] {
        assert_affine(
            &harness::mat4(&refs[0][key]),
            &input,
            &format!("shear mask {key}"),
        );
    }
}

#[test]
fn nifti_round_trip_through_nibabel() {
    let inputs = shared(&[
        "sct-spinalcord/t2/t2.nii.gz",
        "sct-spinalcord/t2s/t2s.nii.gz",
        "totalseg-ref/tests/reference_files/example_mr_sm.nii.gz",
        "msd-hippocampus/images/hippocampus_003.nii.gz",
    ]);
    let dir = harness::tmpdir();
    let mut written = Vec::new();
    let mut ours = Vec::new();
    for (i, p) in inputs.iter().enumerate() {
        let vol = nifti::read(p, &ReadOptions::default()).expect("read");
        let out = dir.path().join(format!("vol{i}.nii.gz"));
        output::nifti::write_volume(&out, &vol).expect("write volume");
        written.push(out);
        // The mask: label = 1 + (voxel above the volume's mean), in the same geometry.
        let mean = vol.data.mean().unwrap_or(0.0);
        let labels = vol
            .data
            .index_axis(ndarray::Axis(0), 0)
            .mapv(|v| 1 + u8::from(v > mean));
        let mut mask = Mask::zeros(
            [labels.shape()[0], labels.shape()[1], labels.shape()[2]],
            vol.geometry,
        );
        mask.labels = labels;
        let out = dir.path().join(format!("mask{i}.nii"));
        output::nifti::write_mask(&out, &mask).expect("write mask");
        written.push(out);
        ours.push(vol.clone());
        ours.push(Volume {
            data: mask.labels.mapv(f32::from).insert_axis(ndarray::Axis(0)),
            geometry: vol.geometry,
            meta: vol.meta.clone(),
        });
    }
    // A 4-D (channels) volume round-trips too.
    let four = nifti::read(
        &harness::data("sct-spinalcord/mt/mt1.nii.gz"),
        &ReadOptions::default(),
    )
    .expect("read");
    let mut stacked = four.clone();
    stacked.data = ndarray::concatenate(
        ndarray::Axis(0),
        &[four.data.view(), (&four.data * 2.0).view()],
    )
    .expect("stack");
    let out = dir.path().join("four.nii.gz");
    output::nifti::write_volume(&out, &stacked).expect("write 4-D");
    written.push(out);
    ours.push(stacked);

    let (_d, refs) = reference(&written);
    for (e, vol) in refs.iter().zip(&ours) {
        let what = e["path"].as_str().unwrap_or("?").to_string();
        assert!(
            e.get("error").is_none(),
            "nibabel cannot read {what}: {}",
            e["error"]
        );
        let shape: Vec<usize> = harness::f64s(&e["czyx"])
            .iter()
            .map(|&v| v as usize)
            .collect();
        assert_eq!(vol.data.shape(), &shape[..], "{what}");
        let theirs = harness::read_f32(Path::new(e["data"].as_str().expect("data")));
        assert_values(
            &vol.data.iter().copied().collect::<Vec<_>>(),
            &theirs,
            &what,
        );
        let want = vol.geometry.affine_ras();
        for key in ["affine", "sform"] {
            assert_affine(&want, &harness::mat4(&e[key]), &format!("{what} {key}"));
        }
        // nibabel rebuilds the quaternion's `a` in f32 arithmetic: near 180° rotations that costs
        // ~3e-6 rad whatever the file holds, so the qform is compared relative to the axis length.
        let q = harness::mat4(&e["qform"]);
        for c in 0..4 {
            let scale = if c < 3 {
                vol.geometry.spacing[c].max(1.0)
            } else {
                want[0][3]
                    .abs()
                    .max(want[1][3].abs())
                    .max(want[2][3].abs())
                    .max(1.0)
            };
            for r in 0..3 {
                assert!(
                    (want[r][c] - q[r][c]).abs() <= 1e-5 * scale,
                    "{what} qform[{r}][{c}]: {} vs nibabel {}",
                    want[r][c],
                    q[r][c]
                );
            }
        }
        assert_eq!(
            (e["sform_code"].as_i64(), e["qform_code"].as_i64()),
            (Some(1), Some(1))
        );
        let dtype = e["dtype"].as_str().unwrap_or("");
        if what.contains("mask") {
            assert_eq!(dtype, "|u1", "{what}");
            assert_eq!(harness::f64s(&e["slope_inter"]), [1.0, 0.0]);
        } else {
            assert_eq!(dtype, "<f4", "{what}");
        }
    }
    // Left-handed geometries (qfac -1) were among them.
    assert!(refs.iter().any(|e| e["pixdim0"].as_f64() == Some(-1.0)));
    // And our own reader reads our files back exactly.
    for (p, vol) in written.iter().zip(&ours) {
        let back = nifti::read(p, &ReadOptions::default()).expect("read back");
        assert_eq!(back.data, vol.data);
        assert_affine(
            &back.geometry.affine_ras(),
            &vol.geometry.affine_ras(),
            "read back",
        );
    }
}

/// A minimal valid NIfTI-1 file (4×3×2 int16, value = index) to corrupt.
fn valid_nifti1() -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[..4].copy_from_slice(&348i32.to_le_bytes());
    for (i, d) in [3i16, 4, 3, 2, 1, 1, 1, 1].iter().enumerate() {
        h[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&4i16.to_le_bytes());
    h[72..74].copy_from_slice(&16i16.to_le_bytes());
    for i in 0..4 {
        h[76 + 4 * i..80 + 4 * i].copy_from_slice(&1f32.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[252..254].copy_from_slice(&1i16.to_le_bytes()); // qform_code 1, quaternion 0 = identity
    h[344..348].copy_from_slice(b"n+1\0");
    for v in 0..24i16 {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gz");
    e.finish().expect("gz")
}

#[test]
fn nifti_malformed_corpus_errors_name_the_file_and_never_panic() {
    let dir = harness::tmpdir();
    let good = valid_nifti1();
    let mut corpus: Vec<(&str, Vec<u8>)> = vec![
        ("empty.nii", vec![]),
        ("three_bytes.nii", vec![1, 2, 3]),
        ("truncated_header.nii", good[..200].to_vec()),
        ("truncated_header.nii.gz", gz(&good[..200])),
        ("truncated_data.nii", good[..good.len() - 5].to_vec()),
        ("truncated_data.nii.gz", gz(&good[..good.len() - 5])),
        ("corrupt_gzip.nii.gz", gz(&good)[..40].to_vec()),
        (
            "not_gzip_inside.nii.gz",
            [&[0x1f, 0x8b][..], &[0xff; 100][..]].concat(),
        ),
    ];
    let mut patched = |name: &'static str, off: usize, b: &[u8]| {
        let mut v = good.clone();
        v[off..off + b.len()].copy_from_slice(b);
        corpus.push((name, v));
    };
    patched("bad_sizeof_hdr.nii", 0, &349i32.to_le_bytes());
    patched("bad_magic.nii", 344, b"xx1\0");
    patched("dim0_zero.nii", 40, &0i16.to_le_bytes());
    patched("dim0_eight.nii", 40, &8i16.to_le_bytes());
    patched("negative_dim.nii", 42, &(-4i16).to_le_bytes());
    patched("zero_dim.nii", 44, &0i16.to_le_bytes());
    patched("unknown_datatype.nii", 70, &77i16.to_le_bytes());
    patched("complex.nii", 70, &32i16.to_le_bytes());
    patched("vox_offset_beyond.nii", 108, &1.0e6f32.to_le_bytes());
    patched("vox_offset_nan.nii", 108, &f32::NAN.to_le_bytes());
    patched("vox_offset_negative.nii", 108, &(-400f32).to_le_bytes());
    let mut absurd = good.clone();
    for (i, d) in [3i16, 32767, 32767, 32767].iter().enumerate() {
        absurd[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    corpus.push(("absurd_dims.nii", absurd.clone()));
    corpus.push(("absurd_dims.nii.gz", gz(&absurd)));
    let mut two_extra = good.clone();
    for (i, d) in [5i16, 4, 3, 2, 2, 2].iter().enumerate() {
        two_extra[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    corpus.push(("5d_two_extra_dims.nii", two_extra));
    // NIfTI-2 with dims of 2^15 each (2^45 voxels) and 2^62: refused by the size limit.
    for (name, big) in [
        ("absurd_nifti2.nii", 1i64 << 15),
        ("overflow_nifti2.nii", 1i64 << 62),
    ] {
        let mut h = vec![0u8; 544];
        h[..4].copy_from_slice(&540i32.to_le_bytes());
        h[4..12].copy_from_slice(b"n+2\0\r\n\x1a\n");
        h[12..14].copy_from_slice(&16i16.to_le_bytes());
        for (i, d) in [3i64, big, big, big, 1, 1, 1, 1].iter().enumerate() {
            h[16 + 8 * i..24 + 8 * i].copy_from_slice(&d.to_le_bytes());
        }
        h[168..176].copy_from_slice(&544i64.to_le_bytes());
        h.extend_from_slice(&[0u8; 64]);
        corpus.push((name, h));
    }
    // A .hdr whose .img is missing, and an .img whose .hdr is missing.
    let mut pair_hdr = good[..348].to_vec();
    pair_hdr[344..348].copy_from_slice(b"ni1\0");
    pair_hdr[108..112].copy_from_slice(&0f32.to_le_bytes());
    corpus.push(("lonely.hdr", pair_hdr.clone()));
    corpus.push(("orphan.img", good[352..].to_vec()));
    corpus.push(("short_pair.hdr", pair_hdr));
    corpus.push(("short_pair.img", good[352..360].to_vec()));

    for (name, bytes) in &corpus {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write corpus file");
        let r = std::panic::catch_unwind(|| nifti::read(&p, &ReadOptions::default()));
        let r = r.unwrap_or_else(|_| panic!("{name}: the reader panicked"));
        let e = match r {
            Ok(v) => panic!("{name}: read as {:?} instead of failing", v.data.shape()),
            Err(e) => e,
        };
        let msg = e.to_string();
        assert!(
            msg.contains(name.split('.').next().unwrap_or(name)),
            "{name}: error does not name the file: {msg}"
        );
        let expect_too_large = name.starts_with("absurd") || name.starts_with("overflow");
        assert_eq!(
            matches!(e, Error::TooLarge { .. }),
            expect_too_large,
            "{name}: {msg}"
        );
        let expect_unsupported = *name == "complex.nii" || name.starts_with("5d_two");
        assert_eq!(
            matches!(e, Error::Unsupported { .. }),
            expect_unsupported,
            "{name}: {msg}"
        );
    }

    // The valid file itself reads, and so does pixdim[0] = 0 with a qform (qfac counts as 1).
    let p = dir.path().join("good.nii");
    std::fs::write(&p, &good).expect("write");
    let v = nifti::read(&p, &ReadOptions::default()).expect("valid file");
    assert_eq!(
        v.data.iter().copied().collect::<Vec<_>>(),
        (0..24).map(|x| x as f32).collect::<Vec<_>>()
    );
    let mut z = good.clone();
    z[76..80].copy_from_slice(&0f32.to_le_bytes());
    let p = dir.path().join("pixdim0.nii");
    std::fs::write(&p, &z).expect("write");
    let v = nifti::read(&p, &ReadOptions::default()).expect("pixdim[0] = 0");
    assert_eq!(v.geometry.affine_ras()[2][2], 1.0);
}

/// A FIFO given as input used to block forever (opening it waits for a writer); it is refused
/// at once, by name, whatever its extension says.
#[test]
fn a_fifo_input_is_refused_at_once_instead_of_blocking() {
    let dir = crate::harness::tmpdir();
    for name in ["pipe.nii.gz", "pipe.dcm"] {
        let fifo = dir.path().join(name);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = slicewise::Volume::open(&fifo)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains(name) && e.contains("not a regular file"), "{e}");
    }
}
