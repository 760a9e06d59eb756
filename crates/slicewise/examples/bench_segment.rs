//! Benchmark (not a test): end-to-end segmentation of one volume, file to file.
//!
//! `cargo run --release --example bench_segment -- MODEL VOLUME OUT.nii.gz [THREADS] [BATCH]`
//! reads the volume while it opens the model (CPU, THREADS intra-op threads), segments slice by
//! slice and writes the mask, then prints one JSON line with the stage times. Its counterpart is
//! `tests/python/engine_bench.py` (onnxruntime + nibabel + numpy, same arguments); run both
//! under `/usr/bin/time -v` for peak RSS.

use std::path::PathBuf;
use std::time::Instant;

use slicewise::infer::{segment, Device, Model, ModelOptions, SegmentOptions};
use slicewise::Volume;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: bench_segment MODEL VOLUME OUT.nii.gz [THREADS] [BATCH]";
    let mut args = std::env::args().skip(1);
    let model = PathBuf::from(args.next().ok_or(usage)?);
    let input = PathBuf::from(args.next().ok_or(usage)?);
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8);

    let t0 = Instant::now();
    // Opening the model (loading ONNX Runtime, optimising the graph) and reading the volume are
    // independent: do them at the same time, as a front end would.
    let (m, t_model, vol, t_read) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let t = Instant::now();
            let m = Model::open(
                &model,
                &ModelOptions::default().device(Device::Cpu).threads(threads),
            );
            (m, t.elapsed().as_secs_f64())
        });
        let t = Instant::now();
        let vol = Volume::open(&input);
        let t_read = t.elapsed().as_secs_f64();
        let (m, t_model) = h.join().expect("model thread");
        (m, t_model, vol, t_read)
    });
    let (m, vol) = (m?, vol?);
    let t = Instant::now();
    let seg = segment(
        &m,
        &vol,
        &SegmentOptions::default().batch_size(batch),
        &mut |_| true,
    )?;
    let t_seg = t.elapsed().as_secs_f64();
    let t = Instant::now();
    slicewise::output::write_mask(&out, &seg.mask)?;
    let t_write = t.elapsed().as_secs_f64();
    let total = t0.elapsed().as_secs_f64();
    let fg: u64 = seg.mask.labels.iter().map(|&v| (v != 0) as u64).sum();
    println!(
        "{}",
        serde_json::json!({
            "impl": "slicewise",
            "shape": vol.data.shape(),
            "provider": seg.provider,
            "total_s": total,
            "model_open_s": t_model,
            "read_s": t_read,
            "segment_s": t_seg,
            "write_s": t_write,
            "run_s": seg.timings.inference,
            "preprocess_thread_s": seg.timings.preprocess,
            "postprocess_thread_s": seg.timings.postprocess,
            "outside_run_pct": 100.0 * (total - seg.timings.inference) / total,
            "foreground_voxels": fg,
        })
    );
    Ok(())
}
