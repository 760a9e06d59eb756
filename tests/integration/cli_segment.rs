//! `slicewise segment` batches on the real data with the engine's tiny test model (random
//! weights: the masks mean nothing, but they are deterministic and real files).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::{cmd, read_json, run, test_model};
use crate::harness::{data, py, tmpdir};
use tempfile::TempDir;

fn jobs(report: &Value) -> &Vec<Value> {
    report["jobs"].as_array().expect("jobs")
}

fn mask_path(job: &Value) -> PathBuf {
    PathBuf::from(job["mask"]["path"].as_str().expect("mask path"))
}

/// Every mask in `dir` decodes in Python (no truncated or partial file at an output path).
fn assert_masks_decode(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        if n.contains("_mask.") {
            py("cli_fixtures.py", &[&"count", &p]);
        }
    }
}

/// Segments `input` with `model` once per format, each run into a folder of its own.
fn segment_as<const N: usize>(input: &Path, model: &Path, formats: [&str; N]) -> [TempDir; N] {
    formats.map(|format| {
        let dir = tmpdir();
        super::segment_ok(input, model, dir.path(), &[&"--format", &format]);
        dir
    })
}

#[test]
fn segment_batch_of_dicom_lgg_nifti_and_tiff_writes_masks_and_report() {
    let dir = tmpdir();
    let out = dir.path().join("out");
    let report = dir.path().join("report.json");
    let nifti = data("msd-hippocampus/images/hippocampus_001.nii.gz");
    let stack = dir.path().join("stack.tif");
    py("cli_fixtures.py", &[&"tiff-stack", &nifti, &stack]);
    let study = data("mr-dicom-series/Study3");
    let lgg = data("lgg/TCGA_CS_4943_20000902");
    let model = test_model();
    let r = run(&[
        &"segment",
        &study,
        &lgg,
        &nifti,
        &stack,
        &"--model",
        &model,
        &"--out",
        &out,
        &"--device",
        &"cpu",
        &"--report",
        &report,
        &"--preview",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = read_json(&report);
    let js = jobs(&rep);
    let dicom: Vec<&Value> = js.iter().filter(|j| !j["series_uid"].is_null()).collect();
    assert!(dicom.len() >= 2, "Study3 holds several series: {}", rep);
    assert_eq!(js.len(), dicom.len() + 3);
    let mut masks = std::collections::HashSet::new();
    for j in js {
        assert_eq!(j["status"], "ok", "{j}");
        assert_eq!(j["provider"], "CPUExecutionProvider");
        let mask = mask_path(j);
        assert!(
            masks.insert(mask.clone()),
            "two jobs share {}",
            mask.display()
        );
        let counted = py("cli_fixtures.py", &[&"count", &mask]);
        let dims: Vec<u64> = j["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let shape: Vec<u64> = counted["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(dims, shape, "{}", mask.display());
        let sp: f64 = j["spacing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .product();
        let label = &j["labels"][0];
        assert_eq!(label["voxels"], counted["voxels"], "{}", mask.display());
        let ml = label["voxels"].as_f64().unwrap() * sp / 1000.0;
        assert!((label["ml"].as_f64().unwrap() - ml).abs() < 1e-9 * ml.max(1.0));
        for k in [
            "read",
            "preprocess",
            "inference",
            "postprocess",
            "write",
            "total",
        ] {
            assert!(j["timings"][k].as_f64().unwrap() >= 0.0);
        }
        let previews = j["previews"].as_array().unwrap();
        assert!(!previews.is_empty());
        for p in previews {
            let bytes = std::fs::read(p["path"].as_str().unwrap()).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        }
    }
    let ext = |input: &Path| {
        let j = js
            .iter()
            .find(|j| j["input"].as_str() == Some(input.to_str().unwrap()))
            .unwrap();
        mask_path(j).to_string_lossy().into_owned()
    };
    assert!(
        ext(&stack).ends_with("stack_mask.tif"),
        "TIFF input gives TIFF"
    );
    assert!(ext(&nifti).ends_with("hippocampus_001_mask.nii.gz"));
    assert!(ext(&lgg).ends_with(".tif"), "LGG slices are TIFF input");
    // DICOM outputs are named by series number and description (the UID stays in the report).
    let mut names: Vec<String> = dicom
        .iter()
        .map(|d| {
            assert!(d["series_uid"].as_str().is_some_and(|u| !u.is_empty()));
            let p = mask_path(d);
            p.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Study3_011_T1post_mask.nii.gz",
            "Study3_HippoCrop_mask.nii.gz"
        ]
    );
    assert_eq!(rep["model"]["provider"]["used"], "CPUExecutionProvider");
    let csv = std::fs::read_to_string(report.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), js.len() + 1);
    assert!(csv.lines().next().unwrap().contains("label1_ml"));
}

#[test]
fn interrupted_batch_resumes_without_redoing_finished_jobs() {
    let dir = tmpdir();
    let out = dir.path().join("out");
    let lgg = data("lgg");
    let mut patients: Vec<PathBuf> = std::fs::read_dir(&lgg)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    patients.sort();
    patients.truncate(8);
    let model = test_model();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"segment"];
    for p in &patients {
        args.push(p);
    }
    let report = dir.path().join("r.json");
    args.extend([
        &"--model" as &dyn AsRef<std::ffi::OsStr>,
        &model,
        &"--out",
        &out,
        &"--device",
        &"cpu",
    ]);
    // First run: kill it as soon as one job is complete.
    let mut child = cmd(&args).spawn().expect("spawn");
    let t0 = Instant::now();
    let sidecars = |out: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(out)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.to_string_lossy().ends_with(".slicewise.json"))
                    .collect()
            })
            .unwrap_or_default()
    };
    while sidecars(&out).is_empty() && t0.elapsed() < Duration::from_secs(300) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_masks_decode(&out);
    let done: HashMap<PathBuf, SystemTime> = sidecars(&out)
        .iter()
        .map(|s| {
            let mask = PathBuf::from(read_json(s)["mask"]["path"].as_str().unwrap());
            let t = std::fs::metadata(&mask).unwrap().modified().unwrap();
            (mask, t)
        })
        .collect();
    assert!(!done.is_empty());
    assert!(
        done.len() < patients.len(),
        "the first run was not interrupted mid-batch"
    );
    std::thread::sleep(Duration::from_millis(20));

    args.extend([&"--report" as &dyn AsRef<std::ffi::OsStr>, &report]);
    let r = super::Run::from_output(cmd(&args).output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = read_json(&report);
    let js = jobs(&rep);
    assert_eq!(js.len(), patients.len());
    for j in js {
        let mask = mask_path(j);
        if let Some(t) = done.get(&mask) {
            assert_eq!(j["status"], "skipped", "{}", mask.display());
            let now = std::fs::metadata(&mask).unwrap().modified().unwrap();
            assert_eq!(now, *t, "finished job was redone: {}", mask.display());
            assert_eq!(
                j["labels"][0]["voxels"],
                py("cli_fixtures.py", &[&"count", &mask])["voxels"]
            );
        } else {
            assert_eq!(j["status"], "ok", "{}", mask.display());
        }
    }
    assert_eq!(
        rep["summary"]["skipped"].as_u64().unwrap() as usize,
        done.len()
    );
    assert_masks_decode(&out);

    // --overwrite redoes everything.
    args.push(&"--overwrite");
    let r = super::Run::from_output(cmd(&args).output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        read_json(&report)["summary"]["ok"].as_u64().unwrap() as usize,
        patients.len()
    );
}

