//! The training loop: losses, Adam/AdamW, ReduceLROnPlateau, early stopping, checkpoints (best by
//! validation Dice, last + optimiser state for resuming), per-epoch CSV.
//!
//! Artefacts in the output folder:
//! `config.json` (the [`TrainingConfig`]), `split.json`, `metrics.csv`, `state.json`,
//! `best.bpk` (model weights, burnpack), `last.bpk`, `optim.bpk`, `best-metrics.json`,
//! `curves.png` (loss and Dice per epoch, see [`super::curves`]), `overlays/*.png` (validation predictions of the best model, written when the run ends).
//!
//! Every file is written to a temporary file in the folder and renamed into place once complete,
//! and `state.json` is written last of an epoch's files: a crash leaves each file whole (the new
//! one or the previous one), so `--resume` always finds checkpoints it can load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::store::RecordError;
use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::augment::AugmentConfig;
use super::data::{self, DataConfig, Dataset, Split};
use super::loader::{Batch, EpochLoader};
use super::metrics::{foreground, Confusion, EpochMetrics};
use super::model::{OutputActivation, UNet, UNetConfig};
use slicewise::error::{Error, Result};
use slicewise::output::atomic_write_path;

/// The loss.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Binary (sigmoid) or categorical (softmax) cross-entropy.
    Bce,
    /// Soft Dice (foreground classes).
    Dice,
    /// Cross-entropy + soft Dice.
    BceDice,
    /// Focal loss (γ = `focal_gamma`).
    Focal,
}

/// The optimiser.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Adam (L2 weight decay when `weight_decay` > 0).
    Adam,
    /// AdamW (decoupled weight decay).
    AdamW,
}

/// Everything that defines a training run (saved as `config.json` beside the artefacts).
#[derive(Config, Debug)]
pub struct TrainingConfig {
    /// The network.
    pub model: UNetConfig,
    /// The data and its preprocessing.
    pub data: DataConfig,
    /// Augmentation.
    pub augment: AugmentConfig,
    /// Model name for the exported contract.
    #[config(default = "\"slicewise-unet\".to_string()")]
    pub name: String,
    /// Loss.
    #[config(default = "LossKind::BceDice")]
    pub loss: LossKind,
    /// Focal loss exponent.
    #[config(default = 2.0)]
    pub focal_gamma: f64,
    /// Optimiser.
    #[config(default = "OptimizerKind::Adam")]
    pub optimizer: OptimizerKind,
    /// Initial learning rate.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Weight decay (AdamW: decoupled; Adam: L2; 0: none).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Slices per step.
    #[config(default = 8)]
    pub batch_size: usize,
    /// Epochs at most.
    #[config(default = 50)]
    pub epochs: usize,
    /// Seed of weights, shuffling and augmentation.
    #[config(default = 42)]
    pub seed: u64,
    /// Stop after this many epochs without a better validation Dice (0: never).
    #[config(default = 10)]
    pub early_stopping: usize,
    /// ReduceLROnPlateau: epochs without a better validation Dice before the rate drops (0: off).
    #[config(default = 4)]
    pub plateau_patience: usize,
    /// ReduceLROnPlateau factor.
    #[config(default = 0.5)]
    pub plateau_factor: f64,
    /// Smallest learning rate.
    #[config(default = 1e-6)]
    pub min_lr: f64,
    /// Cosine annealing from `learning_rate` to `min_lr` over `epochs` instead of
    /// ReduceLROnPlateau: a budget-bound run ends on small steps rather than mid-descent.
    #[config(default = false)]
    pub cosine: bool,
    /// Improvements smaller than this do not count.
    #[config(default = 1e-4)]
    pub min_delta: f64,
    /// Sigmoid threshold for the metrics (and the exported contract).
    #[config(default = 0.5)]
    pub threshold: f32,
    /// Batch-producing worker threads (0: on the training thread).
    #[config(default = 1)]
    pub loader_workers: usize,
    /// Start from these weights (fine-tuning): a `.bpk` file or a run folder (its `best.bpk`).
    #[config(default = "None")]
    pub init_from: Option<String>,
}

