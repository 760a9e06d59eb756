//! The flags of each subcommand and how they become the library's configs.
//!
//! Every default a flag shows is read from the config it sets ([`defaults`],
//! [`ExportOptions::default`], [`RunOptions::default`]), so a default lives in one place: the
//! config type's own. The flag names are the command line's (`--lr`, `--batch`, `--patience`,
//! …), shorter than the config fields they set.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use slicewise::infer::{Normalization, TtaFlips};
use slicewise::Error;
use slicewise_train::augment::AugmentConfig;
use slicewise_train::export::ExportOptions;
use slicewise_train::model::DEFAULT_PRESET;
use slicewise_train::{
    DataConfig, DataKind, LossKind, OptimizerKind, OutputActivation, RunOptions, TrainingConfig,
    UNetConfig,
};

/// A run's config with every default: what `train` builds from no flags but `--data`.
pub fn defaults() -> TrainingConfig {
    TrainingConfig::new(
        UNetConfig::small(1),
        DataConfig::new(String::new()),
        AugmentConfig::new(),
    )
}

// `--kind`: DataKind.
#[derive(Clone, Copy, ValueEnum)]
pub enum KindArg {
    Pairs,
    Nifti,
    Coco,
}

// `--augment`: a preset of AugmentConfig.
#[derive(Clone, Copy, ValueEnum)]
pub enum AugmentArg {
    Default,
    Robust,
    None,
}

// `--loss`: LossKind.
#[derive(Clone, Copy, ValueEnum)]
pub enum LossArg {
    Bce,
    Dice,
    BceDice,
    Focal,
    BceSliceDice,
    FocalDice,
}

// `--optimizer`: OptimizerKind.
#[derive(Clone, Copy, ValueEnum)]
pub enum OptimArg {
    Adam,
    Adamw,
}

// Both directions are exhaustive matches, so a variant added to a config enum cannot be left
// without its flag value, nor a config default without the flag value that shows it.
impl From<KindArg> for DataKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Pairs => DataKind::Pairs,
            KindArg::Nifti => DataKind::Nifti,
            KindArg::Coco => DataKind::Coco,
        }
    }
}

impl From<DataKind> for KindArg {
    fn from(k: DataKind) -> Self {
        match k {
            DataKind::Pairs => KindArg::Pairs,
            DataKind::Nifti => KindArg::Nifti,
            DataKind::Coco => KindArg::Coco,
        }
    }
}

impl From<LossArg> for LossKind {
    fn from(l: LossArg) -> Self {
        match l {
            LossArg::Bce => LossKind::Bce,
            LossArg::Dice => LossKind::Dice,
            LossArg::BceDice => LossKind::BceDice,
            LossArg::Focal => LossKind::Focal,
            LossArg::BceSliceDice => LossKind::BceSliceDice,
            LossArg::FocalDice => LossKind::FocalDice,
        }
    }
}

impl From<LossKind> for LossArg {
    fn from(l: LossKind) -> Self {
        match l {
            LossKind::Bce => LossArg::Bce,
            LossKind::Dice => LossArg::Dice,
            LossKind::BceDice => LossArg::BceDice,
            LossKind::Focal => LossArg::Focal,
            LossKind::BceSliceDice => LossArg::BceSliceDice,
            LossKind::FocalDice => LossArg::FocalDice,
        }
    }
}

impl From<OptimArg> for OptimizerKind {
    fn from(o: OptimArg) -> Self {
        match o {
            OptimArg::Adam => OptimizerKind::Adam,
            OptimArg::Adamw => OptimizerKind::AdamW,
        }
    }
}

