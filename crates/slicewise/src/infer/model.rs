//! A loaded model: [`Model`] (an ONNX Runtime session plus its contract) and the sidecar card.
//!
//! The `slicewise.*` keys themselves, their parser and writer, and their checks against the
//! graph's inputs and outputs are [`super::contract`]'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use super::contract::{parse_contract, ModelContract, KEY_PREFIX};
// Where these were first declared; the contract's graph checks own them now.
pub use super::contract::{GraphFacts, GraphIo};
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

/// The input and output names and shapes of the session's graph.
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
