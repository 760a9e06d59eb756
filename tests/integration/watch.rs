//! `slicewise watch` against a real PACS: Debian's Orthanc (started here, one for the whole
//! file) holding a study of two real MR series, a real 3-slice CT series and a real DICOM SEG.
//! What the watcher stored is read back from Orthanc's own REST API (its parse of the stored
//! objects: modality, the series each SEG references, the algorithm named in it), never from
//! the watcher's journal.
//!
//! Selection: a model takes the image series its card's `series_selection` rules accept (never a
//! SEG, nor the results the watcher stores itself): the hippocampus model here takes the T1post
//! series and the hippocampus crops, not the CT (its rules want MR) nor the SEG.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, tmpdir};
use crate::server_pacs::Orthanc;

const LGG: &str = "lgg-flair-small";
const HIPPO: &str = "msd-hippocampus-small";

fn model(name: &str) -> PathBuf {
    harness::repo().join("models").join(format!("{name}.onnx"))
}

/// One HTTP/1.0 exchange with Orthanc's REST API: the status and the body as JSON (`Null` when
/// it is none).
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to Orthanc");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("Orthanc's answer");
    let text = String::from_utf8_lossy(&answer);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head[9..12].parse().expect("status");
    (status, serde_json::from_str(rest).unwrap_or(Value::Null))
}

