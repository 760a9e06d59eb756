//! `slicewise-train`: trains U-Nets with Burn on LibTorch and exports them to ONNX.
//!
//! ```text
//! slicewise-train train --data ../shared/data/lgg --channels 1 --size 128 --out runs/lgg
//! slicewise-train export --run runs/lgg --out models/lgg-flair.onnx
//! slicewise-train ensemble --out models/lgg-ensemble.onnx --version 2 a.onnx b.onnx
//! slicewise-train eval --run runs/lgg
//! slicewise-train bench --preset small --size 128 --batch 8
//! ```
//! Set `OMP_NUM_THREADS` (1 is fastest on a busy 2-core machine).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use slicewise::infer::{Normalization, TtaFlips};
use slicewise::Error;
use slicewise_train::augment::AugmentConfig;
use slicewise_train::ensemble;
use slicewise_train::export::{export, ExportOptions};
use slicewise_train::inference::load_run;
use slicewise_train::training::{evaluate, libtorch_device, loss};
use slicewise_train::{
    data, train, DataConfig, DataKind, LossKind, OptimizerKind, OutputActivation, RunOptions,
    TrainingConfig, UNetConfig,
};

#[derive(Parser)]
#[command(
    name = "slicewise-train",
    version,
    about = "Train U-Nets (Burn + LibTorch) and export them to ONNX"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train (or resume) a run.
    Train(Box<TrainArgs>),
    /// Export a run's best checkpoint to ONNX + card JSON.
    Export(ExportArgs),
    /// Combine exported models into one ONNX model that averages their outputs; prints its card.
    Ensemble(EnsembleArgs),
    /// Evaluate a run's best checkpoint on its validation (and test) volumes; prints JSON.
    Eval(EvalArgs),
    /// Time training steps of a preset on random data; prints JSON.
    Bench(BenchArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Pairs,
    Nifti,
    Coco,
}

