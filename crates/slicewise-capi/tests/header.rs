//! The committed C header `include/slicewise.h` is what cbindgen generates from this crate's
//! sources (settings in `cbindgen.toml`): fails when it drifts, rewrites it with
//! `SLICEWISE_BLESS=1 cargo test -p slicewise-capi --test header`. Pure Rust: runs anywhere.

use std::path::Path;

fn generate_header() -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "\n#define SLICEWISE_VERSION_MAJOR {}\n#define SLICEWISE_VERSION_MINOR {}\n#define SLICEWISE_VERSION_PATCH {}\n#define SLICEWISE_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    ));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

#[test]
fn header_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include/slicewise.h");
    let fresh = generate_header();
    if std::env::var_os("SLICEWISE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/slicewise.h is out of date with crates/slicewise-capi/src: regenerate it with\n  SLICEWISE_BLESS=1 cargo test -p slicewise-capi --test header"
    );
    for (name, value) in [
        ("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert!(
            committed.contains(&format!("#define SLICEWISE_VERSION_{name} {value}\n")),
            "version {name}"
        );
    }
    assert!(
        !committed.contains("slicewise_debug_panic"),
        "test-only export leaked into the header"
    );
}