#[test]
fn corrupt_file_in_the_middle_of_a_batch_fails_alone_with_exit_code_1() {
    let dir = tmpdir();
    let out = dir.path().join("out");
    let report = dir.path().join("r.json");
    let corrupt = dir.path().join("corrupt.nii.gz");
    let mut bytes = std::fs::read(data("msd-hippocampus/images/hippocampus_003.nii.gz")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, &bytes).unwrap();
    let a = data("msd-hippocampus/images/hippocampus_001.nii.gz");
    let b = data("msd-hippocampus/images/hippocampus_004.nii.gz");
    let model = test_model();
    let r = run(&[
        &"segment",
        &a,
        &corrupt,
        &b,
        &"--model",
        &model,
        &"--out",
        &out,
        &"--device",
        &"cpu",
        &"--report",
        &report,
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("corrupt.nii.gz"), "{}", r.stderr);
    let rep = read_json(&report);
    let st: Vec<&str> = jobs(&rep)
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    assert_eq!(st, ["ok", "failed", "ok"]);
    let err = jobs(&rep)[1]["error"].as_str().unwrap();
    assert!(err.contains("corrupt.nii.gz"), "{err}");
    assert!(!out.join("corrupt_mask.nii.gz").exists());
    assert!(!out.join("corrupt.slicewise.json").exists());
    assert_masks_decode(&out);
}

#[test]
fn out_folder_inside_an_input_folder_is_refused_before_writing() {
    let dir = tmpdir();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(
        data("msd-hippocampus/images/hippocampus_001.nii.gz"),
        input.join("h.nii.gz"),
    )
    .unwrap();
    let out = input.join("out");
    let model = test_model();
    let r = run(&[&"segment", &input, &"--model", &model, &"--out", &out]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("inside the input folder"), "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn dicom_seg_format_writes_a_seg_equal_to_the_nifti_mask_and_refuses_non_dicom_input() {
    let model = test_model();
    let series = data("mr-dicom-series/Study3/11-T1post-18670");
    let [seg_dir, nii_dir] = segment_as(&series, &model, ["dicom-seg", "nifti"]);
    let find = |dir: &Path, ext: &str| {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(ext))
            .unwrap_or_else(|| panic!("no {ext} in {}", dir.display()))
    };
    let seg_path = find(seg_dir.path(), ".dcm");
    let nii_path = find(nii_dir.path(), ".nii.gz");
    let source = slicewise::Volume::open(&series).unwrap();
    let from_seg = slicewise::mask::dicom_seg::read_seg(&seg_path, Some(&source))
        .unwrap()
        .to_mask()
        .unwrap();
    let from_nii = slicewise::Volume::open(&nii_path).unwrap();
    assert_eq!(from_seg.labels.len(), from_nii.data.len());
    let differing = from_seg
        .labels
        .iter()
        .zip(from_nii.data.iter())
        .filter(|(a, b)| **a as f32 != **b)
        .count();
    assert_eq!(differing, 0, "SEG and NIfTI masks of one run differ");
    assert!(from_nii.data.iter().any(|&v| v > 0.0), "test mask is empty");

    // A NIfTI input has no DICOM series to reference: the job fails, naming the reason.
    let dir = tmpdir();
    let nifti = data("msd-hippocampus/images/hippocampus_001.nii.gz");
    let r = run(&[
        &"segment",
        &nifti,
        &"--model",
        &model,
        &"--out",
        &dir.path(),
        &"--format",
        &"dicom-seg",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.to_lowercase().contains("dicom"), "{}", r.stderr);
    let r = run(&[&"segment", &nifti, &"--out", &dir.path()]);
    assert_eq!(r.code, 2, "missing --model is a usage error");
}

/// `--format nrrd` writes `<name>_mask.nrrd`: the labels of the NIfTI mask of the same run, x
/// fastest, gzip-encoded, on the same grid.
#[test]
fn nrrd_format_writes_the_labels_of_the_nifti_mask() {
    let model = test_model();
    let nifti = data("msd-hippocampus/images/hippocampus_001.nii.gz");
    let [nrrd_dir, nii_dir] = segment_as(&nifti, &model, ["nrrd", "nifti"]);
    let bytes = std::fs::read(nrrd_dir.path().join("hippocampus_001_mask.nrrd")).unwrap();
    let end = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("NRRD header");
    let header = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut labels = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&bytes[end + 2..]),
        &mut labels,
    )
    .unwrap();
    let mask = slicewise::Volume::open(nii_dir.path().join("hippocampus_001_mask.nii.gz")).unwrap();
    let [x, y, z] = mask.dims_xyz();
    assert!(
        header.contains(&format!("\nsizes: {x} {y} {z}\n")),
        "{header}"
    );
    assert!(header.contains("\nencoding: gzip\n"), "{header}");
    let want: Vec<u8> = mask.data.iter().map(|&v| v as u8).collect();
    assert!(labels == want, "NRRD and NIfTI labels differ");
    assert!(want.iter().any(|&v| v > 0), "test mask is empty");
}

