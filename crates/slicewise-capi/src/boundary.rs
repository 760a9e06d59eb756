//! The panic boundary and argument checks every export goes through, and the per-thread last
//! error message.
//!
//! Every fallible export is `boundary::call(|| { ... })`: the closure runs under
//! `catch_unwind`, its `Err` becomes a status code plus a message kept for
//! `slicewise_last_error`, and a panic becomes `SLICEWISE_PANIC`. Pointer arguments are checked
//! here so that a null or malformed argument is an error, never undefined behaviour.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use super::status::*;
use slicewise::error::{caught_panic, Error};

thread_local! {
    // Per thread, so that concurrent callers never see each other's messages.
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Set to any value, panics inside the library print Rust's usual report on stderr again.
pub const PANIC_TRACE_VAR: &str = slicewise::error::PANIC_TRACE_VAR;

/// Replaces Rust's default panic report (a message and, with `RUST_BACKTRACE`, a backtrace on
/// the host's stderr) with a record of where the panic happened (the engine's one quiet hook):
/// the boundary turns every panic into a status and a message, and a host's stderr is the
/// host's. The hook belongs to this library's copy of the standard library, so a Rust host's own
/// hook is not touched.
fn quiet_panics() {
    slicewise::error::quiet_panics();
}

/// An error on its way out through the C ABI: a status code and its message.
#[derive(Debug)]
pub(crate) struct CError {
    pub status: slicewise_status,
    pub message: String,
}

impl CError {
    pub fn new(status: slicewise_status, message: impl Into<String>) -> Self {
        CError {
            status,
            message: message.into(),
        }
    }

    pub fn null(what: &str) -> Self {
        CError::new(SLICEWISE_NULL_POINTER, format!("{what} is NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        CError::new(SLICEWISE_INVALID_ARGUMENT, message)
    }
}

impl From<Error> for CError {
    fn from(e: Error) -> Self {
        CError::new(e.status_code(), e.to_string())
    }
}

pub(crate) type CResult<T> = Result<T, CError>;

pub(crate) fn set_last_error(message: String) {
    // try_with: a call made while the thread is being torn down must not panic.
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = message);
}

pub(crate) fn last_error() -> String {
    LAST_ERROR
        .try_with(|l| l.borrow().clone())
        .unwrap_or_default()
}

/// Runs an export's body behind the panic boundary. The last error is cleared on entry and set
/// on failure, so after a successful call it is empty.
pub(crate) fn call(f: impl FnOnce() -> CResult<()>) -> slicewise_status {
    quiet_panics();
    set_last_error(String::new());
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SLICEWISE_OK,
        Ok(Err(e)) => {
            set_last_error(e.message);
            e.status
        }
        Err(payload) => {
            set_last_error(caught_panic(payload).to_string());
            SLICEWISE_PANIC
        }
    }
}

/// Runs an infallible export (a `_free`) behind the panic boundary; a panic is swallowed.
pub(crate) fn call_void(f: impl FnOnce()) {
    quiet_panics();
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        // Swallowed, its recorded place with it.
        drop(caught_panic(payload));
    }
}

/// A shared reference from a handle or input pointer, or a NULL_POINTER error naming it.
///
/// # Safety
/// `p` is null or points to a live `T`.
pub(crate) unsafe fn arg<'a, T>(p: *const T, what: &str) -> CResult<&'a T> {
    // SAFETY: the caller guarantees `p` is null (as_ref gives None) or points to a live `T`
    // that outlives 'a.
    unsafe { p.as_ref() }.ok_or_else(|| CError::null(what))
}

/// Checks an output pointer is non-null.
pub(crate) fn out<T>(p: *mut T, what: &str) -> CResult<*mut T> {
    if p.is_null() {
        Err(CError::null(what))
    } else {
        Ok(p)
    }
}

/// A NUL-terminated string argument.
///
/// # Safety
/// `p` is null or a NUL-terminated string.
pub(crate) unsafe fn cstr<'a>(p: *const c_char, what: &str) -> CResult<&'a CStr> {
    if p.is_null() {
        return Err(CError::null(what));
    }
    // SAFETY: non-null checked above; the caller guarantees a NUL-terminated string that stays
    // valid and unchanged for 'a.
    Ok(unsafe { CStr::from_ptr(p) })
}

