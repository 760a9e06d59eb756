//! ONNX export of a trained [`UNet`] (hand-written protobuf; Burn has no ONNX writer that handles
//! ConvTranspose) plus the model card.
//!
//! The graph is opset 17: Conv, BatchNormalization (or folded into the convolutions), Relu,
//! MaxPool, ConvTranspose or Resize (nearest, asymmetric, floor = Burn's nearest ×2), Concat,
//! Sigmoid / Softmax(axis 1). Input `input` `[N, C, H, W]` and output `output` `[N, K, H, W]` have
//! symbolic N, H and W (H and W must be multiples of `2^depth`). The engine's contract travels in
//! `metadata_props` as the model-package keys of `slicewise::infer::contract` (format 1). The card is
//! written as `<stem>.card.json`, a name the engine does not take for a sidecar override.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::Tensor;
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::TrainingConfig;
use super::model::{ConvBlock, OutputActivation, UNet, UNetConfig};
use super::onnx::*;
use slicewise::error::{Error, Result};
use slicewise::infer::contract::check_label_codes;
use slicewise::infer::{ModelContract, OutputKind, TtaFlips};
use slicewise::mask::coding::LabelCodes;
use slicewise::mask::LabelInfo;

/// ONNX opset written.
pub const OPSET: i64 = 17;
/// ONNX IR version written.
pub const IR_VERSION: i64 = 8;

/// How to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Fold BatchNorm into the preceding convolutions (else BatchNormalization nodes).
    pub fold_batchnorm: bool,
    /// Model version string for the contract.
    pub version: String,
    /// Label names and colours (default: "foreground" red, or "class k").
    pub labels: Option<Vec<LabelInfo>>,
    /// Free text about the training data (default: derived from the config).
    pub training_data: Option<String>,
    /// Sigmoid threshold for the contract (default: the training config's).
    pub threshold: Option<f32>,
    /// The flips test-time augmentation averages for this model (chosen on validation).
    pub tta_flips: TtaFlips,
    /// Each label's coded meaning (`slicewise.label_codes`; see [`read_label_codes`]); empty:
    /// none, and a DICOM SEG codes every label Morphologically Abnormal Structure / Neoplasm.
    pub label_codes: Vec<LabelCodes>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            fold_batchnorm: true,
            version: "1".into(),
            labels: None,
            training_data: None,
            threshold: None,
            tta_flips: TtaFlips::H,
            label_codes: Vec::new(),
        }
    }
}

/// Reads a JSON file of label codes: an array of `{"value":1,"category":CODE,
/// "property_type":CODE}` with optional `"property_type_modifier"` and `"anatomic_region"`, each
/// CODE `{"value":"5366008","scheme":"SCT","meaning":"Hippocampus"}` (what the card's
/// `slicewise.label_codes` holds). Whether they fit the labels is checked at export.
pub fn read_label_codes(path: &Path) -> Result<Vec<LabelCodes>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::format(
            path,
            format!("not a JSON array of label codes ({{\"value\",\"category\",\"property_type\",...}}): {e}"),
        )
    })
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    count: usize,
    fold: bool,
}

