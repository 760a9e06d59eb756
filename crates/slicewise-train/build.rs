//! Bakes an rpath to the project-local libtorch into the trainer's binaries and test executables,
//! so `slicewise-train` and its tests find libtorch_cpu.so without LD_LIBRARY_PATH. Only this
//! crate links libtorch; the engine, the C ABI and the CLI never do.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = match std::env::var_os("LIBTORCH") {
        Some(v) => std::path::PathBuf::from(v),
        // The workspace root's .cache/libtorch (scripts/setup --train), two levels up.
        None => {
            std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
                .join("../../.cache/libtorch")
        }
    };
    let lib = dir.join("lib");
    // Harmless on the library target; what matters is that every executable carries it.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
