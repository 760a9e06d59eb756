//! The C ABI (owned by the C ABI work): only `extern "C"` items live here.
