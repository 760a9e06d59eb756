//! The cross-validation of the tumour model's recipes (issue 31, `docs/cv/`): the report's
//! verdicts follow the rule written in `docs/cv/README.md` (`tests/python/test_cv_report.py`),
//! and the committed summary is what the report makes of the committed fold records. The card's
//! cross-validated figures are checked against the records in `bundled_model.rs`.

use std::process::Command;

use crate::cli;
use crate::harness::{self, tmpdir};

fn output_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("start python");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{report}");
    report
}

#[test]
fn report_verdicts_follow_the_written_decision_rule() {
    let report = output_of(
        Command::new(harness::python())
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE"])
            .arg(harness::repo().join("tests/python/test_cv_report.py"))
            .current_dir(harness::repo()),
    );
    assert!(report.contains(" passed"), "pytest ran no test:\n{report}");
}

/// `scripts/cv/report.py` run on a copy of the committed records writes the committed
/// `docs/cv/summary.json`: no figure quoted from it is stale.
#[test]
fn committed_cv_summary_is_the_report_of_the_committed_records() {
    let cv = harness::repo().join("docs/cv");
    let tmp = tmpdir();
    for cand in std::fs::read_dir(&cv).unwrap() {
        let cand = cand.unwrap().path();
        if !cand.is_dir() {
            continue;
        }
        let to = tmp.path().join(cand.file_name().unwrap());
        std::fs::create_dir(&to).unwrap();
        for rec in std::fs::read_dir(&cand).unwrap() {
            let rec = rec.unwrap().path();
            if rec.extension().is_some_and(|e| e == "json") {
                std::fs::copy(&rec, to.join(rec.file_name().unwrap())).unwrap();
            }
        }
    }
    output_of(
        Command::new(harness::python())
            .arg(harness::repo().join("scripts/cv/report.py"))
            .arg(tmp.path()),
    );
    assert_eq!(
        cli::read_json(&tmp.path().join("summary.json")),
        cli::read_json(&cv.join("summary.json")),
        "docs/cv/summary.json is stale: run scripts/cross-validate report"
    );
}
