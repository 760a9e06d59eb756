//! The Python package (`crates/slicewise-py`, the `slicewise` wheel): its pytest suites
//! `tests/python/test_pkg_*.py`, run with the harness's Python against the CLI binary under test
//! (API vs CLI masks, nibabel, pydicom, tifffile; the sharded CLI and `merge-reports`; Ray).
//!
//! The wheel is built and installed into `.venv` by `scripts/setup --python` (part of `--test`),
//! which rebuilds it only when its sources changed; each test process runs it once first, so
//! the suites never test a stale build.

use crate::harness;

/// Brings the installed wheel up to date with the sources (a no-op when it is).
fn ensure_wheel() {
    harness::ensure_setup("--python");
}

/// Runs one pytest file against the up-to-date wheel and the CLI binary under test.
fn pytest(file: &str) {
    ensure_wheel();
    let (cli, ort, data) = (
        super::cli::bin(),
        harness::ort_lib(),
        harness::shared_data(),
    );
    harness::pytest(
        file,
        &[
            ("SLICEWISE_BIN", cli.as_os_str()),
            ("SLICEWISE_ORT_LIB", ort.as_os_str()),
            ("SLICEWISE_SHARED_DATA", data.as_os_str()),
        ],
    );
}

#[test]
fn python_api_matches_cli_nibabel_pydicom_and_tifffile() {
    pytest("test_pkg_api.py");
}

#[test]
fn python_channel_lists_and_nnunet_folders_match_the_reference() {
    pytest("test_pkg_channels.py");
}

#[test]
fn sharded_cli_covers_every_row_once_and_merges_into_the_unsharded_report() {
    pytest("test_pkg_shards.py");
}

#[test]
fn ray_batch_writes_the_cli_outputs_on_a_local_two_node_cluster() {
    pytest("test_pkg_ray.py");
}

#[test]
fn nnunet_importer_refuses_by_name_and_exports_the_plans_and_folds() {
    // The export half runs in the nnU-Net venv, which must exist (never a skip here).
    harness::nnunet_python();
    pytest("test_pkg_nnunet.py");
}