impl Builder {
    fn init(&mut self, name: String, dims: &[usize], data: &[f32]) -> String {
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: le_bytes(data),
            doc_string: String::new(),
        });
        name
    }

    fn node(&mut self, op: &str, inputs: Vec<String>, attrs: Vec<AttributeProto>) -> String {
        self.count += 1;
        let out = format!("{}_{}", op.to_lowercase(), self.count);
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![out.clone()],
            name: format!("{op}_{}", self.count),
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
        out
    }

    fn conv(
        &mut self,
        x: String,
        name: &str,
        conv: &Conv2d,
        bn: Option<&BatchNorm>,
    ) -> Result<String> {
        let w_t = conv.weight.val();
        let dims = w_t.dims();
        let mut w = values(w_t);
        let cout = dims[0];
        let mut b = match &conv.bias {
            Some(b) => values(b.val()),
            None => vec![0.0; cout],
        };
        let pads = match &conv.padding {
            PaddingConfig2d::Explicit(t, l, bo, r) => [*t, *l, *bo, *r],
            PaddingConfig2d::Valid => [0; 4],
            PaddingConfig2d::Same => {
                return Err(Error::InvalidArgument(
                    "Same padding is not exported".into(),
                ))
            }
        };
        let mut bn_after = None;
        if let Some(bn) = bn {
            let gamma = values(bn.gamma.val());
            let beta = values(bn.beta.val());
            let mean = values(bn.running_mean.value());
            let var = values(bn.running_var.value());
            if self.fold {
                let per = w.len() / cout.max(1);
                for o in 0..cout {
                    let s = gamma[o] / (var[o] + bn.epsilon as f32).sqrt();
                    for v in &mut w[o * per..(o + 1) * per] {
                        *v *= s;
                    }
                    b[o] = (b[o] - mean[o]) * s + beta[o];
                }
            } else {
                bn_after = Some((gamma, beta, mean, var, bn.epsilon));
            }
        }
        let wn = self.init(format!("{name}.weight"), &dims, &w);
        let mut inputs = vec![x, wn];
        if conv.bias.is_some() || (bn.is_some() && self.fold) {
            inputs.push(self.init(format!("{name}.bias"), &[cout], &b));
        }
        let mut y = self.node(
            "Conv",
            inputs,
            vec![
                ints("kernel_shape", &[dims[2] as i64, dims[3] as i64]),
                ints("strides", &conv.stride.map(|s| s as i64)),
                ints("dilations", &conv.dilation.map(|s| s as i64)),
                ints("pads", &pads.map(|p| p as i64)),
                int("group", conv.groups as i64),
            ],
        );
        if let Some((gamma, beta, mean, var, eps)) = bn_after {
            let n = [cout];
            let inputs = vec![
                y,
                self.init(format!("{name}.bn.scale"), &n, &gamma),
                self.init(format!("{name}.bn.bias"), &n, &beta),
                self.init(format!("{name}.bn.mean"), &n, &mean),
                self.init(format!("{name}.bn.var"), &n, &var),
            ];
            y = self.node(
                "BatchNormalization",
                inputs,
                vec![float("epsilon", eps as f32)],
            );
        }
        Ok(y)
    }

    fn block(&mut self, x: String, name: &str, b: &ConvBlock) -> Result<String> {
        let y = self.conv(x, &format!("{name}.conv1"), &b.conv1, b.bn1.as_ref())?;
        let y = self.node("Relu", vec![y], vec![]);
        let y = self.conv(y, &format!("{name}.conv2"), &b.conv2, b.bn2.as_ref())?;
        Ok(self.node("Relu", vec![y], vec![]))
    }

    fn tconv(&mut self, x: String, name: &str, t: &ConvTranspose2d) -> String {
        let w_t = t.weight.val();
        let dims = w_t.dims();
        let w = values(w_t);
        let mut inputs = vec![x, self.init(format!("{name}.weight"), &dims, &w)];
        if let Some(b) = &t.bias {
            let bv = values(b.val());
            inputs.push(self.init(format!("{name}.bias"), &[bv.len()], &bv));
        }
        let p = t.padding.map(|p| p as i64);
        self.node(
            "ConvTranspose",
            inputs,
            vec![
                ints("kernel_shape", &[dims[2] as i64, dims[3] as i64]),
                ints("strides", &t.stride.map(|s| s as i64)),
                ints("dilations", &t.dilation.map(|s| s as i64)),
                ints("pads", &[p[0], p[1], p[0], p[1]]),
                ints("output_padding", &t.padding_out.map(|s| s as i64)),
                int("group", t.groups as i64),
            ],
        )
    }
}

