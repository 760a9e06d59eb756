//! The models the server offers: every `*.onnx` of the models folder, loaded once at start and
//! shared by all requests (an engine [`Model`] is `Send + Sync`), named by its file stem.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use slicewise::infer::{Model, ModelOptions};

use crate::error::ServeError;

/// The loaded models by name.
pub struct Models {
    by_name: BTreeMap<String, Arc<Model>>,
}

impl Models {
    /// Loads every `*.onnx` directly inside `dir`. A model that fails to load is skipped with a
    /// warning (one foreign ONNX file should not take the others down); none loading is an error.
    pub fn load(dir: &Path, options: &ModelOptions) -> Result<Models, ServeError> {
        let mut by_name = BTreeMap::new();
        let mut failures = Vec::new();
        for path in onnx_files(dir)? {
            let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            match Model::open(&path, options) {
                Ok(m) => {
                    log::info!("model {name}: {} on {}", path.display(), m.provider().used);
                    by_name.insert(name, Arc::new(m));
                }
                Err(e) => {
                    log::warn!("skipping model {}: {e}", path.display());
                    failures.push(e.to_string());
                }
            }
        }
        if by_name.is_empty() {
            let message = if failures.is_empty() {
                "no *.onnx models in this folder (use --models DIR)".to_string()
            } else {
                format!("no model could be loaded: {}", failures.join("; "))
            };
            return Err(ServeError::NoModels {
                dir: dir.to_path_buf(),
                message,
            });
        }
        Ok(Models { by_name })
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Model>> {
        self.by_name.get(name)
    }

    /// Model names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// `/info/`'s `models`: `{name: {type, labels, dimension, description, config}}`. `type`
    /// is `segmentation`, the only kind 3D Slicer's extension lists in its segmentation panel.
    pub fn info(&self) -> Value {
        let models: Map<String, Value> = self
            .by_name
            .iter()
            .map(|(name, m)| {
                let v = json!({
                    "type": "segmentation",
                    "labels": label_names(m),
                    "dimension": 3,
                    "description": description(m),
                    "config": {},
                });
                (name.clone(), v)
            })
            .collect();
        Value::Object(models)
    }

    /// Every model's label names, each once, in model then value order (`/info/`'s `labels`).
    pub fn all_labels(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in self.by_name.values() {
            for l in &m.contract().labels {
                if !out.contains(&l.name) {
                    out.push(l.name.clone());
                }
            }
        }
        out
    }
}

/// `{label name: value}`, background left out: clients map names to mask values with it (Slicer
/// sorts it by value and names the labelmap's segments in that order).
pub fn label_names(model: &Model) -> Value {
    let map: Map<String, Value> = model
        .contract()
        .labels
        .iter()
        .map(|l| (l.name.clone(), json!(l.value)))
        .collect();
    Value::Object(map)
}

/// One line on what the model does, from its contract.
fn description(model: &Model) -> String {
    let c = model.contract();
    let kind = c.output.as_str();
    let family = if c.tiled.is_some() {
        "tiled"
    } else {
        "slice-by-slice"
    };
    let mut d = format!(
        "{} v{}: {family} {kind} U-Net on {}x{} slices, {} label(s)",
        c.name,
        c.version,
        c.width,
        c.height,
        c.labels.len()
    );
    if let Some(t) = &c.training_data {
        d.push_str("; trained on ");
        d.push_str(t);
    }
    d
}

/// The `*.onnx` files directly in `dir`, sorted.
fn onnx_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, ServeError> {
    let io = |source| ServeError::Io {
        action: "read the models folder",
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_onnx = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
        if is_onnx && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
