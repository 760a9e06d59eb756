//! nnU-Net v2 `2d` models deployed with slicewise, against nnU-Net's own predictor (issue 29).
//!
//! The results folders in `tests/data/nnunet/` were trained by nnunetv2 2.8.1 itself; each test
//! exports one with the importer (`python -m slicewise.nnunet export`, in the nnU-Net venv), runs
//! the export with the `slicewise` CLI, and runs the real `nnUNetv2_predict` (CPU, `-npp 1 -nps 1`)
//! on the same files (`tests/python/nnunet_ref.py predict`). The decision rule, written before
//! the runs: over the cases of a run, every label's Dice between the two masks ≥ 0.995 and
//! ≥ 99.9 % of the voxels identical, both masks on the input's grid; and wherever a voxel differs,
//! nnU-Net's own final logits there (`nnunet_ref.py logits`, nnUNetPredictor's functions) put the
//! two masks' choices within fp16 noise of each other: a margin of at most 16 fp16 roundings of
//! the largest logit (nnU-Net sums its tiles, divides and averages folds in fp16; slicewise
//! computes in f32). Held-out hippocampus volumes (never trained on) with mirroring on and off,
//! one fold and the two-fold ensemble; the resampling paths (the same volumes described at 0.7
//! and 1.6 mm, and a 0.69 × 0.69 × 5 mm MR series converted by dcm2niix, which takes nnU-Net's
//! separate-z path); a CT model (CTNormalization, on its grid and resampled); and a two-channel
//! region-based model (BraTS FLAIR + T1c).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use slicewise::Volume;

use crate::harness::{self, tmpdir};

const HIPPO: &str =
    "tests/data/nnunet/Dataset004_Hippocampus/nnUNetTrainer_slicewiseB32__nnUNetPlans__2d";
const CT: &str =
    "tests/data/nnunet/Dataset005_CTProbe/nnUNetTrainer_slicewiseProbeCT__nnUNetPlans__2d";
const BRATS: &str =
    "tests/data/nnunet/Dataset006_BraTSRegions/nnUNetTrainer_slicewiseProbe__nnUNetPlans__2d";
/// Held-out hippocampus volumes the parity runs use (the first five of `heldout.txt`).
const CASES: [&str; 5] = [
    "hippocampus_004",
    "hippocampus_014",
    "hippocampus_053",
    "hippocampus_056",
    "hippocampus_070",
];
/// The largest allowed logit margin where the masks differ, in fp16 roundings of the largest
/// logit there.
const FP16_ROUNDINGS: f64 = 16.0;

fn trainers() -> PathBuf {
    harness::repo().join("tests/data/nnunet/trainers")
}

