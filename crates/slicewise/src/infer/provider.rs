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

/// A session and where it runs.
pub(crate) struct Built {
    pub(crate) session: Session,
    pub(crate) report: ProviderReport,
    /// Why [`Device::Auto`] runs on CPU, in one phrase; `None` when a GPU runs or none was tried.
    pub(crate) fallback: Option<String>,
}

/// Creates the session for `path` with the providers `options.device` asks for.
pub(crate) fn build_session(
    env: &Environment,
    path: &Path,
    options: &ModelOptions,
) -> Result<Built> {
    let capture = Arc::new(Capture::default());
    capture.active.store(true, Ordering::SeqCst);
    let builder = base_builder(env, options, capture.clone())
        .map_err(|e| Error::runtime(format!("session options: {e}")).with_source(e))?;
    let mut notes = Vec::new();
    let Registration {
        mut builder,
        registered,
        fallback,
    } = register(builder, options.device, &mut notes)?;
    let session = builder.commit_from_file(path).map_err(|e| {
        Error::model(path, format!("ONNX Runtime cannot load it: {e}")).with_source(e)
    })?;
    capture.active.store(false, Ordering::SeqCst);

    let placed = placed_providers(&capture.placements.lock().unwrap_or_else(|p| p.into_inner()));
    let used = used_provider(&placed, registered, &mut notes);
    let mut built = Built {
        session,
        report: ProviderReport {
            requested: options.device,
            used,
            notes,
        },
        fallback,
    };
    if let Some(r) = registered {
        check_placement(&mut built, r)?;
    }
    Ok(built)
}

/// The providers that run the nodes ("A+B" when split): from the placement log, else inferred
/// from the registration, with a note saying so.
fn used_provider(placed: &[String], registered: Option<&str>, notes: &mut Vec<String>) -> String {
    if !placed.is_empty() {
        return placed.join("+");
    }
    notes.push(
        "ONNX Runtime logged no node placement; provider inferred from the registration result"
            .into(),
    );
    registered.unwrap_or("CPUExecutionProvider").to_string()
}

/// Notes a registered provider that ONNX Runtime placed no node on, and refuses an explicitly
/// requested GPU that does not run the model.
fn check_placement(built: &mut Built, registered: &str) -> Result<()> {
    let report = &mut built.report;
    if report.used.split('+').any(|p| p == registered) {
        return Ok(());
    }
    if report.requested != Device::Auto {
        return Err(Error::Provider(format!(
            "{registered} was requested but ONNX Runtime runs the model on {}",
            report.used
        )));
    }
    let why = format!("{registered} registered but ONNX Runtime placed no node on it");
    if report.used == "CPUExecutionProvider" {
        built.fallback = Some(why.clone());
    }
    report.notes.push(why);
    Ok(())
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

/// Why a GPU provider was not registered.
enum Skip {
    /// The loaded ONNX Runtime library does not contain it.
    NotInBuild,
    /// A library it needs does not load: the NVIDIA driver, or a CUDA / cuDNN / TensorRT library.
    Unloadable(String),
    /// slicewise was compiled without the cargo feature that wires it up.
    NoFeature(&'static str),
    /// ONNX Runtime refused to register it.
    Failed(String),
}

/// The providers `register` managed to add, and why the others were skipped.
struct Registration {
    builder: SessionBuilder,
    /// The provider that registered (None: CPU only).
    registered: Option<&'static str>,
    /// Why `Device::Auto` ends up on CPU; `None` when a GPU registered or none was tried.
    fallback: Option<String>,
}

/// Registers the providers `device` asks for; per-provider reasons for skipping go to `notes`.
fn register(
    builder: SessionBuilder,
    device: Device,
    notes: &mut Vec<String>,
) -> Result<Registration> {
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
    let mut builder = builder;
    let mut skipped = Vec::new();
    for &d in wanted {
        let (b, outcome) = try_register(builder, d, &available);
        builder = b;
        let skip = match outcome {
            Ok(()) => {
                let registered = Some(provider_name(d));
                return Ok(Registration {
                    builder,
                    registered,
                    fallback: None,
                });
            }
            Err(skip) => skip,
        };
        let why = describe(d, &skip, &available);
        if device != Device::Auto {
            return Err(Error::Provider(format!("{why} (requested explicitly)")));
        }
        // Expected on CPU-only installs: the caller decides how loudly to say it, once.
        log::info!("{why}; trying the next provider");
        notes.push(why);
        skipped.push((d, skip));
    }
    let fallback = (device == Device::Auto).then(|| fallback_reason(&skipped, &available));
    if let Some(f) = &fallback {
        log::info!("no GPU execution provider could be used ({f}); running on CPU");
    }
    Ok(Registration {
        builder,
        registered: None,
        fallback,
    })
}

/// Registers `d` if this runtime and build have it; hands the builder back either way.
fn try_register(
    builder: SessionBuilder,
    d: Device,
    available: &[String],
) -> (SessionBuilder, std::result::Result<(), Skip>) {
    if !available.iter().any(|p| p == provider_name(d)) {
        return (builder, Err(Skip::NotInBuild));
    }
    // Before ONNX Runtime tries: it would name only the first library its provider lacks, and
    // it finds none of those in the runtime's folder by itself.
    if let Err(why) = gpu_libs::load(d) {
        return (builder, Err(Skip::Unloadable(why)));
    }
    let Some(ep) = dispatch(d) else {
        return (builder, Err(Skip::NoFeature(feature_name(d))));
    };
    match builder.with_execution_providers([ep]) {
        Ok(b) => (b, Ok(())),
        Err(e) => {
            let msg = e.message().to_string();
            (e.recover(), Err(Skip::Failed(msg)))
        }
    }
}

/// The short name users know a GPU device by.
fn short_name(d: Device) -> &'static str {
    match d {
        Device::Cuda => "CUDA",
        Device::TensorRt => "TensorRT",
        Device::Cpu | Device::Auto => "CPU",
    }
}

/// The cargo feature that wires up `d`'s provider.
fn feature_name(d: Device) -> &'static str {
    match d {
        Device::TensorRt => "tensorrt",
        _ => "cuda",
    }
}