/// Progress kept between epochs (`state.json`), for resuming.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Current learning rate.
    pub lr: f64,
    /// Best validation Dice so far.
    pub best_dice: f64,
    /// Epoch (1-based) of the best Dice.
    pub best_epoch: usize,
    /// Epochs since the best Dice.
    pub since_best: usize,
    /// Epochs since the last improvement or rate drop.
    pub since_drop: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// The output folder.
    pub dir: PathBuf,
    /// Final state.
    pub state: TrainState,
    /// Validation metrics of the best epoch.
    pub best: Option<ValidationReport>,
    /// The split used.
    pub split: Split,
    /// Mean seconds per training step (last epoch).
    pub step_seconds: f64,
    /// Mean seconds the trainer waited for a batch (last epoch).
    pub wait_seconds: f64,
}

/// Validation results: pooled, per volume, per tumour slice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationReport {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Loss, pooled counts, mean volume Dice and mean tumour-slice Dice.
    pub metrics: EpochMetrics,
    /// Dice per validation volume (pixels pooled per volume).
    pub per_volume: Vec<(String, f64)>,
}

/// The device pair a run uses: `plain` for evaluation, `plain.autodiff()` for training.
pub fn libtorch_device(cuda: Option<usize>) -> Device {
    #[allow(deprecated)]
    match cuda {
        Some(i) => Device::libtorch_cuda(i),
        None => Device::libtorch(),
    }
}

fn classes_of(m: &UNetConfig) -> usize {
    match m.output {
        OutputActivation::Sigmoid => 1,
        OutputActivation::Softmax => m.out_channels,
    }
}

/// Host batch → (images, targets) tensors; targets are `[n, 1, s, s]` (sigmoid) or one-hot
/// `[n, K, s, s]` (softmax).
pub fn batch_tensors(
    b: &Batch,
    c: usize,
    s: usize,
    classes: usize,
    dev: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let n = b.len();
    let x = Tensor::<4>::from_data(TensorData::new(b.images.clone(), [n, c, s, s]), dev);
    let y = if classes <= 1 {
        let v: Vec<f32> = b
            .masks
            .iter()
            .map(|&m| f32::from(u8::from(m != 0)))
            .collect();
        Tensor::<4>::from_data(TensorData::new(v, [n, 1, s, s]), dev)
    } else {
        let plane = s * s;
        let mut v = vec![0f32; n * classes * plane];
        for i in 0..n {
            for p in 0..plane {
                let k = usize::from(b.masks[i * plane + p]).min(classes - 1);
                v[(i * classes + k) * plane + p] = 1.0;
            }
        }
        Tensor::<4>::from_data(TensorData::new(v, [n, classes, s, s]), dev)
    };
    (x, y)
}

fn soft_dice(p: Tensor<4>, y: Tensor<4>, first_class: usize) -> Tensor<1> {
    let k = p.dims()[1];
    let (p, y) = if first_class > 0 {
        (
            p.narrow(1, first_class, k - first_class),
            y.narrow(1, first_class, k - first_class),
        )
    } else {
        (p, y)
    };
    let inter = (p.clone() * y.clone()).sum_dims(&[0, 2, 3]);
    let denom = p.sum_dims(&[0, 2, 3]) + y.sum_dims(&[0, 2, 3]);
    let dice = (inter.mul_scalar(2.0).add_scalar(1.0)) / denom.add_scalar(1.0);
    dice.mean().neg().add_scalar(1.0)
}

/// The loss of logits against targets (see [`batch_tensors`]).
pub fn loss(kind: LossKind, gamma: f64, logits: Tensor<4>, y: Tensor<4>) -> Tensor<1> {
    let sigmoid_out = logits.dims()[1] == 1;
    // Per-pixel cross-entropy, numerically stable from the logits.
    let ce = |logits: Tensor<4>, y: Tensor<4>| -> Tensor<4> {
        if sigmoid_out {
            logits.clone().clamp_min(0.0) - logits.clone() * y + logits.abs().neg().exp().log1p()
        } else {
            (log_softmax(logits, 1) * y).sum_dim(1).neg()
        }
    };
    let probs = |logits: Tensor<4>| {
        if sigmoid_out {
            sigmoid(logits)
        } else {
            softmax(logits, 1)
        }
    };
    let first = usize::from(!sigmoid_out);
    match kind {
        LossKind::Bce => ce(logits, y).mean(),
        LossKind::Dice => soft_dice(probs(logits), y, first),
        LossKind::BceDice => {
            ce(logits.clone(), y.clone()).mean() + soft_dice(probs(logits), y, first)
        }
        LossKind::Focal => {
            let p = probs(logits.clone());
            // p_t: the probability of the true class at each pixel.
            let pt = if sigmoid_out {
                p.clone() * y.clone()
                    + (p.neg().add_scalar(1.0)) * (y.clone().neg().add_scalar(1.0))
            } else {
                (p * y.clone()).sum_dim(1)
            };
            let w = pt.neg().add_scalar(1.0).clamp_min(0.0).powf_scalar(gamma);
            (w * ce(logits, y)).mean()
        }
    }
}

