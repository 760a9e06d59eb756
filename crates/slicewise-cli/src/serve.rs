//! `slicewise serve`: the MONAI Label-compatible segmentation server (crate
//! `slicewise-server`). This file only turns arguments into [`ServeOptions`].

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::segment::DeviceArg;
use slicewise::error::Result;
use slicewise_server::{ServeError, ServeOptions};

/// Arguments of `slicewise serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Folder whose *.onnx models are loaded (each once) and offered.
    #[arg(long, value_name = "DIR", default_value = "models")]
    pub models: PathBuf,
    /// Datastore folder for uploaded images and sessions (default: ~/.cache/slicewise/datastore).
    #[arg(long, value_name = "DIR")]
    pub datastore: Option<PathBuf>,
    /// Require `Authorization: Bearer T` on every endpoint (visible to `ps`: prefer --token-file).
    #[arg(long, value_name = "T", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the bearer token from a file (surrounding whitespace ignored).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Allow cross-origin requests from this origin (repeatable; `*` for any). None: no CORS.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Segmentation jobs that run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
    /// Jobs that may wait for a worker; more get 503 with Retry-After.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub queue: u32,
    /// Largest request body (upload) in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_upload_mb: u32,
    /// Longest a request may take, in seconds (its job is cancelled past it).
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Execution provider for every model.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Intra-op threads per model (default: ONNX Runtime's choice).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Slices per inference batch.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// ONNX Runtime shared library (default: $SLICEWISE_ORT_LIB, then the engine's search).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// DICOMweb root of a PACS, e.g. http://127.0.0.1:8042/dicom-web (Orthanc): image ids that
    /// are SeriesInstanceUIDs are fetched from it, DICOM SEG results stored back to it, and
    /// /proxy/dicom/ forwards the OHIF viewer to it. Basic auth: http://USER:PASSWORD@host/...
    #[arg(long, value_name = "URL")]
    pub dicomweb: Option<String>,
    /// Serve the OHIF viewer in DIR at /ohif/ (default: the one monailabel's wheel ships, if
    /// ./.venv or $VIRTUAL_ENV has it).
    #[arg(long, value_name = "DIR", conflicts_with = "no_ohif")]
    pub ohif: Option<PathBuf>,
    /// Do not serve the OHIF viewer.
    #[arg(long)]
    pub no_ohif: bool,
}

/// Runs the server until Ctrl-C or SIGTERM: exit 0 then, 2 when it cannot start, 1 when it
/// stops with an error.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let opts = match options(args) {
        Ok(o) => o,
        Err(problem) => return Ok(fail(&problem, 2)),
    };
    match slicewise_server::run(opts) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ ServeError::Runtime(_)) => Ok(fail(&e.to_string(), 1)),
        Err(e) => Ok(fail(&e.to_string(), 2)),
    }
}

fn fail(problem: &str, code: u8) -> ExitCode {
    eprintln!("slicewise serve: error: {problem}");
    ExitCode::from(code)
}

/// The server options the arguments describe.
fn options(args: ServeArgs) -> std::result::Result<ServeOptions, String> {
    let mut o = ServeOptions::default()
        .listen(args.listen)
        .models_dir(args.models)
        .workers(args.workers as usize)
        .queue(args.queue as usize)
        .max_upload_bytes(args.max_upload_mb as usize * (1 << 20))
        .request_timeout(Duration::from_secs(args.timeout))
        .device(args.device.into())
        .batch_size(args.batch_size as usize);
    if let Some(d) = args.datastore {
        o = o.datastore(d);
    }
    if let Some(t) = token(args.token, args.token_file)? {
        o = o.token(t);
    }
    for origin in args.cors_origins {
        o = o.cors_origin(origin);
    }
    if let Some(t) = args.threads {
        o = o.threads(t as usize);
    }
    if let Some(url) = args.dicomweb {
        o = o.dicomweb(url);
    }
    let ohif = match (args.ohif, args.no_ohif) {
        (_, true) => None,
        (Some(dir), _) => Some(dir),
        (None, false) => installed_ohif(),
    };
    if let Some(dir) = ohif {
        o = o.ohif_dir(dir);
    }
    let ort = args
        .ort_lib
        .or_else(|| std::env::var_os("SLICEWISE_ORT_LIB").map(PathBuf::from));
    if let Some(p) = ort {
        o = o.runtime_path(p);
    }
    let viewer = o.ohif_dir.is_some();
    Ok(o.on_listening(move |addr| {
        // Scripts and tests read this line to learn the port.
        println!("slicewise serve: listening on http://{addr}");
        if viewer {
            println!("slicewise serve: OHIF viewer at http://{addr}/ohif/");
        }
        let _ = std::io::stdout().flush();
    }))
}

/// The OHIF viewer monailabel's wheel ships (`monailabel/endpoints/static/ohif/`), in
/// `$VIRTUAL_ENV` or `./.venv` — where `scripts/setup --test` installs it. Not in this
/// repository: it is MONAI Label's build, used as installed.
fn installed_ohif() -> Option<PathBuf> {
    let venvs = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(".venv")]);
    for venv in venvs {
        let Ok(libs) = std::fs::read_dir(venv.join("lib")) else {
            continue;
        };
        let mut found: Vec<PathBuf> = libs
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
            .map(|e| {
                e.path()
                    .join("site-packages/monailabel/endpoints/static/ohif")
            })
            .filter(|d| d.join("index.html").is_file())
            .collect();
        found.sort();
        if let Some(dir) = found.pop() {
            return Some(dir);
        }
    }
    None
}

fn token(
    token: Option<String>,
    file: Option<PathBuf>,
) -> std::result::Result<Option<String>, String> {
    let t = match (token, file) {
        (Some(t), _) => t,
        (None, Some(f)) => {
            std::fs::read_to_string(&f).map_err(|e| format!("--token-file {}: {e}", f.display()))?
        }
        (None, None) => return Ok(None),
    };
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err("the token is empty".into());
    }
    Ok(Some(t))
}
