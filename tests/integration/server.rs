//! `slicewise serve`, the real binary on a free loopback port, driven by MONAI Label's own
//! Python client (`monailabel.client.MONAILabelClient`, from the monailabel 0.8.5 wheel — the
//! client 3D Slicer's extension runs) and by `requests`, through `tests/python/monailabel_client.py`.
//! The labels it answers must equal `slicewise segment`'s of the same file, voxel for voxel, on
//! the same grid.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli;
use crate::harness::{self, py, tmpdir};

pub(crate) const HIPPOCAMPUS_MODEL: &str = "msd-hippocampus-small";
pub(crate) const LGG_MODEL: &str = "lgg-flair-small";
/// A 22-slice MR series (one DICOM file per slice).
pub(crate) const MR_SERIES: &str = "mr-dicom-series/Study3/11-T1post-18670";
/// A 240×240×155 FLAIR: large enough that a job runs long enough to be cancelled.
pub(crate) const BRATS_FLAIR: &str =
    "brats2015/train/brats_2013_pat0005_1/Flair_subtrMeanDivStd.nii.gz";

pub(crate) fn hippocampus_image() -> PathBuf {
    harness::repo().join("models/samples/msd-hippocampus/hippocampus_375.nii.gz")
}

/// A running `slicewise serve`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    pub(crate) dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server on port 0 with a fresh datastore (after `prepare` fills it) and
    /// waits for its "listening on" line.
    pub(crate) fn start_with(extra: &[&str], prepare: impl FnOnce(&Path)) -> Server {
        Self::start_env(extra, &[], prepare)
    }

    /// [`Server::start_with`] with more environment variables for the server process.
    pub(crate) fn start_env(
        extra: &[&str],
        env: &[(&str, &str)],
        prepare: impl FnOnce(&Path),
    ) -> Server {
        Self::start_in(&harness::repo().join("models"), extra, env, prepare)
    }

    /// [`Server::start_with`] serving the models of the folder `models`.
    pub(crate) fn start_models(
        models: &Path,
        extra: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> Server {
        Self::start_in(models, extra, &[], prepare)
    }

    fn start_in(
        models: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        prepare: impl FnOnce(&Path),
    ) -> Server {
        let dir = tmpdir();
        let datastore = dir.path().join("datastore");
        prepare(&datastore);
        let stderr = std::fs::File::create(dir.path().join("stderr.txt")).expect("stderr file");
        let mut child = Command::new(cli::bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--device",
                "cpu",
                "--models",
            ])
            .arg(models)
            .arg("--datastore")
            .arg(&datastore)
            .args(extra)
            .env("SLICEWISE_ORT_LIB", cli::ort_lib())
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start slicewise serve");
        let url = listening_url(&mut child, dir.path());
        Server { child, url, dir }
    }

    pub(crate) fn start(extra: &[&str]) -> Server {
        Self::start_with(extra, |_| {})
    }

    /// Runs a `monailabel_client.py` subcommand against this server.
    pub(crate) fn py(&self, cmd: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Value {
        let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&cmd, &self.url];
        all.extend_from_slice(args);
        py("monailabel_client.py", &all)
    }

    /// Sends `specs` (see `monailabel_client.py requests`) and returns the responses.
    pub(crate) fn requests(&self, specs: Value) -> Vec<Value> {
        let out = self.py("requests", &[&specs.to_string()]);
        out["responses"].as_array().expect("responses").clone()
    }

    pub(crate) fn datastore(&self) -> PathBuf {
        self.dir.path().join("datastore")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's stdout until "listening on http://ADDR"; panics with its stderr if it
/// exits or takes more than two minutes.
fn listening_url(child: &mut Child, dir: &Path) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            let err = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
            panic!("slicewise serve did not start listening:\n{err}")
        })
}

/// `slicewise segment` of `image` with `model` (the reference every server label must equal).
pub(crate) fn cli_mask(image: &Path, model: &str, dir: &Path) -> PathBuf {
    let out = dir.join("cli");
    let report = dir.join("report.json");
    let model = harness::repo().join(format!("models/{model}.onnx"));
    // The server segments the series a viewer asks for whatever the model's series selection
    // says (the tumour model on the shared T1post): so does the reference.
    cli::segment_ok(
        image,
        &model,
        &out,
        &[&"--report", &report, &"--all-series"],
    );
    let rep = cli::read_json(&report);
    PathBuf::from(rep["jobs"][0]["mask"]["path"].as_str().expect("mask path"))
}

