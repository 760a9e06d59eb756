//! A loaded model: [`Model`] (an ONNX Runtime session plus its contract), the sidecar card, and
//! the checks of the contract against the graph's inputs and outputs.
//!
//! The `slicewise.*` keys themselves, their parser and writer, are [`super::contract`]'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use super::contract::{parse_contract, Keys, ModelContract, OutputKind, KEY_PREFIX};
use super::{provider, runtime, ModelOptions, ProviderReport};
use crate::error::{Error, Result};

/// A loaded model: an ONNX Runtime session plus its contract. `Send + Sync`: one model can serve
/// several threads.
pub struct Model {
    pub(super) contract: ModelContract,
    pub(super) provider: ProviderReport,
    fallback: Option<String>,
    path: PathBuf,
    // rc.15's `Session::run` takes `&mut self`; runs on one model are serialised.
    pub(super) session: Mutex<ort::session::Session>,
    pub(super) fixed_batch: Option<usize>,
    pub(super) classes: usize,
}

impl Model {
    /// Loads a model and checks its contract. Initialises the runtime if needed.
    pub fn open(path: impl AsRef<Path>, options: &ModelOptions) -> Result<Model> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io("access", path, e))?;
        if !meta.is_file() {
            return Err(Error::model(path, "not a file"));
        }
        let (_, env) = runtime::environment(options.runtime_path.as_deref())?;
        let provider::Built {
            session,
            report: provider,
            fallback,
        } = provider::build_session(&env, path, options)?;
        let mut props = embedded_metadata(&session, path)?;
        if let Some(card) = card_path(path) {
            props.extend(read_card(path, &card)?);
        }
        let (contract, facts) = parse_contract(path, &props, &graph_io(&session))?;
        Ok(Model {
            contract,
            provider,
            fallback,
            path: path.to_path_buf(),
            session: Mutex::new(session),
            fixed_batch: facts.fixed_batch,
            classes: facts.classes,
        })
    }

    /// Output channels of the graph (1 for sigmoid models, K for softmax).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The graph's fixed batch size, if it has one (batches are split or padded to it).
    pub fn fixed_batch(&self) -> Option<usize> {
        self.fixed_batch
    }
    /// The model's contract.
    pub fn contract(&self) -> &ModelContract {
        &self.contract
    }
    /// The provider in use.
    pub fn provider(&self) -> &ProviderReport {
        &self.provider
    }
    /// Why [`super::Device::Auto`] runs this model on CPU, in one phrase (e.g. "this ONNX
    /// Runtime has no CUDA or TensorRT provider"); `None` when a GPU provider runs or none was
    /// tried. The per-provider reasons are in [`Model::provider`]'s notes. The engine only
    /// records it (a CPU-only install is normal): the application decides how to tell its users.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }
    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

// The C ABI shares one model between threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Model>();
};

/// The custom `metadata_props` embedded in the ONNX file.
fn embedded_metadata(
    session: &ort::session::Session,
    path: &Path,
) -> Result<BTreeMap<String, String>> {
    let md = session
        .metadata()
        .map_err(|e| Error::model(path, format!("cannot read metadata: {e}")).with_source(e))?;
    let mut props = BTreeMap::new();
    for k in md.custom_keys().unwrap_or_default() {
        if let Some(v) = md.custom(&k) {
            props.insert(k, v);
        }
    }
    Ok(props)
}

/// The sidecar card path for a model, if one exists.
pub fn card_path(model: &Path) -> Option<PathBuf> {
    let a = model.with_extension("json");
    if a != model && a.is_file() {
        return Some(a);
    }
    let mut b = model.as_os_str().to_os_string();
    b.push(".json");
    let b = PathBuf::from(b);
    b.is_file().then_some(b)
}

