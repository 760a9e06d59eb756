//! `slicewise-train bench`: where a training step's time goes (forward, backward, optimiser,
//! and the forward pass alone without autodiff), and the batch loader's throughput.

use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution, Tensor};
use slicewise::Error;
use slicewise_train::augment::AugmentConfig;
use slicewise_train::loader::EpochLoader;
use slicewise_train::loss::loss;
use slicewise_train::model::libtorch_device;
use slicewise_train::{data, DataConfig, LossKind, UNetConfig};

use crate::args::BenchArgs;

/// `bench`: training steps of a preset on random data, timed by phase, and optionally the
/// batch loader over a pairs folder.
pub fn bench(a: &BenchArgs) -> Result<serde_json::Value, Error> {
    let mut m = UNetConfig::preset(&a.preset, a.channels)
        .ok_or_else(|| Error::InvalidArgument(format!("unknown preset {}", a.preset)))?;
    m.batch_norm = !a.no_batchnorm;
    let plain = libtorch_device(None);
    plain.seed(0);
    let dev = plain.clone().autodiff();
    let mut model = m.init(&dev);
    let mut optim = AdamConfig::new().init();
    let shape = [a.batch, a.channels, a.size, a.size];
    let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &dev);
    let y = Tensor::<4>::random(
        [a.batch, 1, a.size, a.size],
        Distribution::Bernoulli(0.1),
        &dev,
    );
    // Where a step's time goes: the forward pass (graph recorded), the backward pass, the
    // optimiser; and the forward pass alone without autodiff (libtorch's kernels, no graph).
    let (mut times, mut fwd, mut bwd, mut opt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..a.steps + 2 {
        let t = Instant::now();
        let logits = model.forward_logits(x.clone());
        let l = loss(LossKind::BceDice, 2.0, logits, y.clone());
        let _ = l.clone().into_scalar::<f32>();
        let t1 = Instant::now();
        let g = GradientsParams::from_grads(l.backward(), &model);
        let t2 = Instant::now();
        model = optim.step(1e-3, model, g);
        if i >= 2 {
            let end = t.elapsed().as_secs_f64();
            times.push(end);
            fwd.push((t1 - t).as_secs_f64());
            bwd.push((t2 - t1).as_secs_f64());
            opt.push(end - (t2 - t).as_secs_f64());
        }
    }
    let inference = {
        let m = model.valid();
        let xi = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &plain);
        (0..a.steps)
            .map(|_| {
                let t = Instant::now();
                let _ = m.forward_logits(xi.clone()).sum().into_scalar::<f32>();
                t.elapsed().as_secs_f64()
            })
            .collect::<Vec<_>>()
    };
    let mean_of = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mean = mean_of(&times);
    times.sort_by(f64::total_cmp);
    let loader = match &a.loader_data {
        Some(root) => Some(bench_loader(root, a)?),
        None => None,
    };
    Ok(serde_json::json!({
        "preset": a.preset, "batch": a.batch, "size": a.size, "channels": a.channels,
        "batch_norm": m.batch_norm,
        "steps": times.len(), "mean_step_s": mean, "median_step_s": times.get(times.len() / 2),
        "mean_forward_s": mean_of(&fwd), "mean_backward_s": mean_of(&bwd),
        "mean_optimizer_s": mean_of(&opt), "mean_inference_forward_s": mean_of(&inference),
        "omp_num_threads": std::env::var("OMP_NUM_THREADS").ok(),
        "loader": loader,
    }))
}

fn bench_loader(root: &std::path::Path, a: &BenchArgs) -> Result<serde_json::Value, Error> {
    let channels: Vec<usize> = if a.channels == 1 {
        vec![1]
    } else {
        (0..a.channels).collect()
    };
    let cfg = DataConfig::new(root.to_string_lossy().into_owned())
        .with_channels(channels)
        .with_size(a.size);
    let t = Instant::now();
    let ds = Arc::new(data::load(&cfg)?);
    let load_s = t.elapsed().as_secs_f64();
    let idx: Vec<usize> = (0..ds.slices.len()).collect();
    let t = Instant::now();
    let loader = EpochLoader::start(
        ds.clone(),
        idx,
        a.batch,
        true,
        Some(AugmentConfig::new()),
        1,
        1,
        a.workers,
    );
    let n = loader.count();
    let epoch_s = t.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "slices": ds.slices.len(), "volumes": ds.volumes.len(), "decode_preprocess_s": load_s,
        "batches": n, "workers": a.workers, "augmented_batches_per_s": n as f64 / epoch_s,
        "seconds_per_batch": epoch_s / n.max(1) as f64,
    }))
}