/// Puts `src` into a datastore as image `id` before the server starts.
pub(crate) fn seed(datastore: &Path, id: &str, src: &Path) {
    std::fs::create_dir_all(datastore.join("images")).unwrap();
    std::fs::copy(src, datastore.join(format!("images/{id}.nii.gz"))).unwrap();
}

pub(crate) fn assert_same_label(what: &str, v: &Value) {
    assert_eq!(
        v["equal"], true,
        "{what}: label differs from slicewise segment's: {v}"
    );
    assert!(
        v["affine_max_diff"].as_f64().unwrap() < 1e-5,
        "{what}: grid differs: {v}"
    );
    assert_eq!(v["dtype"], "uint8", "{what}");
}

#[test]
fn monailabel_client_round_trip_equals_cli_segment_voxel_for_voxel() {
    let s = Server::start(&[]);
    let image = hippocampus_image();
    let mask = cli_mask(&image, HIPPOCAMPUS_MODEL, s.dir.path());
    let out = s.py("roundtrip", &[&image, &HIPPOCAMPUS_MODEL, &mask]);

    assert_eq!(out["auth_enabled"], false);
    assert_eq!(
        out["top_level_config"], false,
        "Slicer refuses a top-level config"
    );
    for name in [HIPPOCAMPUS_MODEL, LGG_MODEL] {
        let m = &out["models"][name];
        assert_eq!(m["type"], "segmentation", "{name}: {m}");
        assert_eq!(m["dimension"], 3);
    }
    let labels = &out["models"][HIPPOCAMPUS_MODEL]["labels"];
    assert_eq!(
        labels,
        &json!({"anterior hippocampus": 1, "posterior hippocampus": 2})
    );
    assert_eq!(out["upload"], json!({"image": "hippocampus_375"}));
    assert_eq!(out["datastore_ids"], json!(["hippocampus_375"]));

    assert_same_label("NRRD", &out["nrrd"]);
    assert_eq!(out["nrrd"]["header"]["type"], "unsigned char");
    assert_eq!(out["nrrd"]["header"]["encoding"], "raw");
    assert!(out["nrrd"]["file"].as_str().unwrap().ends_with(".nrrd"));
    assert_same_label("NIfTI", &out["nifti"]);
    assert!(out["nifti"]["file"].as_str().unwrap().ends_with(".nii.gz"));
    assert_same_label("session", &out["session"]);
    assert_eq!(out["session_removed"], true);

    // Both labels occur: the comparison is not between two empty masks.
    let counts = out["nrrd"]["counts"].as_object().unwrap();
    assert!(
        counts.contains_key("1") && counts.contains_key("2"),
        "{counts:?}"
    );
    let p = &out["params"];
    assert_eq!(p["label_names"], *labels);
    assert_eq!(p["result_extension"], ".nrrd");
    assert_eq!(p["slicewise"]["model"], HIPPOCAMPUS_MODEL);
    assert!(p["latencies"]["total"].as_f64().unwrap() > 0.0);
}

#[test]
fn token_protected_server_refuses_without_the_token_and_accepts_it() {
    let dir = tmpdir();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let s = Server::start(&["--token-file", token_file.to_str().unwrap()]);
    let bearer = |t: &str| json!({"Authorization": format!("Bearer {t}")});
    let r = s.requests(json!([
        {"method": "GET", "path": "/info/"},
        {"method": "GET", "path": "/info/", "headers": bearer("wrong")},
        {"method": "GET", "path": "/jobs/"},
        {"method": "GET", "path": "/datastore/?output=all"},
        {"method": "POST", "path": format!("/infer/{HIPPOCAMPUS_MODEL}?image=x")},
        {"method": "GET", "path": "/info/", "headers": bearer("s3cret-token")},
        {"method": "GET", "path": "/auth/"},
        {"method": "POST", "path": "/auth/token", "body": "username=u&password=wrong&grant_type=password",
         "content_type": "application/x-www-form-urlencoded"},
        {"method": "POST", "path": "/auth/token", "body": "username=u&password=s3cret-token&grant_type=password",
         "content_type": "application/x-www-form-urlencoded"},
        {"method": "GET", "path": "/auth/token/valid", "headers": bearer("s3cret-token")},
    ]));
    for (i, resp) in r.iter().take(5).enumerate() {
        assert_eq!(
            resp["status"], 401,
            "request {i} without a valid token: {resp}"
        );
        assert_eq!(resp["json"]["error"], "unauthorized");
        assert_eq!(resp["headers"]["www-authenticate"], "Bearer");
    }
    assert_eq!(r[5]["status"], 200, "{}", r[5]);
    assert!(r[5]["json"]["models"][HIPPOCAMPUS_MODEL].is_object());
    assert_eq!(
        r[6]["json"]["enabled"], true,
        "clients must learn to log in"
    );
    assert_eq!(r[7]["status"], 401);
    assert_eq!(r[8]["json"]["access_token"], "s3cret-token");
    assert_eq!(r[9]["status"], 200);

    // MONAILabelClient with the token does the whole round trip.
    let image = hippocampus_image();
    let mask = cli_mask(&image, HIPPOCAMPUS_MODEL, dir.path());
    let out = s.py(
        "roundtrip",
        &[&image, &HIPPOCAMPUS_MODEL, &mask, &"s3cret-token"],
    );
    assert_eq!(out["auth_enabled"], true);
    assert_same_label("NRRD with token", &out["nrrd"]);
}

