//! Execution providers: registration with fallback, and which provider really runs the nodes.
//!
//! The placement is read from ONNX Runtime's own verbose session log ("All nodes placed on
//! [CPUExecutionProvider]. Number of nodes: 9", or one "Node(s) placed on [..]" line per provider
//! when the graph is split), captured with a per-session logger while the session is created.
//! Only when no such line arrives is the provider inferred from the registration result, and
//! the report says so.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;

use super::{Device, ModelOptions, ProviderReport};
use crate::error::{BoxError, Error, Result};

/// Collects placement lines while a session is being created; afterwards only forwards
/// warnings and errors to `log` (so a long-lived session does not accumulate messages).
#[derive(Default)]
struct Capture {
    active: AtomicBool,
    placements: Mutex<Vec<String>>,
}

/// Creates the session for `path` with the providers `options.device` asks for.
pub(crate) fn build_session(
    env: &Environment,
    path: &Path,
    options: &ModelOptions,
) -> Result<(Session, ProviderReport)> {
    let capture = Arc::new(Capture::default());
    capture.active.store(true, Ordering::SeqCst);
    let builder = base_builder(env, options, capture.clone())
        .map_err(|e| Error::runtime(format!("session options: {e}")).with_source(e))?;
    let mut notes = Vec::new();
    let (mut builder, registered) = register(builder, options.device, &mut notes)?;
    let session = builder.commit_from_file(path).map_err(|e| {
        Error::model(path, format!("ONNX Runtime cannot load it: {e}")).with_source(e)
    })?;
    capture.active.store(false, Ordering::SeqCst);

    let placed = placed_providers(&capture.placements.lock().unwrap_or_else(|p| p.into_inner()));
    let used = if placed.is_empty() {
        notes.push(
            "ONNX Runtime logged no node placement; provider inferred from the registration result"
                .into(),
        );
        registered.unwrap_or("CPUExecutionProvider").to_string()
    } else {
        placed.join("+")
    };
    if let Some(r) = registered {
        if !placed.is_empty() && !placed.iter().any(|p| p == r) {
            notes.push(format!(
                "{r} registered but ONNX Runtime placed no node on it"
            ));
        }
    }
    let report = ProviderReport {
        requested: options.device,
        used,
        notes,
    };
    if matches!(options.device, Device::Cuda | Device::TensorRt) {
        let want = provider_name(options.device);
        if !report.used.split('+').any(|p| p == want) {
            return Err(Error::Provider(format!(
                "{want} was requested but ONNX Runtime runs the model on {}",
                report.used
            )));
        }
    }
    Ok((session, report))
}

fn base_builder(
    env: &Environment,
    options: &ModelOptions,
    capture: Arc<Capture>,
) -> std::result::Result<SessionBuilder, BoxError> {
    let logger = Arc::new(
        move |level: LogLevel, _cat: &str, _id: &str, _loc: &str, msg: &str| {
            if capture.active.load(Ordering::Relaxed) && msg.contains("placed on [") {
                if let Ok(mut v) = capture.placements.lock() {
                    v.push(msg.to_string());
                }
            }
            match level {
                LogLevel::Warning => log::warn!("onnxruntime: {msg}"),
                LogLevel::Error | LogLevel::Fatal => log::error!("onnxruntime: {msg}"),
                _ => {}
            }
        },
    );
    // An error that carries the builder back is not `Sync`: its message is kept instead.
    let s = |e: ort::Error<SessionBuilder>| BoxError::from(e.to_string());
    let b = Session::builder(env)?;
    let mut b = b
        .with_logger(logger)
        .map_err(s)?
        .with_log_level(LogLevel::Verbose)
        .map_err(s)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(s)?
        // Host applications (3D Slicer, viewers) must not see cores burnt by spinning threads.
        .with_intra_op_spinning(false)
        .map_err(s)?
        .with_inter_op_spinning(false)
        .map_err(s)?;
    if let Some(n) = options.threads {
        b = b.with_intra_threads(n.max(1)).map_err(s)?;
    }
    Ok(b)
}

pub(crate) fn provider_name(d: Device) -> &'static str {
    match d {
        Device::Cuda => "CUDAExecutionProvider",
        Device::TensorRt => "TensorrtExecutionProvider",
        Device::Cpu | Device::Auto => "CPUExecutionProvider",
    }
}