/// One provider's skip reason, as recorded in the report's notes.
fn describe(d: Device, skip: &Skip, available: &[String]) -> String {
    let short = short_name(d);
    match skip {
        Skip::NotInBuild => format!(
            "{short}: not available in this ONNX Runtime build (it offers {})",
            available.join(", ")
        ),
        Skip::Unloadable(m) => format!("{short}: {m}"),
        Skip::NoFeature(f) => format!("{short}: slicewise was built without the `{f}` feature"),
        Skip::Failed(m) => format!("{short}: registration failed: {m}"),
    }
}

/// One phrase for why no GPU provider could be used: short for the common CPU-only runtime,
/// else every provider's own reason.
fn fallback_reason(skipped: &[(Device, Skip)], available: &[String]) -> String {
    if skipped.iter().all(|(_, s)| matches!(s, Skip::NotInBuild)) {
        let names: Vec<&str> = skipped.iter().map(|(d, _)| short_name(*d)).collect();
        return format!("this ONNX Runtime has no {} provider", names.join(" or "));
    }
    // One reason shared by several providers (the driver is missing) is said once.
    let mut groups: Vec<(Vec<&str>, String)> = Vec::new();
    for (d, s) in skipped {
        let why = describe(*d, s, available);
        let why = why
            .strip_prefix(&format!("{}: ", short_name(*d)))
            .unwrap_or(&why)
            .to_string();
        match groups.iter_mut().find(|(_, w)| *w == why) {
            Some((names, _)) => names.push(short_name(*d)),
            None => groups.push((vec![short_name(*d)], why)),
        }
    }
    let reasons: Vec<String> = groups
        .iter()
        .map(|(names, why)| format!("{}: {why}", names.join(" and ")))
        .collect();
    reasons.join("; ")
}

/// The shared libraries ONNX Runtime's GPU providers need, loaded before a provider registers.
///
/// `libonnxruntime_providers_cuda.so` links the CUDA 13 libraries by name and has no search path
/// of its own, so ONNX Runtime finds them only on the system's library path. `scripts/setup --gpu`
/// puts them next to the runtime instead (`.cache/onnxruntime-gpu/`); loading them from there
/// first, with global symbols, lets the provider's own load find them already in the process
/// (the loader matches a dependency by its soname). The NVIDIA driver's `libcuda.so.1` is never
/// shipped that way: it comes from the system or not at all, and its absence is the reason
/// reported when CUDA cannot run.
#[cfg(unix)]
mod gpu_libs {
    use std::path::{Path, PathBuf};

    use super::Device;

    /// The driver library (from the system's library path only).
    const DRIVER: &str = "libcuda.so.1";

    /// CUDA 13 runtime libraries of ONNX Runtime 1.31's CUDA provider, dependencies first.
    const CUDA: &[&str] = &[
        "libcudart.so.13",
        "libcublasLt.so.13",
        "libcublas.so.13",
        "libcurand.so.10",
        "libcufft.so.12",
        "libnvrtc.so.13",
    ];