/// A path argument: bytes as they are on Unix, UTF-8 elsewhere.
///
/// # Safety
/// `p` is null or a NUL-terminated string.
pub(crate) unsafe fn path(p: *const c_char, what: &str) -> CResult<PathBuf> {
    // SAFETY: the caller's contract (null or NUL-terminated) is cstr's; the borrow ends here,
    // as the path is copied.
    let s = unsafe { cstr(p, what) }?;
    if s.to_bytes().is_empty() {
        return Err(CError::invalid(format!("{what} is empty")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(s.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        s.to_str()
            .map(PathBuf::from)
            .map_err(|_| CError::invalid(format!("{what} is not valid UTF-8")))
    }
}

/// Copies `s` into a caller buffer of `len` bytes with a NUL terminator and stores the full
/// length (without NUL) in `out_len` when non-null. `buf` may be NULL only when `len` is 0 (a
/// size query). When `s` does not fit: with `truncate`, the longest prefix that fits (cut at a
/// UTF-8 character boundary) is written, NUL-terminated; without, `buf` is left untouched. Either
/// way the result is BUFFER_TOO_SMALL.
///
/// # Safety
/// `buf` is null or valid for `len` bytes; `out_len` is null or valid.
pub(crate) unsafe fn write_str(
    s: &str,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
    truncate: bool,
) -> CResult<()> {
    if buf.is_null() && len > 0 {
        return Err(CError::null("buf (with len > 0)"));
    }
    if !out_len.is_null() {
        // SAFETY: non-null checked just now; the caller guarantees a non-null `out_len` is valid
        // for writing.
        unsafe { *out_len = s.len() };
    }
    let fits = s.len() < len;
    if fits || (truncate && len > 0) {
        let mut n = s.len().min(len.saturating_sub(1));
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        // Here len > 0 (either s.len() < len, or truncate && len > 0), so `buf` is non-null
        // (checked above) and n <= len - 1.
        // SAFETY: `s` holds s.len() >= n bytes; the caller guarantees `buf` is valid for `len`
        // > n bytes; a caller buffer cannot overlap the library's string.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), n) };
        // SAFETY: n < len, so buf + n is inside the caller's `len` bytes.
        unsafe { *buf.add(n) = 0 };
    }
    if fits {
        Ok(())
    } else {
        Err(CError::new(
            SLICEWISE_BUFFER_TOO_SMALL,
            format!("buffer of {len} bytes is too small: {} needed", s.len() + 1),
        ))
    }
}

/// The `struct_size` (first field) of a caller's versioned struct, checked to be at least this
/// library's size of `T`; `hint` says how the caller sets it.
///
/// # Safety
/// `p` is null or valid for reading a `usize`.
unsafe fn struct_size<T>(p: *const T, what: &str, hint: &str) -> CResult<usize> {
    if p.is_null() {
        return Err(CError::null(what));
    }
    // SAFETY: non-null checked above; the caller guarantees `p` is valid for reading a `usize`
    // (its first field), at any alignment.
    let size = unsafe { std::ptr::read_unaligned(p.cast::<usize>()) };
    let ours = std::mem::size_of::<T>();
    if size < ours {
        return Err(CError::invalid(format!(
            "{what}->struct_size is {size}, expected at least {ours} ({hint})"
        )));
    }
    Ok(size)
}

/// Reads a caller's versioned struct (first field `size_t struct_size`). `struct_size` must be
/// at least this library's size of `T`; bytes beyond it (fields of a newer header) must be zero,
/// so that no option this library does not know is silently ignored.
///
/// # Safety
/// `p` is null or valid for `struct_size` bytes. `T` is plain old data (any bit pattern valid).
pub(crate) unsafe fn read_sized<T: Copy>(p: *const T, what: &str) -> CResult<T> {
    // SAFETY: a pointer valid for `struct_size` bytes is valid for its first field, a `usize`
    // (the caller's contract); null is checked there.
    let size = unsafe { struct_size(p, what, "initialise it with its _init function") }?;
    let ours = std::mem::size_of::<T>();
    // SAFETY: `p` is non-null (struct_size checked it) and the caller guarantees it is valid for
    // reading `size` (= its struct_size) bytes, which are not written during this call.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), size) };
    if bytes[ours..].iter().any(|&b| b != 0) {
        return Err(CError::new(
            SLICEWISE_UNSUPPORTED,
            format!("{what} sets fields this library version does not know (struct_size {size} > {ours})"),
        ));
    }
    // SAFETY: size >= size_of::<T>() (struct_size checked it), so `p` is valid for reading a
    // `T` at any alignment; the caller guarantees `T` is plain old data (any bit pattern valid).
    Ok(unsafe { std::ptr::read_unaligned(p) })
}

/// Writes `value` into a caller's versioned struct whose `struct_size` the caller has set:
/// the fields this library knows are written, bytes beyond them are zeroed, `struct_size` is kept.
///
/// # Safety
/// `p` is null or valid for `struct_size` bytes.
pub(crate) unsafe fn write_sized<T: Copy>(p: *mut T, value: &T, what: &str) -> CResult<()> {
    // SAFETY: a pointer valid for `struct_size` bytes is valid for its first field, a `usize`
    // (the caller's contract); null is checked there.
    let size = unsafe { struct_size(p, what, "set it to sizeof the struct") }?;
    let ours = std::mem::size_of::<T>();
    let dst = p.cast::<u8>();
    let src = (value as *const T).cast::<u8>();
    // Every versioned struct starts with `size_t struct_size`, so field <= ours.
    let field = std::mem::size_of::<usize>();
    // SAFETY: `value` is a reference to a whole `T`, so src is valid for `ours` bytes; `p` is
    // non-null and the caller guarantees it valid for writing size >= ours bytes (struct_size
    // checked it); a library value and the caller's struct do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(src.add(field), dst.add(field), ours - field) };
    // SAFETY: bytes ours..size are inside the `size` bytes the caller guarantees writable.
    unsafe { std::ptr::write_bytes(dst.add(ours), 0, size - ours) };
    Ok(())
}

/// Test-only: panics behind the boundary, to prove a panic becomes `SLICEWISE_PANIC`. Exists
/// only in debug builds and is deliberately left out of the header: it is not part of the ABI.
#[cfg(debug_assertions)]
#[no_mangle]
pub extern "C" fn slicewise_debug_panic() -> slicewise_status {
    call(|| panic!("slicewise_debug_panic: injected panic"))
}

#[cfg(test)]
mod tests {
    //! The panic boundary itself. Each test runs on its own thread, so the per-thread last error
    //! starts empty and no other test touches it. Run in release too
    //! (`cargo test -p slicewise-capi --release --lib`), where `slicewise_debug_panic` is absent.

    use super::*;

    /// A panic payload whose destructor panics too.
    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("PanicsOnDrop::drop");
        }
    }

    #[test]
    fn a_panic_becomes_panic_with_its_message() {
        let n = 7;
        // The message, then where the panic happened (Rust's report on stderr is silenced).
        let here = concat!("(at ", file!(), ":");
        assert_eq!(call(|| panic!("boom {n}")), SLICEWISE_PANIC);
        let e = last_error();
        assert!(e.starts_with("internal error (panic): boom 7 "), "{e}");
        assert!(e.contains(here), "{e}");
        // A &'static str payload too.
        assert_eq!(call(|| panic!("plain")), SLICEWISE_PANIC);
        assert!(last_error().starts_with("internal error (panic): plain (at "));
    }

    #[test]
    fn a_successful_call_clears_the_previous_message() {
        assert_eq!(
            call(|| Err(CError::invalid("bad"))),
            SLICEWISE_INVALID_ARGUMENT
        );
        assert_eq!(last_error(), "bad");
        assert_eq!(call(|| Ok(())), SLICEWISE_OK);
        assert_eq!(last_error(), "");
        // After a panic as well.
        assert_eq!(call(|| panic!("boom")), SLICEWISE_PANIC);
        assert_ne!(last_error(), "");
        assert_eq!(call(|| Ok(())), SLICEWISE_OK);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn an_err_keeps_its_status_and_message() {
        let st = call(|| Err(CError::new(SLICEWISE_IO, "a.nii: cannot open: denied")));
        assert_eq!(st, SLICEWISE_IO);
        assert_eq!(last_error(), "a.nii: cannot open: denied");
        let st = call(|| Err(CError::null("out")));
        assert_eq!(st, SLICEWISE_NULL_POINTER);
        assert_eq!(last_error(), "out is NULL");
        // A core error keeps its kind's code and its Display text.
        let st = call(|| Err(Error::Cancelled.into()));
        assert_eq!(st, SLICEWISE_CANCELLED);
        assert_eq!(last_error(), "cancelled");
        // The message is the thread's own: another thread's failure leaves it alone.
        std::thread::spawn(|| call(|| Err(CError::invalid("elsewhere"))))
            .join()
            .unwrap();
        assert_eq!(last_error(), "cancelled");
    }

    #[test]
    fn a_panic_in_call_void_is_swallowed() {
        let mut ran = false;
        call_void(|| {
            ran = true;
            panic!("in a _free");
        });
        assert!(ran);
        // call_void has no status; the boundary still works afterwards.
        assert_eq!(call(|| Ok(())), SLICEWISE_OK);
    }

    #[test]
    fn a_payload_whose_drop_panics_does_not_escape() {
        #[rustfmt::skip]
        let (st, line) = (call(|| std::panic::panic_any(PanicsOnDrop)), line!());
        assert_eq!(st, SLICEWISE_PANIC);
        let e = last_error();
        assert!(
            e.starts_with("internal error (panic): unknown panic payload (at "),
            "{e}"
        );
        // The location is the panic's, not the one of the payload's panicking drop.
        assert!(e.contains(&format!("boundary.rs:{line}:")), "{e}");
        call_void(|| std::panic::panic_any(PanicsOnDrop));
        assert_eq!(call(|| Ok(())), SLICEWISE_OK);
    }
}
