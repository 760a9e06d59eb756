//! Benchmark (not a test): times `slicewise::volume::dicom::read` on a DICOM file/folder.
//!
//! `cargo run --release --example bench_read -- <path> [repeats]` prints one JSON line with the
//! volume's shape and the min / median wall time over the repeats (after one warm-up read).

use std::path::PathBuf;
use std::time::Instant;

use slicewise::volume::{dicom, ReadOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: bench_read <dicom file or folder> [repeats]");
        std::process::exit(2);
    };
    let repeats: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let opts = ReadOptions::default();
    let v = match dicom::read(&path, &opts) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut times = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        let _ = dicom::read(&path, &opts);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"shape\": {:?}, \"spacing\": {:?}, \"repeats\": {}, \"min_s\": {:.4}, \"median_s\": {:.4}, \"warnings\": {:?}}}",
        v.data.shape(),
        v.geometry.spacing,
        repeats,
        times.first().copied().unwrap_or(0.0),
        times.get(times.len() / 2).copied().unwrap_or(0.0),
        v.meta.warnings
    );
}
