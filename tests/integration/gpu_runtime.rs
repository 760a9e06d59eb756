//! The GPU ONNX Runtime that `scripts/setup --gpu` assembles in `.cache/onnxruntime-gpu/`, on a
//! machine without the NVIDIA driver: `--device auto` runs on CPU and says the driver is why,
//! `--device cuda` fails with that reason. These run only where that folder is installed (it is
//! 2.2 GB, not part of `scripts/setup --test`) and no driver is present; on a GPU machine
//! `scripts/gpu-check` checks the providers themselves.

use std::path::{Path, PathBuf};

use crate::cli::{cmd, read_json, Run};
use crate::harness::{bundled_hippocampus, repo, tmpdir};

/// The GPU runtime library, when installed and this machine has no NVIDIA driver.
fn gpu_runtime_without_driver() -> Option<PathBuf> {
    let lib = repo().join(".cache/onnxruntime-gpu/libonnxruntime.so.1.31.1");
    if !lib.is_file() {
        eprintln!(
            "skipped: {} not installed (scripts/setup --gpu)",
            lib.display()
        );
        return None;
    }
    // SAFETY: only probes whether the driver library loads; nothing of it is called.
    if unsafe { libloading::Library::new("libcuda.so.1") }.is_ok() {
        eprintln!("skipped: this machine has an NVIDIA driver (scripts/gpu-check covers it)");
        return None;
    }
    Some(lib)
}

/// `segment` of the bundled sample on `device` with the runtime `lib`, into `out`.
fn segment(lib: &Path, device: &str, out: &Path) -> Run {
    let b = bundled_hippocampus();
    let report = out.join("report.json");
    let mut c = cmd(&[
        &"segment",
        &b.image,
        &"--model",
        &b.model,
        &"--out",
        &out,
        &"--device",
        &device,
        &"--report",
        &report,
    ]);
    c.env("SLICEWISE_ORT_LIB", lib);
    Run::from_output(c.output().expect("start slicewise"))
}

/// The reason every message must give: the driver, by its library's name.
fn names_the_missing_driver(text: &str) -> bool {
    text.contains("NVIDIA driver") && text.contains("libcuda.so.1")
}

#[test]
fn auto_device_on_the_gpu_runtime_without_a_driver_runs_on_cpu_and_says_the_driver_is_missing() {
    let Some(lib) = gpu_runtime_without_driver() else {
        return;
    };
    let dir = tmpdir();
    let r = segment(&lib, "auto", &dir.path().join("gpu-runtime"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("slicewise: running on CPU ("))
        .unwrap_or_else(|| panic!("no device line:\n{}", r.stderr));
    assert!(names_the_missing_driver(line), "{line}");
    let report = read_json(&dir.path().join("gpu-runtime/report.json"));
    let provider = &report["model"]["provider"];
    assert_eq!(provider["used"], "CPUExecutionProvider");
    let notes = provider["notes"].to_string();
    assert!(
        notes.contains("CUDA: ") && names_the_missing_driver(&notes),
        "{notes}"
    );

    // The GPU build's CPU provider writes the mask the CPU runtime writes.
    let cpu_lib = crate::cli::ort_lib();
    let cpu = segment(&cpu_lib, "cpu", &dir.path().join("cpu-runtime"));
    assert_eq!(cpu.code, 0, "{}", cpu.stderr);
    let mask = |sub: &str| {
        let rep = read_json(&dir.path().join(sub).join("report.json"));
        std::fs::read(rep["jobs"][0]["mask"]["path"].as_str().unwrap()).unwrap()
    };
    assert!(mask("gpu-runtime") == mask("cpu-runtime"));
}

#[test]
fn cuda_device_on_the_gpu_runtime_without_a_driver_fails_naming_the_driver() {
    let Some(lib) = gpu_runtime_without_driver() else {
        return;
    };
    let dir = tmpdir();
    let out = dir.path().join("out");
    let r = segment(&lib, "cuda", &out);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(names_the_missing_driver(&r.stderr), "{}", r.stderr);
    assert!(r.stderr.contains("CUDA"), "{}", r.stderr);
    let masks = std::fs::read_dir(&out)
        .map(|d| d.filter(|e| e.is_ok()).count())
        .unwrap_or(0);
    assert_eq!(masks, 0, "nothing is written when the model cannot load");
}
