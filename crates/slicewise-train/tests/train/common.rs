//! Helpers shared by the trainer tests.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution, Tensor};
use slicewise_train::loss::loss;
use slicewise_train::model::libtorch_device;
use slicewise_train::model::{UNet, UNetConfig};
use slicewise_train::LossKind;

/// A model with non-trivial BatchNorm statistics and weights: a few Adam steps on random data
/// (training mode updates the running statistics), returned in eval mode.
pub fn warmed_model(cfg: &UNetConfig, size: usize, seed: u64) -> UNet {
    let plain = libtorch_device(None);
    plain.seed(seed);
    let dev = plain.autodiff();
    let mut model = cfg.init(&dev);
    let mut optim = AdamConfig::new().init();
    let k = cfg.out_channels;
    for _ in 0..3 {
        let x = Tensor::<4>::random(
            [2, cfg.in_channels, size, size],
            Distribution::Normal(0.5, 1.0),
            &dev,
        );
        let y = Tensor::<4>::random([2, k, size, size], Distribution::Bernoulli(0.3), &dev);
        let l = loss(LossKind::BceDice, 2.0, model.forward_logits(x), y);
        let g = GradientsParams::from_grads(l.backward(), &model);
        model = optim.step(1e-2, model, g);
    }
    model.valid()
}

/// Deterministic pseudo-random inputs in [-2, 2).
pub fn inputs(n: usize, seed: u64) -> Vec<f32> {
    crate::harness::uniform(seed, n)
        .into_iter()
        .map(|v| v * 4.0 - 2.0)
        .collect()
}