#[derive(Clone, Copy, ValueEnum)]
enum AugmentArg {
    Default,
    Robust,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum LossArg {
    Bce,
    Dice,
    BceDice,
    Focal,
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimArg {
    Adam,
    Adamw,
}

#[derive(Args)]
struct TrainArgs {
    /// Output folder (checkpoints, config.json, metrics.csv, split.json).
    #[arg(long)]
    out: PathBuf,
    /// Resume the run in --out (its saved config wins over the other flags).
    #[arg(long)]
    resume: bool,
    /// Start from a saved config.json instead of the flags below.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data folder; repeat for more folders of the same layout (each is split on its own, so
    /// train, validation and test all hold volumes of every folder).
    #[arg(long, required_unless_present_any = ["resume", "config"])]
    data: Vec<PathBuf>,
    /// Data layout.
    #[arg(long, value_enum, default_value = "pairs")]
    kind: KindArg,
    /// Source channels, comma-separated (LGG: 0 pre-contrast, 1 FLAIR, 2 post-contrast).
    #[arg(long, default_value = "1", value_delimiter = ',')]
    channels: Vec<usize>,
    /// Input size (square; a multiple of 2^depth).
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Normalisation: none, minmax-slice, minmax-volume, zscore, percentile:LO,HI,
    /// percentile-fg:LO,HI, percentile-tissue:LO,HI,MEDIAN, window:C,W.
    #[arg(long, default_value = "percentile:1,99")]
    norm: String,
    /// Crop each volume's slices to its foreground box (normalised values above T) before
    /// resizing; the exported contract carries the step, so the engine crops the same way.
    #[arg(long, value_name = "T")]
    crop_foreground: Option<f32>,
    /// Share of training samples drawn from skull-stripped copies of the volumes (0–1).
    #[arg(long, default_value_t = 0.0)]
    strip: f64,
    /// NIfTI slicing axis (0 x, 1 y, 2 z).
    #[arg(long, default_value_t = 2)]
    axis: usize,
    /// Model preset: small (16 filters) or unet (64→1024).
    #[arg(long, default_value = "small")]
    preset: String,
    /// Override the preset's base filters.
    #[arg(long)]
    base_filters: Option<usize>,
    /// Override the preset's depth.
    #[arg(long)]
    depth: Option<usize>,
    /// No BatchNorm.
    #[arg(long)]
    no_batchnorm: bool,
    /// Bottleneck dropout.
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Nearest up-sampling + conv instead of transposed convolutions.
    #[arg(long)]
    upsample: bool,
    /// Softmax over K classes (background included) instead of a sigmoid foreground.
    #[arg(long)]
    softmax: Option<usize>,
    /// Loss.
    #[arg(long, value_enum, default_value = "bce-dice")]
    loss: LossArg,
    /// Optimiser.
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimArg,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Weight decay.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Epochs at most.
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Seed (weights, shuffling, augmentation).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Seed of the volume split.
    #[arg(long, default_value_t = 42)]
    split_seed: u64,
    /// Early-stopping patience in epochs (0: off).
    #[arg(long, default_value_t = 10)]
    patience: usize,
    /// Cosine annealing of the learning rate over --epochs (replaces ReduceLROnPlateau).
    #[arg(long)]
    cosine: bool,
    /// ReduceLROnPlateau patience (0: off).
    #[arg(long, default_value_t = 4)]
    plateau_patience: usize,
    /// Validation fraction of the volumes.
    #[arg(long, default_value_t = 0.2)]
    val_fraction: f64,
    /// Test fraction of the volumes.
    #[arg(long, default_value_t = 0.0)]
    test_fraction: f64,
    /// Explicit validation volumes (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    val_volumes: Option<Vec<String>>,
    /// Use at most this many volumes (0: all).
    #[arg(long, default_value_t = 0)]
    max_volumes: usize,
    /// Repeat foreground slices this many times per epoch.
    #[arg(long, default_value_t = 1)]
    oversample: usize,
    /// No augmentation (the same as `--augment none`).
    #[arg(long)]
    no_augment: bool,
    /// Augmentation preset: default, robust (wider zoom, stronger linear and gamma intensity
    /// changes, for other scanners), none.
    #[arg(long, value_enum, default_value = "default")]
    augment: AugmentArg,
    /// Probability of a vertical (anterior-posterior) flip, over the preset's (0): the LGG
    /// lesions sit mostly frontal and temporal, and a model that never sees a posterior one
    /// learns the location along with the lesion.
    #[arg(long)]
    flip_v: Option<f64>,
    /// Probability of a dark core drawn inside a training lesion, its label kept (off by
    /// default): necrotic or cystic centres are dark on FLAIR but still lesion, and few LGG
    /// lesions show one.
    #[arg(long)]
    dark_core: Option<f64>,
    /// Batch-loading worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Fine-tune from these weights (.bpk or a run folder).
    #[arg(long)]
    init_from: Option<String>,
    /// Model name written into the exported contract.
    #[arg(long, default_value = "slicewise-unet")]
    name: String,
    /// LibTorch CUDA device index.
    #[arg(long)]
    cuda: Option<usize>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Stop after this many epochs in this call (for testing resume).
    #[arg(long, default_value_t = 0, hide = true)]
    max_epochs_this_call: usize,
}

#[derive(Args)]
struct ExportArgs {
    /// Run folder (config.json, best.bpk).
    #[arg(long)]
    run: PathBuf,
    /// Weights other than the run's best.bpk.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output ONNX file (the card goes next to it as <stem>.card.json).
    #[arg(long)]
    out: PathBuf,
    /// Keep BatchNormalization nodes instead of folding them into the convolutions.
    #[arg(long)]
    no_fold: bool,
    /// Model version for the contract.
    #[arg(long, default_value = "1")]
    version: String,
    /// A label's name and optional colour, `NAME` or `NAME=#RRGGBB`; repeat once per label in
    /// value order (1, 2, ...): one for a sigmoid model, one per foreground class for softmax.
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, Option<[u8; 3]>)>,
    /// Training-data note for the contract.
    #[arg(long)]
    training_data: Option<String>,
    /// Sigmoid threshold for the contract, e.g. one chosen on the validation patients (default:
    /// the training config's, 0.5).
    #[arg(long)]
    threshold: Option<f32>,
    /// The flips test-time augmentation averages when a run asks for it: `h` (the left-right
    /// mirror) or `hv` (both mirrors, four passes), e.g. as chosen on the validation patients.
    #[arg(long, default_value = "h", value_parser = str::parse::<TtaFlips>)]
    tta_flips: TtaFlips,
    /// A JSON file of the labels' coded meanings for DICOM SEG (an array of {"value",
    /// "category", "property_type", optional "property_type_modifier", "anatomic_region"}; each
    /// code {"value","scheme","meaning"}, SNOMED CT as DICOM PS3.16 lists them).
    #[arg(long)]
    label_codes: Option<PathBuf>,
}

#[derive(Args)]
struct EnsembleArgs {
    /// Output ONNX file (the card goes next to it as <stem>.card.json).
    #[arg(long)]
    out: PathBuf,
    /// Model version for the ensemble's contract.
    #[arg(long)]
    version: String,
    /// The exported members (two or more, sharing their contract); the first's contract is kept.
    #[arg(required = true, num_args = 2..)]
    members: Vec<PathBuf>,
}

#[derive(Args)]
struct EvalArgs {
    /// Run folder.
    #[arg(long)]
    run: PathBuf,
    /// Weights other than the run's best.bpk.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Also evaluate the training volumes.
    #[arg(long)]
    with_train: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// Preset.
    #[arg(long, default_value = "small")]
    preset: String,
    /// Input channels.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Input size.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Timed steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Also time the batch loader (default augmentation) over one epoch of this pairs folder.
    #[arg(long)]
    loader_data: Option<PathBuf>,
    /// Loader worker threads for the loader timing.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Without BatchNorm (Burn composes it from elementwise ops; libtorch has one fused kernel).
    #[arg(long)]
    no_batchnorm: bool,
}

/// `p` when it is a probability, else an error naming `flag`.
fn probability(flag: &str, p: f64) -> Result<f64, Error> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(Error::InvalidArgument(format!(
            "{flag} {p}: a probability lies in [0, 1]"
        )))
    }
}

