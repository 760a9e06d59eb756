//! The C ABI, driven exactly as a host drives it: `libslicewise.so` is loaded with `libloading`
//! and called through function pointers declared here from the header's documentation (the
//! rlib is used only to compute reference results). Also: the header is checked for drift and
//! compiled as C99 and C++, its hand-written mirrors (these declarations, the Slicer binding, the
//! ctypes host) are checked against it, the C host is built with sanitizers, and a Python ctypes
//! host runs.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

use crate::{harness, robustness};

// ---- the ABI as a host sees it ----------------------------------------------------------------
// tests/python/header_mirrors.py reads this section (up to the next `// ----` line) and checks it
// against include/slicewise.h (`header_mirrors_match_the_header`): its consts, #[repr(C)] structs,
// type aliases and `api!` list, written in the plain Rust that script reads.

const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 1;
const IO: i32 = 2;
const FORMAT: i32 = 3;
const UNSUPPORTED: i32 = 4;
const CANCELLED: i32 = 10;
const PANIC: i32 = 11;
const NULL_POINTER: i32 = 12;
const BUFFER_TOO_SMALL: i32 = 13;
const TRAINING: i32 = 14;

const DTYPE_U8: u32 = 1;
const DTYPE_I16: u32 = 4;
const DTYPE_F32: u32 = 7;
const DTYPE_F64: u32 = 8;
const DTYPE_BOOL: u32 = 11;
const SPACE_LPS: u32 = 1;
const SPACE_RAS: u32 = 2;
const DEVICE_CPU: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy)]
struct ModelOptions {
    struct_size: usize,
    device: u32,
    threads: u32,
    runtime_path: *const c_char,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct SegmentOptions {
    struct_size: usize,
    batch_size: u32,
    threshold: f32,
    min_component_voxels: u64,
    largest_component: u8,
    fill_holes: u8,
    tta: u8,
    cancel: *const c_void,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct VolumeInfo {
    struct_size: usize,
    dims: [usize; 4],
    spacing: [f64; 3],
    origin: [f64; 3],
    direction: [f64; 9],
    original_dtype: u32,
    format: u32,
    acquisition_axis: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct MaskInfo {
    struct_size: usize,
    dims: [usize; 3],
    spacing: [f64; 3],
    origin: [f64; 3],
    direction: [f64; 9],
    label_count: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct LabelStats {
    struct_size: usize,
    value: u8,
    color: [u8; 3],
    voxels: u64,
    ml: f64,
    name: *const c_char,
}

type H = *mut c_void;
type ProgressFn = Option<unsafe extern "C" fn(*mut c_void, usize, usize) -> i32>;

macro_rules! api {
    ($($name:ident : $ty:ty;)*) => {
        /// Every export, resolved by name from the shared library.
        #[allow(dead_code)]
        struct Api { $($name: $ty,)* debug_panic: Option<unsafe extern "C" fn() -> i32> }
        fn load(lib: &'static libloading::Library) -> Api {
            unsafe {
                Api {
                    $($name: *lib
                        .get::<$ty>(concat!("slicewise_", stringify!($name), "\0").as_bytes())
                        .unwrap_or_else(|e| panic!("export slicewise_{} missing: {e}", stringify!($name))),)*
                    debug_panic: lib
                        .get::<unsafe extern "C" fn() -> i32>(b"slicewise_debug_panic\0")
                        .ok()
                        .map(|s| *s),
                }
            }
        }
    };
}

api! {
    version: unsafe extern "C" fn() -> *const c_char;
    status_str: unsafe extern "C" fn(i32) -> *const c_char;
    last_error: unsafe extern "C" fn(*mut c_char, usize, *mut usize) -> i32;
    runtime_init: unsafe extern "C" fn(*const c_char) -> i32;
    model_options_init: unsafe extern "C" fn(*mut ModelOptions) -> i32;
    model_open: unsafe extern "C" fn(*const c_char, *const ModelOptions, *mut H) -> i32;
    model_info: unsafe extern "C" fn(H, *mut c_char, usize, *mut usize) -> i32;
    model_free: unsafe extern "C" fn(H);
    volume_open: unsafe extern "C" fn(*const c_char, *mut H) -> i32;
    volume_open_channels: unsafe extern "C" fn(*const *const c_char, usize, *mut H) -> i32;
    volume_from_memory: unsafe extern "C" fn(*const c_void, u32, *const usize, *const f64, *const f64, *const f64, u32, *mut H) -> i32;
    volume_info: unsafe extern "C" fn(H, u32, *mut VolumeInfo) -> i32;
    volume_free: unsafe extern "C" fn(H);
    segment_options_init: unsafe extern "C" fn(*mut SegmentOptions) -> i32;
    segment: unsafe extern "C" fn(H, H, *const SegmentOptions, ProgressFn, *mut c_void, *mut H) -> i32;
    cancel_new: unsafe extern "C" fn(*mut H) -> i32;
    cancel_cancel: unsafe extern "C" fn(H) -> i32;
    cancel_is_cancelled: unsafe extern "C" fn(H, *mut i32) -> i32;
    cancel_free: unsafe extern "C" fn(H);
    mask_data: unsafe extern "C" fn(H, *mut *const u8, *mut usize) -> i32;
    mask_info: unsafe extern "C" fn(H, u32, *mut MaskInfo) -> i32;
    mask_label_stats: unsafe extern "C" fn(H, usize, *mut LabelStats) -> i32;
    mask_save: unsafe extern "C" fn(H, *const c_char) -> i32;
    mask_free: unsafe extern "C" fn(H);
    select_series: unsafe extern "C" fn(H, *const c_char, *mut *mut c_char) -> i32;
    string_free: unsafe extern "C" fn(*mut c_char);
}

/// The folder of the pinned cdylib (see `harness::cdylib`).
fn lib_dir() -> PathBuf {
    harness::cdylib()
        .parent()
        .expect("cdylib folder")
        .to_path_buf()
}

fn cdylib() -> PathBuf {
    harness::cdylib()
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        // Leaked on purpose: a host never unloads us while threads may still use it.
        let lib = Box::leak(Box::new(unsafe { libloading::Library::new(cdylib()) }.expect("load cdylib")));
        assert!(
            unsafe { lib.get::<unsafe extern "C" fn()>(b"slicewise_version\0") }.is_ok(),
            "the cdylib lacks the C ABI: was it replaced by a build from another worktree sharing the target dir? Rebuild and rerun"
        );
        load(lib)
    })
}

use harness::ort_lib;

fn cpath(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

fn last_error() -> String {
    let mut buf = vec![0 as c_char; 4096];
    let mut n = 0usize;
    let st = unsafe { (api().last_error)(buf.as_mut_ptr(), buf.len(), &mut n) };
    assert_eq!(st, OK);
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Asserts a call's status, showing the library's message on mismatch.
#[track_caller]
fn expect(st: i32, want: i32) {
    assert_eq!(st, want, "status {st} (wanted {want}): {}", last_error());
}

/// A handle that may cross threads (the ABI says which are shareable).
#[derive(Clone, Copy)]
struct Shared(H);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

// ---- no model needed --------------------------------------------------------------------------

#[test]
fn version_and_status_strings() {
    let a = api();
    let v = unsafe { CStr::from_ptr((a.version)()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    for (code, text) in [
        (OK, "ok"),
        (CANCELLED, "cancelled"),
        (NULL_POINTER, "null pointer argument"),
        (TRAINING, "training failed"),
    ] {
        assert_eq!(
            unsafe { CStr::from_ptr((a.status_str)(code)) }
                .to_str()
                .unwrap(),
            text
        );
    }
    for code in [-1, 15, i32::MAX, i32::MIN] {
        assert_eq!(
            unsafe { CStr::from_ptr((a.status_str)(code)) }
                .to_str()
                .unwrap(),
            "unknown status"
        );
    }
}

#[test]
fn last_error_buffer_rules() {
    let a = api();
    let missing = cpath(Path::new("/nonexistent/slicewise/volume.nii"));
    let mut v: H = null_mut();
    expect(unsafe { (a.volume_open)(missing.as_ptr(), &mut v) }, IO);
    assert!(v.is_null(), "output written on failure");
    // Size query: NULL buffer, len 0.
    let mut n = usize::MAX;
    assert_eq!(
        unsafe { (a.last_error)(null_mut(), 0, &mut n) },
        BUFFER_TOO_SMALL
    );
    let msg = last_error();
    assert_eq!(n, msg.len());
    assert!(msg.contains("/nonexistent/slicewise/volume.nii"), "{msg}");
    // Too small: truncated prefix plus NUL, full length reported.
    let mut buf = [0x55 as c_char; 8];
    let mut n2 = 0;
    assert_eq!(
        unsafe { (a.last_error)(buf.as_mut_ptr(), buf.len(), &mut n2) },
        BUFFER_TOO_SMALL
    );
    assert_eq!(n2, msg.len());
    assert_eq!(
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap(),
        &msg[..7]
    );
    // Exactly enough (len + 1), and out_len may be NULL.
    let mut exact = vec![0x55 as c_char; msg.len() + 1];
    assert_eq!(
        unsafe { (a.last_error)(exact.as_mut_ptr(), exact.len(), null_mut()) },
        OK
    );
    assert_eq!(
        unsafe { CStr::from_ptr(exact.as_ptr()) }.to_str().unwrap(),
        msg
    );
    // NULL buffer with a length is an error, not a write through NULL.
    assert_eq!(
        unsafe { (a.last_error)(null_mut(), 10, null_mut()) },
        NULL_POINTER
    );
    // Reading did not clear it; a successful call does.
    assert_eq!(last_error(), msg);
    let mut c: H = null_mut();
    expect(unsafe { (a.cancel_new)(&mut c) }, OK);
    assert_eq!(last_error(), "");
    unsafe { (a.cancel_free)(c) };
}

#[test]
fn last_error_is_per_thread() {
    let a = api();
    expect(unsafe { (a.volume_open)(null(), null_mut()) }, NULL_POINTER);
    let here = last_error();
    std::thread::spawn(|| assert_eq!(last_error(), ""))
        .join()
        .unwrap();
    assert_eq!(last_error(), here);
}

#[test]
fn null_everywhere_is_an_error_not_a_crash() {
    let a = api();
    let p = CString::new("x.nii").unwrap();
    let mut h: H = null_mut();
    let mut n = 0usize;
    let mut data: *const u8 = null();
    let mut flag = 0i32;
    unsafe {
        expect(
            (a.runtime_init)(CString::new("").unwrap().as_ptr()),
            INVALID_ARGUMENT,
        );
        expect((a.model_options_init)(null_mut()), NULL_POINTER);
        expect((a.segment_options_init)(null_mut()), NULL_POINTER);
        expect((a.model_open)(null(), null(), &mut h), NULL_POINTER);
        expect((a.model_open)(p.as_ptr(), null(), null_mut()), NULL_POINTER);
        expect(
            (a.model_info)(null_mut(), null_mut(), 0, &mut n),
            NULL_POINTER,
        );
        expect((a.volume_open)(null(), &mut h), NULL_POINTER);
        expect((a.volume_open)(p.as_ptr(), null_mut()), NULL_POINTER);
        let dims = [2usize, 2, 2, 1];
        expect(
            (a.volume_from_memory)(
                null(),
                DTYPE_U8,
                dims.as_ptr(),
                null(),
                null(),
                null(),
                SPACE_LPS,
                &mut h,
            ),
            NULL_POINTER,
        );
        let bytes = [0u8; 8];
        expect(
            (a.volume_from_memory)(
                bytes.as_ptr().cast(),
                DTYPE_U8,
                null(),
                null(),
                null(),
                null(),
                SPACE_LPS,
                &mut h,
            ),
            NULL_POINTER,
        );
        expect(
            (a.volume_from_memory)(
                bytes.as_ptr().cast(),
                DTYPE_U8,
                dims.as_ptr(),
                null(),
                null(),
                null(),
                SPACE_LPS,
                null_mut(),
            ),
            NULL_POINTER,
        );
        let mut vi = VolumeInfo {
            struct_size: std::mem::size_of::<VolumeInfo>(),
            ..Default::default()
        };
        expect(
            (a.volume_info)(null_mut(), SPACE_LPS, &mut vi),
            NULL_POINTER,
        );
        expect(
            (a.segment)(null_mut(), null_mut(), null(), None, null_mut(), &mut h),
            NULL_POINTER,
        );
        expect((a.cancel_new)(null_mut()), NULL_POINTER);
        expect((a.cancel_cancel)(null_mut()), NULL_POINTER);
        expect((a.cancel_is_cancelled)(null_mut(), &mut flag), NULL_POINTER);
        expect((a.mask_data)(null_mut(), &mut data, &mut n), NULL_POINTER);
        let mut mi = MaskInfo {
            struct_size: std::mem::size_of::<MaskInfo>(),
            ..Default::default()
        };
        expect((a.mask_info)(null_mut(), SPACE_LPS, &mut mi), NULL_POINTER);
        expect(
            (a.mask_label_stats)(null_mut(), 0, null_mut()),
            NULL_POINTER,
        );
        expect((a.mask_save)(null_mut(), p.as_ptr()), NULL_POINTER);
        assert!(h.is_null(), "an output was written on failure");
        // _free(NULL), twice, is a no-op.
        for _ in 0..2 {
            (a.model_free)(null_mut());
            (a.volume_free)(null_mut());
            (a.cancel_free)(null_mut());
            (a.mask_free)(null_mut());
        }
        // A cancel token with a NULL out.
        let mut c: H = null_mut();
        expect((a.cancel_new)(&mut c), OK);
        expect((a.cancel_is_cancelled)(c, null_mut()), NULL_POINTER);
        (a.cancel_free)(c);
    }
}

fn from_memory(
    bytes: &[u8],
    dtype: u32,
    dims: [usize; 4],
    sp: Option<[f64; 3]>,
    org: Option<[f64; 3]>,
    dir: Option<[f64; 9]>,
    space: u32,
) -> (i32, H) {
    let mut h: H = null_mut();
    let st = unsafe {
        (api().volume_from_memory)(
            bytes.as_ptr().cast(),
            dtype,
            dims.as_ptr(),
            sp.as_ref().map_or(null(), |s| s.as_ptr()),
            org.as_ref().map_or(null(), |s| s.as_ptr()),
            dir.as_ref().map_or(null(), |s| s.as_ptr()),
            space,
            &mut h,
        )
    };
    (st, h)
}

fn volume_info(h: H, space: u32) -> VolumeInfo {
    let mut vi = VolumeInfo {
        struct_size: std::mem::size_of::<VolumeInfo>(),
        ..Default::default()
    };
    expect(unsafe { (api().volume_info)(h, space, &mut vi) }, OK);
    vi
}

#[test]
fn volume_from_memory_checks_and_geometry() {
    let a = api();
    let bytes = vec![0u8; 3 * 4 * 5 * 8];
    let dims = [3, 4, 5, 1];
    // Wrong dtypes, including BOOL (reported only) and 0.
    for bad in [0u32, DTYPE_BOOL, 12, 999, u32::MAX] {
        let (st, h) = from_memory(&bytes, bad, dims, None, None, None, SPACE_LPS);
        expect(st, INVALID_ARGUMENT);
        assert!(h.is_null());
        assert!(last_error().contains("dtype"), "{}", last_error());
    }
    // Zero dims, a bad space, bad spacing, a direction with the spacing folded in.
    expect(
        from_memory(&bytes, DTYPE_U8, [3, 0, 5, 1], None, None, None, SPACE_LPS).0,
        INVALID_ARGUMENT,
    );
    expect(
        from_memory(&bytes, DTYPE_U8, [3, 4, 5, 0], None, None, None, SPACE_LPS).0,
        INVALID_ARGUMENT,
    );
    expect(
        from_memory(&bytes, DTYPE_U8, dims, None, None, None, 0).0,
        INVALID_ARGUMENT,
    );
    expect(
        from_memory(
            &bytes,
            DTYPE_U8,
            dims,
            Some([1.0, 0.0, 1.0]),
            None,
            None,
            SPACE_LPS,
        )
        .0,
        INVALID_ARGUMENT,
    );
    expect(
        from_memory(
            &bytes,
            DTYPE_U8,
            dims,
            Some([1.0, f64::NAN, 1.0]),
            None,
            None,
            SPACE_LPS,
        )
        .0,
        INVALID_ARGUMENT,
    );
    let scaled = [2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    expect(
        from_memory(&bytes, DTYPE_U8, dims, None, None, Some(scaled), SPACE_LPS).0,
        INVALID_ARGUMENT,
    );
    assert!(
        last_error().contains("direction column 0"),
        "{}",
        last_error()
    );
    // Too large: refused before any read of `data`.
    let huge = [1 << 20, 1 << 20, 1 << 20, 1];
    expect(
        from_memory(&bytes, DTYPE_U8, huge, None, None, None, SPACE_LPS).0,
        5,
    );
    let overflow = [usize::MAX, 2, 2, 1];
    expect(
        from_memory(&bytes, DTYPE_U8, overflow, None, None, None, SPACE_LPS).0,
        5,
    );

    // RAS in, LPS and RAS out: an oblique, flipped geometry.
    let (c, s) = (0.6f64, 0.8f64);
    let dir_ras = [c, -s, 0.0, s, c, 0.0, 0.0, 0.0, -1.0];
    let org_ras = [10.0, -20.0, 30.0];
    let (st, h) = from_memory(
        &bytes,
        DTYPE_F64,
        [3, 4, 5, 2],
        Some([0.5, 0.75, 3.0]),
        Some(org_ras),
        Some(dir_ras),
        SPACE_RAS,
    );
    expect(st, OK);
    let ras = volume_info(h, SPACE_RAS);
    assert_eq!(ras.dims, [3, 4, 5, 2]);
    assert_eq!(ras.spacing, [0.5, 0.75, 3.0]);
    assert_eq!(ras.origin, org_ras);
    assert_eq!(ras.direction, dir_ras);
    assert_eq!(
        (ras.original_dtype, ras.format, ras.acquisition_axis),
        (DTYPE_F64, 4, 2)
    );
    let lps = volume_info(h, SPACE_LPS);
    assert_eq!(lps.origin, [-10.0, 20.0, 30.0]);
    assert_eq!(lps.direction, [-c, s, 0.0, -s, -c, 0.0, 0.0, 0.0, -1.0]);
    // Info: bad space, too-small struct_size; a larger one gets its tail zeroed.
    let mut vi = VolumeInfo {
        struct_size: 8,
        ..Default::default()
    };
    expect(
        unsafe { (a.volume_info)(h, SPACE_LPS, &mut vi) },
        INVALID_ARGUMENT,
    );
    expect(unsafe { (a.volume_info)(h, 7, &mut vi) }, INVALID_ARGUMENT);
    #[repr(C)]
    struct Bigger {
        info: VolumeInfo,
        future: [u64; 4],
    }
    let mut big = Bigger {
        info: VolumeInfo {
            struct_size: std::mem::size_of::<Bigger>(),
            ..Default::default()
        },
        future: [7; 4],
    };
    expect(unsafe { (a.volume_info)(h, SPACE_LPS, &mut big.info) }, OK);
    assert_eq!(
        (big.info.struct_size, big.info.dims, big.future),
        (std::mem::size_of::<Bigger>(), [3, 4, 5, 2], [0; 4])
    );
    unsafe { (a.volume_free)(h) };

    // NULL geometry: identity in the caller's space.
    let (st, h) = from_memory(&bytes, DTYPE_I16, dims, None, None, None, SPACE_RAS);
    expect(st, OK);
    assert_eq!(
        volume_info(h, SPACE_RAS).direction,
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(
        volume_info(h, SPACE_LPS).direction,
        [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0]
    );
    unsafe { (a.volume_free)(h) };
}

#[test]
fn volume_open_matches_the_rust_reader() {
    let path = harness::data("msd-hippocampus/images/hippocampus_001.nii.gz");
    let mut h: H = null_mut();
    expect(
        unsafe { (api().volume_open)(cpath(&path).as_ptr(), &mut h) },
        OK,
    );
    let info = volume_info(h, SPACE_LPS);
    let v = slicewise::Volume::open(&path).expect("rust reader");
    let [x, y, z] = v.dims_xyz();
    assert_eq!(info.dims, [x, y, z, v.channels()]);
    assert_eq!(info.spacing, v.geometry.spacing);
    assert_eq!(info.origin, v.geometry.origin);
    for r in 0..3 {
        for c in 0..3 {
            assert_eq!(info.direction[3 * r + c], v.geometry.direction[r][c]);
        }
    }
    assert_eq!(info.format, 2);
    unsafe { (api().volume_free)(h) };
}

#[test]
fn options_struct_size_rules() {
    let a = api();
    let mut o = ModelOptions {
        struct_size: 0,
        device: 77,
        threads: 9,
        runtime_path: null(),
    };
    expect(unsafe { (a.model_options_init)(&mut o) }, OK);
    assert_eq!(
        (o.struct_size, o.device, o.threads),
        (std::mem::size_of::<ModelOptions>(), 0, 0)
    );
    assert!(o.runtime_path.is_null());
    let mut s: SegmentOptions = unsafe { std::mem::zeroed() };
    expect(unsafe { (a.segment_options_init)(&mut s) }, OK);
    assert_eq!(
        (s.struct_size, s.batch_size, s.threshold),
        (std::mem::size_of::<SegmentOptions>(), 0, -1.0)
    );
    // The options are read before the model file: a missing file gives IO only when they are fine.
    let missing = cpath(Path::new("/nonexistent/model.onnx"));
    let mut h: H = null_mut();
    o.device = DEVICE_CPU;
    let st = unsafe { (a.model_open)(missing.as_ptr(), &o, &mut h) };
    assert!(
        st == IO || st == 6 || st == 7,
        "status {st}: {}",
        last_error()
    );
    let mut bad = o;
    bad.struct_size = 4;
    expect(
        unsafe { (a.model_open)(missing.as_ptr(), &bad, &mut h) },
        INVALID_ARGUMENT,
    );
    bad = o;
    bad.device = 42;
    expect(
        unsafe { (a.model_open)(missing.as_ptr(), &bad, &mut h) },
        INVALID_ARGUMENT,
    );
    #[repr(C)]
    struct Newer {
        o: ModelOptions,
        future: u64,
    }
    let mut newer = Newer { o, future: 1 };
    newer.o.struct_size = std::mem::size_of::<Newer>();
    expect(
        unsafe { (a.model_open)(missing.as_ptr(), &newer.o, &mut h) },
        UNSUPPORTED,
    );
    newer.future = 0;
    let st = unsafe { (a.model_open)(missing.as_ptr(), &newer.o, &mut h) };
    assert!(
        st != UNSUPPORTED && st != INVALID_ARGUMENT,
        "zero tail refused: {}",
        last_error()
    );
    assert!(h.is_null());
}

#[test]
fn cancel_token_from_any_thread() {
    let a = api();
    let mut c: H = null_mut();
    expect(unsafe { (a.cancel_new)(&mut c) }, OK);
    let mut flag = -1;
    expect(unsafe { (a.cancel_is_cancelled)(c, &mut flag) }, OK);
    assert_eq!(flag, 0);
    let sc = Shared(c);
    std::thread::spawn(move || {
        let sc = sc;
        expect(unsafe { (api().cancel_cancel)(sc.0) }, OK)
    })
    .join()
    .unwrap();
    expect(unsafe { (a.cancel_is_cancelled)(c, &mut flag) }, OK);
    assert_eq!(flag, 1);
    unsafe { (a.cancel_free)(c) };
}

/// Debug builds: a panic injected through the test-only export `slicewise_debug_panic` comes
/// out as `SLICEWISE_PANIC` with its message, and the library keeps working. Release builds
/// (the library that ships): that export is absent, because it is not part of the ABI and a host
/// must not be able to trigger a panic on purpose; the boundary itself is tested in release by
/// `slicewise-capi`'s unit tests (`cargo test -p slicewise-capi --release --lib`). The cdylib is
/// built in this test's profile (see `harness::cdylib`), so `debug_assertions` here is its own.
#[test]
fn injected_panic_becomes_a_status() {
    let a = api();
    if !cfg!(debug_assertions) {
        assert!(
            a.debug_panic.is_none(),
            "the release library exports the test-only slicewise_debug_panic: it must not ship"
        );
        return;
    }
    let f = a
        .debug_panic
        .expect("debug build without slicewise_debug_panic");
    assert_eq!(unsafe { f() }, PANIC);
    let msg = last_error();
    assert!(msg.contains("injected panic"), "{msg}");
    assert!(msg.contains("boundary.rs:"), "the panic's location: {msg}");
    // The library still works after a caught panic, and a successful call clears the message.
    let mut c: H = null_mut();
    expect(unsafe { (a.cancel_new)(&mut c) }, OK);
    assert_eq!(last_error(), "");
    unsafe { (a.cancel_free)(c) };
}

/// A host's stderr stays its own: a panic caught at the boundary prints nothing, not even with
/// `RUST_BACKTRACE=1` (a C host, here Python's ctypes in a fresh process, sees the status only).
#[test]
fn caught_panic_prints_nothing_on_the_hosts_stderr() {
    if !cfg!(debug_assertions) {
        return;
    }
    let script = "import ctypes, sys\n\
        lib = ctypes.CDLL(sys.argv[1])\n\
        print(lib.slicewise_debug_panic())\n";
    let out = std::process::Command::new(harness::python())
        .args([
            std::ffi::OsStr::new("-c"),
            script.as_ref(),
            harness::cdylib().as_os_str(),
        ])
        .env("RUST_BACKTRACE", "1")
        .env_remove("SLICEWISE_PANIC_TRACE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        PANIC.to_string()
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "stderr");
}

// ---- the header (its drift test is crates/slicewise-capi/tests/header.rs) ----------------------

/// Compiles a translation unit against the header as C99 and as C++ with warnings as errors, and
/// checks the struct layouts the compilers see equal those this test declares.
#[test]
fn header_compiles_as_c99_and_cpp_with_matching_layouts() {
    let tmp = harness::tmpdir();
    let src = r#"
#include "slicewise.h"
#include <stdio.h>
#include <stddef.h>
#define P(T) printf(#T " %zu\n", sizeof(T))
#define O(T, f) printf(#T "." #f " %zu\n", offsetof(T, f))
int main(void) {
    P(slicewise_model_options); O(slicewise_model_options, runtime_path);
    P(slicewise_segment_options); O(slicewise_segment_options, cancel); O(slicewise_segment_options, tta);
    P(slicewise_volume_desc); O(slicewise_volume_desc, acquisition_axis);
    P(slicewise_mask_desc); O(slicewise_mask_desc, label_count);
    P(slicewise_label_stats); O(slicewise_label_stats, name);
    printf("version %d.%d.%d\n", SLICEWISE_VERSION_MAJOR, SLICEWISE_VERSION_MINOR, SLICEWISE_VERSION_PATCH);
    return 0;
}
"#;
    let c = tmp.path().join("layout.c");
    std::fs::write(&c, src).unwrap();
    let cpp = tmp.path().join("layout.cpp");
    std::fs::write(&cpp, src).unwrap();
    let include = harness::repo().join("include");
    let mut outputs = Vec::new();
    for (compiler, file, std) in [("gcc", &c, "-std=c99"), ("g++", &cpp, "-std=c++11")] {
        let exe = tmp.path().join(format!("layout-{compiler}"));
        let out = Command::new(harness::tool(compiler))
            .args([std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
            .arg(&include)
            .arg(file)
            .arg("-o")
            .arg(&exe)
            .output()
            .expect("compiler");
        assert!(
            out.status.success(),
            "{compiler} {std}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = Command::new(&exe).output().unwrap();
        outputs.push(String::from_utf8(run.stdout).unwrap());
    }
    assert_eq!(outputs[0], outputs[1], "C and C++ disagree on layouts");
    let want = format!(
        "slicewise_model_options {}\nslicewise_model_options.runtime_path {}\n\
         slicewise_segment_options {}\nslicewise_segment_options.cancel {}\nslicewise_segment_options.tta {}\n\
         slicewise_volume_desc {}\nslicewise_volume_desc.acquisition_axis {}\n\
         slicewise_mask_desc {}\nslicewise_mask_desc.label_count {}\n\
         slicewise_label_stats {}\nslicewise_label_stats.name {}\nversion {}\n",
        std::mem::size_of::<ModelOptions>(),
        std::mem::offset_of!(ModelOptions, runtime_path),
        std::mem::size_of::<SegmentOptions>(),
        std::mem::offset_of!(SegmentOptions, cancel),
        std::mem::offset_of!(SegmentOptions, tta),
        std::mem::size_of::<VolumeInfo>(),
        std::mem::offset_of!(VolumeInfo, acquisition_axis),
        std::mem::size_of::<MaskInfo>(),
        std::mem::offset_of!(MaskInfo, label_count),
        std::mem::size_of::<LabelStats>(),
        std::mem::offset_of!(LabelStats, name),
        env!("CARGO_PKG_VERSION"),
    );
    assert_eq!(outputs[0], want);
}

/// `tests/python/header_mirrors.py` on `header`: how each hand-written mirror of the header (the
/// Slicer ctypes binding, `tests/python/capi_ctypes.py`, this file's declarations) differs from
/// it, and whether gcc lays out its structs as the parsed header says.
fn mirror_check(header: &Path) -> serde_json::Value {
    harness::py(
        "header_mirrors.py",
        &[&"--header", &header, &"--cc", &harness::tool("gcc")],
    )
}

/// Every mirror of the header agrees with it: the functions it declares (the Slicer binding and
/// this file: all of them) with their argument and return types, its structs field by field
/// (ctypes: size and offsets too), its constants' names and values (Rust: types too; the Slicer
/// binding: every value of each enumeration it mirrors, status codes through its exception
/// classes). The counts make sure the parser read the whole header.
#[test]
fn header_mirrors_match_the_header() {
    let r = mirror_check(&harness::repo().join("include/slicewise.h"));
    assert_eq!(r["header"]["functions"], 26, "{}", r["header"]);
    assert_eq!(r["header"]["structs"], 5, "{}", r["header"]);
    assert_eq!(r["compiler"]["fields"], 32);
    assert_eq!(r["compiler"]["problems"], serde_json::json!([]));
    for (name, functions, structs) in [("slicer", 26, 5), ("capi_ctypes", 13, 4), ("rust", 26, 5)] {
        let m = &r["mirrors"][name];
        assert_eq!(
            m["problems"],
            serde_json::json!([]),
            "{name} differs from include/slicewise.h"
        );
        assert_eq!(m["functions"], functions, "{name}: {m}");
        assert_eq!(
            m["structs"].as_object().map(|s| s.len()),
            Some(structs),
            "{name}: {m}"
        );
    }
}

/// The mirror check fails when the header changes under the mirrors: each edit of a copy of the
/// header is reported by exactly the mirrors that declare what it changes (a new function or
/// status code only by those that must declare all).
#[test]
fn header_mirror_check_catches_a_changed_header() {
    let header = std::fs::read_to_string(harness::repo().join("include/slicewise.h")).unwrap();
    const ALL: &[&str] = &["slicer", "capi_ctypes", "rust"];
    let cases: [(&str, &str, &str, &[&str]); 9] = [
        ("renamed field", "uint32_t threads;", "uint32_t thread_count;", ALL),
        ("field type", "uint32_t acquisition_axis;", "uint64_t acquisition_axis;", ALL),
        ("enum value", "SLICEWISE_SPACE_RAS 2", "SLICEWISE_SPACE_RAS 3", ALL),
        ("argument type", "const size_t *dims,", "const uint32_t *dims,", ALL),
        ("added argument", "const char *path);", "const char *path, int flags);", ALL),
        ("return type", "void slicewise_volume_free(", "int slicewise_volume_free(", ALL),
        ("renamed function", "slicewise_mask_save(", "slicewise_mask_write(", ALL),
        (
            "new function",
            "void slicewise_volume_free(",
            "void slicewise_volume_retain(struct slicewise_volume *volume);\nvoid slicewise_volume_free(",
            &["slicer", "rust"],
        ),
        (
            "new status code",
            "#define SLICEWISE_TRAINING 14",
            "#define SLICEWISE_TRAINING 14\n#define SLICEWISE_TIMEOUT 15",
            &["slicer"],
        ),
    ];
    for (what, old, new, want) in cases {
        assert_eq!(
            header.matches(old).count(),
            1,
            "{what}: {old:?} is not unique"
        );
        let tmp = harness::tmpdir();
        let changed = tmp.path().join("slicewise.h");
        std::fs::write(&changed, header.replacen(old, new, 1)).unwrap();
        let r = mirror_check(&changed);
        let failing: Vec<&str> = ALL
            .iter()
            .copied()
            .filter(|m| r["mirrors"][m]["problems"] != serde_json::json!([]))
            .collect();
        assert_eq!(failing, want, "{what}: {}", r["mirrors"]);
        assert_eq!(r["compiler"]["problems"], serde_json::json!([]), "{what}");
    }
}

// ---- with a model -----------------------------------------------------------------------------

const SIGMOID: &str = "unet_sigmoid.onnx";
const SOFTMAX: &str = "unet_softmax.onnx";

/// The bundled 2-label (softmax) model, relative to the repository (the key of `c_model`).
const HIPPO_MODEL: &str = "models/msd-hippocampus-small.onnx";

/// A test model in tests/data, or (a name with a `/`) a model relative to the repository.
fn model_path(name: &str) -> PathBuf {
    if name.contains('/') {
        return harness::repo().join(name);
    }
    harness::repo().join("tests/data").join(name)
}

fn hippocampus(n: &str) -> PathBuf {
    harness::data(&format!("msd-hippocampus/images/hippocampus_{n}.nii.gz"))
}

/// A model opened through the ABI (CPU, one thread), shared by the tests.
fn c_model(name: &'static str) -> Shared {
    static MODELS: OnceLock<std::sync::Mutex<Vec<(&'static str, Shared)>>> = OnceLock::new();
    let models = MODELS.get_or_init(Default::default);
    let mut models = models.lock().unwrap();
    if let Some((_, m)) = models.iter().find(|(n, _)| *n == name) {
        return *m;
    }
    let a = api();
    let ort = cpath(&ort_lib());
    expect(unsafe { (a.runtime_init)(ort.as_ptr()) }, OK);
    let mut o: ModelOptions = unsafe { std::mem::zeroed() };
    expect(unsafe { (a.model_options_init)(&mut o) }, OK);
    o.device = DEVICE_CPU;
    o.threads = 1;
    let mut h: H = null_mut();
    expect(
        unsafe { (a.model_open)(cpath(&model_path(name)).as_ptr(), &o, &mut h) },
        OK,
    );
    models.push((name, Shared(h)));
    Shared(h)
}

/// The same model through the Rust API (the reference).
fn rust_model(name: &'static str) -> &'static slicewise::infer::Model {
    use slicewise::infer::{Device, Model, ModelOptions};
    static MODELS: OnceLock<std::sync::Mutex<Vec<(&'static str, &'static Model)>>> =
        OnceLock::new();
    let mut models = MODELS.get_or_init(Default::default).lock().unwrap();
    if let Some((_, m)) = models.iter().find(|(n, _)| *n == name) {
        return m;
    }
    slicewise::infer::init_runtime(Some(&ort_lib())).expect("runtime");
    let opts = ModelOptions::default().device(Device::Cpu).threads(1);
    let m: &'static Model = Box::leak(Box::new(
        Model::open(model_path(name), &opts).expect("open"),
    ));
    models.push((name, m));
    m
}

fn rust_segment(
    model: &'static str,
    volume: &slicewise::Volume,
    opts: &slicewise::infer::SegmentOptions,
) -> slicewise::Mask {
    slicewise::infer::segment(rust_model(model), volume, opts, &mut |_| true)
        .expect("rust segment")
        .mask
}

fn c_volume(path: &Path) -> Shared {
    let mut h: H = null_mut();
    expect(
        unsafe { (api().volume_open)(cpath(path).as_ptr(), &mut h) },
        OK,
    );
    Shared(h)
}

fn segment_options() -> SegmentOptions {
    let mut s: SegmentOptions = unsafe { std::mem::zeroed() };
    expect(unsafe { (api().segment_options_init)(&mut s) }, OK);
    s
}

/// Segments through the ABI; returns the status and the mask handle (null on failure).
fn c_segment(
    model: Shared,
    volume: Shared,
    opts: Option<&SegmentOptions>,
    progress: ProgressFn,
    userdata: *mut c_void,
) -> (i32, H) {
    let sentinel = 0x1 as H; // must stay untouched on failure
    let mut out = sentinel;
    let st = unsafe {
        (api().segment)(
            model.0,
            volume.0,
            opts.map_or(null(), |o| o as *const _),
            progress,
            userdata,
            &mut out,
        )
    };
    if st != OK {
        assert_eq!(out, sentinel, "output written on failure");
        return (st, null_mut());
    }
    (st, out)
}

fn mask_bytes(mask: H) -> Vec<u8> {
    let mut data: *const u8 = null();
    let mut n = 0;
    expect(unsafe { (api().mask_data)(mask, &mut data, &mut n) }, OK);
    unsafe { std::slice::from_raw_parts(data, n) }.to_vec()
}

fn rust_bytes(m: &slicewise::Mask) -> Vec<u8> {
    m.labels.as_standard_layout().iter().copied().collect()
}

#[test]
fn segment_matches_the_rust_api() {
    use slicewise::infer::SegmentOptions as RustOptions;
    let a = api();
    let path = hippocampus("003");
    let vol = slicewise::Volume::open(&path).unwrap();
    let cv = c_volume(&path);
    for name in [SIGMOID, SOFTMAX] {
        let m = c_model(name);
        // Defaults (NULL options) and non-default options.
        let mut o = segment_options();
        o.batch_size = 3;
        o.largest_component = 1;
        o.fill_holes = 1;
        if name == SIGMOID {
            o.threshold = 0.3;
        }
        let mut ro = RustOptions::default()
            .batch_size(3)
            .largest_component(true)
            .fill_holes(true);
        if name == SIGMOID {
            ro.threshold = Some(0.3);
        }
        for (opts, rust_opts) in [(None, RustOptions::default()), (Some(&o), ro)] {
            let reference = rust_segment(name, &vol, &rust_opts);
            let (st, mask) = c_segment(m, cv, opts, None, null_mut());
            expect(st, OK);
            let bytes = mask_bytes(mask);
            assert_eq!(
                bytes,
                rust_bytes(&reference),
                "{name}: C mask differs from the Rust API's"
            );
            assert!(
                bytes.iter().any(|&b| b > 0) && bytes.contains(&0),
                "{name}: degenerate mask"
            );
            // Geometry and label statistics.
            let mut mi = MaskInfo {
                struct_size: std::mem::size_of::<MaskInfo>(),
                ..Default::default()
            };
            expect(unsafe { (a.mask_info)(mask, SPACE_LPS, &mut mi) }, OK);
            assert_eq!(mi.dims, vol.dims_xyz());
            assert_eq!(mi.spacing, vol.geometry.spacing);
            assert_eq!(mi.origin, vol.geometry.origin);
            let stats = reference.stats();
            assert_eq!(mi.label_count, stats.len());
            for (i, s) in stats.iter().enumerate() {
                let mut ls: LabelStats = unsafe { std::mem::zeroed() };
                ls.struct_size = std::mem::size_of::<LabelStats>();
                expect(unsafe { (a.mask_label_stats)(mask, i, &mut ls) }, OK);
                let lname = unsafe { CStr::from_ptr(ls.name) }.to_str().unwrap();
                assert_eq!(
                    (ls.value, ls.voxels, lname),
                    (s.value, s.voxels, s.name.as_str())
                );
                assert!((ls.ml - s.ml).abs() < 1e-12);
            }
            let mut ls: LabelStats = unsafe { std::mem::zeroed() };
            ls.struct_size = std::mem::size_of::<LabelStats>();
            expect(
                unsafe { (a.mask_label_stats)(mask, stats.len(), &mut ls) },
                INVALID_ARGUMENT,
            );
            unsafe { (a.mask_free)(mask) };
        }
    }
    unsafe { (a.volume_free)(cv.0) };
}

/// `slicewise_volume_open_channels` stacks the BraTS FLAIR and T1c files (one per channel) and a
/// 2-channel model segments them as the independent reference does
/// (`channels::reference`); files on other grids are FORMAT errors naming both files.
#[test]
fn volume_open_channels_segments_like_the_reference_and_refuses_other_grids() {
    let a = api();
    let [flair, t1c] = crate::channels::brats();
    let (c0, c1) = (cpath(&flair), cpath(&t1c));
    let paths = [c0.as_ptr(), c1.as_ptr()];
    let mut h: H = null_mut();
    expect(
        unsafe { (a.volume_open_channels)(paths.as_ptr(), 2, &mut h) },
        OK,
    );
    let info = volume_info(h, SPACE_LPS);
    assert_eq!(info.dims, [240, 240, 155, 2]);
    let m = c_model("unet_2ch.onnx");
    let (st, mask) = c_segment(m, Shared(h), None, None, null_mut());
    expect(st, OK);
    let got = mask_bytes(mask);
    let reference = crate::channels::reference();
    let (want, ambiguous) = (reference.labels(), reference.ambiguous());
    let differ: Vec<usize> = (0..want.len()).filter(|&i| got[i] != want[i]).collect();
    assert!(
        differ.iter().all(|&i| ambiguous[i]) && differ.len() * 10_000 <= want.len(),
        "{} voxels differ from the reference",
        differ.len()
    );
    assert!(got.iter().any(|&b| b > 0), "degenerate mask");
    unsafe { (a.mask_free)(mask) };
    unsafe { (a.volume_free)(h) };

    // Another grid: FORMAT, both files named, `out` untouched.
    let hippo = hippocampus("001");
    let c2 = cpath(&hippo);
    let paths = [c0.as_ptr(), c2.as_ptr()];
    let sentinel = 0x1 as H;
    let mut h = sentinel;
    expect(
        unsafe { (a.volume_open_channels)(paths.as_ptr(), 2, &mut h) },
        FORMAT,
    );
    assert_eq!(h, sentinel);
    let e = last_error();
    assert!(
        e.contains(&*flair.to_string_lossy()) && e.contains(&*hippo.to_string_lossy()),
        "{e}"
    );
    expect(
        unsafe { (a.volume_open_channels)(null(), 2, &mut h) },
        NULL_POINTER,
    );
    expect(
        unsafe { (a.volume_open_channels)(paths.as_ptr(), 0, &mut h) },
        INVALID_ARGUMENT,
    );
}

/// One label's statistics through `slicewise_mask_label_stats`.
fn c_label_stats(mask: H, index: usize) -> (LabelStats, String) {
    let mut ls: LabelStats = unsafe { std::mem::zeroed() };
    ls.struct_size = std::mem::size_of::<LabelStats>();
    expect(
        unsafe { (api().mask_label_stats)(mask, index, &mut ls) },
        OK,
    );
    let name = unsafe { CStr::from_ptr(ls.name) }
        .to_str()
        .unwrap()
        .to_string();
    (ls, name)
}

/// The bundled 2-label (softmax) model on its bundled sample through the ABI: two labels whose
/// values, names and colours are the card's, and whose voxel counts and millilitres equal
/// `slicewise segment`'s report and nibabel's count of the CLI's mask (× its header's voxel
/// volume); the C mask buffer is that mask voxel for voxel.
#[test]
fn two_label_model_stats_equal_the_card_the_cli_report_and_nibabel() {
    let tmp = harness::tmpdir();
    let h = harness::bundled_hippocampus();
    let (sample, model) = (h.image.clone(), h.model.clone());
    let (out, report) = (tmp.path().join("out"), tmp.path().join("report.json"));
    crate::cli::segment_ok(&sample, &model, &out, &[&"--report", &report]);
    let job = &crate::cli::read_json(&report)["jobs"][0];
    let cli_mask = PathBuf::from(job["mask"]["path"].as_str().unwrap());
    let raw = tmp.path().join("cli_mask.u8");
    let nib = harness::py("mask_labels.py", &[&cli_mask, &raw]);
    let card = crate::cli::read_json(&h.card);
    let labels = card["contract"]["labels"].as_array().unwrap();

    let cv = c_volume(&sample);
    let (st, mask) = c_segment(c_model(HIPPO_MODEL), cv, None, None, null_mut());
    expect(st, OK);
    assert!(
        mask_bytes(mask) == harness::read_u8(&raw),
        "C mask differs from the CLI's"
    );
    let mut mi = MaskInfo {
        struct_size: std::mem::size_of::<MaskInfo>(),
        ..Default::default()
    };
    expect(unsafe { (api().mask_info)(mask, SPACE_RAS, &mut mi) }, OK);
    assert_eq!(mi.label_count, 2);
    let cli = job["labels"].as_array().unwrap();
    assert_eq!(cli.len(), 2, "{job}");
    for (i, (card_label, cli_label)) in labels.iter().zip(cli).enumerate() {
        let (ls, name) = c_label_stats(mask, i);
        let value = ls.value.to_string();
        assert_eq!(Some(ls.value as u64), card_label["value"].as_u64());
        assert_eq!(name, card_label["name"].as_str().unwrap());
        let color = harness::f64s(&card_label["color"]);
        assert_eq!(ls.color.map(f64::from).to_vec(), color, "label {value}");
        assert_eq!(
            (&cli_label["value"], &cli_label["name"]),
            (&card_label["value"], &card_label["name"])
        );
        let voxels = nib["counts"][&value].as_u64().unwrap();
        assert!(voxels > 0, "label {value} absent");
        assert_eq!(
            (ls.voxels, cli_label["voxels"].as_u64()),
            (voxels, Some(voxels))
        );
        let ml = voxels as f64 * nib["voxel_ml"].as_f64().unwrap();
        assert!(
            (ls.ml - ml).abs() < 1e-9,
            "label {value}: {} mL vs {ml}",
            ls.ml
        );
        // Not bit-exact: serde_json's default float parser may round the report's last digit.
        let cli_ml = cli_label["ml"].as_f64().unwrap();
        assert!(
            (ls.ml - cli_ml).abs() < 1e-12,
            "label {value}: {} vs {cli_ml}",
            ls.ml
        );
    }
    unsafe { (api().mask_free)(mask) };
    unsafe { (api().volume_free)(cv.0) };
}

#[test]
fn mask_save_and_model_info() {
    let a = api();
    let path = hippocampus("001");
    let cv = c_volume(&path);
    let (st, mask) = c_segment(c_model(SOFTMAX), cv, None, None, null_mut());
    expect(st, OK);
    let bytes = mask_bytes(mask);
    let tmp = harness::tmpdir();
    for name in ["m.nii", "m.nii.gz", "m.tif"] {
        let out = tmp.path().join(name);
        expect(unsafe { (a.mask_save)(mask, cpath(&out).as_ptr()) }, OK);
        let back = slicewise::Volume::open(&out).unwrap();
        let labels: Vec<u8> = back.data.iter().map(|&v| v as u8).collect();
        assert_eq!(labels, bytes, "{name} read back differs");
    }
    let bad = tmp.path().join("m.png");
    expect(
        unsafe { (a.mask_save)(mask, cpath(&bad).as_ptr()) },
        INVALID_ARGUMENT,
    );
    assert!(!bad.exists());
    let nodir = tmp.path().join("no/such/dir/m.nii");
    expect(unsafe { (a.mask_save)(mask, cpath(&nodir).as_ptr()) }, IO);
    unsafe { (a.mask_free)(mask) };
    unsafe { (a.volume_free)(cv.0) };

    // Model info: size query, too small (nothing written), exact.
    let m = c_model(SOFTMAX);
    let mut n = 0usize;
    expect(
        unsafe { (a.model_info)(m.0, null_mut(), 0, &mut n) },
        BUFFER_TOO_SMALL,
    );
    let mut small = vec![0x55 as c_char; n];
    expect(
        unsafe { (a.model_info)(m.0, small.as_mut_ptr(), small.len(), null_mut()) },
        BUFFER_TOO_SMALL,
    );
    assert!(
        small.iter().all(|&c| c == 0x55),
        "buffer written although too small"
    );
    let mut buf = vec![0 as c_char; n + 1];
    expect(
        unsafe { (a.model_info)(m.0, buf.as_mut_ptr(), buf.len(), &mut n) },
        OK,
    );
    let json: serde_json::Value =
        serde_json::from_str(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap()).unwrap();
    let rm = rust_model(SOFTMAX);
    assert_eq!(
        json["contract"],
        serde_json::to_value(rm.contract()).unwrap()
    );
    assert_eq!(
        json["provider"]["used"],
        serde_json::Value::from(rm.provider().used.clone())
    );
    assert_eq!(
        json["path"].as_str().unwrap(),
        model_path(SOFTMAX).to_str().unwrap()
    );
}

unsafe extern "C" fn record_progress(userdata: *mut c_void, done: usize, total: usize) -> i32 {
    let calls = &mut *(userdata as *mut Vec<(usize, usize)>);
    calls.push((done, total));
    0
}

unsafe extern "C" fn cancel_at_first(userdata: *mut c_void, _done: usize, _total: usize) -> i32 {
    *(userdata as *mut usize) += 1;
    1
}

#[test]
fn progress_is_reported_and_a_nonzero_return_cancels() {
    let path = hippocampus("001");
    let vol = slicewise::Volume::open(&path).unwrap();
    let slices = vol.dims_xyz()[vol.meta.acquisition_axis];
    let cv = c_volume(&path);
    let m = c_model(SIGMOID);
    let mut o = segment_options();
    o.batch_size = 4;
    let mut calls: Vec<(usize, usize)> = Vec::new();
    let (st, mask) = c_segment(
        m,
        cv,
        Some(&o),
        Some(record_progress),
        (&mut calls as *mut Vec<_>).cast(),
    );
    expect(st, OK);
    assert!(calls.len() >= slices.div_ceil(4), "{calls:?}");
    assert!(
        calls.windows(2).all(|w| w[0].0 <= w[1].0),
        "not monotonic: {calls:?}"
    );
    assert!(calls.iter().all(|&(_, t)| t == slices));
    assert_eq!(calls.last().unwrap().0, slices);
    unsafe { (api().mask_free)(mask) };

    let mut count = 0usize;
    let (st, _) = c_segment(
        m,
        cv,
        Some(&o),
        Some(cancel_at_first),
        (&mut count as *mut usize).cast(),
    );
    expect(st, CANCELLED);
    assert_eq!(
        count, 1,
        "the callback was called again after asking to cancel"
    );
    // Bad option values.
    for t in [1.5f32, f32::NAN] {
        let mut bad = o;
        bad.threshold = t;
        expect(
            c_segment(m, cv, Some(&bad), None, null_mut()).0,
            INVALID_ARGUMENT,
        );
    }
    unsafe { (api().volume_free)(cv.0) };
}

/// The progress callback's view of a cancel from another thread: it tells that thread to cancel
/// on the first batch and waits until it has.
struct CancelRendezvous {
    go: std::sync::mpsc::Sender<()>,
    done: std::sync::mpsc::Receiver<()>,
    calls: usize,
}

unsafe extern "C" fn cancel_elsewhere(userdata: *mut c_void, _done: usize, _total: usize) -> i32 {
    let r = &mut *(userdata as *mut CancelRendezvous);
    r.calls += 1;
    if r.calls == 1 {
        r.go.send(()).unwrap();
        r.done.recv().unwrap();
    }
    0
}

#[test]
fn cancel_from_another_thread_mid_volume() {
    let a = api();
    let path = hippocampus("001");
    let cv = c_volume(&path);
    let m = c_model(SIGMOID);
    let mut token: H = null_mut();
    expect(unsafe { (a.cancel_new)(&mut token) }, OK);
    let mut o = segment_options();
    o.batch_size = 1;
    o.cancel = token;
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let t = Shared(token);
    let canceller = std::thread::spawn(move || {
        let t = t;
        go_rx.recv().unwrap();
        expect(unsafe { (api().cancel_cancel)(t.0) }, OK);
        done_tx.send(()).unwrap();
    });
    let mut r = CancelRendezvous {
        go: go_tx,
        done: done_rx,
        calls: 0,
    };
    let (st, _) = c_segment(
        m,
        cv,
        Some(&o),
        Some(cancel_elsewhere),
        (&mut r as *mut CancelRendezvous).cast(),
    );
    canceller.join().unwrap();
    expect(st, CANCELLED);
    let slices = volume_info(cv.0, SPACE_LPS).dims[2];
    assert!(
        r.calls < slices,
        "ran to the end ({} progress calls) despite the cancel",
        r.calls
    );
    // A cancelled token cancels the next run before it starts.
    let (st, _) = c_segment(m, cv, Some(&o), None, null_mut());
    expect(st, CANCELLED);
    unsafe { (a.cancel_free)(token) };
    unsafe { (a.volume_free)(cv.0) };
}

#[test]
fn two_models_four_threads_concurrently() {
    let paths = [hippocampus("001"), hippocampus("004")];
    let vols: Vec<Shared> = paths.iter().map(|p| c_volume(p)).collect();
    let mut refs = Vec::new();
    for name in [SIGMOID, SOFTMAX] {
        for p in &paths {
            let v = slicewise::Volume::open(p).unwrap();
            refs.push((
                (name, p.clone()),
                rust_bytes(&rust_segment(name, &v, &Default::default())),
            ));
        }
    }
    let models = [c_model(SIGMOID), c_model(SOFTMAX)];
    let refs = std::sync::Arc::new(refs);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (m, v) = (models[i % 2], vols[i / 2]);
            let want = refs[(i % 2) * 2 + i / 2].1.clone();
            std::thread::spawn(move || {
                let (m, v) = (m, v);
                for _ in 0..3 {
                    let mut o = segment_options();
                    o.batch_size = 2;
                    let (st, mask) = c_segment(m, v, Some(&o), None, null_mut());
                    expect(st, OK);
                    assert_eq!(mask_bytes(mask), want, "thread {i}");
                    unsafe { (api().mask_free)(mask) };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for v in vols {
        unsafe { (api().volume_free)(v.0) };
    }
}

/// Host memory in, geometry and masks out: a file volume handed over as f32 memory gives the same
/// mask; as channel 0 of an interleaved 2-channel array (the model reads channel 0) too, which
/// pins the documented `[z][y][x][c]` order.
#[test]
fn memory_volume_segments_like_the_file() {
    let path = hippocampus("003");
    let vol = slicewise::Volume::open(&path).unwrap();
    let [x, y, z] = vol.dims_xyz();
    let m = c_model(SIGMOID);
    let cv = c_volume(&path);
    let (st, from_file) = c_segment(m, cv, None, None, null_mut());
    expect(st, OK);
    let want = mask_bytes(from_file);
    let g = vol.geometry;
    let dir: Vec<f64> = (0..3)
        .flat_map(|r| (0..3).map(move |c| g.direction[r][c]))
        .collect();
    let dir: [f64; 9] = dir.try_into().unwrap();
    let values: Vec<f32> = vol.data.iter().copied().collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let (st, mv) = from_memory(
        &bytes,
        DTYPE_F32,
        [x, y, z, 1],
        Some(g.spacing),
        Some(g.origin),
        Some(dir),
        SPACE_LPS,
    );
    expect(st, OK);
    let (st, mask) = c_segment(m, Shared(mv), None, None, null_mut());
    expect(st, OK);
    assert_eq!(mask_bytes(mask), want);
    unsafe { (api().mask_free)(mask) };
    // Interleaved: channel 0 the image, channel 1 noise.
    let inter: Vec<u8> = values
        .iter()
        .enumerate()
        .flat_map(|(i, v)| [*v, (i % 7) as f32 * 100.0])
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let (st, mv2) = from_memory(
        &inter,
        DTYPE_F32,
        [x, y, z, 2],
        Some(g.spacing),
        Some(g.origin),
        Some(dir),
        SPACE_LPS,
    );
    expect(st, OK);
    assert_eq!(volume_info(mv2, SPACE_LPS).dims, [x, y, z, 2]);
    let (st, mask2) = c_segment(m, Shared(mv2), None, None, null_mut());
    expect(st, OK);
    assert_eq!(
        mask_bytes(mask2),
        want,
        "channel 0 of the interleaved array is not the image"
    );
    unsafe {
        (api().mask_free)(mask2);
        (api().mask_free)(from_file);
        (api().volume_free)(mv);
        (api().volume_free)(mv2);
        (api().volume_free)(cv.0);
    }
}

/// Python's ctypes (the 3D Slicer route): a numpy array handed over as memory with nibabel's RAS
/// geometry segments like the file, and the saved mask reads back in nibabel with the image's
/// affine and the buffer's voxel order.
#[test]
fn python_ctypes_host() {
    let tmp = harness::tmpdir();
    let cases = [
        hippocampus("001"),
        hippocampus("003"),
        harness::data("sct-spinalcord/t2/t2.nii.gz"),
    ];
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = Vec::new();
    let (lib, ort, model, dir) = (
        cdylib(),
        ort_lib(),
        model_path(SIGMOID),
        tmp.path().to_path_buf(),
    );
    args.extend([&lib as &dyn AsRef<std::ffi::OsStr>, &ort, &model, &dir]);
    for c in &cases {
        args.push(c);
    }
    let out = harness::py("capi_ctypes.py", &args);
    let cases = out["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        assert_eq!(c["dims_mem"], c["dims_file"], "{c}");
        assert_eq!(c["axis_mem"], c["axis_file"], "{c}");
        assert!(c["geometry_diff"].as_f64().unwrap() < 1e-6, "{c}");
        assert_eq!(c["equal"], true, "memory and file masks differ: {c}");
        assert!(c["voxels"].as_u64().unwrap() > 0, "{c}");
        assert_eq!(c["saved_equal"], true, "{c}");
        assert!(c["affine_diff"].as_f64().unwrap() < 1e-4, "{c}");
        let last = &c["progress_last"];
        assert_eq!(last[0], last[1], "{c}");
    }
    assert_eq!(cases[0]["dtype"], "uint8");
    assert_eq!(cases[1]["dtype"], "float32");
}

/// Runs a command, returning its output; panics with stderr when it fails.
fn run(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Sanitizer options for the C host: a leak, an invalid access or undefined behaviour ends it
/// with an abort and a report on stderr.
const ASAN_OPTIONS: &str = "detect_leaks=1:abort_on_error=1";
const UBSAN_OPTIONS: &str = "print_stacktrace=1:halt_on_error=1";

/// Installs the library into `dir/prefix` (cmake/install.sh) and builds the C host of
/// `plugins/c-host` there with make through pkg-config, with
/// `-Wall -Wextra -Werror -fsanitize=address,undefined`: returns the program and the prefix.
fn sanitized_c_host(dir: &Path) -> (PathBuf, PathBuf) {
    let repo = harness::repo();
    let prefix = dir.join("prefix");
    run(
        Command::new(repo.join("cmake/install.sh"))
            .arg(&prefix)
            .arg(lib_dir()),
        "cmake/install.sh",
    );
    let exe = dir.join("c-host");
    let san =
        "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer";
    run(
        Command::new(harness::tool("make"))
            .arg("-s")
            .arg("-C")
            .arg(repo.join("plugins/c-host"))
            .arg(format!("OUT={}", exe.display()))
            .arg(format!("CFLAGS=-std=c99 -g -Wall -Wextra -Werror {san}"))
            .arg(format!("LDFLAGS={san}"))
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
        "make c-host",
    );
    (exe, prefix)
}

/// The C host: installed layout (cmake/install.sh), built with make through pkg-config with
/// `-Wall -Wextra -Werror -fsanitize=address,undefined`, run on a real DICOM series; its mask file
/// equals, byte for byte, the file the Rust API writes for its own mask. The CMake build through
/// `find_package(slicewise)` gives the same file.
#[test]
fn c_host_with_sanitizers_matches_the_rust_api() {
    let repo = harness::repo();
    let tmp = harness::tmpdir();
    let (exe, prefix) = sanitized_c_host(tmp.path());
    let series = harness::data("mr-dicom-series/Study3/11-T1post-18670");
    let model = model_path(SIGMOID);
    let host = |exe: &Path, out: &Path| {
        run(
            Command::new(exe)
                .arg(&model)
                .arg(&series)
                .arg(out)
                .args(["--device", "cpu", "--threads", "1", "--ort"])
                .arg(ort_lib())
                .env("ASAN_OPTIONS", ASAN_OPTIONS)
                .env("UBSAN_OPTIONS", UBSAN_OPTIONS),
            "c-host",
        )
    };
    let c_out = tmp.path().join("c.nii");
    let out = host(&exe, &c_out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();

    // The reference: the Rust API on the same series, written by the same writer.
    let vol = slicewise::Volume::open(&series).unwrap();
    let slices = vol.dims_xyz()[vol.meta.acquisition_axis];
    let mask = rust_segment(SIGMOID, &vol, &Default::default());
    let rust_out = tmp.path().join("rust.nii");
    slicewise::output::write_mask(&rust_out, &mask).unwrap();
    let (c_bytes, rust_bytes) = (
        std::fs::read(&c_out).unwrap(),
        std::fs::read(&rust_out).unwrap(),
    );
    assert!(
        c_bytes == rust_bytes,
        "c-host mask file differs from the Rust API's"
    );
    assert!(mask.labels.iter().any(|&v| v > 0), "degenerate mask");

    assert!(
        stderr.contains(&format!("] {slices}/{slices} slices")),
        "no progress bar:\n{stderr}"
    );
    for s in mask.stats() {
        let line = format!("label {} ", s.value);
        let l = stdout
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("no {line}in\n{stdout}"));
        assert!(
            l.contains(&format!(": {} voxels, {:.3} mL", s.voxels, s.ml)),
            "{l}"
        );
    }

    // Misuse from the command line: a missing volume is a clean error naming it.
    let bad = Command::new(&exe)
        .arg(&model)
        .arg(tmp.path().join("missing.nii"))
        .arg(tmp.path().join("x.nii"))
        .args(["--ort"])
        .arg(ort_lib())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("missing.nii"));

    // CMake with the shipped package config.
    let build = tmp.path().join("cmake-build");
    run(
        Command::new(harness::tool("cmake"))
            .arg("-S")
            .arg(repo.join("plugins/c-host"))
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg("-DCMAKE_BUILD_TYPE=Release"),
        "cmake configure",
    );
    run(
        Command::new(harness::tool("cmake"))
            .arg("--build")
            .arg(&build),
        "cmake build",
    );
    let cmake_out = tmp.path().join("cmake.nii");
    host(&build.join("c-host"), &cmake_out);
    assert!(
        std::fs::read(&cmake_out).unwrap() == rust_bytes,
        "CMake-built host differs"
    );
}

/// `slicewise_volume_open` under ASan and UBSan on the mutants of
/// `robustness::mutants_of_real_files_never_crash_or_hang_the_readers` (truncations, bit
/// flips, runs of 0xFF and 0x00 in real files of every reader), all in one process: the C host's
/// `open` mode opens each file through the C ABI, reads the last error of a refusal, and frees
/// every handle. Any invalid access, leak, undefined behaviour, abort (a failed allocation:
/// single allocations over 3 GB fail, and the process dies above 3 GB resident) or hang fails;
/// every mutant opens or is refused with a message naming it, and the unmutated seeds open.
#[test]
fn volume_open_under_sanitizers_survives_mutants_of_real_files() {
    let tmp = harness::tmpdir();
    let (exe, _) = sanitized_c_host(tmp.path());
    let dir = tmp.path().join("mutants");
    std::fs::create_dir(&dir).unwrap();
    let seeds: Vec<PathBuf> = robustness::mutant_seeds()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let mutants: Vec<(PathBuf, PathBuf)> = robustness::write_mutants(&dir).collect();
    assert!(mutants.len() >= 300, "{} mutants", mutants.len());
    let files: Vec<&PathBuf> = seeds.iter().chain(mutants.iter().map(|(_, m)| m)).collect();
    let out = Command::new(harness::tool("timeout"))
        .arg("120")
        .arg(&exe)
        .arg("open")
        .args(&files)
        .env(
            "ASAN_OPTIONS",
            format!(
                "{ASAN_OPTIONS}:allocator_may_return_null=1:max_allocation_size_mb=3000:hard_rss_limit_mb=3000"
            ),
        )
        .env("UBSAN_OPTIONS", UBSAN_OPTIONS)
        .env_remove("RUST_LOG")
        .output()
        .expect("run c-host open");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One line per file, in order: "ok PATH DIMS", "refused PATH: STATUS: MESSAGE", or "bad ..."
    // (a refusal without a message naming the file).
    let lines: Vec<&str> = stdout.lines().collect();
    let tail = |s: &str| s[s.len().saturating_sub(6000)..].to_string();
    if !out.status.success() {
        let kept = tmp.keep();
        let next = files.get(lines.len()).map(|p| p.display().to_string());
        panic!(
            "c-host open exited with {} after {} of {} files (the next: {next:?}; mutants kept \
             in {}):\n{}\n{}",
            out.status,
            lines.len(),
            files.len(),
            kept.display(),
            tail(&stdout),
            tail(&stderr)
        );
    }
    assert_eq!(lines.len(), files.len(), "{stdout}");
    let mut refused = 0;
    for (line, file) in lines.iter().zip(&files) {
        let f = file.display().to_string();
        if line.starts_with(&format!("ok {f} ")) {
            continue;
        }
        assert!(
            line.starts_with(&format!("refused {f}: ")),
            "neither opened nor cleanly refused: {line}"
        );
        assert!(
            !seeds.contains(file),
            "an unmutated seed was refused: {line}"
        );
        refused += 1;
    }
    // The mutants really are broken: a good share is refused.
    assert!(
        refused * 4 >= mutants.len(),
        "only {refused} of {} mutants refused",
        mutants.len()
    );
    assert!(
        !stderr.contains("runtime error") && !stderr.contains("Sanitizer"),
        "{}",
        tail(&stderr)
    );
    eprintln!(
        "{} seeds opened; {} mutants: {} opened, {refused} refused",
        seeds.len(),
        mutants.len(),
        mutants.len() - refused
    );
}

/// Not a timed test: prints the cost of the C path next to the Rust API's on one volume.
///   cargo test --release --test integration capi::overhead -- --ignored --nocapture
#[test]
#[ignore]
fn overhead_of_the_c_path() {
    use std::time::Instant;
    let path = harness::data("brats2015/train/brats_2013_pat0005_1/Flair_subtrMeanDivStd.nii.gz");
    let vol = slicewise::Volume::open(&path).unwrap();
    let cv = c_volume(&path);
    let [x, y, z] = vol.dims_xyz();
    let f32s: Vec<u8> = vol.data.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let (m, rm) = (c_model(SIGMOID), rust_model(SIGMOID));
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut rust, mut c, mut mem) = (Vec::new(), Vec::new(), Vec::new());
    // Alternating the order, so that neither path always runs on a warmer cache.
    for i in 0..15 {
        let mut rust_run = || {
            let t = Instant::now();
            let seg =
                slicewise::infer::segment(rm, &vol, &Default::default(), &mut |_| true).unwrap();
            rust.push(t.elapsed().as_secs_f64());
            seg
        };
        let seg = if i % 2 == 0 { Some(rust_run()) } else { None };
        let t = Instant::now();
        let (st, mask) = c_segment(m, cv, None, None, null_mut());
        c.push(t.elapsed().as_secs_f64());
        expect(st, OK);
        let seg = seg.unwrap_or_else(rust_run);
        assert_eq!(mask_bytes(mask), rust_bytes(&seg.mask));
        unsafe { (api().mask_free)(mask) };
        // Host memory: copy in, segment.
        let t = Instant::now();
        let (st, mv) = from_memory(&f32s, DTYPE_F32, [x, y, z, 1], None, None, None, SPACE_LPS);
        expect(st, OK);
        let (st, mask) = c_segment(m, Shared(mv), None, None, null_mut());
        mem.push(t.elapsed().as_secs_f64());
        expect(st, OK);
        assert_eq!(mask_bytes(mask).len(), x * y * z);
        unsafe {
            (api().mask_free)(mask);
            (api().volume_free)(mv);
        }
    }
    let (r, cc, mm) = (median(rust), median(c), median(mem));
    println!(
        "{x}x{y}x{z} f32, sigmoid test model, CPU 1 thread, median of 15: Rust API {r:.3} s, C ABI {cc:.3} s ({:+.1} %), C ABI from host memory {mm:.3} s ({:+.1} %)",
        (cc / r - 1.0) * 100.0,
        (mm / r - 1.0) * 100.0
    );
    unsafe { (api().volume_free)(cv.0) };
}

// ---- which series of a folder a model takes ----------------------------------------------------

/// `slicewise_select_series` on a study (`tests/python/study_fixture.py`: real series plus pydicom
/// copies) with the bundled hippocampus model: one JSON object per series with its facts, the
/// series the card's rules take marked selected and every other with the rule it failed, as the
/// engine's own evaluation gives them; the library's string is released by
/// `slicewise_string_free`; NULL arguments are errors and nothing is written on failure.
#[test]
fn select_series_says_which_series_the_model_takes_and_why_not_the_others() {
    let a = api();
    let tmp = harness::tmpdir();
    let study = tmp.path().join("study");
    let made = harness::py("study_fixture.py", &[&harness::shared_data(), &study]);
    let model = c_model(HIPPO_MODEL);
    let folder = cpath(&study);
    let mut out: *mut c_char = null_mut();
    expect(
        unsafe { (a.select_series)(model.0, folder.as_ptr(), &mut out) },
        OK,
    );
    let text = unsafe { CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    unsafe { (a.string_free)(out) };
    unsafe { (a.string_free)(null_mut()) };
    let got: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let fixture = made["series"].as_array().unwrap();
    assert_eq!(got.len(), fixture.len(), "{text}");
    let selected: std::collections::BTreeSet<&str> = got
        .iter()
        .filter(|s| s["selected"] == true)
        .map(|s| s["uid"].as_str().unwrap())
        .collect();
    let want: std::collections::BTreeSet<&str> = fixture
        .iter()
        .filter(|s| {
            ["t1post", "t1post_again", "hippocrop"].contains(&s["folder"].as_str().unwrap())
        })
        .map(|s| s["uid"].as_str().unwrap())
        .collect();
    assert_eq!(selected, want);
    // The reasons and facts are the engine's own.
    let rules = rust_model(HIPPO_MODEL)
        .contract()
        .series_selection
        .clone()
        .unwrap();
    let engine = slicewise::infer::contract::select_series(&study, Some(&rules)).unwrap();
    for (c, e) in got.iter().zip(&engine) {
        assert_eq!(c["uid"], e.series.uid.as_str());
        assert_eq!(c["selected"], e.selected);
        assert_eq!(c["reason"].as_str(), e.reason.as_deref());
        assert_eq!(c["slices"], e.series.slices);
        if !e.selected {
            assert!(!e.reason.as_deref().unwrap().is_empty());
        }
    }
    let flair = got
        .iter()
        .find(|s| s["description"] == "AX T2 FLAIR")
        .unwrap();
    assert_eq!(
        flair["reason"],
        "SeriesDescription 'AX T2 FLAIR' matches /flair/i"
    );
    assert_eq!(flair["number"], 4);
    assert_eq!(flair["sequence"]["inversion_time"], 2500.0);
    assert_eq!(
        flair["image_type"],
        serde_json::json!(["ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"])
    );

    let mut untouched: *mut c_char = null_mut();
    expect(
        unsafe { (a.select_series)(null_mut(), folder.as_ptr(), &mut untouched) },
        NULL_POINTER,
    );
    expect(
        unsafe { (a.select_series)(model.0, null(), &mut untouched) },
        NULL_POINTER,
    );
    expect(
        unsafe { (a.select_series)(model.0, folder.as_ptr(), null_mut()) },
        NULL_POINTER,
    );
    let missing = cpath(&tmp.path().join("missing"));
    expect(
        unsafe { (a.select_series)(model.0, missing.as_ptr(), &mut untouched) },
        IO,
    );
    assert!(untouched.is_null(), "output written on failure");
}
