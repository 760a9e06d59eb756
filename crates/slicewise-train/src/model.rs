//! A configurable 2-D U-Net (Ronneberger et al. 2015) in Burn.
//!
//! `depth` poolings, `base_filters` doubling per level, each level two 3×3 convolutions (padding 1,
//! so the output keeps the input size), optional BatchNorm after each, optional dropout at the
//! bottleneck, up-sampling by 2×2 transposed convolution or nearest ×2 + 3×3 convolution, and a
//! 1×1 head with sigmoid (one channel) or softmax (K channels). Inputs must be divisible by
//! `2^depth` in height and width.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::interpolate::{Interpolate2d, Interpolate2dConfig, InterpolateMode};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, PaddingConfig2d};
use burn::tensor::activation::{relu, sigmoid, softmax};
use burn::tensor::{Device, Tensor};

/// The model's output activation.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum OutputActivation {
    /// One channel of foreground probability.
    Sigmoid,
    /// `out_channels` class probabilities (channel 0 = background).
    Softmax,
}

/// U-Net hyper-parameters (saved with every checkpoint).
#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Input channels.
    #[config(default = 1)]
    pub in_channels: usize,
    /// Output channels: 1 for sigmoid, K (≥ 2, background included) for softmax.
    #[config(default = 1)]
    pub out_channels: usize,
    /// Filters of the first level; each level doubles them.
    #[config(default = 16)]
    pub base_filters: usize,
    /// Number of 2×2 poolings (levels below the first).
    #[config(default = 4)]
    pub depth: usize,
    /// BatchNorm after each convolution (convolutions then carry no bias).
    #[config(default = true)]
    pub batch_norm: bool,
    /// Dropout probability at the bottleneck (0: none).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Up-sample with 2×2 transposed convolutions (else nearest ×2 then a 3×3 convolution).
    #[config(default = true)]
    pub transposed: bool,
    /// Output activation.
    #[config(default = "OutputActivation::Sigmoid")]
    pub output: OutputActivation,
    /// Deep supervision: this many extra 1×1 heads on the decoder's outputs at 1/2, 1/4, …
    /// resolution, whose losses (against the mask shrunk to them) join the main one in
    /// training; the exported graph has only the main head. None or 0: none (an `Option`, so
    /// configs written before it read).
    #[config(default = "None")]
    pub deep_supervision: Option<usize>,
}

/// The preset `slicewise-train` builds unless told otherwise.
pub const DEFAULT_PRESET: &str = "small";

impl UNetConfig {
    /// A small fast net: 16 base filters, depth 4 (16→256), BatchNorm (~1.9 M parameters).
    pub fn small(in_channels: usize) -> Self {
        UNetConfig::new().with_in_channels(in_channels)
    }

    /// The original U-Net of the seed projects: 64 base filters, depth 4 (64→1024), BatchNorm
    /// (~31 M parameters).
    pub fn unet(in_channels: usize) -> Self {
        UNetConfig::new()
            .with_in_channels(in_channels)
            .with_base_filters(64)
    }

    /// A preset by name (`small` or `unet`).
    pub fn preset(name: &str, in_channels: usize) -> Option<Self> {
        match name {
            "small" => Some(Self::small(in_channels)),
            "unet" => Some(Self::unet(in_channels)),
            _ => None,
        }
    }

    /// Checks the values, so that `init` cannot panic on them.
    pub fn validate(&self) -> Result<(), String> {
        if self.in_channels == 0 || self.base_filters == 0 {
            return Err("in_channels and base_filters must be positive".into());
        }
        if self.depth == 0 || self.depth > 6 {
            return Err(format!("depth {} out of 1..=6", self.depth));
        }
        if self.deep_heads() >= self.depth {
            return Err(format!(
                "deep supervision with {} extra heads needs depth above it (depth {})",
                self.deep_heads(),
                self.depth
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} out of [0, 1)", self.dropout));
        }
        match (self.output, self.out_channels) {
            (OutputActivation::Sigmoid, 1) => Ok(()),
            (OutputActivation::Softmax, k) if k >= 2 => Ok(()),
            (o, k) => Err(format!("{o:?} output with {k} channels")),
        }
    }

    /// Deep supervision's extra heads (0: none).
    pub fn deep_heads(&self) -> usize {
        self.deep_supervision.unwrap_or(0)
    }

    /// The size multiple inputs must have.
    pub fn multiple(&self) -> usize {
        1 << self.depth
    }

    /// Builds the network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> UNet {
        let f = self.base_filters;
        let width = |level: usize| f << level;
        let mut down = Vec::with_capacity(self.depth);
        let mut in_ch = self.in_channels;
        for level in 0..self.depth {
            down.push(ConvBlock::new(in_ch, width(level), self.batch_norm, device));
            in_ch = width(level);
        }
        let bottleneck = ConvBlock::new(in_ch, width(self.depth), self.batch_norm, device);
        let mut up = Vec::with_capacity(self.depth);
        for level in (0..self.depth).rev() {
            up.push(UpBlock::new(
                width(level + 1),
                width(level),
                self.transposed,
                self.batch_norm,
                device,
            ));
        }
        UNet {
            down,
            bottleneck,
            up,
            head: Conv2dConfig::new([width(0), self.out_channels], [1, 1]).init(device),
            aux: (1..=self.deep_heads())
                .map(|level| {
                    Conv2dConfig::new([width(level), self.out_channels], [1, 1]).init(device)
                })
                .collect(),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            dropout: (self.dropout > 0.0).then(|| DropoutConfig::new(self.dropout).init()),
            softmax: self.output == OutputActivation::Softmax,
        }
    }
}