fn parse_norm(s: &str) -> Result<Normalization, Error> {
    // The same forms as a model card's `normalization`, so what trains is what the engine reads.
    slicewise::infer::contract::parse_normalization(s)
        .map_err(|e| Error::InvalidArgument(format!("--norm: {e}")))
}

fn train_config(a: &TrainArgs) -> Result<TrainingConfig, Error> {
    if let Some(p) = &a.config {
        return slicewise_train::training::load_config(p);
    }
    if a.resume && a.data.is_empty() {
        // `--resume` alone: the run's own config.json (the trainer reads it again on resume).
        return slicewise_train::training::load_config(&a.out.join("config.json"));
    }
    let (root, extra) = a
        .data
        .split_first()
        .ok_or_else(|| Error::InvalidArgument("--data is required".into()))?;
    if !(0.0..=1.0).contains(&a.strip) {
        return Err(Error::InvalidArgument(format!(
            "--strip {} is not a share between 0 and 1",
            a.strip
        )));
    }
    let in_ch = a.channels.len();
    let mut m = UNetConfig::preset(&a.preset, in_ch)
        .ok_or_else(|| Error::InvalidArgument(format!("unknown preset {}", a.preset)))?;
    if let Some(f) = a.base_filters {
        m.base_filters = f;
    }
    if let Some(d) = a.depth {
        m.depth = d;
    }
    m.batch_norm = !a.no_batchnorm;
    m.dropout = a.dropout;
    m.transposed = !a.upsample;
    let classes = match a.softmax {
        Some(k) => {
            m.output = OutputActivation::Softmax;
            m.out_channels = k;
            k
        }
        None => 2,
    };
    let data = DataConfig::new(root.to_string_lossy().into_owned())
        .with_extra_roots(
            extra
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
        )
        .with_crop_foreground(a.crop_foreground)
        .with_strip_probability(a.strip)
        .with_kind(match a.kind {
            KindArg::Pairs => DataKind::Pairs,
            KindArg::Nifti => DataKind::Nifti,
            KindArg::Coco => DataKind::Coco,
        })
        .with_channels(a.channels.clone())
        .with_size(a.size)
        .with_normalization(parse_norm(&a.norm)?)
        .with_axis(a.axis)
        .with_classes(classes)
        .with_max_volumes(a.max_volumes)
        .with_val_fraction(a.val_fraction)
        .with_test_fraction(a.test_fraction)
        .with_val_volumes(a.val_volumes.clone())
        .with_split_seed(a.split_seed)
        .with_foreground_oversample(a.oversample);
    let augment = match (a.no_augment, a.augment) {
        (true, _) | (false, AugmentArg::None) => AugmentConfig::none(),
        (false, AugmentArg::Default) => AugmentConfig::new(),
        (false, AugmentArg::Robust) => AugmentConfig::robust(),
    };
    let augment = match a.flip_v {
        Some(p) => augment.with_p_flip_v(probability("--flip-v", p)?),
        None => augment,
    };
    let augment = match a.dark_core {
        Some(p) => augment.with_p_dark_core(Some(probability("--dark-core", p)?)),
        None => augment,
    };
    Ok(TrainingConfig::new(m, data, augment)
        .with_name(a.name.clone())
        .with_loss(match a.loss {
            LossArg::Bce => LossKind::Bce,
            LossArg::Dice => LossKind::Dice,
            LossArg::BceDice => LossKind::BceDice,
            LossArg::Focal => LossKind::Focal,
        })
        .with_optimizer(match a.optimizer {
            OptimArg::Adam => OptimizerKind::Adam,
            OptimArg::Adamw => OptimizerKind::AdamW,
        })
        .with_learning_rate(a.lr)
        .with_weight_decay(a.weight_decay)
        .with_batch_size(a.batch)
        .with_epochs(a.epochs)
        .with_seed(a.seed)
        .with_early_stopping(a.patience)
        .with_plateau_patience(a.plateau_patience)
        .with_cosine(a.cosine)
        .with_loader_workers(a.workers)
        .with_init_from(a.init_from.clone()))
}

