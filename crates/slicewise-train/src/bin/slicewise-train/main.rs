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
//!
//! The binary parses and dispatches; the flags and their mapping onto the library's configs
//! are in [`args`], the timing of `bench` in [`bench`].

mod args;
mod bench;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use slicewise::Error;
use slicewise_train::ensemble;
use slicewise_train::evaluation::evaluate;
use slicewise_train::export::export;
use slicewise_train::inference::load_run;
use slicewise_train::{data, train};

use args::{BenchArgs, EnsembleArgs, EvalArgs, ExportArgs, TrainArgs};

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

fn run(cli: Cli) -> Result<serde_json::Value, Error> {
    match cli.cmd {
        Cmd::Train(a) => {
            let s = train(&a.training_config()?, &a.out, &a.run_options())?;
            Ok(serde_json::to_value(&s).unwrap_or_default())
        }
        Cmd::Export(a) => {
            let t = load_run(&a.run, a.weights.as_deref())?;
            let card = export(&t.model, &t.config, Some(&a.run), &a.out, &a.options()?)?;
            Ok(serde_json::to_value(&card).unwrap_or_default())
        }
        Cmd::Ensemble(a) => ensemble::write(&a.members, &a.out, &a.version),
        Cmd::Eval(a) => eval(&a),
        Cmd::Bench(a) => bench::bench(&a),
    }
}

/// `eval`: the run's best (or given) weights on its validation, test and optionally training
/// volumes, as split when it trained (`split.json`).
fn eval(a: &EvalArgs) -> Result<serde_json::Value, Error> {
    let t = load_run(&a.run, a.weights.as_deref())?;
    let split_path = a.run.join("split.json");
    let split: data::Split = serde_json::from_str(
        &std::fs::read_to_string(&split_path).map_err(|e| Error::io("read", &split_path, e))?,
    )
    .map_err(|e| Error::format(&split_path, e.to_string()))?;
    let ds = Arc::new(data::load(&t.config.data)?);
    let on = |names: &[String]| {
        evaluate(
            &t.model,
            &ds,
            &ds.indices_of(names),
            &t.config,
            &t.device,
            0,
        )
    };
    let val = on(&split.val);
    let test = (!split.test.is_empty()).then(|| on(&split.test));
    let train = a.with_train.then(|| on(&split.train));
    Ok(serde_json::json!({ "val": val, "test": test, "train": train }))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let all = ["slicewise-train", "train", "--out", "o", "--data", "d"];
        Cli::try_parse_from(all.iter().chain(args)).expect("parse")
    }

    fn config(cli: Cli) -> slicewise_train::TrainingConfig {
        match cli.cmd {
            Cmd::Train(a) => a.training_config().expect("config"),
            _ => panic!("not train"),
        }
    }

    fn json(c: &slicewise_train::TrainingConfig) -> String {
        burn::config::config_to_json(c)
    }

    #[test]
    fn no_flags_give_the_config_defaults() {
        let mut want = args::defaults();
        want.data.root = "d".into();
        assert_eq!(json(&config(parse(&[]))), json(&want));
    }

    #[test]
    fn flags_land_in_their_config_fields() {
        let c = config(parse(&[
            "--lr",
            "0.01",
            "--batch",
            "4",
            "--patience",
            "3",
            "--oversample",
            "2",
            "--workers",
            "3",
            "--strip",
            "0.25",
            "--norm",
            "zscore",
            "--kind",
            "nifti",
            "--loss",
            "focal",
            "--optimizer",
            "adamw",
            "--softmax",
            "3",
            "--channels",
            "0,2",
            "--split-seed",
            "7",
            "--data",
            "e",
        ]));
        assert_eq!(
            (c.learning_rate, c.batch_size, c.early_stopping),
            (0.01, 4, 3)
        );
        assert_eq!((c.data.foreground_oversample, c.loader_workers), (2, 3));
        assert_eq!((c.data.strip_probability, c.data.split_seed), (0.25, 7));
        assert_eq!(c.data.normalization.to_string(), "zscore");
        assert_eq!(c.data.kind, slicewise_train::DataKind::Nifti);
        assert_eq!(c.loss, slicewise_train::LossKind::Focal);
        assert_eq!(c.optimizer, slicewise_train::OptimizerKind::AdamW);
        assert_eq!((c.model.out_channels, c.data.classes), (3, 3));
        assert_eq!(
            (c.model.in_channels, c.data.channels.clone()),
            (2, vec![0, 2])
        );
        assert_eq!(
            (c.data.root.as_str(), c.data.extra_roots.clone()),
            ("d", vec!["e".to_string()])
        );
    }
}