/// Scores a batch's output probabilities `[n, K, s, s]` against its masks.
fn score(
    probs: &[f32],
    b: &Batch,
    ds: &Dataset,
    classes: usize,
    threshold: f32,
    per_volume: &mut [Confusion],
    slice_dice: &mut Vec<f64>,
) -> Confusion {
    let plane = ds.size * ds.size;
    let k = classes.max(1);
    let mut total = Confusion::default();
    for (i, &idx) in b.indices.iter().enumerate() {
        let pr = &probs[i * k * plane..(i + 1) * k * plane];
        let mut c = Confusion::default();
        for p in 0..plane {
            c.add(
                foreground(pr, classes, plane, p, threshold) != 0,
                b.masks[i * plane + p] != 0,
            );
        }
        if let Some(v) = per_volume.get_mut(ds.slices[idx].volume) {
            v.merge(&c);
        }
        if c.tp + c.fn_ > 0 {
            slice_dice.push(c.dice());
        }
        total.merge(&c);
    }
    total
}

/// Evaluates `model` (eval mode) on `indices`: loss, pooled and per-volume scores.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &UNet,
    ds: &Arc<Dataset>,
    indices: &[usize],
    cfg: &TrainingConfig,
    dev: &Device,
    epoch: usize,
) -> ValidationReport {
    let classes = classes_of(&cfg.model);
    let mut per_volume = vec![Confusion::default(); ds.volumes.len()];
    let mut slice_dice = Vec::new();
    let mut pooled = Confusion::default();
    let (mut loss_sum, mut batches) = (0.0, 0usize);
    let loader = EpochLoader::start(
        ds.clone(),
        indices.to_vec(),
        cfg.batch_size,
        false,
        None,
        0,
        0,
        0,
    );
    for b in loader {
        let (x, y) = batch_tensors(&b, ds.channels, ds.size, classes, dev);
        let logits = model.forward_logits(x);
        loss_sum +=
            f64::from(loss(cfg.loss, cfg.focal_gamma, logits.clone(), y).into_scalar::<f32>());
        batches += 1;
        let probs = if classes <= 1 {
            sigmoid(logits)
        } else {
            softmax(logits, 1)
        };
        let probs = probs.into_data().try_into_vec::<f32>().unwrap_or_default();
        pooled.merge(&score(
            &probs,
            &b,
            ds,
            classes,
            cfg.threshold,
            &mut per_volume,
            &mut slice_dice,
        ));
    }
    let mut vols: Vec<usize> = indices.iter().map(|&i| ds.slices[i].volume).collect();
    vols.sort_unstable();
    vols.dedup();
    let per: Vec<(String, f64)> = vols
        .iter()
        .map(|&v| (ds.volumes[v].clone(), per_volume[v].dice()))
        .collect();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    ValidationReport {
        epoch,
        metrics: EpochMetrics {
            loss: loss_sum / batches.max(1) as f64,
            pooled,
            volume_dice: mean(&per.iter().map(|p| p.1).collect::<Vec<_>>()),
            tumour_slice_dice: mean(&slice_dice),
        },
        per_volume: per,
    }
}

fn json_write<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    slicewise::output::atomic_write(path, |w| {
        serde_json::to_writer_pretty(&mut *w, v).map_err(|e| Error::format(path, e.to_string()))
    })
}

fn json_read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, e.to_string()))
}

/// Resolves `init_from`: a `.bpk` file, or a run folder's `best.bpk`.
pub fn weights_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join("best.bpk")
    } else {
        p.to_path_buf()
    }
}

/// Loads weights into a freshly built model of `cfg` on `dev`: a checkpoint that cannot be read
/// is an I/O error, weights that do not fit the architecture a model error.
pub fn load_weights(cfg: &UNetConfig, path: &Path, dev: &Device) -> Result<UNet> {
    cfg.init(dev)
        .try_load_file(path)
        .map_err(|e| load_error(path, "weights", e))
}

/// A failed checkpoint load: [`RecordError::Validation`] (the file's tensors do not fit the
/// model) is a model error; everything else (missing, unreadable, not a burnpack) is I/O.
fn load_error(path: &Path, what: &str, e: RecordError) -> Error {
    match &e {
        RecordError::Validation(m) => {
            Error::model(path, format!("the {what} do not fit the model: {m}")).with_source(e)
        }
        _ => Error::io("load checkpoint", path, std::io::Error::other(e)),
    }
}

