//! Benchmark (not a test): time `volume::nifti::read` on one file.
//!
//! `cargo run --release --example bench_nifti -- FILE [REPEATS]` prints the best and median
//! wall time; compare with `tests/python/nifti_bench.py FILE [REPEATS]` (nibabel) on the same
//! machine.

use std::path::PathBuf;
use std::time::Instant;

use slicewise::volume::{nifti, ReadOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: bench_nifti FILE [REPEATS]")?);
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let mut times = Vec::with_capacity(repeats);
    let mut shape = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let v = nifti::read(&path, &ReadOptions::default())?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        shape = v.data.shape().to_vec();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "slicewise nifti::read {} {:?}: best {:.1} ms, median {:.1} ms over {} runs",
        path.display(),
        shape,
        times[0],
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}
