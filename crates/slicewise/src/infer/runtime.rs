//! Finding and loading the ONNX Runtime shared library, once per process.
//!
//! `ort`'s own `ORT_DYLIB_PATH` loading panics on failure, so the path is always resolved here
//! and handed to [`ort::init_from`], whose errors are clean. A failed attempt leaves nothing
//! behind (ort only records a library that loaded and has a usable version), so a later call may
//! try another path; a successful load is final for the process.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

use super::RuntimeInfo;
use crate::error::{BoxError, Error, Result};

/// The library file names tried inside a folder, most specific first.
const LIB_NAMES: &[&str] = &["libonnxruntime.so.1.31.1", "libonnxruntime.so"];

struct Loaded {
    info: RuntimeInfo,
    env: Environment,
}

static RUNTIME: Mutex<Option<Loaded>> = Mutex::new(None);

/// The process's ONNX Runtime environment, initialising it (search order of
/// [`super::init_runtime`]) when needed.
pub(crate) fn environment(explicit: Option<&Path>) -> Result<(RuntimeInfo, Environment)> {
    let mut guard = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(l) = guard.as_ref() {
        if let Some(p) = explicit {
            let want = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            let have = std::fs::canonicalize(&l.info.path).unwrap_or_else(|_| l.info.path.clone());
            if want != have {
                return Err(Error::runtime(format!(
                    "ONNX Runtime is already loaded from {} in this process; cannot switch to {}",
                    l.info.path.display(),
                    p.display()
                )));
            }
        }
        return Ok((l.info.clone(), l.env.clone()));
    }
    let candidates = candidates(explicit);
    let mut tried = Vec::new();
    for (path, why) in &candidates {
        if !path.is_file() {
            tried.push(format!("{} ({why}): not found", path.display()));
            // An explicit path or $ORT_DYLIB_PATH that does not exist is the caller's mistake:
            // do not silently pick another library.
            if why.starts_with("explicit") || why.starts_with("$ORT_DYLIB_PATH") {
                break;
            }
            continue;
        }
        match load(path) {
            Ok(l) => {
                log::info!(
                    "ONNX Runtime {} loaded from {} ({why})",
                    l.info.version,
                    l.info.path.display()
                );
                let out = (l.info.clone(), l.env.clone());
                *guard = Some(l);
                return Ok(out);
            }
            Err(e) => {
                // A library that exists but does not load is reported, not skipped: the user
                // pointed at it or installed it there.
                let message = format!("{} ({why}): {e}", path.display());
                return Err(Error::runtime(message).with_source(e));
            }
        }
    }
    Err(Error::runtime(format!(
        "ONNX Runtime library not found; tried: {}. Run scripts/setup, pass a runtime path, or set ORT_DYLIB_PATH",
        tried.join("; ")
    )))
}

/// The info of the loaded runtime, if any.
pub(crate) fn loaded() -> Option<RuntimeInfo> {
    let guard = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().map(|l| l.info.clone())
}

/// Candidate library paths in search order, each with where it came from.
fn candidates(explicit: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        out.push((absolute(p), "explicit path"));
        return out;
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|s| !s.is_empty()) {
        out.push((absolute(Path::new(&p)), "$ORT_DYLIB_PATH"));
        return out;
    }
    if let Some(dir) = own_library_dir() {
        for n in LIB_NAMES {
            out.push((dir.join(n), "next to the slicewise library"));
        }
    }
    if let Some(p) = std::env::var_os("SLICEWISE_ORT_LIB").filter(|s| !s.is_empty()) {
        out.push((absolute(Path::new(&p)), "$SLICEWISE_ORT_LIB"));
    }
    // The checkout's .cache (scripts/setup); this crate lives in crates/slicewise. The GPU
    // runtime (scripts/setup --gpu) first: it runs on CPU too, and only it can use a GPU.
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache");
    for (folder, why) in [
        ("onnxruntime-gpu", "project .cache/onnxruntime-gpu"),
        ("onnxruntime", "project .cache/onnxruntime"),
    ] {
        for n in LIB_NAMES {
            out.push((cache.join(folder).join(n), why));
        }
    }
    out
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        // Relative paths are the caller's, relative to the working directory (ort would resolve
        // them against the host executable instead).
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The folder of the binary or shared library this code is linked into (found with `dladdr` on
/// one of our functions, so it is the cdylib's folder when a host application loaded us).
fn own_library_dir() -> Option<PathBuf> {
    #[cfg(unix)]
    {
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        let addr = own_library_dir as *const () as *const libc::c_void;
        // SAFETY: dladdr only reads the address and fills `info`; dli_fname points into the
        // loader's tables and stays valid while the object is loaded.
        let ok = unsafe { libc::dladdr(addr, &mut info) };
        if ok == 0 || info.dli_fname.is_null() {
            return None;
        }
        let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
        use std::os::unix::ffi::OsStrExt;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        path.parent().map(Path::to_path_buf)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Loads the library at `path`; the error keeps ONNX Runtime's own error where it gave one.
fn load(path: &Path) -> std::result::Result<Loaded, BoxError> {
    let version = library_version(path)?;
    let result = catch_unwind(AssertUnwindSafe(
        || -> std::result::Result<Environment, BoxError> {
            Ok(ort::init_from(path)?
                .with_name("slicewise")
                .with_telemetry(false)
                .build()?)
        },
    ));
    let env = match result {
        Ok(r) => r?,
        Err(p) => {
            return Err(format!(
                "panic while loading: {}",
                crate::error::caught_panic_message(p)
            )
            .into())
        }
    };
    Ok(Loaded {
        info: RuntimeInfo {
            path: path.to_path_buf(),
            version,
        },
        env,
    })
}

/// Reads the library's version string through `OrtGetApiBase`, so that a wrong library is named
/// with its version before ort sees it.
fn library_version(path: &Path) -> std::result::Result<String, String> {
    type GetBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: loading a shared library runs its initialisers; that is what loading ONNX Runtime
    // means. The handle is dropped at the end (ort keeps its own).
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("cannot load: {e}"))?;
    let get: libloading::Symbol<GetBase> = unsafe { lib.get(b"OrtGetApiBase\0") }
        .map_err(|_| "not an ONNX Runtime library (no OrtGetApiBase)".to_string())?;
    let base = unsafe { get() };
    if base.is_null() {
        return Err("OrtGetApiBase returned null".into());
    }
    let v = unsafe { ((*base).GetVersionString)() };
    if v.is_null() {
        return Err("no version string".into());
    }
    let version = unsafe { std::ffi::CStr::from_ptr(v) }
        .to_string_lossy()
        .into_owned();
    let minor: u32 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if !version.starts_with("1.") || minor < ort::MINOR_VERSION {
        return Err(format!(
            "version {version} is too old: slicewise needs ONNX Runtime 1.{}.x or newer",
            ort::MINOR_VERSION
        ));
    }
    Ok(version)
}