    /// cuDNN 9, its sub-libraries after the one that loads them.
    const CUDNN: &[&str] = &[
        "libcudnn.so.9",
        "libcudnn_graph.so.9",
        "libcudnn_ops.so.9",
        "libcudnn_heuristic.so.9",
        "libcudnn_adv.so.9",
        "libcudnn_cnn.so.9",
        "libcudnn_engines_precompiled.so.9",
        "libcudnn_engines_runtime_compiled.so.9",
    ];

    /// cuDNN sub-libraries of newer 9.x releases, loaded when present (cuDNN opens them by
    /// name, which finds only loaded ones or the library path).
    const CUDNN_OPTIONAL: &[&str] = &["libcudnn_engines_tensor_ir.so.9", "libcudnn_ext.so.9"];

    /// TensorRT 10, as its provider links it (it also needs CUDA and cuDNN).
    const TENSORRT: &[&str] = &["libnvinfer.so.10", "libnvonnxparser.so.10"];

    /// Loads what `d`'s provider needs; the error says which library is missing and where it
    /// was looked for.
    pub(super) fn load(d: Device) -> Result<(), String> {
        // The loader's message names the file: "libcuda.so.1: cannot open shared object file".
        open(DRIVER, None)
            .map_err(|e| format!("the NVIDIA driver is not installed or not visible: {e}"))?;
        let dir = crate::infer::runtime::loaded().and_then(|i| i.path.parent().map(PathBuf::from));
        let mut names: Vec<&str> = CUDA.iter().chain(CUDNN).copied().collect();
        if d == Device::TensorRt {
            names.extend_from_slice(TENSORRT);
        }
        for name in names {
            open(name, dir.as_deref()).map_err(|e| {
                let place = dir
                    .as_ref()
                    .map(|d| format!("{} or ", d.display()))
                    .unwrap_or_default();
                format!(
                    "{name} not found in {place}the library path ({e}); scripts/setup --gpu \
                     installs the GPU runtime with its CUDA libraries"
                )
            })?;
        }
        for name in CUDNN_OPTIONAL {
            let _ = open(name, dir.as_deref());
        }
        Ok(())
    }

    /// Opens `name` from `dir` when it is there, else by name from the library path, for the
    /// rest of the process (the provider keeps using it).
    fn open(name: &str, dir: Option<&Path>) -> Result<(), String> {
        use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
        let local = dir.map(|d| d.join(name)).filter(|p| p.is_file());
        let target = local.map_or_else(|| name.into(), PathBuf::into_os_string);
        // SAFETY: loading a shared library runs its initialisers; these are NVIDIA's runtime
        // libraries, which ONNX Runtime's provider would load anyway.
        let lib = unsafe { Library::open(Some(&target), RTLD_NOW | RTLD_GLOBAL) }
            .map_err(|e| e.to_string())?;
        // Kept loaded: the provider links against it once it registers.
        let _ = lib.into_raw();
        Ok(())
    }
}

/// Elsewhere ONNX Runtime's provider finds its libraries by itself.
#[cfg(not(unix))]
mod gpu_libs {
    pub(super) fn load(_: super::Device) -> Result<(), String> {
        Ok(())
    }
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

    #[test]
    fn fallback_reason_is_one_phrase_on_a_cpu_only_runtime_and_detailed_otherwise() {
        let available = vec!["CPUExecutionProvider".to_string()];
        let cpu_only = [
            (Device::Cuda, Skip::NotInBuild),
            (Device::TensorRt, Skip::NotInBuild),
        ];
        assert_eq!(
            fallback_reason(&cpu_only, &available),
            "this ONNX Runtime has no CUDA or TensorRT provider"
        );
        let mixed = [
            (Device::Cuda, Skip::Failed("libcudnn.so.9 missing".into())),
            (Device::TensorRt, Skip::NoFeature("tensorrt")),
        ];
        assert_eq!(
            fallback_reason(&mixed, &available),
            "CUDA: registration failed: libcudnn.so.9 missing; \
             TensorRT: slicewise was built without the `tensorrt` feature"
        );
        let no_driver = "the NVIDIA driver is not installed or not visible: libcuda.so.1: \
                         cannot open shared object file";
        let gpu_runtime = vec![
            "CUDAExecutionProvider".to_string(),
            "TensorrtExecutionProvider".to_string(),
        ];
        let driverless = [
            (Device::Cuda, Skip::Unloadable(no_driver.into())),
            (Device::TensorRt, Skip::Unloadable(no_driver.into())),
        ];
        assert_eq!(
            fallback_reason(&driverless, &gpu_runtime),
            format!("CUDA and TensorRT: {no_driver}")
        );
    }
}
