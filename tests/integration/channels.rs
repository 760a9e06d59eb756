//! Multi-channel input from one volume file per channel (issue 29): the BraTS case's FLAIR and
//! T1c as two files through a 2-channel test model, by every front end — the CLI's explicit
//! `--channels` list, a folder of nnU-Net-named files (`CASE_0000`, `CASE_0001`), a manifest's
//! `input_0000`/`input_0001` columns, the server (datastore images `CASE_0000`, …; the C ABI's
//! `slicewise_volume_open_channels` is tested in `capi.rs`) — each against one independent
//! reference: the files read with nibabel, stacked, and run through onnxruntime with the numpy
//! preprocessing (tests/python/channels_ref.py + engine_ref.py). And the refusals: volumes on
//! other grids (another shape, a shifted origin) name both files; a missing channel file is
//! named.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::harness;
use crate::{cli, server};

/// The 2-channel softmax test model (random weights; tests/python/make_test_model.py).
pub(crate) fn model_2ch() -> PathBuf {
    harness::repo().join("tests/data/unet_2ch.onnx")
}

/// The BraTS case's FLAIR and T1c, channels 0 and 1.
pub(crate) fn brats() -> [PathBuf; 2] {
    let d = "brats2015/train/brats_2013_pat0005_1";
    [
        harness::data(&format!("{d}/Flair_subtrMeanDivStd.nii.gz")),
        harness::data(&format!("{d}/T1c_subtrMeanDivStd.nii.gz")),
    ]
}

/// The reference segmentation of the stacked BraTS channels: its folder (labels.u8 `[z, y, x]`,
/// back.f32) and the shape of back.f32.
pub(crate) struct Reference {
    dir: PathBuf,
    back_shape: String,
    /// The stacked channels as nibabel reads them, `[c, z, y, x]`.
    pub(crate) volume: Vec<f32>,
}

/// Computed once per test process, into one folder of the target's scratch space that each
/// process overwrites (its ~200 MB are not left behind per run in the system's temp folder).
pub(crate) fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("channels-reference");
        std::fs::create_dir_all(&dir).unwrap();
        let [flair, t1c] = brats();
        let st = harness::py("channels_ref.py", &[&"stack", &dir, &flair, &t1c]);
        assert_eq!(st["shape"], json!([2, 155, 240, 240]));
        let r = harness::py(
            "engine_ref.py",
            &[
                &"pipeline",
                &model_2ch(),
                &dir.join("vol.f32"),
                &"2,155,240,240",
                &dir,
                &"2",
                &"0",
            ],
        );
        let back_shape = format!(
            "{},{},{},{}",
            r["slices"], r["classes"], r["full"][0], r["full"][1]
        );
        let volume = harness::read_f32(&dir.join("vol.f32"));
        for big in ["vol.f32", "prep.f32", "probs.f32"] {
            let _ = std::fs::remove_file(dir.join(big));
        }
        Reference {
            dir,
            back_shape,
            volume,
        }
    })
}

impl Reference {
    /// The reference labels, `[z, y, x]`.
    pub(crate) fn labels(&self) -> Vec<u8> {
        harness::read_u8(&self.dir.join("labels.u8"))
    }

    /// Top-two probability margins below 1e-4 (voxels either label is right for), `[z, y, x]`.
    pub(crate) fn ambiguous(&self) -> Vec<bool> {
        let back = harness::read_f32(&self.dir.join("back.f32"));
        let (k, n) = (3, 155 * 240 * 240);
        let plane = 240 * 240;
        (0..n)
            .map(|v| {
                let (z, p) = (v / plane, v % plane);
                let mut probs: Vec<f32> = (0..k).map(|c| back[(z * k + c) * plane + p]).collect();
                probs.sort_by(f32::total_cmp);
                probs[k - 1] - probs[k - 2] < 1e-4
            })
            .collect()
    }