/// Builds the ONNX graph of `model` (eval mode: BatchNorm running statistics, no dropout).
pub fn graph(model: &UNet, cfg: &UNetConfig, fold_batchnorm: bool) -> Result<GraphProto> {
    let mut g = Builder {
        nodes: Vec::new(),
        inits: Vec::new(),
        count: 0,
        fold: fold_batchnorm,
    };
    let mut x = "input".to_string();
    let mut skips = Vec::new();
    for (i, b) in model.down.iter().enumerate() {
        let y = g.block(x, &format!("down{i}"), b)?;
        let k = model.pool.kernel_size.map(|v| v as i64);
        x = g.node(
            "MaxPool",
            vec![y.clone()],
            vec![
                ints("kernel_shape", &k),
                ints("strides", &model.pool.stride.map(|v| v as i64)),
                ints("pads", &[0, 0, 0, 0]),
            ],
        );
        skips.push(y);
    }
    x = g.block(x, "bottleneck", &model.bottleneck)?;
    for (i, up) in model.up.iter().enumerate() {
        let name = format!("up{i}");
        x = match (&up.tconv, &up.upconv) {
            (Some(t), _) => g.tconv(x, &format!("{name}.tconv"), t),
            (None, Some(c)) => {
                let scales = g.init(format!("{name}.scales"), &[4], &[1.0, 1.0, 2.0, 2.0]);
                let r = g.node(
                    "Resize",
                    vec![x, String::new(), scales],
                    vec![
                        string("mode", "nearest"),
                        string("coordinate_transformation_mode", "asymmetric"),
                        string("nearest_mode", "floor"),
                    ],
                );
                g.conv(r, &format!("{name}.upconv"), c, None)?
            }
            _ => {
                return Err(Error::InvalidArgument(
                    "up block without up-sampling".into(),
                ))
            }
        };
        let skip = skips
            .pop()
            .ok_or_else(|| Error::InvalidArgument("more up than down blocks".into()))?;
        let cat = g.node("Concat", vec![skip, x], vec![int("axis", 1)]);
        x = g.block(cat, &format!("{name}.block"), &up.block)?;
    }
    let logits = g.conv(x, "head", &model.head, None)?;
    let out = match cfg.output {
        OutputActivation::Sigmoid => g.node("Sigmoid", vec![logits], vec![]),
        OutputActivation::Softmax => g.node("Softmax", vec![logits], vec![int("axis", 1)]),
    };
    // The last node writes the graph output directly.
    if let Some(last) = g.nodes.last_mut() {
        last.output = vec!["output".into()];
    }
    let _ = out;
    let sym = |c: usize| [Err("N"), Ok(c as i64), Err("H"), Err("W")];
    Ok(GraphProto {
        node: g.nodes,
        name: "slicewise_unet".into(),
        initializer: g.inits,
        doc_string: String::new(),
        input: vec![float_value_info("input", &sym(cfg.in_channels))],
        output: vec![float_value_info("output", &sym(cfg.out_channels))],
        value_info: Vec::new(),
    })
}

/// The colour of label `value` when none is given: red for the first (a binary model's
/// foreground), then a fixed scatter of hues.
pub fn default_color(value: u8) -> [u8; 3] {
    if value == 1 {
        return [255, 64, 64];
    }
    let k = usize::from(value);
    [
        ((k * 97) % 256) as u8,
        ((k * 181) % 256) as u8,
        ((k * 59) % 256) as u8,
    ]
}

/// The engine contract of a model trained with `tc`.
pub fn contract(tc: &TrainingConfig, opts: &ExportOptions) -> Result<ModelContract> {
    if tc.data.grayscale {
        return Err(Error::InvalidArgument(
            "a model trained on grey-averaged channels cannot state its source channels; train on one channel".into(),
        ));
    }
    let expected = match tc.model.output {
        OutputActivation::Sigmoid => 1,
        OutputActivation::Softmax => tc.model.out_channels.saturating_sub(1),
    };
    let labels = match &opts.labels {
        Some(l) if l.len() != expected => {
            return Err(Error::InvalidArgument(format!(
                "{} label names given, but the model has {expected} foreground label(s)",
                l.len()
            )))
        }
        Some(l) => l.clone(),
        None if tc.model.output == OutputActivation::Sigmoid => vec![LabelInfo {
            value: 1,
            name: "foreground".into(),
            color: default_color(1),
        }],
        None => (1..=expected.min(255))
            .map(|k| LabelInfo {
                value: k as u8,
                name: format!("class {k}"),
                color: default_color(k as u8),
            })
            .collect(),
    };
    check_label_codes(&opts.label_codes, &labels).map_err(Error::InvalidArgument)?;
    Ok(ModelContract {
        name: tc.name.clone(),
        version: opts.version.clone(),
        input_name: "input".into(),
        output_name: "output".into(),
        height: tc.data.size,
        width: tc.data.size,
        source_channels: tc.data.channels.clone(),
        normalization: tc.data.normalization.clone(),
        keep_aspect: false,
        crop_foreground: tc.data.crop_foreground,
        context_slices: tc.data.context_slices(),
        tta_flips: opts.tta_flips,
        output: match tc.model.output {
            OutputActivation::Sigmoid => OutputKind::Sigmoid,
            OutputActivation::Softmax => OutputKind::Softmax,
        },
        threshold: opts.threshold.unwrap_or(tc.threshold),
        labels,
        training_data: Some(
            opts.training_data
                .clone()
                .unwrap_or_else(|| format!("{:?} data from {}", tc.data.kind, data_roots(tc))),
        ),
        label_codes: opts.label_codes.clone(),
        tiled: None,
        channel_names: Vec::new(),
        provenance: None,
        // The series a model is for are the deployer's call, set on the exported file with
        // scripts/set-model-key series_selection.
        series_selection: None,
    })
}