/// Two 3×3 convolutions, each followed by optional BatchNorm and ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// First convolution.
    pub conv1: Conv2d,
    /// BatchNorm after the first convolution.
    pub bn1: Option<BatchNorm>,
    /// Second convolution.
    pub conv2: Conv2d,
    /// BatchNorm after the second convolution.
    pub bn2: Option<BatchNorm>,
}

fn conv3x3(cin: usize, cout: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias)
        .init(device)
}

impl ConvBlock {
    fn new(cin: usize, cout: usize, bn: bool, device: &Device) -> Self {
        let norm = || bn.then(|| BatchNormConfig::new(cout).init(device));
        ConvBlock {
            conv1: conv3x3(cin, cout, !bn, device),
            bn1: norm(),
            conv2: conv3x3(cout, cout, !bn, device),
            bn2: norm(),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.conv1.forward(x);
        if let Some(bn) = &self.bn1 {
            x = bn.forward(x);
        }
        x = relu(x);
        x = self.conv2.forward(x);
        if let Some(bn) = &self.bn2 {
            x = bn.forward(x);
        }
        relu(x)
    }
}

/// Up-sampling ×2 to `cout` channels, concatenation with the skip, then a [`ConvBlock`].
#[derive(Module, Debug)]
pub struct UpBlock {
    /// 2×2 stride-2 transposed convolution (when `transposed`).
    pub tconv: Option<ConvTranspose2d>,
    /// Nearest ×2 up-sampling (when not `transposed`).
    pub upsample: Option<Interpolate2d>,
    /// 3×3 convolution after the up-sampling (when not `transposed`).
    pub upconv: Option<Conv2d>,
    /// The block after the concatenation.
    pub block: ConvBlock,
}

impl UpBlock {
    fn new(cin: usize, cout: usize, transposed: bool, bn: bool, device: &Device) -> Self {
        let (tconv, upsample, upconv) = if transposed {
            let t = ConvTranspose2dConfig::new([cin, cout], [2, 2])
                .with_stride([2, 2])
                .init(device);
            (Some(t), None, None)
        } else {
            let up = Interpolate2dConfig::new()
                .with_scale_factor(Some([2.0, 2.0]))
                .with_mode(InterpolateMode::Nearest)
                .with_align_corners(false)
                .init();
            (None, Some(up), Some(conv3x3(cin, cout, true, device)))
        };
        UpBlock {
            tconv,
            upsample,
            upconv,
            block: ConvBlock::new(2 * cout, cout, bn, device),
        }
    }

    /// Forward pass: `x` from the level below, `skip` from the encoder.
    pub fn forward(&self, x: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
        let x = match (&self.tconv, &self.upsample, &self.upconv) {
            (Some(t), _, _) => t.forward(x),
            (None, Some(u), Some(c)) => c.forward(u.forward(x)),
            _ => x,
        };
        self.block.forward(Tensor::cat(vec![skip, x], 1))
    }
}

/// The U-Net.
#[derive(Module, Debug)]
pub struct UNet {
    /// Encoder blocks, top level first.
    pub down: Vec<ConvBlock>,
    /// The lowest level.
    pub bottleneck: ConvBlock,
    /// Decoder blocks, lowest level first.
    pub up: Vec<UpBlock>,
    /// 1×1 convolution to the output channels.
    pub head: Conv2d,
    /// Deep supervision's heads on the decoder outputs at 1/2, 1/4, … resolution (training only).
    pub aux: Vec<Conv2d>,
    /// 2×2 max pooling.
    pub pool: MaxPool2d,
    /// Dropout before and after the bottleneck.
    pub dropout: Option<Dropout>,
    /// Softmax (else sigmoid) output.
    pub softmax: bool,
}

impl UNet {
    /// Logits `[n, out_channels, h, w]` (no output activation): what the losses take.
    pub fn forward_logits(&self, x: Tensor<4>) -> Tensor<4> {
        let mut outs = self.forward_deep(x);
        outs.swap_remove(0)
    }

    /// The main head's logits, then those of each deep-supervision head (1/2, 1/4, …
    /// resolution); only the main ones without deep supervision.
    pub fn forward_deep(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut skips = Vec::with_capacity(self.down.len());
        let mut x = x;
        for block in &self.down {
            let y = block.forward(x);
            x = self.pool.forward(y.clone());
            skips.push(y);
        }
        if let Some(d) = &self.dropout {
            x = d.forward(x);
        }
        x = self.bottleneck.forward(x);
        if let Some(d) = &self.dropout {
            x = d.forward(x);
        }
        let mut aux = Vec::with_capacity(self.aux.len());
        for block in &self.up {
            // `up` has one block per `down` level, so a skip is always there.
            let Some(skip) = skips.pop() else { break };
            x = block.forward(x, skip);
            // Decoder level `skips.len()` now (0 = full resolution); deep heads on 1..=n.
            if let Some(head) = skips.len().checked_sub(1).and_then(|i| self.aux.get(i)) {
                aux.push(head.forward(x.clone()));
            }
        }
        let mut outs = vec![self.head.forward(x)];
        // Gathered lowest resolution first; returned finest first.
        outs.extend(aux.into_iter().rev());
        outs
    }

    /// Probabilities `[n, out_channels, h, w]` (sigmoid or softmax applied): what the exported
    /// ONNX graph computes.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let logits = self.forward_logits(x);
        if self.softmax {
            softmax(logits, 1)
        } else {
            sigmoid(logits)
        }
    }
}

/// The device pair a run uses: `plain` for evaluation, `plain.autodiff()` for training.
pub fn libtorch_device(cuda: Option<usize>) -> Device {
    #[allow(deprecated)]
    match cuda {
        Some(i) => Device::libtorch_cuda(i),
        None => Device::libtorch(),
    }
}