    /// Compares a mask file with the reference: every differing voxel must be ambiguous, the
    /// affine must be the FLAIR's, and the mask must not be empty.
    pub(crate) fn check_file(&self, what: &str, mask: &Path) {
        let r = harness::py(
            "channels_ref.py",
            &[
                &"compare",
                &mask,
                &self.dir.join("labels.u8"),
                &self.dir.join("back.f32"),
                &self.back_shape,
            ],
        );
        assert_eq!(r["differ_unambiguous"], 0, "{what}: {r}");
        assert!(
            r["differ"].as_u64().unwrap() * 10_000 <= r["voxels"].as_u64().unwrap(),
            "{what}: {r}"
        );
        let counts = r["counts"].as_object().unwrap();
        assert!(counts.len() >= 2, "{what}: one label only: {r}");
        let a = harness::mat4(&r["affine"]);
        let flair = [
            [-1.0, 0.0, 0.0, 0.0],
            [0.0, -1.0, 0.0, 239.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        harness::assert_affine_close(&a, &flair, 1e-5, what);
    }
}

/// `slicewise segment ARGS --model unet_2ch --out OUT --report OUT/report.json` on the CPU.
fn segment(args: &[&dyn AsRef<std::ffi::OsStr>], out: &Path) -> cli::Run {
    let (model, report) = (model_2ch(), out.join("report.json"));
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"segment"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[&"--model", &model, &"--out", &out, &"--device", &"cpu"]);
    all.extend_from_slice(&[&"--report", &report]);
    cli::run(&all)
}

fn report(out: &Path) -> Value {
    cli::read_json(&out.join("report.json"))
}

/// A folder holding the BraTS files under nnU-Net's names `CASE_0000.nii.gz`, `CASE_0001…`.
fn nnunet_folder(root: &Path, case: &str, channels: &[&Path]) -> PathBuf {
    let dir = root.join("imagesTs");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, src) in channels.iter().enumerate() {
        std::os::unix::fs::symlink(src, dir.join(format!("{case}_{i:04}.nii.gz"))).unwrap();
    }
    dir
}

#[test]
fn engine_stacks_the_files_as_nibabel_reads_them_with_the_first_files_geometry() {
    let [flair, t1c] = brats();
    let v = slicewise::Volume::open_channels(&[&flair, &t1c], &Default::default()).unwrap();
    assert_eq!(v.data.shape(), &[2, 155, 240, 240]);
    assert_eq!(
        v.meta.channel_names,
        ["Flair_subtrMeanDivStd", "T1c_subtrMeanDivStd"]
    );
    let one = slicewise::Volume::open(&flair).unwrap();
    assert_eq!(v.geometry, one.geometry);
    assert_eq!(v.meta.source, flair);
    let got: Vec<f32> = v.data.iter().copied().collect();
    assert!(
        got == reference().volume,
        "stacked voxels differ from nibabel's"
    );
}

