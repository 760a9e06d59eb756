//! Bakes an rpath to the project-local libtorch into binaries built with the `train` feature, so
//! `slicewise-train` and the train tests find libtorch_cpu.so without LD_LIBRARY_PATH. Without the
//! feature this does nothing (the library and the plugin never link libtorch).

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TRAIN").is_none() {
        return;
    }
    let dir = match std::env::var_os("LIBTORCH") {
        Some(v) => std::path::PathBuf::from(v),
        None => {
            std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
                .join(".cache/libtorch")
        }
    };
    let lib = dir.join("lib");
    // Harmless on the library targets; what matters is that every executable carries it.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