#[test]
fn bad_requests_get_json_4xx_and_the_server_keeps_serving() {
    let dir = tmpdir();
    let junk = dir.path().join("junk.nii.gz");
    std::fs::write(&junk, b"this is not a NIfTI file").unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"hello").unwrap();
    // Just past the limit: a much larger body could be cut off before the client reads the 413.
    let big = dir.path().join("big.nii.gz");
    std::fs::write(&big, vec![7u8; 3 << 19]).unwrap();
    let s = Server::start(&["--max-upload-mb", "1"]);
    let image = hippocampus_image();
    let upload = |path: &str| json!({"fields": {"params": "{}"}, "files": {"file": path}});
    let img = image.to_str().unwrap();
    let infer = |q: &str| format!("/infer/{HIPPOCAMPUS_MODEL}?{q}");
    let specs = json!([
        // 0-5: ids that would name paths outside the datastore.
        {"method": "PUT", "path": "/datastore/?image=../../etc/passwd", "multipart": upload(img)},
        {"method": "PUT", "path": "/datastore/?image=..%2F..%2Fescaped", "multipart": upload(img)},
        {"method": "POST", "path": infer("image=../../etc/passwd"), "multipart": {"fields": {"params": "{}"}}},
        {"method": "GET", "path": "/datastore/image?image=../../etc/passwd"},
        {"method": "DELETE", "path": "/datastore/image?id=..%2Fimages"},
        {"method": "GET", "path": "/session/..%2F..%2Fetc"},
        // 6-8: unknown model, image, route.
        {"method": "POST", "path": "/infer/no-such-model?image=x", "multipart": {"fields": {"params": "{}"}}},
        {"method": "POST", "path": infer("image=missing"), "multipart": {"fields": {"params": "{}"}}},
        {"method": "GET", "path": "/no/such/route"},
        // 9-10: malformed multipart bodies.
        {"method": "POST", "path": infer("image=x"), "body": "--nope\r\ngarbage without headers",
         "content_type": "multipart/form-data; boundary=b0undary"},
        {"method": "PUT", "path": "/datastore/?image=a", "body": "{}", "content_type": "application/json"},
        // 11-13: bad params, upload of a non-image and of a corrupt NIfTI.
        {"method": "PUT", "path": "/datastore/?image=hippo", "multipart": upload(img)},
        {"method": "POST", "path": infer("image=hippo"), "multipart": {"fields": {"params": "{\"result_extension\": \".png\"}"}}},
        {"method": "POST", "path": infer("image=hippo"), "multipart": {"fields": {"params": "not json"}}},
        {"method": "PUT", "path": "/datastore/?image=t", "multipart": upload(text.to_str().unwrap())},
        {"method": "PUT", "path": "/datastore/?image=j", "multipart": upload(junk.to_str().unwrap())},
        // 16: larger than --max-upload-mb.
        {"method": "PUT", "path": "/datastore/?image=big", "multipart": upload(big.to_str().unwrap())},
        // 17-18: still serving, and the good image infers.
        {"method": "GET", "path": "/info/"},
        {"method": "POST", "path": infer("image=hippo&output=json"), "multipart": {"fields": {"params": "{}"}}},
    ]);
    let r = s.requests(specs);
    let expect = [
        (0, 400, "bad_image_id"),
        (1, 400, "bad_image_id"),
        (2, 400, "bad_image_id"),
        (3, 400, "bad_image_id"),
        (4, 400, "bad_image_id"),
        (5, 404, "unknown_session"),
        (6, 404, "unknown_model"),
        (7, 404, "unknown_image"),
        (8, 404, "no_route"),
        (9, 400, "malformed_multipart"),
        (10, 400, "malformed_multipart"),
        (12, 400, "bad_params"),
        (13, 400, "bad_params"),
        (14, 400, "unsupported_file_type"),
        (15, 400, "bad_image"),
        (16, 413, "upload_too_large"),
    ];
    for (i, status, code) in expect {
        assert_eq!(r[i]["status"], status, "request {i}: {}", r[i]);
        assert_eq!(r[i]["json"]["error"], code, "request {i}: {}", r[i]);
        assert!(r[i]["json"]["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(r[11]["json"], json!({"image": "hippo"}));
    assert!(
        !r[15]["json"]["detail"]
            .as_str()
            .unwrap()
            .contains("staging"),
        "{}",
        r[15]
    );
    assert_eq!(r[17]["status"], 200);
    assert_eq!(r[18]["status"], 200, "{}", r[18]);
    assert_eq!(r[18]["json"]["slicewise"]["dims"], json!([32, 54, 34]));
    // Nothing landed outside the datastore's images, and no upload is left staged.
    assert!(!s.dir.path().join("etc").exists() && !s.datastore().join("escaped.nii.gz").exists());
    let images: Vec<_> = std::fs::read_dir(s.datastore().join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(images, ["hippo.nii.gz"]);
    assert_eq!(
        std::fs::read_dir(s.datastore().join("staging"))
            .unwrap()
            .count(),
        0
    );
}

/// A job that panics (injected by the debug build on the image stored as `boom.nii.gz`) answers
/// a JSON 500 naming what panicked and where, the server keeps serving, and its stderr carries
/// no Rust panic report.
#[test]
fn a_panicking_job_answers_500_with_its_place_and_stderr_has_no_panic_report() {
    let env = [
        ("SLICEWISE_DEBUG_PANIC", "boom.nii.gz"),
        ("RUST_BACKTRACE", "1"),
    ];
    let s = Server::start_env(&[], &env, |_| {});
    let img = hippocampus_image();
    let upload = |id: &str| {
        json!({"method": "PUT", "path": format!("/datastore/?image={id}"),
               "multipart": {"fields": {"params": "{}"}, "files": {"file": img.to_str().unwrap()}}})
    };
    let infer = |id: &str| {
        json!({"method": "POST", "path": format!("/infer/{HIPPOCAMPUS_MODEL}?image={id}&output=json"),
               "multipart": {"fields": {"params": "{}"}}})
    };
    let r = s.requests(json!([
        upload("boom"),
        upload("fine"),
        infer("boom"),
        infer("fine")
    ]));
    assert_eq!(r[2]["status"], 500, "{}", r[2]);
    let detail = r[2]["json"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("injected panic"), "{detail}");
    assert!(
        detail.contains("(at crates/slicewise-batch/src/batch.rs:"),
        "{detail}"
    );
    assert_eq!(r[3]["status"], 200, "{}", r[3]);
    let stderr = std::fs::read_to_string(s.dir.path().join("stderr.txt")).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn dicom_series_uploaded_as_files_infers_as_nrrd_dicom_seg_and_rtstruct_on_its_grid() {
    let series = harness::data(MR_SERIES);
    let s = Server::start(&[]);
    let mask = cli_mask(&series, LGG_MODEL, s.dir.path());
    let seg = s.dir.path().join("answer.dcm");
    let rt = s.dir.path().join("answer-rtstruct.dcm");
    let out = s.py("dicom-series", &[&LGG_MODEL, &series, &mask, &seg, &rt]);
    assert_eq!(out["upload_status"], 200, "{out}");
    assert_eq!(out["upload"], json!({"image": "mr"}));
    assert!(s.datastore().join("images/mr").is_dir());
    assert_same_label("DICOM series as NRRD", &out["nrrd"]);
    assert!(
        out["nrrd"]["counts"].get("1").is_some(),
        "empty mask: {out}"
    );

    assert_eq!(out["seg_status"], 200, "{out}");
    assert_eq!(out["seg_content_type"], "application/dicom");
    let check = py("seg_check.py", &[&seg, &series, &s.dir.path()]);
    assert_eq!(check["dcmdump_status"], 0, "{check}");
    assert_eq!(
        check["sop_class"], "1.2.840.10008.5.1.4.1.1.66.4",
        "{check}"
    );
    assert!(check["frames"].as_u64().unwrap() > 0);
    assert!(
        check["max_position_diff"].as_f64().unwrap() < 1e-3,
        "{check}"
    );
    assert!(
        check["max_orientation_diff"].as_f64().unwrap() < 1e-6,
        "{check}"
    );
    assert!(
        check["referenced_series"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{check}"
    );

    // output=rtstruct: the structures of the same mask, as the CLI's `--format rtstruct`.
    assert_eq!(out["rt_status"], 200, "{out}");
    assert_eq!(out["rt_content_type"], "application/dicom");
    let check = py("rtstruct_check.py", &[&rt, &series, &mask]);
    assert_eq!(check["modality"], "RTSTRUCT", "{check}");
    assert!(
        check["dciodvfy_errors"].as_array().unwrap().is_empty(),
        "{check}"
    );
    let tumour = &check["rois"][0];
    assert!(tumour["contours"].as_u64().unwrap() > 0, "{check}");
    for sl in tumour["slices"].as_array().unwrap() {
        assert_eq!(sl["dice_even_odd"], 1.0, "{sl}");
    }
}

#[test]
fn concurrent_infers_all_succeed_or_get_503_and_none_is_corrupt() {
    let image = hippocampus_image();
    let s = Server::start_with(&["--workers", "1", "--queue", "2"], |ds| {
        seed(ds, "hippo", &image)
    });
    let mask = cli_mask(&image, HIPPOCAMPUS_MODEL, s.dir.path());
    let out = s.py("concurrent", &[&HIPPOCAMPUS_MODEL, &"hippo", &mask, &"8"]);
    let results = out["results"].as_array().unwrap();
    let mut ok = 0;
    for r in results {
        match r["status"].as_i64() {
            Some(200) => {
                assert_same_label("concurrent", r);
                ok += 1;
            }
            Some(503) => {}
            _ => panic!("neither a label nor 503: {r}"),
        }
    }
    assert!(ok >= 1, "no request succeeded: {results:?}");
    let jobs = &s.requests(json!([{"method": "GET", "path": "/jobs/"}]))[0]["json"];
    assert_eq!(jobs["active"], 0, "{jobs}");
    let done = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["state"] == "done")
        .count();
    assert_eq!(done, ok, "{jobs}");
}

#[test]
fn disconnecting_client_cancels_its_job_and_a_full_queue_answers_503() {
    let flair = harness::data(BRATS_FLAIR);
    let s = Server::start_with(
        &["--workers", "1", "--queue", "0", "--batch-size", "4"],
        |ds| seed(ds, "flair", &flair),
    );
    let out = s.py("hold-and-drop", &[&LGG_MODEL, &"flair"]);
    assert_eq!(out["busy_status"], 503, "{out}");
    assert_eq!(out["busy_json"]["error"], "busy");
    let retry: u64 = out["busy_retry_after"].as_str().unwrap().parse().unwrap();
    assert!(retry > 0);
    let job = &out["job"];
    assert_eq!(job["state"], "cancelled", "{out}");
    let (done, total) = (
        job["done"].as_u64().unwrap(),
        job["total"].as_u64().unwrap(),
    );
    assert!(0 < done && done < total, "not stopped mid-run: {job}");
    eprintln!(
        "cancelled after {done}/{total} slices; worker free {:.3} s after the disconnect",
        out["seconds_to_stop"].as_f64().unwrap_or(f64::NAN)
    );
    assert!(job["error"].as_str().unwrap().contains("disconnected"));
    assert_eq!(out["after_status"], 200);
}

#[test]
fn request_past_the_timeout_is_answered_and_its_job_cancelled() {
    let flair = harness::data(BRATS_FLAIR);
    let s = Server::start_with(&["--timeout", "1", "--batch-size", "2"], |ds| {
        seed(ds, "flair", &flair)
    });
    let r = s.requests(json!([
        {"method": "POST", "path": format!("/infer/{LGG_MODEL}?image=flair"), "multipart": {"fields": {"params": "{}"}}},
    ]));
    assert_eq!(r[0]["status"], 503, "{}", r[0]);
    assert_eq!(r[0]["json"]["error"], "timeout");
    // The job stops at the engine's next check.
    let mut last = Value::Null;
    for _ in 0..200 {
        last =
            s.requests(json!([{"method": "GET", "path": "/jobs/"}]))[0]["json"]["jobs"][0].clone();
        if !["queued", "running", "cancelling"].contains(&last["state"].as_str().unwrap_or("")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(last["state"], "cancelled", "{last}");
}
