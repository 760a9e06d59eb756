//! The harness shared by the integration tests (`tests/integration`) and the trainer's tests:
//! where the data and the reference Python are, running reference scripts, reading the raw arrays
//! they write, and the built `slicewise` binary and `libslicewise.so` under test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository (workspace) root: this package lives in its `tests/` folder.
pub fn repo() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// `../shared/data` (or `$SLICEWISE_SHARED_DATA`). Panics with a clear message when missing:
/// the suite is meant to run against the real data.
pub fn shared_data() -> PathBuf {
    let p = std::env::var_os("SLICEWISE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    assert!(
        p.join("README.md").exists(),
        "shared data not found at {} (set SLICEWISE_SHARED_DATA)",
        p.display()
    );
    p
}

/// A file or folder under the shared data.
pub fn data(rel: &str) -> PathBuf {
    let p = shared_data().join(rel);
    assert!(p.exists(), "missing test data {}", p.display());
    p
}

/// The bundled 2-label model, its card, and its bundled sample volume with the sample's expert
/// label map: all in the repository (what `scripts/demo` runs from a bare clone).
pub struct BundledHippocampus {
    /// `models/msd-hippocampus-small.onnx` (softmax: anterior, posterior hippocampus).
    pub model: PathBuf,
    /// Its card, `models/msd-hippocampus-small.card.json`.
    pub card: PathBuf,
    /// `models/samples/msd-hippocampus/hippocampus_375.nii.gz` (0.2 s a run).
    pub image: PathBuf,
    /// The sample's label map (0, 1, 2).
    pub truth: PathBuf,
}

/// Paths of [`BundledHippocampus`].
pub fn bundled_hippocampus() -> BundledHippocampus {
    let (models, sample) = (
        repo().join("models"),
        repo().join("models/samples/msd-hippocampus"),
    );
    BundledHippocampus {
        model: models.join("msd-hippocampus-small.onnx"),
        card: models.join("msd-hippocampus-small.card.json"),
        image: sample.join("hippocampus_375.nii.gz"),
        truth: sample.join("hippocampus_375_labels.nii.gz"),
    }
}

/// The reference Python interpreter (`.venv/bin/python`, or `$SLICEWISE_PYTHON`).
pub fn python() -> PathBuf {
    let p = std::env::var_os("SLICEWISE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "reference Python not found at {}: run scripts/setup --test",
        p.display()
    );
    p
}

/// Runs `scripts/setup FLAG` once per test process and flag (idempotent: it rebuilds or
/// reinstalls only what is stale), one at a time: `--python` and `--nnunet` both install the
/// slicewise wheel, and two at once would race on it. Panics when it fails.
pub fn ensure_setup(flag: &str) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static DONE: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if done.get_or_insert_with(HashSet::new).contains(flag) {
        return;
    }
    let ok = Command::new(repo().join("scripts/setup"))
        .arg(flag)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "scripts/setup {flag} failed");
    done.get_or_insert_with(HashSet::new)
        .insert(flag.to_string());
}

/// The nnU-Net venv's interpreter (`$SLICEWISE_NNUNET_PYTHON`, or `.venv-nnunet/bin/python`, with
/// nnunetv2 2.8.1, PyTorch and the slicewise wheel), set up by `scripts/setup --nnunet` on first
/// use: only the tests that need nnU-Net install it (~3.3 GB from PyPI the first time).
pub fn nnunet_python() -> PathBuf {
    if let Some(p) = std::env::var_os("SLICEWISE_NNUNET_PYTHON") {
        return PathBuf::from(p);
    }
    ensure_setup("--nnunet");
    let p = repo().join(".venv-nnunet/bin/python");
    assert!(
        p.exists(),
        "{} missing after scripts/setup --nnunet",
        p.display()
    );
    p
}

/// A system tool the tests run (`dcm2niix`, `cmake`, `gcc`, …), found on `PATH`. Panics naming the
/// tool and the Debian package that provides it when it is missing (`scripts/setup --test`
/// installs them all).
pub fn tool(name: &str) -> PathBuf {
    let package = match name {
        "dcmdump" | "dcmconv" | "dcmcrle" | "dcmcjpeg" | "dcmdjpeg" => "dcmtk",
        "dciodvfy" => "dicom3tools",
        "cc" => "gcc",
        "sha256sum" | "timeout" => "coreutils",
        other => other,
    };
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found on PATH: install the Debian package {package} (scripts/setup --test does)")
        })
}