/// Writes a checkpoint atomically (through [`atomic_write_path`]): `save` writes a temporary
/// file in `path`'s folder, renamed onto `path` only once complete and synced, so a crash leaves
/// the previous checkpoint (or none), never a half-written one. The temporary name ends in
/// `.part`: burn's writer appends `.bpk` only to a path without an extension, so it writes exactly
/// that file. A failed save is an I/O error on `path` (action "save checkpoint").
fn save_checkpoint<E>(path: &Path, save: impl FnOnce(&Path) -> Result<(), E>) -> Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    atomic_write_path(path, |tmp| {
        save(tmp).map_err(|e| Error::io("save checkpoint", path, std::io::Error::other(e)))
    })
}

/// Reads a `config.json` (a run folder's, or one written by hand).
pub fn load_config(path: &Path) -> Result<TrainingConfig> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    TrainingConfig::load_binary(&bytes).map_err(|e| Error::format(path, e.to_string()))
}

fn build_optimizer(cfg: &TrainingConfig) -> ModuleOptimizer {
    match cfg.optimizer {
        OptimizerKind::Adam => {
            let mut c = AdamConfig::new();
            if cfg.weight_decay > 0.0 {
                c = c.with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(
                    cfg.weight_decay as f32,
                )));
            }
            c.init()
        }
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_weight_decay(cfg.weight_decay as f32)
            .init(),
    }
}

const CSV_HEADER: &str = "epoch,lr,train_loss,train_dice,train_iou,train_precision,train_recall,train_accuracy,val_loss,val_dice,val_iou,val_precision,val_recall,val_accuracy,val_volume_dice,val_tumour_slice_dice,seconds";

fn csv_row(epoch: usize, lr: f64, t: &EpochMetrics, v: &EpochMetrics, secs: f64) -> String {
    let m = |e: &EpochMetrics| {
        let c = &e.pooled;
        format!(
            "{:.6},{:.6},{:.6},{:.6},{:.6},{:.6}",
            e.loss,
            c.dice(),
            c.iou(),
            c.precision(),
            c.recall(),
            c.accuracy()
        )
    };
    format!(
        "{epoch},{lr:.3e},{},{},{:.6},{:.6},{secs:.1}",
        m(t),
        m(v),
        v.volume_dice,
        v.tumour_slice_dice
    )
}

/// Options of one `train` call that are not part of the saved config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue the run in the output folder (its config, split, last weights, optimiser, state).
    pub resume: bool,
    /// LibTorch CUDA device index (None: CPU).
    pub cuda: Option<usize>,
    /// Show a progress bar.
    pub progress: bool,
    /// Stop after this many epochs in this call (0: no limit), e.g. to test resuming.
    pub max_epochs_this_call: usize,
}

/// Trains (or resumes) a run in `out`.
pub fn train(cfg: &TrainingConfig, out: &Path, opts: &RunOptions) -> Result<TrainSummary> {
    let cfg = setup_run_folder(cfg, out, opts.resume)?;
    let plain = libtorch_device(opts.cuda);
    let dev = plain.clone().autodiff();
    // Seeded before anything draws: the data's order, then the weights' initialisation.
    plain.seed(cfg.seed);
    let data = load_data(&cfg, out, opts.resume)?;
    let ctx = RunContext {
        cfg,
        out,
        data,
        plain,
        dev,
        progress: opts.progress,
    };
    let mut run = ctx.start_or_resume(opts.resume)?;
    let mut times = EpochTimes::default();
    let mut ran = 0usize;
    while run.state.epochs_done < ctx.cfg.epochs && !run.state.stopped_early {
        if opts.max_epochs_this_call > 0 && ran >= opts.max_epochs_this_call {
            break;
        }
        (run, times) = ctx.run_epoch(run)?;
        ran += 1;
    }
    ctx.write_best_overlays()?;
    Ok(TrainSummary {
        dir: out.to_path_buf(),
        state: run.state,
        best: run.best,
        split: ctx.data.split,
        step_seconds: times.step_s,
        wait_seconds: times.wait_s,
    })
}

