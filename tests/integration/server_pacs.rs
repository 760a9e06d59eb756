//! `slicewise serve --dicomweb` against a real PACS: Debian's Orthanc with its DICOMweb plugin,
//! started here on a free loopback port with its own storage, the 22-slice MR series uploaded
//! through its REST API. MONAI Label's own client infers the series by SeriesInstanceUID
//! (`tests/python/pacs_client.py`); the label must equal `slicewise segment`'s of the same files,
//! voxel for voxel, and the DICOM SEG the server stores back must read in highdicom with the
//! right references and the model card's segment labels.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{self, py, tmpdir};
use crate::server::{
    assert_same_label, cli_mask, hippocampus_image, seed, Server, BRATS_FLAIR, HIPPOCAMPUS_MODEL,
    LGG_MODEL, MR_SERIES,
};

/// A real Orthanc on a free loopback port, with its storage in a temporary folder, killed when
/// dropped. Not the system service: each test gets an empty one. A series is stable (Orthanc's
/// `StableSeries` change, what `slicewise watch --orthanc` follows) one second after its last
/// instance.
pub(crate) struct Orthanc {
    child: Option<Child>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) port: u16,
}

impl Orthanc {
    pub(crate) fn start() -> Orthanc {
        let port = free_port();
        let mut o = Orthanc {
            child: None,
            dir: tmpdir(),
            port,
        };
        o.launch();
        o
    }

    /// Starts it (again) on the same port and storage, and waits until `/system` answers.
    pub(crate) fn launch(&mut self) {
        let config = self.dir.path().join("orthanc.json");
        let storage = self.dir.path().join("storage");
        let cfg = json!({
            "Name": "slicewise-test",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "HttpPort": self.port,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "DicomServerEnabled": false,
            "HttpCompressionEnabled": false,
            "StableAge": 1,
            "Plugins": [dicomweb_plugin()],
            "DicomWeb": { "Enable": true, "Root": "/dicom-web/" },
        });
        std::fs::write(&config, cfg.to_string()).expect("orthanc config");
        let log = std::fs::File::create(self.dir.path().join("orthanc.log")).expect("log file");
        let child = Command::new(orthanc_bin())
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start Orthanc");
        self.child = Some(child);
        let t0 = Instant::now();
        while http_status(self.port, "/system") != Some(200) {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || t0.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(self.dir.path().join("orthanc.log"));
                panic!("Orthanc did not start: {}", log.unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Reaps it once something else (the Python client) has killed it; kills it otherwise.
    pub(crate) fn reap(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn dicomweb(&self) -> String {
        format!("{}/dicom-web", self.url())
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        self.reap();
    }
}

fn orthanc_bin() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("Orthanc"))
        .find(|p| p.is_file())
        .expect("Orthanc not found: install Debian's orthanc and orthanc-dicomweb (scripts/setup --test does)")
}

/// The DICOMweb plugin alone (the plugin folder also holds others the tests do not need).
fn dicomweb_plugin() -> PathBuf {
    ["/usr/share/orthanc/plugins", "/usr/lib/orthanc"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libOrthancDicomWeb.so"))
        })
        .expect("Orthanc's DICOMweb plugin not found: install Debian's orthanc-dicomweb (scripts/setup --test does)")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The status of `GET path` on the loopback port, if anything answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The OHIF viewer of the monailabel wheel in the project's `.venv`.
fn ohif_dir() -> PathBuf {
    let lib = harness::repo().join(".venv/lib");
    std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            e.path()
                .join("site-packages/monailabel/endpoints/static/ohif")
        })
        .find(|d| d.join("index.html").is_file())
        .expect("monailabel's OHIF viewer not found in .venv: run scripts/setup --test")
}

fn cache_dir(s: &Server) -> PathBuf {
    s.datastore().join("dicomweb")
}