/// The providers compiled into the loaded ONNX Runtime library.
fn available_providers() -> Vec<String> {
    let api = ort::api();
    let mut ptr: *mut *mut std::ffi::c_char = std::ptr::null_mut();
    let mut n: std::ffi::c_int = 0;
    // SAFETY: plain C API call with out-pointers; the list is released below.
    let st = unsafe { (api.GetAvailableProviders)(&mut ptr, &mut n) };
    if !st.0.is_null() {
        unsafe { (api.ReleaseStatus)(st.0) };
        return Vec::new();
    }
    if ptr.is_null() {
        return Vec::new();
    }
    let out = (0..n.max(0) as usize)
        .filter_map(|i| {
            let p = unsafe { *ptr.add(i) };
            (!p.is_null()).then(|| {
                unsafe { std::ffi::CStr::from_ptr(p) }
                    .to_string_lossy()
                    .into_owned()
            })
        })
        .collect();
    let st = unsafe { (api.ReleaseAvailableProviders)(ptr, n) };
    if !st.0.is_null() {
        unsafe { (api.ReleaseStatus)(st.0) };
    }
    out
}

/// An ort dispatch for `d`, when slicewise was built with its feature.
fn dispatch(d: Device) -> Option<ort::ep::ExecutionProviderDispatch> {
    match d {
        #[cfg(feature = "cuda")]
        Device::Cuda => Some(ort::ep::CUDA::default().build().error_on_failure()),
        #[cfg(feature = "tensorrt")]
        Device::TensorRt => Some(ort::ep::TensorRT::default().build().error_on_failure()),
        _ => None,
    }
}

/// Registers the providers `device` asks for. Returns the builder and the provider that
/// registered (None: CPU only).
fn register(
    mut builder: SessionBuilder,
    device: Device,
    notes: &mut Vec<String>,
) -> Result<(SessionBuilder, Option<&'static str>)> {
    let wanted: &[Device] = match device {
        Device::Auto => &[Device::Cuda, Device::TensorRt],
        Device::Cuda => &[Device::Cuda],
        Device::TensorRt => &[Device::TensorRt],
        Device::Cpu => &[],
    };
    let available = if wanted.is_empty() {
        Vec::new()
    } else {
        available_providers()
    };
    for &d in wanted {
        let name = provider_name(d);
        let (short, feature) = match d {
            Device::Cuda => ("CUDA", "cuda"),
            _ => ("TensorRT", "tensorrt"),
        };
        let why = if !available.iter().any(|p| p == name) {
            format!(
                "{short}: not available in this ONNX Runtime build (it offers {})",
                available.join(", ")
            )
        } else {
            match dispatch(d) {
                None => format!("{short}: slicewise was built without the `{feature}` feature"),
                Some(ep) => match builder.with_execution_providers([ep]) {
                    Ok(b) => return Ok((b, Some(name))),
                    Err(e) => {
                        let msg = format!("{short}: registration failed: {}", e.message());
                        builder = e.recover();
                        msg
                    }
                },
            }
        };
        if device == Device::Auto {
            log::warn!("slicewise: {why}; trying the next provider");
            notes.push(why);
        } else {
            return Err(Error::Provider(format!("{why} (requested explicitly)")));
        }
    }
    if device == Device::Auto {
        log::warn!("slicewise: no GPU execution provider could be used; running on CPU");
    }
    Ok((builder, None))
}

/// Provider names from placement log lines, in order of appearance, without repeats.
fn placed_providers(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        let mut rest = l.as_str();
        while let Some(i) = rest.find("placed on [") {
            rest = &rest[i + "placed on [".len()..];
            if let Some(j) = rest.find(']') {
                for name in rest[..j].split(',') {
                    let n = name.trim().to_string();
                    if !n.is_empty() && !out.contains(&n) {
                        out.push(n);
                    }
                }
                rest = &rest[j..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_lines_are_parsed() {
        let l = vec![
            "All nodes placed on [CPUExecutionProvider]. Number of nodes: 9".to_string(),
            " Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 3".to_string(),
        ];
        assert_eq!(
            placed_providers(&l),
            vec!["CPUExecutionProvider", "CUDAExecutionProvider"]
        );
    }
}