/// Creates the run folder and settles the config: the saved one when resuming, else `cfg`;
/// checks it against itself and (re)writes `config.json`.
fn setup_run_folder(cfg: &TrainingConfig, out: &Path, resume: bool) -> Result<TrainingConfig> {
    std::fs::create_dir_all(out).map_err(|e| Error::io("create folder", out, e))?;
    let cfg_path = out.join("config.json");
    let cfg = if resume {
        load_config(&cfg_path)?
    } else {
        cfg.clone()
    };
    check_config(&cfg)?;
    slicewise::output::atomic_write(&cfg_path, |w| {
        use std::io::Write;
        w.write_all(burn::config::config_to_json(&cfg).as_bytes())
            .map_err(|e| Error::io("write", &cfg_path, e))
    })?;
    Ok(cfg)
}

/// The checks a config must pass before anything is loaded.
fn check_config(cfg: &TrainingConfig) -> Result<()> {
    cfg.model.validate().map_err(Error::InvalidArgument)?;
    if !cfg.data.size.is_multiple_of(cfg.model.multiple()) {
        return Err(Error::InvalidArgument(format!(
            "input size {} is not a multiple of {} (depth {})",
            cfg.data.size,
            cfg.model.multiple(),
            cfg.model.depth
        )));
    }
    let in_ch = if cfg.data.grayscale {
        1
    } else {
        cfg.data.channels.len()
    };
    if in_ch != cfg.model.in_channels {
        return Err(Error::InvalidArgument(format!(
            "the model takes {} channels, the data gives {in_ch}",
            cfg.model.in_channels
        )));
    }
    Ok(())
}

/// A run's data: the preprocessed slices, the split by volume and the slices of each part.
struct RunData {
    ds: Arc<Dataset>,
    split: Split,
    /// Training slices, foreground slices repeated (`foreground_oversample`).
    train_idx: Vec<usize>,
    val_idx: Vec<usize>,
}

/// Loads the data and splits it (the saved `split.json` when resuming, else a new split, saved).
fn load_data(cfg: &TrainingConfig, out: &Path, resume: bool) -> Result<RunData> {
    let t0 = Instant::now();
    let ds = Arc::new(data::load(&cfg.data)?);
    log::info!(
        "loaded {} slices of {} volumes in {:.1} s",
        ds.slices.len(),
        ds.volumes.len(),
        t0.elapsed().as_secs_f64()
    );
    let split_path = out.join("split.json");
    let split: Split = if resume {
        json_read(&split_path)?
    } else {
        let s = data::split(&ds.volumes, &ds.strata, &cfg.data)?;
        json_write(&split_path, &s)?;
        s
    };
    let train_idx = ds.oversampled(&ds.indices_of(&split.train), cfg.data.foreground_oversample);
    let val_idx = ds.indices_of(&split.val);
    if train_idx.is_empty() {
        return Err(Error::InvalidArgument("no training slices".into()));
    }
    Ok(RunData {
        ds,
        split,
        train_idx,
        val_idx,
    })
}

/// What every epoch of a run shares.
struct RunContext<'a> {
    cfg: TrainingConfig,
    out: &'a Path,
    data: RunData,
    /// Evaluation device.
    plain: Device,
    /// Training device (`plain` with autodiff).
    dev: Device,
    progress: bool,
}

/// What changes from epoch to epoch, and is saved after each one.
struct Run {
    state: TrainState,
    model: UNet,
    optim: ModuleOptimizer,
    /// `metrics.csv`, header included.
    csv: Vec<String>,
    best: Option<ValidationReport>,
}

/// Mean seconds per step of one training epoch.
#[derive(Debug, Clone, Copy, Default)]
struct EpochTimes {
    /// Computing a step.
    step_s: f64,
    /// Waiting for the loader's batch.
    wait_s: f64,
}

