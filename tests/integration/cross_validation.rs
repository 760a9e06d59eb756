//! The cross-validation of the tumour model's recipes (issue 31, `docs/cv/`): the report's
//! verdicts follow the rule written in `docs/cv/README.md` (`tests/python/test_cv_report.py`),
//! and the committed summary is what the report makes of the committed fold records. The card's
//! cross-validated figures are checked against the records in `bundled_model.rs`.

use std::process::Command;

use crate::cli;
use crate::harness::{self, tmpdir};

#[test]
fn report_verdicts_follow_the_written_decision_rule() {
    harness::pytest("test_cv_report.py", &[]);
}

/// `scripts/cv/report.py` run on the committed records writes the committed
/// `docs/cv/summary.json`: no figure quoted from it is stale.
#[test]
fn committed_cv_summary_is_the_report_of_the_committed_records() {
    let cv = harness::repo().join("docs/cv");
    let tmp = tmpdir();
    let out = Command::new(harness::python())
        .arg(harness::repo().join("scripts/cv/report.py"))
        .args([&cv, tmp.path()])
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "scripts/cv/report.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        cli::read_json(&tmp.path().join("summary.json")),
        cli::read_json(&cv.join("summary.json")),
        "docs/cv/summary.json is stale: run scripts/cross-validate report"
    );
}
