//! The training loop: epochs of augmented batches and Adam/AdamW steps, validation after each
//! one, the schedule ([`super::schedule`]), checkpoints ([`super::checkpoint`]), the per-epoch
//! CSV and overlays of the best model's validation predictions when the run ends.
//!
//! Artefacts in the output folder:
//! `config.json` (the [`TrainingConfig`]), `split.json`, `metrics.csv`, `state.json`,
//! `best.bpk` (model weights, burnpack), `last.bpk`, `optim.bpk`, `best-metrics.json`,
//! `curves.png` (loss and Dice per epoch, see [`super::curves`]), `overlays/*.png` (validation
//! predictions of the best model, written when the run ends).
//!
//! Every file is written to a temporary file in the folder and renamed into place once complete,
//! and `state.json` is written last of an epoch's files: a crash leaves each file whole (the new
//! one or the previous one), so `--resume` always finds checkpoints it can load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::checkpoint::{
    load_optimizer, load_weights, read_json, save_checkpoint, weights_path, write_json,
};
use super::config::{check_config, load_config, save_config, OptimizerKind, TrainingConfig};
use super::data::{self, Dataset, Split};
use super::evaluation::{classes_of, evaluate, score, ValidationReport};
use super::loader::EpochLoader;
use super::loss::{batch_tensors, deep_loss};
use super::metrics::{csv_row, Confusion, EpochMetrics, CSV_HEADER};
use super::model::{libtorch_device, UNet};
use super::schedule::{update_schedule, TrainState};
use slicewise::error::{Error, Result};

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
    save_config(&cfg, &cfg_path)?;
    Ok(cfg)
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
        read_json(&split_path)?
    } else {
        let s = data::split(&ds.volumes, &ds.strata, &cfg.data)?;
        write_json(&split_path, &s)?;
        s
    };
    let train_idx = ds.oversampled(&ds.indices_of(&split.train), cfg.data.foreground_oversample);
    let val_idx = ds.indices_of(&split.val);
    if train_idx.is_empty() {
        return Err(Error::InvalidArgument("no training slices".into()));
    }
    if val_idx.is_empty() && !cfg.cosine {
        return Err(Error::InvalidArgument(
            "no validation volumes (a cross-validation fold): nothing can pace ReduceLROnPlateau or \
             early stopping, so the run needs a fixed schedule (--cosine)"
                .into(),
        ));
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
            read_json::<TrainState>(&out.join("state.json"))?
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
            optim = load_optimizer(optim, &p)?;
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
            read_json(&out.join("best-metrics.json")).ok()
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
        let validated = !self.data.val_idx.is_empty();
        run.csv.push(csv_row(
            epoch,
            run.state.lr,
            &train_m,
            validated.then_some(&report.metrics),
            te.elapsed().as_secs_f64(),
        ));
        if !validated {
            log::info!(
                "epoch {epoch}: train loss {:.4} dice {:.4} | no validation (the last epoch is the model) | lr {:.2e} | {:.1} s/step",
                train_m.loss,
                train_m.pooled.dice(),
                run.state.lr,
                times.step_s
            );
        } else {
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
        }
        run.state.epochs_done = epoch;
        let val = validated.then_some(val_dice);
        if update_schedule(&mut run.state, &self.cfg, epoch, val) {
            // Without validation there are no best-epoch scores to keep (an empty set's would
            // read as perfect), so `best-metrics.json` and the exported card say null.
            run.best = validated.then_some(report);
            self.save_best(&run.model, run.best.as_ref())?;
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
            let (x, y) = batch_tensors(&b, ds.input_channels(), b.size, classes, &self.dev);
            let outs = model.forward_deep(x);
            let logits = outs[0].clone();
            let l = deep_loss(cfg.loss, cfg.focal_gamma, outs, y);
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

    /// A new best epoch: `best.bpk`, then `best-metrics.json` (null without validation).
    fn save_best(&self, model: &UNet, report: Option<&ValidationReport>) -> Result<()> {
        save_checkpoint(&self.out.join("best.bpk"), |p| model.clone().save_file(p))?;
        write_json(&self.out.join("best-metrics.json"), &report)
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
        write_json(&out.join("state.json"), &run.state)
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