impl From<OptimizerKind> for OptimArg {
    fn from(o: OptimizerKind) -> Self {
        match o {
            OptimizerKind::Adam => OptimArg::Adam,
            OptimizerKind::AdamW => OptimArg::Adamw,
        }
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// Output folder (checkpoints, config.json, metrics.csv, split.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Resume the run in --out (its saved config wins over the other flags).
    #[arg(long)]
    pub resume: bool,
    /// Start from a saved config.json instead of the flags below.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data folder; repeat for more folders of the same layout (each is split on its own, so
    /// train, validation and test all hold volumes of every folder).
    #[arg(long, required_unless_present_any = ["resume", "config"])]
    data: Vec<PathBuf>,
    /// Data layout.
    #[arg(long, value_enum, default_value_t = defaults().data.kind.into())]
    kind: KindArg,
    /// Source channels, comma-separated (LGG: 0 pre-contrast, 1 FLAIR, 2 post-contrast).
    #[arg(long, default_values_t = defaults().data.channels, value_delimiter = ',')]
    channels: Vec<usize>,
    /// Input size (square; a multiple of 2^depth).
    #[arg(long, default_value_t = defaults().data.size)]
    size: usize,
    /// Normalisation: none, minmax-slice, minmax-volume, zscore, percentile:LO,HI,
    /// percentile-fg:LO,HI, percentile-tissue:LO,HI,MEDIAN, window:C,W.
    #[arg(long, default_value_t = defaults().data.normalization.to_string())]
    norm: String,
    /// Crop each volume's slices to its foreground box (normalised values above T) before
    /// resizing; the exported contract carries the step, so the engine crops the same way.
    #[arg(long, value_name = "T")]
    crop_foreground: Option<f32>,
    /// Share of training samples drawn from skull-stripped copies of the volumes (0–1).
    #[arg(long, default_value_t = defaults().data.strip_probability)]
    strip: f64,
    /// NIfTI slicing axis (0 x, 1 y, 2 z).
    #[arg(long, default_value_t = defaults().data.axis)]
    axis: usize,
    /// Model preset: small (16 filters) or unet (64→1024).
    #[arg(long, default_value = DEFAULT_PRESET)]
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
    #[arg(long, default_value_t = defaults().model.dropout)]
    dropout: f64,
    /// Nearest up-sampling + conv instead of transposed convolutions.
    #[arg(long)]
    upsample: bool,
    /// Deep supervision: N extra heads on the decoder at 1/2, 1/4, … resolution whose losses
    /// join the main one in training (the exported model has only the main head).
    #[arg(long, value_name = "N")]
    deep_supervision: Option<usize>,
    /// Softmax over K classes (background included) instead of a sigmoid foreground.
    #[arg(long)]
    softmax: Option<usize>,
    /// Loss.
    #[arg(long, value_enum, default_value_t = defaults().loss.into())]
    loss: LossArg,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = defaults().optimizer.into())]
    optimizer: OptimArg,
    /// Learning rate.
    #[arg(long, default_value_t = defaults().learning_rate)]
    lr: f64,
    /// Weight decay.
    #[arg(long, default_value_t = defaults().weight_decay)]
    weight_decay: f64,
    /// Batch size.
    #[arg(long, default_value_t = defaults().batch_size)]
    batch: usize,
    /// Epochs at most.
    #[arg(long, default_value_t = defaults().epochs)]
    epochs: usize,
    /// Seed (weights, shuffling, augmentation).
    #[arg(long, default_value_t = defaults().seed)]
    seed: u64,
    /// Seed of the volume split.
    #[arg(long, default_value_t = defaults().data.split_seed)]
    split_seed: u64,
    /// Early-stopping patience in epochs (0: off).
    #[arg(long, default_value_t = defaults().early_stopping)]
    patience: usize,
    /// Cosine annealing of the learning rate over --epochs (replaces ReduceLROnPlateau).
    #[arg(long)]
    cosine: bool,
    /// ReduceLROnPlateau patience (0: off).
    #[arg(long, default_value_t = defaults().plateau_patience)]
    plateau_patience: usize,
    /// Validation fraction of the volumes.
    #[arg(long, default_value_t = defaults().data.val_fraction)]
    val_fraction: f64,
    /// Test fraction of the volumes.
    #[arg(long, default_value_t = defaults().data.test_fraction)]
    test_fraction: f64,
    /// Cross-validation: deal the volumes of each data folder over K folds (by patient, after a
    /// seeded shuffle) and hold out fold --fold as the test part; nothing is held out for
    /// validation, so the run needs --cosine and its last epoch is the model. Overrides the
    /// fractions.
    #[arg(long, value_name = "K")]
    folds: Option<usize>,
    /// The held-out fold (0-based) with --folds.
    #[arg(long, value_name = "I")]
    fold: Option<usize>,
    /// 2.5D context: the model also sees the K slices on each side of a slice (edges
    /// replicated) as extra input channels; the exported contract declares it.
    #[arg(long, value_name = "K")]
    context: Option<usize>,
    /// Train on random P×P crops of the --size slices (a third centred on a lesion), so the model
    /// works at --size for the step cost of P; it runs on whole slices at inference.
    #[arg(long, value_name = "P")]
    patch: Option<usize>,
    /// With --patch: the share of crops centred on a lesion pixel (default 0.33; 0: every crop
    /// anywhere in the slice).
    #[arg(long, value_name = "F")]
    patch_foreground: Option<f64>,
    /// Explicit validation volumes (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    val_volumes: Option<Vec<String>>,
    /// Use at most this many volumes (0: all).
    #[arg(long, default_value_t = defaults().data.max_volumes)]
    max_volumes: usize,
    /// Repeat foreground slices this many times per epoch.
    #[arg(long, default_value_t = defaults().data.foreground_oversample)]
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
    #[arg(long, default_value_t = defaults().loader_workers)]
    workers: usize,
    /// Fine-tune from these weights (.bpk or a run folder).
    #[arg(long)]
    init_from: Option<String>,
    /// Model name written into the exported contract.
    #[arg(long, default_value_t = defaults().name)]
    name: String,
    /// LibTorch CUDA device index.
    #[arg(long)]
    cuda: Option<usize>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Stop after this many epochs in this call (for testing resume).
    #[arg(long, default_value_t = RunOptions::default().max_epochs_this_call, hide = true)]
    max_epochs_this_call: usize,
}