/// `NAME` or `NAME=#RRGGBB`.
fn parse_label(s: &str) -> Result<(String, Option<[u8; 3]>), String> {
    let (name, color) = match s.rsplit_once('=') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    if name.trim().is_empty() {
        return Err(format!("label {s:?} has no name"));
    }
    let color = color.map(parse_color).transpose()?;
    Ok((name.trim().to_string(), color))
}

fn parse_color(c: &str) -> Result<[u8; 3], String> {
    let hex = c.strip_prefix('#').unwrap_or(c);
    let channel = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("colour {c:?} is not #RRGGBB"))
    };
    if hex.len() != 6 {
        return Err(format!("colour {c:?} is not #RRGGBB"));
    }
    Ok([channel(0)?, channel(2)?, channel(4)?])
}

/// Labels numbered 1, 2, ... in the order given; a label without a colour keeps the default one.
fn label_infos(given: &[(String, Option<[u8; 3]>)]) -> Result<Vec<slicewise::LabelInfo>, Error> {
    given
        .iter()
        .enumerate()
        .map(|(i, (name, color))| {
            let value = u8::try_from(i + 1)
                .map_err(|_| Error::InvalidArgument("at most 255 --label values".into()))?;
            Ok(slicewise::LabelInfo {
                value,
                name: name.clone(),
                color: color.unwrap_or(slicewise_train::export::default_color(value)),
            })
        })
        .collect()
}

fn run(cli: Cli) -> Result<serde_json::Value, Error> {
    match cli.cmd {
        Cmd::Train(a) => {
            let cfg = train_config(&a)?;
            let opts = RunOptions {
                resume: a.resume,
                cuda: a.cuda,
                progress: !a.quiet,
                max_epochs_this_call: a.max_epochs_this_call,
            };
            let s = train(&cfg, &a.out, &opts)?;
            Ok(serde_json::to_value(&s).unwrap_or_default())
        }
        Cmd::Export(a) => {
            let t = load_run(&a.run, a.weights.as_deref())?;
            let mut opts = ExportOptions {
                fold_batchnorm: !a.no_fold,
                version: a.version,
                training_data: a.training_data,
                threshold: a.threshold,
                tta_flips: a.tta_flips,
                ..Default::default()
            };
            if !a.labels.is_empty() {
                opts.labels = Some(label_infos(&a.labels)?);
            }
            if let Some(path) = &a.label_codes {
                opts.label_codes = slicewise_train::export::read_label_codes(path)?;
            }
            let card = export(&t.model, &t.config, Some(&a.run), &a.out, &opts)?;
            Ok(serde_json::to_value(&card).unwrap_or_default())
        }
        Cmd::Ensemble(a) => ensemble::write(&a.members, &a.out, &a.version),
        Cmd::Eval(a) => {
            let t = load_run(&a.run, a.weights.as_deref())?;
            let split_path = a.run.join("split.json");
            let split: data::Split = serde_json::from_str(
                &std::fs::read_to_string(&split_path)
                    .map_err(|e| Error::io("read", &split_path, e))?,
            )
            .map_err(|e| Error::format(&split_path, e.to_string()))?;
            let ds = Arc::new(data::load(&t.config.data)?);
            let val = evaluate(
                &t.model,
                &ds,
                &ds.indices_of(&split.val),
                &t.config,
                &t.device,
                0,
            );
            let test = (!split.test.is_empty()).then(|| {
                evaluate(
                    &t.model,
                    &ds,
                    &ds.indices_of(&split.test),
                    &t.config,
                    &t.device,
                    0,
                )
            });
            let train = a.with_train.then(|| {
                evaluate(
                    &t.model,
                    &ds,
                    &ds.indices_of(&split.train),
                    &t.config,
                    &t.device,
                    0,
                )
            });
            Ok(serde_json::json!({ "val": val, "test": test, "train": train }))
        }
        Cmd::Bench(a) => bench(&a),
    }
}

fn bench(a: &BenchArgs) -> Result<serde_json::Value, Error> {
    use burn::module::Module;
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::{Distribution, Tensor};
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
    use slicewise_train::loader::EpochLoader;
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

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("slicewise-train: {e}");
            ExitCode::from(1)
        }
    }
}