impl RunContext<'_> {
    /// A fresh run (initial or `init_from` weights), or the saved one (`state.json`, `last.bpk`,
    /// `optim.bpk`, `metrics.csv`, `best-metrics.json`).
    fn start_or_resume(&self, resume: bool) -> Result<Run> {
        let (cfg, out) = (&self.cfg, self.out);
        let state = if resume {
            json_read::<TrainState>(&out.join("state.json"))?
        } else {
            TrainState {
                lr: cfg.learning_rate,
                best_dice: f64::NEG_INFINITY,
                ..Default::default()
            }
        };
        let model = if resume {
            load_weights(&cfg.model, &out.join("last.bpk"), &self.dev)?
        } else if let Some(p) = &cfg.init_from {
            load_weights(&cfg.model, &weights_path(Path::new(p)), &self.dev)?
        } else {
            cfg.model.init(&self.dev)
        };
        let mut optim = build_optimizer(cfg);
        if resume {
            let p = out.join("optim.bpk");
            optim = optim
                .load(&p)
                .map_err(|e| load_error(&p, "optimiser state", e))?;
        }
        let csv_path = out.join("metrics.csv");
        let csv: Vec<String> = if resume {
            std::fs::read_to_string(&csv_path)
                .map_err(|e| Error::io("read", &csv_path, e))?
                .lines()
                .map(str::to_string)
                .collect()
        } else {
            vec![CSV_HEADER.to_string()]
        };
        let best = if resume {
            json_read(&out.join("best-metrics.json")).ok()
        } else {
            None
        };
        Ok(Run {
            state,
            model,
            optim,
            csv,
            best,
        })
    }

    /// One epoch: training, validation, the CSV row, the schedule, the checkpoints.
    fn run_epoch(&self, mut run: Run) -> Result<(Run, EpochTimes)> {
        let epoch = run.state.epochs_done + 1;
        let te = Instant::now();
        let (model, train_m, times) =
            self.train_epoch(run.model, &mut run.optim, run.state.lr, epoch)?;
        run.model = model;
        let eval_model = run.model.valid();
        let ds = &self.data.ds;
        let report = evaluate(
            &eval_model,
            ds,
            &self.data.val_idx,
            &self.cfg,
            &self.plain,
            epoch,
        );
        let val_dice = report.metrics.pooled.dice();
        run.csv.push(csv_row(
            epoch,
            run.state.lr,
            &train_m,
            &report.metrics,
            te.elapsed().as_secs_f64(),
        ));
        log::info!(
            "epoch {epoch}: train loss {:.4} dice {:.4} | val loss {:.4} dice {:.4} (volumes {:.4}) | lr {:.2e} | {:.1} s/step, waited {:.3} s/step",
            train_m.loss,
            train_m.pooled.dice(),
            report.metrics.loss,
            val_dice,
            report.metrics.volume_dice,
            run.state.lr,
            times.step_s,
            times.wait_s
        );
        run.state.epochs_done = epoch;
        if update_schedule(&mut run.state, &self.cfg, epoch, val_dice) {
            self.save_best(&run.model, &report)?;
            run.best = Some(report);
        }
        self.save_progress(&run)?;
        Ok((run, times))
    }

    /// One pass over the training slices (shuffled and augmented per `seed` and `epoch`): a step
    /// per batch. A non-finite loss ends the run ([`Error::Training`]).
    fn train_epoch(
        &self,
        mut model: UNet,
        optim: &mut ModuleOptimizer,
        lr: f64,
        epoch: usize,
    ) -> Result<(UNet, EpochMetrics, EpochTimes)> {
        let (cfg, ds) = (&self.cfg, &self.data.ds);
        let classes = classes_of(&cfg.model);
        let mut loader = EpochLoader::start(
            ds.clone(),
            self.data.train_idx.clone(),
            cfg.batch_size,
            true,
            cfg.augment.enabled().then(|| cfg.augment.clone()),
            cfg.seed,
            epoch as u64,
            cfg.loader_workers,
        );
        let bar = progress_bar(self.progress, loader.len() as u64, epoch, cfg.epochs);
        let mut conf = Confusion::default();
        let (mut loss_sum, mut n_batches) = (0.0, 0usize);
        let (mut t_step, mut t_wait) = (0.0, 0.0);
        let mut dummy_vol = vec![Confusion::default(); ds.volumes.len()];
        let mut dummy_slices = Vec::new();
        loop {
            let tw = Instant::now();
            let Some(b) = loader.next() else { break };
            t_wait += tw.elapsed().as_secs_f64();
            let ts = Instant::now();
            let (x, y) = batch_tensors(&b, ds.channels, ds.size, classes, &self.dev);
            let logits = model.forward_logits(x);
            let l = loss(cfg.loss, cfg.focal_gamma, logits.clone(), y);
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(lr, model, grads);
            let lv = f64::from(l.into_scalar::<f32>());
            let probs = if classes <= 1 {
                sigmoid(logits.detach())
            } else {
                softmax(logits.detach(), 1)
            };
            let probs = probs.into_data().try_into_vec::<f32>().unwrap_or_default();
            t_step += ts.elapsed().as_secs_f64();
            if !lv.is_finite() {
                return Err(Error::Training(format!(
                    "the loss became {lv} in epoch {epoch} (batch {})",
                    n_batches + 1
                )));
            }
            loss_sum += lv;
            n_batches += 1;
            conf.merge(&score(
                &probs,
                &b,
                ds,
                classes,
                cfg.threshold,
                &mut dummy_vol,
                &mut dummy_slices,
            ));
            if let Some(bar) = &bar {
                bar.set_message(format!("loss {:.4}", loss_sum / n_batches as f64));
                bar.inc(1);
            }
        }
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let per_step = |t: f64| t / n_batches.max(1) as f64;
        let metrics = EpochMetrics {
            loss: per_step(loss_sum),
            pooled: conf,
            volume_dice: f64::NAN,
            tumour_slice_dice: f64::NAN,
        };
        let times = EpochTimes {
            step_s: per_step(t_step),
            wait_s: per_step(t_wait),
        };
        Ok((model, metrics, times))
    }

    /// A new best epoch: `best.bpk`, then `best-metrics.json`.
    fn save_best(&self, model: &UNet, report: &ValidationReport) -> Result<()> {
        save_checkpoint(&self.out.join("best.bpk"), |p| model.clone().save_file(p))?;
        json_write(&self.out.join("best-metrics.json"), report)
    }

    /// The end of every epoch: `last.bpk`, `optim.bpk`, `metrics.csv`, `curves.png`, and
    /// `state.json` last, each complete or not there, so `--resume` finds a consistent set.
    fn save_progress(&self, run: &Run) -> Result<()> {
        let out = self.out;
        save_checkpoint(&out.join("last.bpk"), |p| run.model.clone().save_file(p))?;
        save_checkpoint(&out.join("optim.bpk"), |p| run.optim.save(p))?;
        let csv_path = out.join("metrics.csv");
        slicewise::output::atomic_write(&csv_path, |w| {
            use std::io::Write;
            for line in &run.csv {
                writeln!(w, "{line}").map_err(|e| Error::io("write", &csv_path, e))?;
            }
            Ok(())
        })?;
        super::curves::write(&(run.csv.join("\n") + "\n"), &out.join("curves.png"))?;
        json_write(&out.join("state.json"), &run.state)
    }

    /// Overlays of the best model's validation predictions, when there is a best model.
    fn write_best_overlays(&self) -> Result<()> {
        let best_path = self.out.join("best.bpk");
        if best_path.is_file() && !self.data.val_idx.is_empty() {
            let m = load_weights(&self.cfg.model, &best_path, &self.plain)?.valid();
            let dir = self.out.join("overlays");
            super::overlay::write_overlays(
                &dir,
                &m,
                &self.plain,
                &self.data.ds,
                &self.data.val_idx,
                classes_of(&self.cfg.model),
                self.cfg.threshold,
                8,
            )?;
        }
        Ok(())
    }
}