#[test]
fn cli_channel_list_folder_and_manifest_give_the_reference_mask() {
    let rf = reference();
    let [flair, t1c] = brats();
    let dir = harness::tmpdir();

    // (1) An explicit list: the mask is named after the first file.
    let out = dir.path().join("list");
    let r = segment(&[&"--channels", &flair, &t1c], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = report(&out);
    let job = &rep["jobs"][0];
    assert_eq!(job["channels"], json!([flair, t1c]), "{job}");
    assert_eq!(job["input"], json!(flair));
    let mask = out.join("Flair_subtrMeanDivStd_mask.nii.gz");
    rf.check_file("--channels", &mask);
    let sidecar = cli::read_json(&out.join("Flair_subtrMeanDivStd.slicewise.json"));
    assert_eq!(sidecar["channels"], json!([flair, t1c]));

    // A rerun skips the complete case; the same files in another order are another input,
    // written under a distinct name (never replacing the first case's result).
    let r = segment(&[&"--channels", &flair, &t1c], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(report(&out)["jobs"][0]["status"], "skipped");
    let r = segment(&[&"--channels", &flair, &flair], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let other = &report(&out)["jobs"][0];
    assert_eq!(other["status"], "ok", "{other}");
    assert_ne!(other["mask"]["path"], json!(mask), "{other}");
    rf.check_file("--channels after the other case", &mask);

    // (2) nnU-Net naming in a folder: one job named CASE.
    let folder = nnunet_folder(dir.path(), "BRATS_005", &[&flair, &t1c]);
    let out = dir.path().join("folder");
    let r = segment(&[&folder], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = report(&out);
    assert_eq!(rep["jobs"].as_array().unwrap().len(), 1, "{rep}");
    rf.check_file("nnU-Net folder", &out.join("BRATS_005_mask.nii.gz"));
    // The same files given one by one: one case too.
    let out2 = dir.path().join("files");
    let (c0, c1) = (
        folder.join("BRATS_005_0000.nii.gz"),
        folder.join("BRATS_005_0001.nii.gz"),
    );
    let r = segment(&[&c0, &c1], &out2);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(report(&out2)["jobs"].as_array().unwrap().len(), 1);
    rf.check_file("nnU-Net files", &out2.join("BRATS_005_mask.nii.gz"));

    // (3) A manifest row with one column per channel.
    let manifest = dir.path().join("cases.csv");
    std::fs::write(
        &manifest,
        format!(
            "case,input_0000,input_0001\nbrats,{},{}\n",
            flair.display(),
            t1c.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("manifest");
    let r = segment(&[&"--manifest", &manifest], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let job = &report(&out)["jobs"][0];
    assert_eq!(job["channels"], json!([flair, t1c]));
    assert_eq!(job["row"], 0);
    rf.check_file("manifest", &out.join("Flair_subtrMeanDivStd_mask.nii.gz"));
}

#[test]
fn volumes_on_other_grids_are_refused_naming_both_files() {
    let [flair, t1c] = brats();
    let dir = harness::tmpdir();
    let hippo = harness::data("msd-hippocampus/images/hippocampus_001.nii.gz");

    // Another shape.
    let out = dir.path().join("shape");
    let r = segment(&[&"--channels", &flair, &hippo], &out);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let err = report(&out)["jobs"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    for want in [
        flair.display().to_string(),
        hippo.display().to_string(),
        "shape 240×240×155 vs".into(),
    ] {
        assert!(err.contains(&want), "{want:?} not in {err}");
    }
    assert!(r.stderr.contains(&err), "{}", r.stderr);

    // The same voxels with the origin shifted by 2 mm in the header.
    let shifted = dir.path().join("t1c_shifted.nii.gz");
    harness::py("channels_ref.py", &[&"shift", &t1c, &shifted, &"2.0"]);
    let out = dir.path().join("origin");
    let r = segment(&[&"--channels", &flair, &shifted], &out);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let err = report(&out)["jobs"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    for want in [
        flair.display().to_string(),
        shifted.display().to_string(),
        "origin".into(),
    ] {
        assert!(err.contains(&want), "{want:?} not in {err}");
    }
    let e = slicewise::Volume::open_channels(&[&flair, &shifted], &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("origin") && e.contains("tolerance 0.0001 mm"),
        "{e}"
    );
}

#[test]
fn a_missing_channel_file_fails_its_case_naming_it() {
    let [flair, _] = brats();
    let dir = harness::tmpdir();
    let folder = nnunet_folder(dir.path(), "LONE", &[&flair]);
    let out = dir.path().join("out");
    let r = segment(&[&folder], &out);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let job = &report(&out)["jobs"][0];
    let err = job["error"].as_str().unwrap();
    let missing = folder.join("LONE_0001.nii.gz");
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("channel 1"),
        "{err}"
    );
    assert_eq!(job["status"], "failed");
}

#[test]
fn server_infers_a_case_from_its_channel_images_in_the_datastore() {
    let rf = reference();
    let [flair, t1c] = brats();
    let models = harness::tmpdir();
    std::fs::copy(model_2ch(), models.path().join("unet_2ch.onnx")).unwrap();
    let s = server::Server::start_models(models.path(), &[], |_| {});
    // The reference mask file for the client's comparison: the CLI's, itself checked here.
    let out = s.dir.path().join("cli");
    let r = segment(&[&"--channels", &flair, &t1c], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mask = out.join("Flair_subtrMeanDivStd_mask.nii.gz");
    rf.check_file("server reference", &mask);
    let got = s.py("channels", &[&"unet_2ch", &"brats5", &mask, &flair, &t1c]);
    server::assert_same_label("server", &got["nifti"]);
    assert_eq!(got["missing"]["status"], 404, "{got}");
    let msg = got["missing"]["message"].to_string();
    assert!(msg.contains("brats5x_0001"), "{msg}");
}