/// `nnunet_ref.py ARGS` in the nnU-Net venv, its JSON answer.
fn nnunet_ref(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Value {
    let mut c = Command::new(harness::nnunet_python());
    c.arg(harness::repo().join("tests/python/nnunet_ref.py"));
    for a in args {
        c.arg(a);
    }
    let out = c.output().expect("start the nnU-Net venv's Python");
    assert!(
        out.status.success(),
        "nnunet_ref.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("nnunet_ref.py's JSON")
}

/// The importer's export of `folder` with `folds` into `out`.
fn export(folder: &str, folds: &[&str], out: &Path) {
    let o = Command::new(harness::nnunet_python())
        .args(["-m", "slicewise.nnunet", "export"])
        .arg(harness::repo().join(folder))
        .arg("--folds")
        .args(folds)
        .arg("--trainer-dir")
        .arg(trainers())
        .arg("--out")
        .arg(out)
        .output()
        .expect("start the importer");
    assert!(
        o.status.success(),
        "export failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `slicewise segment` of each case (its channel files) with `model`: the masks, in case order.
fn segment(model: &Path, cases: &[Vec<PathBuf>], tta: bool, out: &Path) -> Vec<PathBuf> {
    let mut masks = Vec::new();
    for (i, files) in cases.iter().enumerate() {
        let dir = out.join(i.to_string());
        let mut c = crate::cli::cmd(&[&"segment", &"--model", &model, &"--device", &"cpu"]);
        c.arg("--out").arg(&dir);
        if tta {
            c.arg("--tta");
        }
        if files.len() > 1 {
            c.arg("--channels").args(files);
        } else {
            c.args(files);
        }
        let o = c.output().expect("run slicewise segment");
        assert!(
            o.status.success(),
            "slicewise segment failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mask = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("_mask.nii.gz"))
            .expect("slicewise wrote a mask");
        masks.push(mask);
    }
    masks
}

/// Per-label intersection and sizes, and identical voxels, between two masks on one grid.
#[derive(Default)]
struct Agreement {
    per_label: std::collections::BTreeMap<u32, (u64, u64)>,
    identical: u64,
    voxels: u64,
    lines: Vec<String>,
}

impl Agreement {
    fn add(&mut self, case: &str, ours: &Path, theirs: &Path) -> u64 {
        let a = Volume::open(ours).unwrap();
        let b = Volume::open(theirs).unwrap();
        assert_eq!(a.data.shape(), b.data.shape(), "{case}: mask shapes");
        let (ga, gb) = (a.geometry, b.geometry);
        for k in 0..3 {
            assert!(
                (ga.spacing[k] - gb.spacing[k]).abs() < 1e-4,
                "{case}: spacing"
            );
            assert!((ga.origin[k] - gb.origin[k]).abs() < 1e-3, "{case}: origin");
            for r in 0..3 {
                assert!(
                    (ga.direction[r][k] - gb.direction[r][k]).abs() < 1e-4,
                    "{case}: direction"
                );
            }
        }
        let mut differing = 0;
        for (&x, &y) in a.data.iter().zip(b.data.iter()) {
            let (x, y) = (x as u32, y as u32);
            for (v, hit) in [(x, true), (y, false)] {
                if v != 0 {
                    let e = self.per_label.entry(v).or_default();
                    e.1 += 1;
                    if hit && x == y {
                        e.0 += 2;
                    }
                }
            }
            differing += u64::from(x != y);
        }
        self.voxels += a.data.len() as u64;
        self.identical += a.data.len() as u64 - differing;
        self.lines
            .push(format!("{case}: {differing} voxels differ"));
        differing
    }

    fn check(&self, what: &str) {
        let share = self.identical as f64 / self.voxels.max(1) as f64;
        let dice: Vec<(u32, f64)> = self
            .per_label
            .iter()
            .map(|(&v, &(i, s))| (v, if s == 0 { 1.0 } else { i as f64 / s as f64 }))
            .collect();
        eprintln!("{what}: identical {:.4} %, Dice {dice:?}", 100.0 * share);
        assert!(
            share >= 0.999,
            "{what}: {:.4} % identical voxels: {:?}",
            100.0 * share,
            self.lines
        );
        for (v, d) in dice {
            assert!(
                d >= 0.995,
                "{what}: label {v} Dice {d:.4}: {:?}",
                self.lines
            );
        }
    }
}

/// Where the masks differ, nnU-Net's own logits must put the two choices within fp16 noise.
fn check_margins(
    folder: &str,
    folds: &[&str],
    tta: bool,
    kind: &str,
    differing: &[(String, PathBuf, PathBuf)],
    work: &Path,
) {
    if differing.is_empty() {
        return;
    }
    let dir = work.join(format!("logits-{}-{tta}", folds.join("")));
    let model = harness::repo().join(folder);
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"logits", &model, &dir];
    args.extend(
        differing
            .iter()
            .map(|(c, _, _)| c as &dyn AsRef<std::ffi::OsStr>),
    );
    args.push(&"--folds");
    args.extend(folds.iter().map(|f| f as &dyn AsRef<std::ffi::OsStr>));
    if !tta {
        args.push(&"--disable-tta");
    }
    let lg = nnunet_ref(&args);
    for (case, ours, theirs) in differing {
        let id = crate_case_id(case);
        let logits = lg["cases"][&id]["logits"].as_str().expect("logits written");
        let c = nnunet_ref(&[
            &"compare",
            theirs,
            ours,
            &"--logits",
            &logits,
            &"--output-kind",
            &kind,
        ]);
        let worst = c["margins"]["max_over_fp16_scale"]
            .as_f64()
            .unwrap_or(f64::NAN);
        assert!(
            worst <= FP16_ROUNDINGS,
            "{id}: where the masks differ nnU-Net's logits are {worst:.1} fp16 roundings apart: {c}"
        );
    }
}

/// nnU-Net's case id of a CASE argument (its first file without `_0000.nii.gz` / `.nii.gz`).
fn crate_case_id(case: &str) -> String {
    let first = case.split(',').next().unwrap_or(case);
    let name = Path::new(first).file_name().unwrap().to_string_lossy();
    let stem = name.strip_suffix(".nii.gz").unwrap_or(&name);
    stem.strip_suffix("_0000").unwrap_or(stem).to_string()
}

/// One parity run: nnUNetv2_predict and slicewise on `cases`, checked by the decision rule.
#[allow(clippy::too_many_arguments)]
fn parity(
    what: &str,
    folder: &str,
    model: &Path,
    folds: &[&str],
    tta: bool,
    kind: &str,
    cases: &[Vec<PathBuf>],
    work: &Path,
) {
    let tag = format!("{}-{}", folds.join(""), tta);
    let ref_out = work.join(format!("nnunet-{tag}"));
    let case_args: Vec<String> = cases
        .iter()
        .map(|f| {
            f.iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let folder_path = harness::repo().join(folder);
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"predict", &folder_path, &ref_out];
    args.extend(case_args.iter().map(|c| c as &dyn AsRef<std::ffi::OsStr>));
    args.push(&"--folds");
    args.extend(folds.iter().map(|f| f as &dyn AsRef<std::ffi::OsStr>));
    if !tta {
        args.push(&"--disable-tta");
    }
    let reference = nnunet_ref(&args);
    let theirs: Vec<PathBuf> = reference["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    let ours = segment(model, cases, tta, &work.join(format!("slicewise-{tag}")));
    let mut agreement = Agreement::default();
    let mut differing = Vec::new();
    for ((case, o), t) in case_args.iter().zip(&ours).zip(&theirs) {
        if agreement.add(case, o, t) > 0 {
            differing.push((case.clone(), o.clone(), t.clone()));
        }
    }
    agreement.check(what);
    check_margins(folder, folds, tta, kind, &differing, work);
}

/// The held-out volumes as nnU-Net names its inputs (`CASE_0000.nii.gz`), linked into `dir`.
fn hippocampus_cases(dir: &Path) -> Vec<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).unwrap();
    CASES
        .iter()
        .map(|c| {
            let link = dir.join(format!("{c}_0000.nii.gz"));
            std::os::unix::fs::symlink(
                harness::data(&format!("msd-hippocampus/images/{c}.nii.gz")),
                &link,
            )
            .unwrap();
            vec![link]
        })
        .collect()
}

#[test]
fn hippocampus_masks_equal_nnunet_predict_with_and_without_mirroring_one_fold_and_two() {
    let work = tmpdir();
    let cases = hippocampus_cases(&work.path().join("in"));
    for folds in [&["0"][..], &["0", "1"][..]] {
        let model = work.path().join(format!("hippo-{}.onnx", folds.join("")));
        export(HIPPO, folds, &model);
        for tta in [true, false] {
            let what = format!("hippocampus, folds {folds:?}, TTA {tta}");
            parity(
                &what,
                HIPPO,
                &model,
                folds,
                tta,
                "logits",
                &cases,
                work.path(),
            );
        }
    }
}

#[test]
fn resampled_and_anisotropic_inputs_equal_nnunet_predict() {
    let work = tmpdir();
    let dir = work.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cases = Vec::new();
    // One held-out volume described at 0.7 mm and at 1.6 mm: nnU-Net resamples both to its 1 mm
    // (order 3 in, order 1 back), not separately (max/min spacing ≤ 3).
    let src = harness::data("msd-hippocampus/images/hippocampus_004.nii.gz");
    for (name, s) in [("fine", 0.7), ("coarse", 1.6)] {
        let out = dir.join(format!("{name}_0000.nii.gz"));
        nnunet_ref(&[
            &"respace",
            &src,
            &out,
            &s.to_string(),
            &s.to_string(),
            &s.to_string(),
        ]);
        cases.push(vec![out]);
    }
    // A real 0.69 × 0.69 × 5 mm MR series as dcm2niix converts it: the separate-z path.
    let t1 = dir.join("t1post_0000");
    let o = Command::new(harness::tool("dcm2niix"))
        .args(["-z", "y", "-b", "n", "-f", "t1post_0000", "-o"])
        .arg(&dir)
        .arg(harness::data("mr-dicom-series/Study3/11-T1post-18670"))
        .output()
        .expect("run dcm2niix");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    cases.push(vec![t1.with_extension("nii.gz")]);
    let model = work.path().join("hippo-0.onnx");
    export(HIPPO, &["0"], &model);
    parity(
        "resampling (0.7 mm, 1.6 mm, 0.69 × 0.69 × 5 mm)",
        HIPPO,
        &model,
        &["0"],
        false,
        "logits",
        &cases,
        work.path(),
    );
}

#[test]
fn two_channel_region_model_equals_nnunet_predict() {
    let work = tmpdir();
    let dir = work.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    // A 24-slice slab through the tumour of the BraTS case, both channels cut alike.
    let case = harness::data("brats2015/train/brats_2013_pat0005_1");
    let mut files = Vec::new();
    for (c, name) in ["Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz"]
        .iter()
        .enumerate()
    {
        let out = dir.join(format!("brats_{c:04}.nii.gz"));
        nnunet_ref(&[&"crop", &case.join(name), &out, &"60", &"84"]);
        files.push(out);
    }
    let model = work.path().join("brats.onnx");
    export(BRATS, &["all"], &model);
    parity(
        "BraTS regions (FLAIR + T1c)",
        BRATS,
        &model,
        &["all"],
        false,
        "regions",
        &[files],
        work.path(),
    );
}

/// The labels of a mask file on its grid.
fn labels(path: &Path) -> ndarray::Array4<f32> {
    Volume::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .data
}

#[test]
fn an_imported_model_runs_unchanged_through_every_front_end() {
    let work = tmpdir();
    let models = work.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let model = models.join("hippocampus-nnunet.onnx");
    export(HIPPO, &["0"], &model);
    let image = harness::data("msd-hippocampus/images/hippocampus_004.nii.gz");
    // The reference: the CLI on the file (the parity tests hold it against nnUNetv2_predict).
    let cli = segment(
        &model,
        &[vec![image.clone()]],
        false,
        &work.path().join("cli"),
    );
    let reference = labels(&cli[0]);
    assert!(
        reference.iter().any(|&v| v > 0.0),
        "an empty mask proves nothing"
    );

    // A manifest batch.
    let manifest = work.path().join("cases.csv");
    std::fs::write(&manifest, format!("input\n{}\n", image.display())).unwrap();
    let out = work.path().join("manifest");
    let r = crate::cli::run(&[
        &"segment",
        &"--model",
        &model,
        &"--manifest",
        &manifest,
        &"--out",
        &out,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        labels(&out.join("hippocampus_004_mask.nii.gz")),
        reference,
        "manifest"
    );

    // Python (the wheel).
    harness::ensure_setup("--python");
    let py_out = work.path().join("python");
    let o = Command::new(harness::python())
        .args([
            "-c",
            "import sys, slicewise; r = slicewise.Model(sys.argv[1]).segment_file(sys.argv[2], sys.argv[3]); \
             assert r[0]['status'] == 'ok', r",
        ])
        .arg(&model)
        .arg(&image)
        .arg(&py_out)
        .env("SLICEWISE_ORT_LIB", harness::ort_lib())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        labels(&py_out.join("hippocampus_004_mask.nii.gz")),
        reference,
        "Python"
    );

    // The C ABI, as the Slicer extension calls it (from the file and from memory).
    let c_out = work.path().join("capi");
    std::fs::create_dir_all(&c_out).unwrap();
    let c = harness::py(
        "capi_ctypes.py",
        &[
            &harness::cdylib(),
            &harness::ort_lib(),
            &model,
            &c_out,
            &image,
        ],
    );
    assert_eq!(c["cases"][0]["equal"], true, "C ABI file vs memory: {c}");
    assert_eq!(labels(&c_out.join("mask0.nii.gz")), reference, "C ABI");

    // The server, through MONAI Label's own client (NIfTI, NRRD and Slicer's session flow).
    let s = crate::server::Server::start_models(&models, &[], |_| {});
    let r = s.py("roundtrip", &[&image, &"hippocampus-nnunet", &cli[0]]);
    for answer in ["nifti", "nrrd", "session"] {
        assert_eq!(r[answer]["equal"], true, "server {answer}: {}", r[answer]);
    }
}

#[test]
fn ct_model_equals_nnunet_predict() {
    let work = tmpdir();
    let dir = work.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    // TotalSegmentator's small CT (3 mm, int16 HU), as is and described at 2.4 mm (resampled to
    // the plans' 3 mm): CTNormalization's clip and statistics from the plans, on its own grid
    // and after resampling.
    let src = harness::data("totalseg-ref/tests/reference_files/example_ct_sm.nii.gz");
    let as_is = dir.join("ct_0000.nii.gz");
    // A copy, not a link: the reference names a case after the file a link resolves to.
    std::fs::copy(&src, &as_is).unwrap();
    let fine = dir.join("ct24_0000.nii.gz");
    nnunet_ref(&[&"respace", &src, &fine, &"2.4", &"2.4", &"2.4"]);
    let model = work.path().join("ct.onnx");
    export(CT, &["all"], &model);
    parity(
        "CT probe (CTNormalization)",
        CT,
        &model,
        &["all"],
        true,
        "logits",
        &[vec![as_is], vec![fine]],
        work.path(),
    );
}