/// Early stopping and ReduceLROnPlateau after an epoch whose validation Dice is `val_dice`;
/// returns whether it is a new best (by more than `min_delta`).
fn update_schedule(
    state: &mut TrainState,
    cfg: &TrainingConfig,
    epoch: usize,
    val_dice: f64,
) -> bool {
    if cfg.cosine {
        state.lr = cosine_lr(cfg, epoch + 1);
    }
    if val_dice > state.best_dice + cfg.min_delta {
        state.best_dice = val_dice;
        state.best_epoch = epoch;
        state.since_best = 0;
        state.since_drop = 0;
        return true;
    }
    state.since_best += 1;
    state.since_drop += 1;
    if !cfg.cosine && cfg.plateau_patience > 0 && state.since_drop >= cfg.plateau_patience {
        state.lr = (state.lr * cfg.plateau_factor).max(cfg.min_lr);
        state.since_drop = 0;
        log::info!(
            "validation Dice plateaued: learning rate now {:.2e}",
            state.lr
        );
    }
    if cfg.early_stopping > 0 && state.since_best >= cfg.early_stopping {
        state.stopped_early = true;
        log::info!(
            "early stop: no better validation Dice for {} epochs",
            state.since_best
        );
    }
    false
}

/// The cosine schedule's rate for `epoch` (1-based): `learning_rate` at epoch 1, falling
/// towards `min_lr` at epoch `epochs + 1`.
fn cosine_lr(cfg: &TrainingConfig, epoch: usize) -> f64 {
    let done = epoch.saturating_sub(1) as f64 / cfg.epochs.max(1) as f64;
    let span = cfg.learning_rate - cfg.min_lr;
    cfg.min_lr + 0.5 * span * (1.0 + (std::f64::consts::PI * done.min(1.0)).cos())
}