fn get(o: &Orthanc, path: &str) -> Value {
    let (status, v) = http(o.port, "GET", path, b"");
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

/// Uploads every DICOM file of `files` through Orthanc's REST API.
fn upload(o: &Orthanc, files: &[PathBuf]) {
    for f in files {
        let bytes = std::fs::read(f).unwrap();
        let (status, v) = http(o.port, "POST", "/instances", &bytes);
        assert_eq!(status, 200, "{}: {v}", f.display());
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Waits until Orthanc has announced `n` stable series in all (its changes feed).
fn wait_stable(o: &Orthanc, n: usize) {
    let t0 = Instant::now();
    loop {
        let changes = get(o, "/changes?limit=10000");
        let stable = changes["Changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["ChangeType"] == "StableSeries")
            .count();
        if stable >= n {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{stable} of {n} series stable"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A series as Orthanc describes it: (SeriesInstanceUID, Modality).
fn series_list(o: &Orthanc) -> Vec<(String, String)> {
    get(o, "/series?expand")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let t = &s["MainDicomTags"];
            (
                t["SeriesInstanceUID"].as_str().unwrap_or("").to_string(),
                t["Modality"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Every SEG instance slicewise stored: (the series it references, the model it names).
fn slicewise_segs(o: &Orthanc) -> Vec<(String, String)> {
    seg_instances(o)
        .into_iter()
        .map(|(r, m, _)| (r, m))
        .collect()
}

/// Every SEG instance slicewise stored: (the series it references, the model it names, its
/// SOPInstanceUID).
fn seg_instances(o: &Orthanc) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for s in get(o, "/series?expand").as_array().unwrap() {
        if s["MainDicomTags"]["Modality"] != "SEG" {
            continue;
        }
        for i in s["Instances"].as_array().unwrap() {
            let tags = get(
                o,
                &format!("/instances/{}/tags?simplify", i.as_str().unwrap()),
            );
            let algorithm = tags["SegmentSequence"][0]["SegmentAlgorithmName"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let Some(model) = algorithm.strip_prefix("slicewise ") else {
                continue; // the uploaded SEG
            };
            let referenced = tags["ReferencedSeriesSequence"][0]["SeriesInstanceUID"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let sop = tags["SOPInstanceUID"].as_str().unwrap_or("").to_string();
            out.push((referenced, model.to_string(), sop));
        }
    }
    out.sort();
    out
}

/// `slicewise watch --pacs ... --state STATE` with `args` and `env`, its stdout and stderr in
/// files under `state/..`.
fn watch_cmd(o: &Orthanc, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = crate::cli::cmd(&[
        &"watch",
        &"--pacs",
        &o.dicomweb(),
        &"--state",
        &state,
        &"--device",
        &"cpu",
        &"--poll-seconds",
        &"0.3",
        &"--max-backoff",
        &"1",
    ]);
    c.args(args).envs(env.iter().copied());
    c
}

fn run_watch(o: &Orthanc, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    watch_cmd(o, state, args, env)
        .output()
        .expect("run slicewise watch")
}

fn spawn_watch(o: &Orthanc, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let log = std::fs::File::create(state.with_extension("stderr")).unwrap();
    watch_cmd(o, state, args, env)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start slicewise watch")
}

/// The audit lines of a state folder.
fn audit(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal(child: &Child, sig: libc_signal::Sig) {
    libc_signal::send(child.id(), sig);
}

/// Sending a signal without a libc dependency in the test crate: `kill(1)`.
mod libc_signal {
    pub enum Sig {
        Kill,
        Term,
    }
    pub fn send(pid: u32, sig: Sig) {
        let name = match sig {
            Sig::Kill => "-KILL",
            Sig::Term => "-TERM",
        };
        let ok = std::process::Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {name} {pid}");
    }
}

#[test]
fn watch_stores_one_seg_per_selected_series_through_crashes_kills_and_an_outage() {
    let t0 = Instant::now();
    let mut o = Orthanc::start();
    let mr = harness::data("mr-dicom-series/Study3");
    let ct = harness::data("dcmqi-ct3slice-seg/segmentations");
    let mut files = files_in(&mr.join("11-T1post-18670"));
    files.extend(files_in(&mr.join("11_HCropVolume")));
    files.extend(files_in(&ct.join("ct-3slice")));
    files.push(ct.join("liver.dcm"));
    upload(&o, &files);
    wait_stable(&o, 4);
    let before = series_list(&o);
    // The series the hippocampus model's rules take: the MR ones (not the CT, nor the SEG).
    let images: Vec<String> = before
        .iter()
        .filter(|(_, m)| m == "MR")
        .map(|(s, _)| s.clone())
        .collect();
    assert_eq!(images.len(), 2, "{before:?}");
    let work = tmpdir();
    let state = work.path().join("state");
    let hippo = model(HIPPO);
    let hippo = hippo.to_str().unwrap();
    let orthanc_args = ["--orthanc", "--model", hippo, "--backfill"];

    // 1. Killed right after its first STOW-RS, before journalling it (a debug hook aborts).
    let crashed = run_watch(
        &o,
        &state,
        &[&orthanc_args[..], &["--once"]].concat(),
        &[("SLICEWISE_DEBUG_WATCH_ABORT_AFTER_STORE", "1")],
    );
    assert!(!crashed.status.success(), "the hook did not abort");
    let segs = slicewise_segs(&o);
    assert_eq!(segs.len(), 1, "{segs:?}");

    // 2. Killed (SIGKILL) while it holds a claimed series (a debug hook stalls the worker).
    let mut child = spawn_watch(
        &o,
        &state,
        &orthanc_args,
        &[("SLICEWISE_DEBUG_WATCH_STALL", "60")],
    );
    wait_for("the second run to start", 60, || {
        audit(&state)
            .iter()
            .filter(|e| e["event"] == "started")
            .count()
            == 2
    });
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc_signal::Sig::Kill);
    let _ = child.wait();
    assert_eq!(slicewise_segs(&o), segs, "the killed run stored something");

    // 3. Run to completion: one SEG per selected series, the one stored before the crash found
    //    in the PACS rather than stored again; nothing for the CT (the card's rules), the
    //    uploaded SEG nor the watcher's own.
    let done = run_watch(&o, &state, &[&orthanc_args[..], &["--once"]].concat(), &[]);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    let segs = slicewise_segs(&o);
    let mut expected: Vec<(String, String)> = images
        .iter()
        .map(|s| (s.clone(), HIPPO.to_string()))
        .collect();
    expected.sort();
    assert_eq!(segs, expected, "{stderr}");
    let found: Vec<Value> = audit(&state)
        .into_iter()
        .filter(|e| e["event"] == "stored" && e["already_in_pacs"] == true)
        .collect();
    assert_eq!(found.len(), 1, "the crashed run's result: {found:?}");
    // The instances Orthanc holds are the ones the audit names (their UIDs were stamped).
    let mut audited: Vec<String> = audit(&state)
        .iter()
        .filter(|e| e["event"] == "stored")
        .map(|e| e["result"].as_str().unwrap().to_string())
        .collect();
    audited.sort();
    let mut held: Vec<String> = seg_instances(&o).into_iter().map(|(_, _, u)| u).collect();
    held.sort();
    assert_eq!(audited, held);
    let skipped: Vec<Value> = audit(&state)
        .into_iter()
        .filter(|e| e["event"] == "skipped")
        .collect();
    assert!(
        skipped
            .iter()
            .any(|e| e["reason"] == "modality SEG is not an image"),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|e| e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Modality CT"))),
        "the CT is not skipped by the card's rules: {skipped:?}"
    );

    // 4. Orthanc stops for a while: the watcher waits (the reason logged), and once Orthanc is
    //    back on the same storage it segments a series that arrives then.
    let mut child = spawn_watch(&o, &state, &orthanc_args[..3], &[]);
    wait_for("the watcher to follow", 60, || {
        audit(&state)
            .iter()
            .filter(|e| e["event"] == "started")
            .count()
            == 4
    });
    o.reap();
    wait_for("the watcher to notice the outage", 30, || {
        audit(&state).iter().any(|e| e["event"] == "pacs_waiting")
    });
    std::thread::sleep(Duration::from_secs(2));
    o.launch();
    let late = harness::data("mr-dicom-series/Study1");
    let late_dir = std::fs::read_dir(&late)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("HCropVolume"))
        .expect("Study1's hippocampus crop");
    upload(&o, &files_in(&late_dir));
    wait_for("the late series' SEG", 120, || {
        slicewise_segs(&o).len() == 3
    });
    signal(&child, libc_signal::Sig::Term);
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(state.with_extension("stderr")).unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("cannot be reached"), "no reason logged: {log}");
    assert_eq!(slicewise_segs(&o).len(), 3);

    // 5. Any DICOMweb server: QIDO-RS polling, another format, a fresh state folder: one
    //    RTSTRUCT per selected series (the three MR series now there), nothing twice when run
    //    again; the tumour model's rules (FLAIR) take none of them.
    let qido_state = work.path().join("qido");
    let lgg = model(LGG);
    let args = [
        "--model",
        hippo,
        "--model",
        lgg.to_str().unwrap(),
        "--format",
        "rtstruct",
        "--backfill",
        "--once",
    ];
    for _ in 0..2 {
        let out = run_watch(&o, &qido_state, &args, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let segs = slicewise_segs(&o);
    assert_eq!(segs.len(), 3, "{segs:?}");
    let rtstructs = get(&o, "/series?expand")
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["MainDicomTags"]["Modality"] == "RTSTRUCT")
        .map(|s| s["Instances"].as_array().unwrap().len())
        .sum::<usize>();
    assert_eq!(rtstructs, 3, "RTSTRUCTs stored by QIDO-RS polling");
    // A study window of one day finds none of these years-old studies.
    let out = run_watch(
        &o,
        &work.path().join("window"),
        &[&args[..], &["--study-days", "1"]].concat(),
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("0 stored, 0 skipped, 0 failed"), "{stderr}");
    assert_eq!(slicewise_segs(&o).len(), segs.len());
    eprintln!("watch test {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn watch_refuses_a_bad_url_and_never_shows_the_pacs_credentials() {
    let work = tmpdir();
    let lgg = model(LGG);
    let state = work.path().join("bad");
    let out = crate::cli::cmd(&[
        &"watch",
        &"--pacs",
        &"ftp://pacs",
        &"--model",
        &lgg,
        &"--state",
        &state,
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--pacs ftp://pacs"), "{stderr}");
    assert!(!state.exists(), "a refused start wrote its state folder");

    // Nothing listens on port 1: the watcher waits, saying why, without the password or token.
    let state = work.path().join("away");
    let token = work.path().join("token");
    std::fs::write(&token, "t0ken-value\n").unwrap();
    let log = work.path().join("away.stderr");
    let mut child = crate::cli::cmd(&[
        &"watch",
        &"--pacs",
        &"http://user:s3cret-pw@127.0.0.1:1/dicom-web",
        &"--pacs-token-file",
        &token,
        &"--model",
        &lgg,
        &"--state",
        &state,
        &"--device",
        &"cpu",
        &"--max-backoff",
        &"1",
        &"-v",
    ])
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    wait_for("a retry", 60, || {
        audit(&state)
            .iter()
            .filter(|e| e["event"] == "pacs_waiting")
            .count()
            >= 2
    });
    signal(&child, libc_signal::Sig::Term);
    assert!(child.wait().unwrap().success());
    let said = std::fs::read_to_string(&log).unwrap()
        + &std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    assert!(said.contains("cannot connect"), "{said}");
    for secret in ["s3cret-pw", "t0ken-value", "user:"] {
        assert!(!said.contains(secret), "{secret} shown: {said}");
    }
}