/// Runs `tests/python/<script>` with `args` and parses its stdout as JSON. Panics with the
/// script's stderr when it fails.
pub fn py(script: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> serde_json::Value {
    let path = repo().join("tests/python").join(script);
    let mut cmd = Command::new(python());
    cmd.arg(&path);
    for a in args {
        cmd.arg(a);
    }
    let out = cmd.output().expect("failed to start reference Python");
    assert!(
        out.status.success(),
        "reference script {script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "reference script {script} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs the pytest file `tests/python/<file>` with the reference Python from the repository
/// root, `envs` set; panics with pytest's report when a test fails or none ran.
pub fn pytest(file: &str, envs: &[(&str, &std::ffi::OsStr)]) {
    let out = Command::new(python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE"])
        .arg(repo().join("tests/python").join(file))
        .current_dir(repo())
        .envs(envs.iter().copied())
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .expect("start pytest");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pytest {file} failed:\n{report}");
    assert!(
        report.contains(" passed"),
        "pytest {file} ran no test:\n{report}"
    );
}

/// Reads a raw little-endian f32 file (as written by `tests/python/common.py`'s `dump`).
pub fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Reads a raw u8 file.
pub fn read_u8(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `n` deterministic pseudo-random numbers in [0, 1) from `seed` (a 64-bit LCG's top 24 bits):
/// the same inputs on every run and machine.
pub fn uniform(seed: u64, n: usize) -> Vec<f32> {
    let step = |x: u64| {
        x.wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
    };
    let mut x = step(seed);
    (0..n)
        .map(|_| {
            x = step(x);
            ((x >> 40) as f32) / (1u64 << 24) as f32
        })
        .collect()
}

/// A fresh temporary folder, removed when dropped.
pub fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("slicewise-test-")
        .tempdir()
        .expect("temp dir")
}

/// The target folder of the running test executable (`target/<profile>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Builds the default workspace members with all their targets, in the test's own profile, once
/// per test process: the CLI binary and the cdylib are other packages' artefacts, which cargo
/// does not build for this one's tests. The same command as `scripts/test`'s build step, so that
/// cargo resolves the same dependency features and this is a no-op after it (building fewer
/// packages would resolve features differently and recompile shared dependencies).
fn build_workspace() {
    use std::sync::Once;
    static BUILT: Once = Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--all-targets", "--manifest-path"])
            .arg(repo().join("Cargo.toml"));
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cannot start cargo");
        assert!(status.success(), "cargo build --all-targets failed");
    });
}

/// The path of the built `slicewise` binary (package slicewise-cli), built once per test process.
pub fn slicewise_bin() -> PathBuf {
    use std::sync::OnceLock;
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        build_workspace();
        let bin = target_dir().join(format!("slicewise{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
    .clone()
}

/// Parses a JSON array of numbers into f64s.
pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Parses a JSON 4×4 array into a matrix.
pub fn mat4(v: &serde_json::Value) -> [[f64; 4]; 4] {
    let mut m = [[0.0; 4]; 4];
    for (r, row) in v.as_array().expect("rows").iter().enumerate() {
        for (c, x) in row.as_array().expect("cols").iter().enumerate() {
            m[r][c] = x.as_f64().expect("number");
        }
    }
    m
}

/// Asserts two affines agree to `tol` in every element.
pub fn assert_affine_close(a: &[[f64; 4]; 4], b: &[[f64; 4]; 4], tol: f64, what: &str) {
    for r in 0..4 {
        for c in 0..4 {
            assert!(
                (a[r][c] - b[r][c]).abs() <= tol,
                "{what}: affine differs at [{r}][{c}]: {} vs {}\n{a:?}\n{b:?}",
                a[r][c],
                b[r][c]
            );
        }
    }
}

/// Asserts two f32 slices agree to `tol` everywhere; reports the first mismatch.
pub fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let mut worst = (0usize, 0f32);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = if x.is_nan() && y.is_nan() {
            0.0
        } else {
            (x - y).abs()
        };
        if d.is_nan() || d > worst.1 {
            worst = (i, d);
        }
    }
    assert!(
        worst.1 <= tol,
        "{what}: max abs difference {} at index {} ({} vs {})",
        worst.1,
        worst.0,
        a[worst.0],
        b[worst.0]
    );
}

/// The ONNX Runtime library (`$SLICEWISE_ORT_LIB` or the project-local copy).
pub fn ort_lib() -> PathBuf {
    std::env::var_os("SLICEWISE_ORT_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/onnxruntime/libonnxruntime.so.1.31.1"))
}

/// The cdylib (`target/<profile>/libslicewise.so`) for hosts that load it (Python ctypes, C),
/// pinned in a private per-process folder: worktrees may share a target dir, and a build elsewhere
/// must not swap the library under a running test. Builds it (package slicewise-capi) when the
/// file in the target dir lacks this checkout's newest export.
pub fn cdylib() -> PathBuf {
    use std::sync::OnceLock;
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let name = format!(
            "{}slicewise{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        let has_abi = |p: &Path| {
            let needle = b"slicewise_mask_label_stats\0";
            std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        };
        let dir = target_dir();
        let src = dir.join(&name);
        if !has_abi(&src) {
            build_workspace();
        }
        assert!(has_abi(&src), "{} lacks the C ABI", src.display());
        let base = dir.join("cdylib-test");
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let pid = e.file_name().to_string_lossy().into_owned();
                if !Path::new("/proc").join(&pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let own = base.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&own);
        std::fs::create_dir_all(&own).expect("cdylib-test dir");
        // A hard link pins the inode (builds replace files rather than rewrite them).
        if std::fs::hard_link(&src, own.join(&name)).is_err() {
            std::fs::copy(&src, own.join(&name)).expect("copy cdylib");
        }
        own.join(name)
    })
    .clone()
}
