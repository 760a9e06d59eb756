//! The `slicewise` command line, run as a built binary (ripgrep style): a small harness here,
//! one file per subcommand. Regression tests are named after what they guard.

#[path = "cli_evaluate.rs"]
mod evaluate;
#[path = "cli_segment.rs"]
mod segment;
#[path = "cli_series_selection.rs"]
mod series_selection;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness;

/// The output of one `slicewise` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Collects a finished process's output.
    pub fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// The binary under test: `$SLICEWISE_BIN` when set (worktrees sharing one target folder can
/// overwrite each other's `target/debug/slicewise` mid-run; point this at a private copy), else
/// the one cargo built for this test.
pub fn bin() -> PathBuf {
    std::env::var_os("SLICEWISE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(harness::slicewise_bin)
}

/// A `slicewise` command with the ONNX Runtime library configured.
pub fn cmd(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut c = Command::new(bin());
    c.env("SLICEWISE_ORT_LIB", ort_lib());
    c.env_remove("RUST_LOG");
    for a in args {
        c.arg(a);
    }
    c
}

/// Runs `slicewise` with `args` to completion.
pub fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Run {
    Run::from_output(cmd(args).output().expect("start slicewise"))
}

pub use crate::harness::ort_lib;

/// `slicewise segment INPUT --model MODEL --out OUT --device cpu EXTRA...`, asserting it succeeds.
pub fn segment_ok(
    input: &Path,
    model: &Path,
    out: &Path,
    extra: &[&dyn AsRef<std::ffi::OsStr>],
) -> Run {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"segment",
        &input,
        &"--model",
        &model,
        &"--out",
        &out,
        &"--device",
        &"cpu",
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert_eq!(r.code, 0, "segment {}: {}", input.display(), r.stderr);
    r
}

/// The engine's tiny test model (random weights: masks are meaningless, but deterministic).
pub fn test_model() -> PathBuf {
    harness::repo().join("tests/data/unet_sigmoid.onnx")
}

/// Reads and parses a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