impl TrainArgs {
    /// The run's config: a saved one (`--config`, or the run's own when only resuming), else
    /// the flags over the defaults.
    pub fn training_config(&self) -> Result<TrainingConfig, Error> {
        if let Some(p) = &self.config {
            return slicewise_train::config::load_config(p);
        }
        if self.resume && self.data.is_empty() {
            // `--resume` alone: the run's own config.json (the trainer reads it again on resume).
            return slicewise_train::config::load_config(&self.out.join("config.json"));
        }
        let (model, classes) = self.model()?;
        Ok(
            TrainingConfig::new(model, self.data(classes)?, self.augment()?)
                .with_name(self.name.clone())
                .with_loss(self.loss.into())
                .with_optimizer(self.optimizer.into())
                .with_learning_rate(self.lr)
                .with_weight_decay(self.weight_decay)
                .with_batch_size(self.batch)
                .with_epochs(self.epochs)
                .with_seed(self.seed)
                .with_early_stopping(self.patience)
                .with_plateau_patience(self.plateau_patience)
                .with_cosine(self.cosine)
                .with_loader_workers(self.workers)
                .with_init_from(self.init_from.clone()),
        )
    }

    /// What `train` is told besides the config.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            resume: self.resume,
            cuda: self.cuda,
            progress: !self.quiet,
            max_epochs_this_call: self.max_epochs_this_call,
        }
    }

    /// The network (the preset with the overrides) and the number of classes it scores.
    fn model(&self) -> Result<(UNetConfig, usize), Error> {
        // Each source channel comes as its 2k+1 context slices.
        let inputs = self.channels.len() * (2 * self.context.unwrap_or(0) + 1);
        let mut m = UNetConfig::preset(&self.preset, inputs)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown preset {}", self.preset)))?;
        if let Some(f) = self.base_filters {
            m.base_filters = f;
        }
        if let Some(d) = self.depth {
            m.depth = d;
        }
        m.batch_norm = !self.no_batchnorm;
        m.dropout = self.dropout;
        m.transposed = !self.upsample;
        m.deep_supervision = self.deep_supervision;
        let classes = match self.softmax {
            Some(k) => {
                m.output = OutputActivation::Softmax;
                m.out_channels = k;
                k
            }
            None => defaults().data.classes,
        };
        Ok((m, classes))
    }

    /// The data folders and their preprocessing and split.
    fn data(&self, classes: usize) -> Result<DataConfig, Error> {
        let (root, extra) = self
            .data
            .split_first()
            .ok_or_else(|| Error::InvalidArgument("--data is required".into()))?;
        if !(0.0..=1.0).contains(&self.strip) {
            return Err(Error::InvalidArgument(format!(
                "--strip {} is not a share between 0 and 1",
                self.strip
            )));
        }
        let text = |p: &PathBuf| p.to_string_lossy().into_owned();
        Ok(DataConfig::new(text(root))
            .with_extra_roots(extra.iter().map(text).collect())
            .with_crop_foreground(self.crop_foreground)
            .with_strip_probability(self.strip)
            .with_kind(self.kind.into())
            .with_channels(self.channels.clone())
            .with_size(self.size)
            .with_normalization(parse_norm(&self.norm)?)
            .with_axis(self.axis)
            .with_classes(classes)
            .with_max_volumes(self.max_volumes)
            .with_val_fraction(self.val_fraction)
            .with_test_fraction(self.test_fraction)
            .with_val_volumes(self.val_volumes.clone())
            .with_split_seed(self.split_seed)
            .with_folds(self.folds)
            .with_fold(self.fold)
            .with_context(self.context)
            .with_patch(self.patch)
            .with_patch_foreground(self.patch_foreground)
            .with_foreground_oversample(self.oversample))
    }

    /// The augmentation preset with the flip and dark-core overrides.
    fn augment(&self) -> Result<AugmentConfig, Error> {
        let augment = match (self.no_augment, self.augment) {
            (true, _) | (false, AugmentArg::None) => AugmentConfig::none(),
            (false, AugmentArg::Default) => AugmentConfig::new(),
            (false, AugmentArg::Robust) => AugmentConfig::robust(),
        };
        let augment = match self.flip_v {
            Some(p) => augment.with_p_flip_v(probability("--flip-v", p)?),
            None => augment,
        };
        Ok(match self.dark_core {
            Some(p) => augment.with_p_dark_core(Some(probability("--dark-core", p)?)),
            None => augment,
        })
    }
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