fn progress_bar(on: bool, len: u64, epoch: usize, epochs: usize) -> Option<indicatif::ProgressBar> {
    if !on {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("{epoch}/{epochs}"));
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_checkpoint_save_keeps_the_previous_file_and_leaves_no_temporary() {
        let dir = slicewise_tests::tmpdir();
        let path = dir.path().join("last.bpk");
        std::fs::write(&path, b"epoch 1").expect("write");
        let err = save_checkpoint(&path, |tmp| {
            assert_ne!(tmp, path);
            assert_eq!(
                tmp.parent(),
                path.parent(),
                "temporary file beside the checkpoint"
            );
            std::fs::write(tmp, b"half an ep").expect("write");
            Err(RecordError::Io("disk full".into()))
        })
        .expect_err("the save fails");
        assert_eq!(err.kind(), slicewise::error::ErrorKind::Io);
        assert!(err.to_string().contains("cannot save checkpoint"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), b"epoch 1");
        assert_eq!(names(dir.path()), ["last.bpk"]);

        save_checkpoint(&path, |tmp| std::fs::write(tmp, b"epoch 2")).expect("save");
        assert_eq!(std::fs::read(&path).expect("read"), b"epoch 2");
        assert_eq!(names(dir.path()), ["last.bpk"]);
    }

    #[test]
    fn burn_checkpoints_land_exactly_at_their_name_and_load_back() {
        let dir = slicewise_tests::tmpdir();
        let dev = libtorch_device(None);
        let cfg = UNetConfig::small(1);
        let model = cfg.init(&dev);
        let path = dir.path().join("best.bpk");
        save_checkpoint(&path, |p| model.clone().save_file(p)).expect("save");
        assert_eq!(names(dir.path()), ["best.bpk"]);
        load_weights(&cfg, &path, &dev).expect("load back");

        let missing = load_weights(&cfg, &dir.path().join("none.bpk"), &dev).expect_err("missing");
        assert_eq!(missing.kind(), slicewise::error::ErrorKind::Io);
        std::fs::write(dir.path().join("junk.bpk"), b"not a burnpack").expect("write");
        let junk = load_weights(&cfg, &dir.path().join("junk.bpk"), &dev).expect_err("junk");
        assert_eq!(junk.kind(), slicewise::error::ErrorKind::Io);
    }

    /// A config for the schedule tests (model and data unused).
    fn schedule_config() -> TrainingConfig {
        TrainingConfig::new(
            UNetConfig::small(1),
            DataConfig::new(String::new()),
            AugmentConfig::none(),
        )
    }

    /// The state a fresh run starts from.
    fn fresh_state(cfg: &TrainingConfig) -> TrainState {
        TrainState {
            lr: cfg.learning_rate,
            best_dice: f64::NEG_INFINITY,
            ..Default::default()
        }
    }

    #[test]
    fn schedule_drops_the_rate_on_a_plateau_and_stops_early() {
        let cfg = schedule_config()
            .with_plateau_patience(2)
            .with_early_stopping(3)
            .with_learning_rate(1e-3);
        let mut s = fresh_state(&cfg);
        assert!(update_schedule(&mut s, &cfg, 1, 0.5));
        assert!(!update_schedule(&mut s, &cfg, 2, 0.5));
        assert!(!update_schedule(&mut s, &cfg, 3, 0.5));
        assert_eq!((s.lr, s.since_drop, s.stopped_early), (5e-4, 0, false));
        assert!(!update_schedule(&mut s, &cfg, 4, 0.5));
        assert!(s.stopped_early);
        assert_eq!((s.best_epoch, s.best_dice), (1, 0.5));
    }

    #[test]
    fn cosine_schedule_anneals_over_the_epochs_and_ignores_plateaus() {
        let cfg = schedule_config()
            .with_cosine(true)
            .with_epochs(4)
            .with_plateau_patience(1)
            .with_min_lr(0.0)
            .with_learning_rate(1e-3);
        let mut s = fresh_state(&cfg);
        let mut rates = vec![s.lr];
        for epoch in 1..4 {
            update_schedule(&mut s, &cfg, epoch, 0.5);
            rates.push(s.lr);
        }
        let want = [
            1e-3,
            0.5e-3 * (1.0 + 0.5f64.sqrt()),
            0.5e-3,
            0.5e-3 * (1.0 - 0.5f64.sqrt()),
        ];
        for (got, want) in rates.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{rates:?}");
        }
    }
}