fn status_and_type(v: &Value) -> (i64, String) {
    (
        v["status"].as_i64().unwrap_or(-1),
        v["type"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn pacs_series_infers_like_the_cli_and_its_seg_is_stored_in_orthanc() {
    let t0 = Instant::now();
    let orthanc = Orthanc::start();
    let orthanc_s = t0.elapsed().as_secs_f64();
    let series = harness::data(MR_SERIES);
    let ohif = ohif_dir();
    let s = Server::start(&[
        "--dicomweb",
        &orthanc.dicomweb(),
        "--ohif",
        ohif.to_str().unwrap(),
    ]);
    let mask = cli_mask(&series, LGG_MODEL, s.dir.path());
    let seg_file = s.dir.path().join("stored-seg.dcm");
    let out = py(
        "pacs_client.py",
        &[
            &"roundtrip",
            &s.url,
            &orthanc.url(),
            &series,
            &LGG_MODEL,
            &mask,
            &seg_file,
        ],
    );
    let uid = out["upload"]["series"]
        .as_str()
        .expect("series uid")
        .to_string();
    assert_eq!(out["upload"]["instances"], 22, "{out}");

    // The datastore lists the PACS series, as MONAI Label's DICOMweb datastore does.
    assert_eq!(out["listed"], true, "{out}");
    assert_eq!(out["listed_info"]["Modality"], "MR");
    assert_eq!(
        out["listed_info"]["StudyInstanceUID"],
        out["upload"]["study"]
    );

    // Fetched over WADO-RS, segmented: the CLI's label on the CLI's grid, then again from the
    // cache.
    assert_same_label("PACS series as NRRD", &out["first"]);
    assert_same_label("PACS series from the cache", &out["cached"]);
    assert!(
        out["first"]["counts"].get("1").is_some(),
        "empty mask: {out}"
    );
    let cached = cache_dir(&s).join(&uid);
    assert_eq!(std::fs::read_dir(&cached).unwrap().count(), 22);
    assert_eq!(
        std::fs::read_dir(s.datastore().join("staging"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        out["params"]["label_names"],
        json!({"FLAIR abnormality": 1})
    );

    // output=dicom_seg: answered as the SEG file (MONAI Label's shape) and stored in Orthanc.
    assert_eq!(out["seg_status"], 200, "{out}");
    assert_eq!(out["seg_content_type"], "application/dicom");
    assert_eq!(out["stored_equals_answer"], true, "{out}");
    let seg = &out["seg"];
    assert_eq!(out["stored_seg_series"], json!([seg["series"]]), "{out}");
    assert!(
        out["seg_location"]
            .as_str()
            .is_some_and(|l| l.contains(seg["series"].as_str().unwrap())),
        "{out}"
    );
    assert_eq!(seg["sop_class"], "1.2.840.10008.5.1.4.1.1.66.4");
    assert_eq!(seg["referenced_series"], json!([uid]));
    assert_eq!(seg["study"], out["upload"]["study"]);
    assert_eq!(seg["segment_labels"], json!(["FLAIR abnormality"]));
    assert_eq!(seg["algorithm"], json!(["slicewise lgg-flair-small"]));
    assert!(seg["frames"].as_u64().unwrap() > 0);
    let check = py("seg_check.py", &[&seg_file, &series, &s.dir.path()]);
    assert!(
        check["max_position_diff"].as_f64().unwrap() < 1e-3,
        "{check}"
    );
    assert!(
        check["max_orientation_diff"].as_f64().unwrap() < 1e-6,
        "{check}"
    );

    // The viewer and the DICOMweb proxy its app-config.js points at.
    let v = &out["viewer"];
    assert_eq!(
        status_and_type(&v["index"]),
        (200, "text/html".into()),
        "{v}"
    );
    assert_eq!(v["index"]["ohif"], true);
    assert_eq!(v["config"]["qido_root"], true, "{v}");
    assert_eq!(v["spa_route"]["index"], true, "{v}");
    assert_eq!(
        v["outside"]["index"], true,
        "a path outside the viewer: {v}"
    );
    assert_eq!(v["qido_studies"]["status"], 200, "{v}");
    assert_eq!(
        v["qido_studies"]["studies"],
        json!([out["upload"]["study"]])
    );
    assert_eq!(v["metadata"]["instances"], 22, "{v}");
    assert_eq!(v["frame"]["status"], 200, "{v}");
    assert!(v["frame"]["type"]
        .as_str()
        .unwrap()
        .starts_with("multipart/related"));
    assert!(v["frame"]["bytes"].as_u64().unwrap() > 320 * 280, "{v}");
    assert_eq!(v["escape"]["status"], 400, "{v}");
    assert_eq!(v["escape"]["error"], "bad_proxy_path");
    eprintln!(
        "Orthanc up in {orthanc_s:.2} s; PACS infer {:.2} s (fetch + segment), cached {:.2} s, \
         SEG + STOW {:.2} s; whole test {:.1} s",
        out["first"]["seconds"].as_f64().unwrap_or(f64::NAN),
        out["cached"]["seconds"].as_f64().unwrap_or(f64::NAN),
        out["seg_seconds"].as_f64().unwrap_or(f64::NAN),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn orthanc_stopped_mid_request_is_a_502_nothing_is_stored_and_the_server_keeps_serving() {
    let t0 = Instant::now();
    let mut orthanc = Orthanc::start();
    let flair = harness::data(BRATS_FLAIR);
    let hippo = hippocampus_image();
    let s = Server::start_with(
        &[
            "--dicomweb",
            &orthanc.dicomweb(),
            "--no-ohif",
            "--workers",
            "1",
            "--queue",
            "2",
            "--batch-size",
            "2",
        ],
        |ds| {
            seed(ds, "flair", &flair);
            seed(ds, "hippo", &hippo);
        },
    );
    let series = harness::data(MR_SERIES);
    let out = py(
        "pacs_client.py",
        &[
            &"outage",
            &s.url,
            &orthanc.url(),
            &orthanc.pid().to_string(),
            &series,
            &LGG_MODEL,
            &"flair",
            &HIPPOCAMPUS_MODEL,
            &"hippo",
            &cache_dir(&s),
        ],
    );
    orthanc.reap();
    // The SEG request was past its fetch and waiting for the worker when Orthanc went away.
    assert_eq!(out["fetched_before_kill"], true, "{out}");
    assert_eq!(out["queued_at_kill"], true, "{out}");
    assert_eq!(out["hold_running_at_kill"], true, "{out}");
    let seg = &out["seg"];
    assert_eq!(seg["status"], 502, "{out}");
    assert_eq!(seg["json"]["error"], "pacs_unreachable", "{out}");
    let detail = seg["json"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("STOW-RS") && detail.contains(&orthanc.dicomweb()),
        "{detail}"
    );
    assert_eq!(
        out["seg_job"][0]["state"], "done",
        "the segmentation itself ran: {out}"
    );

    // Still serving: /info/, a local image, and a clear 502 for the PACS (cached or not).
    assert_eq!(out["info_status"], 200);
    assert_eq!(
        status_and_type(&out["local"]),
        (200, "application/json".into()),
        "{out}"
    );
    assert_eq!(out["again"]["status"], 502, "{out}");
    assert_eq!(out["again"]["json"]["error"], "pacs_unreachable");
    assert!(out["again"]["json"]["detail"]
        .as_str()
        .unwrap()
        .contains("QIDO-RS"));
    assert_eq!(out["proxy"]["status"], 502, "{out}");
    assert_eq!(out["proxy"]["json"]["error"], "pacs_unreachable");

    // Orthanc back on the same storage: the failed request stored nothing; asked again, it works.
    orthanc.launch();
    let uid = out["series"].as_str().unwrap();
    let after = py(
        "pacs_client.py",
        &[&"after", &s.url, &orthanc.url(), &LGG_MODEL, &uid],
    );
    assert_eq!(after["segs_before"], json!([]), "a SEG was stored: {after}");
    assert_eq!(after["status"], 200, "{after}");
    assert_eq!(after["segs_after"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(
        std::fs::read_dir(s.datastore().join("staging"))
            .unwrap()
            .count(),
        0
    );
    eprintln!("outage test {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn unknown_series_is_404_and_a_bad_pacs_url_refuses_to_start() {
    let orthanc = Orthanc::start();
    let s = Server::start(&["--dicomweb", &orthanc.dicomweb(), "--no-ohif"]);
    let r = s.requests(json!([
        {"method": "POST", "path": format!("/infer/{LGG_MODEL}?image=1.2.3.4"), "multipart": {"fields": {"params": "{}"}}},
        {"method": "GET", "path": "/datastore/?output=all"},
        {"method": "GET", "path": "/datastore/"},
    ]));
    assert_eq!(r[0]["status"], 404, "{}", r[0]);
    assert_eq!(r[0]["json"]["error"], "unknown_series");
    assert_eq!(r[1]["status"], 200, "{}", r[1]);
    assert_eq!(r[1]["json"]["objects"], json!({}));
    assert_eq!(r[2]["json"]["total"], 0);
    let dir = tmpdir();
    let cli = crate::cli::run(&[
        &"serve",
        &"--dicomweb",
        &"ftp://pacs",
        &"--datastore",
        &dir.path(),
        &"--listen",
        &"127.0.0.1:0",
    ]);
    assert_eq!(cli.code, 2, "{}", cli.stderr);
    assert!(cli.stderr.contains("--dicomweb"), "{}", cli.stderr);
}

/// Where the browser test leaves its screenshots: `target/test-artifacts/ohif/`.
fn artefacts() -> PathBuf {
    let dir = harness::repo().join("target/test-artifacts/ohif");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artefact folder");
    dir
}

#[test]
fn ohif_in_headless_chromium_runs_the_model_and_shows_the_label() {
    let t0 = Instant::now();
    let orthanc = Orthanc::start();
    let ohif = ohif_dir();
    let s = Server::start(&[
        "--dicomweb",
        &orthanc.dicomweb(),
        "--ohif",
        ohif.to_str().unwrap(),
    ]);
    let series = harness::data(MR_SERIES);
    let up = py("pacs_client.py", &[&"upload", &orthanc.url(), &series]);
    let mask = cli_mask(&series, LGG_MODEL, s.dir.path());
    let out_dir = artefacts();
    let study = up["study"].as_str().expect("study uid");
    let out = py(
        "ohif_browser.py",
        &[&s.url, &study, &LGG_MODEL, &out_dir, &mask],
    );
    assert!(
        out.get("error").is_none(),
        "{out} (see {})",
        out_dir.display()
    );
    assert_eq!(out["server_url_field"], format!("{}/", s.url));
    assert!(out["models_offered"]
        .as_array()
        .unwrap()
        .contains(&json!(LGG_MODEL)));
    assert_eq!(out["notification"], "ok", "{out}");
    assert_eq!(out["labelmap"]["dims"], json!([280, 320, 22]), "{out}");
    assert!(out["segments"]
        .as_array()
        .unwrap()
        .contains(&json!("FLAIR abnormality")));
    // The viewer's labelmap holds exactly the CLI's label, voxel for voxel, on its slices.
    assert_eq!(out["voxels"]["same"], true, "{out}");
    assert!(out["voxels"]["label"].as_u64().unwrap() > 0);
    assert_eq!(out["console_errors"], json!([]), "{out}");
    assert!(out_dir.join("segmented.png").is_file());
    eprintln!(
        "OHIF: {} (screenshots in {}); whole test {:.1} s",
        out["steps"],
        out_dir.display(),
        t0.elapsed().as_secs_f64()
    );
}