/// The training data folders, comma-separated.
fn data_roots(tc: &TrainingConfig) -> String {
    std::iter::once(&tc.data.root)
        .chain(&tc.data.extra_roots)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

/// `slicewise.*` metadata entries of a contract (model package format 1, as the engine reads it):
/// the engine's writer ([`ModelContract::to_metadata`]), wrapped into ONNX entries.
pub fn metadata(c: &ModelContract) -> Vec<StringStringEntryProto> {
    c.to_metadata()
        .into_iter()
        .map(|(key, value)| StringStringEntryProto { key, value })
        .collect()
}

/// The whole ONNX model as bytes.
pub fn model_bytes(model: &UNet, tc: &TrainingConfig, opts: &ExportOptions) -> Result<Vec<u8>> {
    let c = contract(tc, opts)?;
    let g = graph(model, &tc.model, opts.fold_batchnorm)?;
    let m = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "slicewise-train".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: format!("U-Net {:?}", tc.model),
        graph: Some(g),
        metadata_props: metadata(&c),
    };
    Ok(m.encode_to_vec())
}

/// The model card written next to `model.onnx`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// The contract (as in the ONNX metadata).
    pub contract: ModelContract,
    /// Network hyper-parameters.
    pub architecture: serde_json::Value,
    /// Trainable parameters.
    pub parameters: usize,
    /// Data and preprocessing.
    pub data: serde_json::Value,
    /// Volumes per split.
    pub split: serde_json::Value,
    /// Best validation metrics (from the run's `best-metrics.json`).
    pub metrics: serde_json::Value,
    /// Training settings (loss, optimiser, epochs, augmentation, seed).
    pub training: serde_json::Value,
    /// ONNX opset.
    pub opset: i64,
    /// BatchNorm folded into the convolutions.
    pub batchnorm_folded: bool,
    /// SHA-256 of the ONNX file.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: usize,
}

fn read_json(path: &Path) -> serde_json::Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Exports `model` to `onnx_path` and its card to `<onnx stem>.card.json`, reading the split and
/// metrics from `run_dir` when given. Returns the card.
pub fn export(
    model: &UNet,
    tc: &TrainingConfig,
    run_dir: Option<&Path>,
    onnx_path: &Path,
    opts: &ExportOptions,
) -> Result<ModelCard> {
    let bytes = model_bytes(model, tc, opts)?;
    write_file(onnx_path, &bytes)?;
    let to_val = |v: &dyn erased::ToJson| v.to_json();
    let training = serde_json::json!({
        "loss": format!("{:?}", tc.loss),
        "optimizer": format!("{:?}", tc.optimizer),
        "learning_rate": tc.learning_rate,
        "lr_schedule": if tc.cosine { "cosine" } else { "plateau" },
        "weight_decay": tc.weight_decay,
        "batch_size": tc.batch_size,
        "epochs": tc.epochs,
        "seed": tc.seed,
        "early_stopping": tc.early_stopping,
        "augment": to_val(&tc.augment),
        "init_from": tc.init_from,
    });
    let card = ModelCard {
        contract: contract(tc, opts)?,
        architecture: to_val(&tc.model),
        parameters: model.num_params(),
        data: to_val(&tc.data),
        split: run_dir.map_or(serde_json::Value::Null, |d| {
            read_json(&d.join("split.json"))
        }),
        metrics: run_dir.map_or(serde_json::Value::Null, |d| {
            read_json(&d.join("best-metrics.json"))
        }),
        training,
        opset: OPSET,
        batchnorm_folded: opts.fold_batchnorm,
        sha256: sha256_hex(&bytes),
        bytes: bytes.len(),
    };
    let card_path = card_path(onnx_path);
    write_card(&card_path, &card)?;
    Ok(card)
}

/// The lowercase hex SHA-256 of `bytes`, as cards record their model file.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `bytes` to `path` atomically (a reader never sees a partial model).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    slicewise::output::atomic_write(path, |w| {
        use std::io::Write;
        w.write_all(bytes).map_err(|e| Error::io("write", path, e))
    })
}

/// Writes a card as pretty JSON to `path` atomically.
pub fn write_card<T: Serialize>(path: &Path, card: &T) -> Result<()> {
    let text =
        serde_json::to_string_pretty(card).map_err(|e| Error::format(path, e.to_string()))?;
    write_file(path, text.as_bytes())
}

/// `dir/model.onnx` → `dir/model.card.json`.
pub fn card_path(onnx_path: &Path) -> std::path::PathBuf {
    let stem = onnx_path
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    onnx_path.with_file_name(format!("{stem}.card.json"))
}

mod erased {
    /// Serialises any `Serialize` into a JSON value without naming its type.
    pub trait ToJson {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> ToJson for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}