#[test]
fn info_on_an_onnx_model_shows_its_contract() {
    let model = test_model();
    let r = run(&[&"info", &"--json", &model]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["contract"]["name"], "test-unet-sigmoid");
    assert_eq!(v["contract"]["height"], 64);
    assert_eq!(v["contract"]["labels"][0]["value"], 1);
}

/// The stderr line that starts with `prefix`, or a panic showing stderr.
fn line_starting<'a>(stderr: &'a str, prefix: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stderr}"))
}

#[test]
fn auto_device_on_a_cpu_only_runtime_says_cpu_once_per_run_without_log_warnings() {
    let h = crate::harness::bundled_hippocampus();
    let (model, sample) = (h.model, h.image);
    let other = data("msd-hippocampus/images/hippocampus_001.nii.gz");
    let dir = tmpdir();
    let r = run(&[
        &"segment",
        &sample,
        &other,
        &"--model",
        &model,
        &"--out",
        &dir.path(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("WARN"), "{}", r.stderr);
    let cpu: Vec<&str> = r.stderr.lines().filter(|l| l.contains("CPU")).collect();
    assert_eq!(
        cpu,
        ["slicewise: running on CPU (this ONNX Runtime has no CUDA or TensorRT provider)"],
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("slicewise: 2 jobs: 2 segmented"),
        "{}",
        r.stderr
    );
    // Not a terminal: no bar is drawn, nothing to garble a log.
    assert!(
        !r.stderr.contains('\x1b') && !r.stderr.contains('\r'),
        "{:?}",
        r.stderr
    );
}

#[test]
fn explicit_cuda_on_a_cpu_only_runtime_fails_loudly_with_the_reason() {
    let h = crate::harness::bundled_hippocampus();
    let (model, sample) = (h.model, h.image);
    let dir = tmpdir();
    let r = run(&[
        &"segment",
        &sample,
        &"--model",
        &model,
        &"--out",
        &dir.path(),
        &"--device",
        &"cuda",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let line = line_starting(&r.stderr, "slicewise: error:");
    assert!(
        line.contains("CUDA: not available in this ONNX Runtime build"),
        "{line}"
    );
}

/// Parses "anterior hippocampus 1.82 mL" style pieces of a job line into (name, mL).
fn volumes(line: &str) -> Vec<(String, f64)> {
    let (_, rest) = line.split_once(": ").expect("name: volumes");
    let rest = rest.split(" (").next().unwrap_or(rest);
    rest.split(", ")
        .map(|part| {
            let part = part.strip_suffix(" mL").expect("mL unit");
            let (name, v) = part.rsplit_once(' ').expect("name and value");
            (name.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn segment_prints_one_line_of_volumes_named_by_the_model_labels() {
    let h = crate::harness::bundled_hippocampus();
    let dir = tmpdir();
    let report = dir.path().join("r.json");
    let r = super::segment_ok(&h.image, &h.model, dir.path(), &[&"--report", &report]);
    let line = line_starting(&r.stderr, "hippocampus_375: ");
    assert!(
        !line.contains("assumed"),
        "NIfTI states its spacing: {line}"
    );
    let printed = volumes(line);
    let rep = read_json(&report);
    let labels = jobs(&rep)[0]["labels"].as_array().unwrap();
    let names: Vec<&str> = printed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["anterior hippocampus", "posterior hippocampus"]);
    for ((_, ml), label) in printed.iter().zip(labels) {
        let exact = label["ml"].as_f64().unwrap();
        assert!(exact > 0.5, "the sample has both labels: {rep}");
        assert!((ml - exact).abs() <= 0.005 * exact, "{line} vs {exact}");
    }
    let summary = line_starting(&r.stderr, "slicewise: 1 ");
    assert!(
        summary.starts_with("slicewise: 1 job: 1 segmented"),
        "{summary}"
    );
}

#[test]
fn volumes_on_an_assumed_spacing_say_so_on_the_console() {
    // LGG slices are PNG-like TIFFs without any spacing: 1 mm is assumed.
    let lgg = data("lgg/TCGA_CS_4943_20000902");
    let model = test_model();
    let dir = tmpdir();
    let report = dir.path().join("r.json");
    let r = run(&[
        &"segment",
        &lgg,
        &"--model",
        &model,
        &"--out",
        &dir.path(),
        &"--device",
        &"cpu",
        &"--report",
        &report,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warnings = jobs(&read_json(&report))[0]["warnings"].to_string();
    assert!(warnings.contains("assumed 1 mm"), "{warnings}");
    let line = line_starting(&r.stderr, "TCGA_CS_4943_20000902: ");
    assert!(line.ends_with(" mL (spacing assumed 1 mm)"), "{line}");
    assert!(
        line.contains("foreground "),
        "the test model's label: {line}"
    );
    assert!(
        !r.stderr.contains("running on CPU"),
        "CPU was asked for: {}",
        r.stderr
    );
}

#[test]
fn csv_report_writes_millilitres_without_float_noise() {
    let h = crate::harness::bundled_hippocampus();
    let dir = tmpdir();
    let report = dir.path().join("r.json");
    super::segment_ok(&h.image, &h.model, dir.path(), &[&"--report", &report]);
    let csv = std::fs::read_to_string(report.with_extension("csv")).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let labels = jobs(&read_json(&report))[0]["labels"].clone();
    for (i, label) in labels.as_array().unwrap().iter().enumerate() {
        let col = head
            .iter()
            .position(|h| *h == format!("label{}_ml", i + 1))
            .expect("ml column");
        let text = row[col];
        let digits = text.trim_start_matches(['0', '.']).replace('.', "");
        assert!(digits.len() <= 6, "{text}: more than 6 significant digits");
        let exact = label["ml"].as_f64().unwrap();
        let value: f64 = text.parse().unwrap();
        assert!((value - exact).abs() <= 1e-6 * exact, "{text} vs {exact}");
    }
}

/// `slicewise segment a/x.nii.gz --out OUT`, then `slicewise segment b/x.nii.gz --out OUT` (the
/// everyday `patient*/flair.nii.gz` layout, a folder at a time): the second run must not replace
/// the first input's result. It writes under its distinct name, says so, finds it again on a
/// rerun, and replaces the first result only with `--overwrite`. The same holds for a sharded
/// manifest run.
#[test]
fn second_run_with_a_same_named_input_keeps_the_first_inputs_result() {
    let dir = tmpdir();
    let out = dir.path().join("out");
    let (a, b) = (dir.path().join("a/x.nii.gz"), dir.path().join("b/x.nii.gz"));
    for (p, src) in [(&a, "hippocampus_001"), (&b, "hippocampus_004")] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let src = data(&format!("msd-hippocampus/images/{src}.nii.gz"));
        std::fs::copy(src, p).unwrap();
    }
    let model = test_model();
    let segment = |input: &Path, extra: &[&str]| {
        let report = dir.path().join("report.json");
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"--report", &report];
        for e in extra {
            args.push(e);
        }
        super::segment_ok(input, &model, &out, &args);
        jobs(&read_json(&report))[0].clone()
    };
    let first = segment(&a, &[]);
    let first_mask = mask_path(&first);
    assert_eq!(first_mask, out.join("x_mask.nii.gz"));
    let first_bytes = std::fs::read(&first_mask).unwrap();

    let second = segment(&b, &[]);
    let second_mask = mask_path(&second);
    assert_ne!(
        second_mask, first_mask,
        "the second input took the first one's name"
    );
    assert!(second_mask.exists());
    let warnings = second["warnings"].to_string();
    assert!(warnings.contains("holds the result of"), "{warnings}");
    assert_eq!(std::fs::read(&first_mask).unwrap(), first_bytes);
    let sidecar = read_json(&out.join("x.slicewise.json"));
    assert_eq!(sidecar["input"].as_str(), Some(a.to_str().unwrap()));
    let name = second_mask.file_name().unwrap().to_string_lossy();
    let base = name.trim_end_matches("_mask.nii.gz");
    let sidecar = read_json(&out.join(format!("{base}.slicewise.json")));
    assert_eq!(sidecar["input"].as_str(), Some(b.to_str().unwrap()));

    // Rerun: both found again, nothing redone.
    assert_eq!(segment(&a, &[])["status"], "skipped");
    let again = segment(&b, &[]);
    assert_eq!(
        (again["status"].as_str(), mask_path(&again)),
        (Some("skipped"), second_mask.clone())
    );

    // A sharded manifest run of b names it the same way and skips it.
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, format!("input\n{}\n", b.display())).unwrap();
    let report = dir.path().join("r.json");
    let r = run(&[
        &"segment",
        &"--manifest",
        &manifest,
        &"--shard",
        &"0/1",
        &"--model",
        &model,
        &"--out",
        &out,
        &"--device",
        &"cpu",
        &"--report",
        &report,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let shard = read_json(&dir.path().join("r.shard-0-of-1.json"));
    assert_eq!(jobs(&shard)[0]["status"], "skipped");
    assert_eq!(mask_path(&jobs(&shard)[0]), second_mask);

    // --overwrite replaces the first input's result, as asked.
    let replaced = segment(&b, &["--overwrite"]);
    assert_eq!(mask_path(&replaced), first_mask);
    assert_ne!(std::fs::read(&first_mask).unwrap(), first_bytes);
}

/// A panic inside a job (here injected by the debug build on one input; in the wild a decoder's
/// on a corrupt file) fails that job alone with an error naming what panicked and where, and
/// no Rust panic report reaches stderr: the front end installs the engine's quiet hook.
#[test]
fn a_panic_in_a_job_is_its_error_with_its_place_and_stderr_has_no_panic_report() {
    let dir = tmpdir();
    let out = dir.path().join("out");
    let report = dir.path().join("r.json");
    let (a, b) = (
        dir.path().join("boom.nii.gz"),
        dir.path().join("fine.nii.gz"),
    );
    let src = data("msd-hippocampus/images/hippocampus_001.nii.gz");
    for p in [&a, &b] {
        std::fs::copy(&src, p).unwrap();
    }
    let model = test_model();
    let r = cmd(&[
        &"segment",
        &a,
        &b,
        &"--model",
        &model,
        &"--out",
        &out,
        &"--device",
        &"cpu",
        &"--report",
        &report,
    ])
    .env("SLICEWISE_DEBUG_PANIC", "boom.nii.gz")
    .env("RUST_BACKTRACE", "1")
    .output()
    .expect("start slicewise");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    let rep = read_json(&report);
    let err = jobs(&rep)[0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(err.contains("injected panic"), "{err}");
    assert!(
        err.contains("(at crates/slicewise-batch/src/batch.rs:"),
        "{err}"
    );
    assert_eq!(jobs(&rep)[1]["status"], "ok");
}

/// A 2.5D model (`context_slices` 1, foreground crop, four-flip TTA) through the CLI: `info`
/// states the context, and `segment --tta` writes the mask the engine gives for the same
/// volume, voxel for voxel.
#[test]
fn a_context_model_runs_through_the_cli_as_through_the_engine() {
    use slicewise::infer::{segment, Device, Model, ModelOptions, SegmentOptions};
    let model = crate::harness::repo().join("tests/data/unet_context.onnx");
    let r = run(&[&"info", &model]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("context:      2.5D, slices z−1…z+1 of each channel (3 model channels)"),
        "{}",
        r.stdout
    );
    let lgg = data("lgg/TCGA_CS_4943_20000902");
    let dir = tmpdir();
    super::segment_ok(&lgg, &model, dir.path(), &[&"--tta", &"--format", &"nifti"]);
    let mask = slicewise::Volume::open(dir.path().join("TCGA_CS_4943_20000902_mask.nii.gz"))
        .expect("the CLI's mask");
    let m = Model::open(&model, &ModelOptions::default().device(Device::Cpu)).expect("open");
    let volume = slicewise::Volume::open(&lgg).expect("patient");
    let seg = segment(
        &m,
        &volume,
        &SegmentOptions::default().tta(true),
        &mut |_| true,
    )
    .expect("engine");
    let cli: Vec<u8> = mask.data.iter().map(|&v| v as u8).collect();
    let engine: Vec<u8> = seg.mask.labels.iter().copied().collect();
    assert_eq!(cli.len(), engine.len());
    assert!(cli == engine, "CLI and engine masks differ");
    assert!(engine.iter().any(|&v| v != 0), "the test mask is empty");
}