/// Reads a sidecar card into `slicewise.*` key/value strings.
pub fn read_card(model: &Path, card: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(card).map_err(|e| Error::io("read", card, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        Error::model(model, format!("card {}: invalid JSON: {e}", card.display())).with_source(e)
    })?;
    let obj = v.as_object().ok_or_else(|| {
        Error::model(model, format!("card {}: not a JSON object", card.display()))
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let key = if k.starts_with(KEY_PREFIX) {
            k.clone()
        } else {
            format!("{KEY_PREFIX}{k}")
        };
        let val = match v {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        out.insert(key, val);
    }
    Ok(out)
}

/// Input and output names and shapes of an ONNX graph (-1 for a dynamic dimension).
#[derive(Debug, Clone, Default)]
pub struct GraphIo {
    /// (name, shape) of each input.
    pub inputs: Vec<(String, Vec<i64>)>,
    /// (name, shape) of each output.
    pub outputs: Vec<(String, Vec<i64>)>,
}

/// What [`parse_contract`] derives beyond the contract: batch and class facts of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphFacts {
    /// A fixed batch dimension, if the graph has one.
    pub fixed_batch: Option<usize>,
    /// Output channels K.
    pub classes: usize,
}

fn graph_io(session: &ort::session::Session) -> GraphIo {
    let conv = |o: &ort::value::Outlet| {
        let shape = o
            .dtype()
            .tensor_shape()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        (o.name().to_string(), shape)
    };
    GraphIo {
        inputs: session.inputs().iter().map(conv).collect(),
        outputs: session.outputs().iter().map(conv).collect(),
    }
}

/// The contract's graph side, resolved against the graph and checked.
pub(crate) struct GraphFit {
    pub(crate) input_name: String,
    pub(crate) output_name: String,
    pub(crate) height: usize,
    pub(crate) width: usize,
    pub(crate) facts: GraphFacts,
}

/// Resolves the input and output tensors (`slicewise.input` / `.output` or the defaults) and the
/// model input size (`slicewise.height` / `.width` or the graph's fixed dims), and checks the
/// shapes against the declared `channels` and `output` kind.
pub(crate) fn check_graph(
    keys: &Keys,
    channels: usize,
    output: OutputKind,
    io: &GraphIo,
) -> Result<GraphFit> {
    let (input_name, in_shape) = graph_input(keys, io)?;
    let (output_name, out_shape) = graph_output(keys, io)?;
    check_input_shape(keys, &input_name, &in_shape, channels)?;
    let height = model_size(keys, "height", in_shape[2])?;
    let width = model_size(keys, "width", in_shape[3])?;
    let fixed_batch = (in_shape[0] > 0).then_some(in_shape[0] as usize);
    let classes = output_classes(keys, &output_name, &out_shape, output)?;
    check_output_shape(keys, &output_name, &out_shape, &in_shape, height, width)?;
    Ok(GraphFit {
        input_name,
        output_name,
        height,
        width,
        facts: GraphFacts {
            fixed_batch,
            classes,
        },
    })
}

/// The declared input, or the graph's only one; the graph must have exactly one.
fn graph_input(keys: &Keys, io: &GraphIo) -> Result<(String, Vec<i64>)> {
    let input = match keys.get("input") {
        Some(n) => io
            .inputs
            .iter()
            .find(|(k, _)| k == n)
            .cloned()
            .ok_or_else(|| {
                keys.err(format!("declared input `{n}` is not an input of the graph"))
            })?,
        None => match io.inputs.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(keys.err(format!(
                    "the graph has {} inputs; declare which with slicewise.input",
                    io.inputs.len()
                )))
            }
        },
    };
    if io.inputs.len() != 1 {
        return Err(keys.err(format!(
            "the graph has {} inputs; slicewise feeds exactly one",
            io.inputs.len()
        )));
    }
    Ok(input)
}

/// The declared output, or the graph's first one.
fn graph_output(keys: &Keys, io: &GraphIo) -> Result<(String, Vec<i64>)> {
    match keys.get("output") {
        Some(n) => io
            .outputs
            .iter()
            .find(|(k, _)| k == n)
            .cloned()
            .ok_or_else(|| {
                keys.err(format!(
                    "declared output `{n}` is not an output of the graph"
                ))
            }),
        None => io
            .outputs
            .first()
            .cloned()
            .ok_or_else(|| keys.err("the graph has no outputs")),
    }
}