#[derive(Args)]
pub struct ExportArgs {
    /// Run folder (config.json, best.bpk).
    #[arg(long)]
    pub run: PathBuf,
    /// Weights other than the run's best.bpk.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Output ONNX file (the card goes next to it as <stem>.card.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Keep BatchNormalization nodes instead of folding them into the convolutions.
    #[arg(long)]
    no_fold: bool,
    /// Model version for the contract.
    #[arg(long, default_value_t = ExportOptions::default().version)]
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
    #[arg(long, default_value = ExportOptions::default().tta_flips.as_str(), value_parser = str::parse::<TtaFlips>)]
    tta_flips: TtaFlips,
    /// A JSON file of the labels' coded meanings for DICOM SEG (an array of {"value",
    /// "category", "property_type", optional "property_type_modifier", "anatomic_region"}; each
    /// code {"value","scheme","meaning"}, SNOMED CT as DICOM PS3.16 lists them).
    #[arg(long)]
    label_codes: Option<PathBuf>,
}

impl ExportArgs {
    /// The export options the flags ask for.
    pub fn options(&self) -> Result<ExportOptions, Error> {
        let mut opts = ExportOptions {
            fold_batchnorm: !self.no_fold,
            version: self.version.clone(),
            training_data: self.training_data.clone(),
            threshold: self.threshold,
            tta_flips: self.tta_flips,
            ..Default::default()
        };
        if !self.labels.is_empty() {
            opts.labels = Some(label_infos(&self.labels)?);
        }
        if let Some(path) = &self.label_codes {
            opts.label_codes = slicewise_train::export::read_label_codes(path)?;
        }
        Ok(opts)
    }
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

#[derive(Args)]
pub struct EnsembleArgs {
    /// Output ONNX file (the card goes next to it as <stem>.card.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Model version for the ensemble's contract.
    #[arg(long)]
    pub version: String,
    /// The exported members (two or more, sharing their contract); the first's contract is kept.
    #[arg(required = true, num_args = 2..)]
    pub members: Vec<PathBuf>,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// Weights other than the run's best.bpk.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Also evaluate the training volumes.
    #[arg(long)]
    pub with_train: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Preset.
    #[arg(long, default_value = DEFAULT_PRESET)]
    pub preset: String,
    /// Input channels.
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Input size.
    #[arg(long, default_value_t = defaults().data.size)]
    pub size: usize,
    /// Batch size.
    #[arg(long, default_value_t = defaults().batch_size)]
    pub batch: usize,
    /// Timed steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Also time the batch loader (default augmentation) over one epoch of this pairs folder.
    #[arg(long)]
    pub loader_data: Option<PathBuf>,
    /// Loader worker threads for the loader timing.
    #[arg(long, default_value_t = defaults().loader_workers)]
    pub workers: usize,
    /// Without BatchNorm (Burn composes it from elementwise ops; libtorch has one fused kernel).
    #[arg(long)]
    pub no_batchnorm: bool,
}