/// Rank 4, and the declared channel count where the graph fixes it.
fn check_input_shape(keys: &Keys, name: &str, shape: &[i64], channels: usize) -> Result<()> {
    if shape.len() != 4 {
        return Err(keys.err(format!(
            "input `{name}` has rank {} ({shape:?}); an NCHW rank-4 input is required",
            shape.len()
        )));
    }
    if shape[1] >= 0 && shape[1] as usize != channels {
        return Err(keys.err(format!(
            "the contract declares {channels} input channels but the graph's input `{name}` takes {} ({shape:?})",
            shape[1]
        )));
    }
    Ok(())
}

/// Largest model input side accepted. Slice models run at a few hundred pixels; a file claiming
/// 65536 would make every batch allocation tens of GB, and a failed allocation aborts the host.
const MAX_MODEL_SIDE: usize = 4096;
/// Most classes a softmax model may have: masks hold labels as u8.
const MAX_CLASSES: usize = 256;

/// The model input height or width (`key`): declared, and equal to the graph's dim `g` where
/// that is fixed, or the graph's fixed dim; at most [`MAX_MODEL_SIDE`].
fn model_size(keys: &Keys, key: &str, g: i64) -> Result<usize> {
    let v = declared_or_fixed_size(keys, key, g)?;
    if v > MAX_MODEL_SIDE {
        return Err(keys.err(format!(
            "{key} {v} is larger than the {MAX_MODEL_SIDE} pixels slicewise accepts"
        )));
    }
    Ok(v)
}

fn declared_or_fixed_size(keys: &Keys, key: &str, g: i64) -> Result<usize> {
    match (keys.get(key), g) {
        (Some(s), g) => {
            let v: usize = keys.number(s, key)?;
            if g >= 0 && g as usize != v {
                return Err(keys.err(format!(
                    "the contract declares {key} {v} but the graph's input is {g}"
                )));
            }
            if v == 0 {
                return Err(keys.err(format!("{key} must be positive")));
            }
            Ok(v)
        }
        (None, g) if g > 0 => Ok(g as usize),
        (None, _) => Err(keys.err(format!(
            "the graph's input {key} is dynamic: declare slicewise.{key}"
        ))),
    }
}

/// Output channels K: rank 4, 1 for sigmoid, a fixed K ≥ 2 for softmax.
fn output_classes(keys: &Keys, name: &str, shape: &[i64], output: OutputKind) -> Result<usize> {
    if shape.len() != 4 {
        return Err(keys.err(format!(
            "output `{name}` has rank {} ({shape:?}); [N, K, H, W] is required",
            shape.len()
        )));
    }
    match (output, shape[1]) {
        (OutputKind::Sigmoid, 1) | (OutputKind::Sigmoid, -1) => Ok(1),
        (OutputKind::Sigmoid, k) => Err(keys.err(format!(
            "sigmoid output must have 1 channel, the graph's `{name}` has {k}"
        ))),
        (OutputKind::Softmax, k) if (2..=MAX_CLASSES as i64).contains(&k) => Ok(k as usize),
        (OutputKind::Softmax, k) => Err(keys.err(format!(
            "softmax output needs a fixed class dimension 2 <= K <= {MAX_CLASSES}, the graph's `{name}` has {k}"
        ))),
    }
}

/// The output's fixed H, W and N agree with the input's.
fn check_output_shape(
    keys: &Keys,
    name: &str,
    out_shape: &[i64],
    in_shape: &[i64],
    height: usize,
    width: usize,
) -> Result<()> {
    for (i, want) in [(2, height), (3, width)] {
        let g = out_shape[i];
        if g >= 0 && g as usize != want {
            return Err(keys.err(format!(
                "output `{name}` shape {out_shape:?} does not match the input size {height}x{width}"
            )));
        }
    }
    if in_shape[0] >= 0 && out_shape[0] >= 0 && in_shape[0] != out_shape[0] {
        return Err(keys.err(format!(
            "output batch {} differs from input batch {}",
            out_shape[0], in_shape[0]
        )));
    }
    Ok(())
}
