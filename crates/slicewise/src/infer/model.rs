//! The model package: ONNX `metadata_props` under `slicewise.` plus an optional sidecar card.
//!
//! # Model package specification (version 1)
//!
//! A slicewise model is an ONNX file whose `metadata_props` carry the keys below. A sidecar card
//! next to it, `<model>.json` (the `.onnx` replaced) or `<model>.onnx.json`, may supply or
//! override any of them: a JSON object whose keys are the same names with or without the
//! `slicewise.` prefix, and whose values are strings as below or the equivalent JSON (numbers,
//! booleans, arrays, objects). Card values win over embedded ones.
//!
//! | key | required | value |
//! |---|---|---|
//! | `slicewise.name` | yes | model name |
//! | `slicewise.version` | yes | model version, e.g. `1.2.0` |
//! | `slicewise.channels` | yes | number of model input channels C |
//! | `slicewise.normalization` | yes | `none`, `minmax-slice`, `minmax-volume`, `zscore`, `percentile:LOW,HIGH` (0–100), `percentile-fg:LOW,HIGH` (percentiles of the voxels above the minimum; the minimum maps to 0), `window:CENTER,WIDTH`, or the JSON form `{"kind":"percentile","lower":0.5,"upper":99.5}` |
//! | `slicewise.output_kind` | yes | `sigmoid` (1 output channel, foreground probability) or `softmax` (K ≥ 2 channels, class 0 = background) |
//! | `slicewise.labels` | yes | JSON array of `{"value":1,"name":"tumour","color":[255,0,0]}`: one for sigmoid; K−1 for softmax (class k ↦ `labels[k-1].value`) |
//! | `slicewise.input` | no | input tensor name (default: the graph's only input) |
//! | `slicewise.output` | no | output tensor name (default: the graph's first output) |
//! | `slicewise.layout` | no | `NCHW` (default; the only layout supported) |
//! | `slicewise.height`, `slicewise.width` | when the graph's H/W are dynamic | model input size in pixels; must equal fixed graph dims |
//! | `slicewise.source_channels` | no | comma list (or JSON array) of C source-volume channel indices, default `0,1,…,C−1` |
//! | `slicewise.keep_aspect` | no | `true`/`false` (default): pad to the model's aspect instead of stretching |
//! | `slicewise.threshold` | no | sigmoid threshold, default `0.5`; a voxel is foreground when p > threshold |
//! | `slicewise.training_data` | no | free text on the training data |
//! | `slicewise.format_version` | no | `1` |
//!
//! The graph must take a rank-4 float input `[N, C, H, W]` (N dynamic or fixed) and give a rank-4
//! float output `[N, K, H, W]`. Anything else is refused with [`Error::Model`] naming the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ModelContract, Normalization, OutputKind};
use crate::error::{Error, Result};
use crate::mask::LabelInfo;

/// The prefix of every model-package key.
pub const KEY_PREFIX: &str = "slicewise.";

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
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::model(model, format!("card {}: invalid JSON: {e}", card.display())))?;
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

/// Builds and checks the contract from the merged metadata and the graph's inputs/outputs.
pub fn parse_contract(
    path: &Path,
    props: &BTreeMap<String, String>,
    io: &GraphIo,
) -> Result<(ModelContract, GraphFacts)> {
    let err = |m: String| Error::model(path, m);
    let get = |k: &str| props.get(&format!("{KEY_PREFIX}{k}")).map(|s| s.trim());
    let req = |k: &str| {
        get(k).ok_or_else(|| {
            err(format!(
                "missing model-package key `{KEY_PREFIX}{k}` (in the ONNX metadata_props or a sidecar card)"
            ))
        })
    };
    if !props.keys().any(|k| k.starts_with(KEY_PREFIX)) {
        return Err(err(
            "not a slicewise model package: no `slicewise.*` metadata and no sidecar card".into(),
        ));
    }
    if let Some(v) = get("format_version") {
        if v != "1" {
            return Err(err(format!(
                "model package format_version {v} is not supported (1 is)"
            )));
        }
    }
    let layout = get("layout").unwrap_or("NCHW");
    if !layout.eq_ignore_ascii_case("NCHW") {
        return Err(err(format!("layout {layout} is not supported (NCHW only)")));
    }
    let name = req("name")?.to_string();
    let version = req("version")?.to_string();
    let channels: usize = parse_num(req("channels")?, "channels").map_err(err)?;
    if channels == 0 {
        return Err(err("channels must be at least 1".into()));
    }
    let normalization = parse_normalization(req("normalization")?).map_err(err)?;
    let output = match req("output_kind")?.to_ascii_lowercase().as_str() {
        "sigmoid" => OutputKind::Sigmoid,
        "softmax" => OutputKind::Softmax,
        o => {
            return Err(err(format!(
                "output_kind `{o}` is not supported (sigmoid or softmax)"
            )))
        }
    };
    let labels = parse_labels(req("labels")?).map_err(err)?;
    let threshold = match get("threshold") {
        Some(t) => parse_num::<f32>(t, "threshold").map_err(err)?,
        None => 0.5,
    };
    if !(0.0..=1.0).contains(&threshold) {
        return Err(err(format!("threshold {threshold} is outside [0, 1]")));
    }
    let keep_aspect = match get("keep_aspect").map(|s| s.to_ascii_lowercase()) {
        None => false,
        Some(s) if s == "true" || s == "1" => true,
        Some(s) if s == "false" || s == "0" => false,
        Some(s) => return Err(err(format!("keep_aspect `{s}` is not true/false"))),
    };
    let source_channels = match get("source_channels") {
        Some(s) => parse_index_list(s).map_err(err)?,
        None => (0..channels).collect(),
    };
    if source_channels.len() != channels {
        return Err(err(format!(
            "source_channels lists {} channels but channels is {channels}",
            source_channels.len()
        )));
    }

    // The graph.
    let (input_name, in_shape) = match get("input") {
        Some(n) => io
            .inputs
            .iter()
            .find(|(k, _)| k == n)
            .cloned()
            .ok_or_else(|| err(format!("declared input `{n}` is not an input of the graph")))?,
        None => match io.inputs.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(err(format!(
                    "the graph has {} inputs; declare which with slicewise.input",
                    io.inputs.len()
                )))
            }
        },
    };
    if io.inputs.len() != 1 {
        return Err(err(format!(
            "the graph has {} inputs; slicewise feeds exactly one",
            io.inputs.len()
        )));
    }
    let (output_name, out_shape) = match get("output") {
        Some(n) => io
            .outputs
            .iter()
            .find(|(k, _)| k == n)
            .cloned()
            .ok_or_else(|| {
                err(format!(
                    "declared output `{n}` is not an output of the graph"
                ))
            })?,
        None => io
            .outputs
            .first()
            .cloned()
            .ok_or_else(|| err("the graph has no outputs".into()))?,
    };
    if in_shape.len() != 4 {
        return Err(err(format!(
            "input `{input_name}` has rank {} ({in_shape:?}); an NCHW rank-4 input is required",
            in_shape.len()
        )));
    }
    if in_shape[1] >= 0 && in_shape[1] as usize != channels {
        return Err(err(format!(
            "the contract declares {channels} input channels but the graph's input `{input_name}` takes {} ({in_shape:?})",
            in_shape[1]
        )));
    }
    let dim = |key: &str, g: i64| -> Result<usize> {
        match (get(key), g) {
            (Some(s), g) => {
                let v: usize = parse_num(s, key).map_err(err)?;
                if g >= 0 && g as usize != v {
                    return Err(err(format!(
                        "the contract declares {key} {v} but the graph's input is {g}"
                    )));
                }
                if v == 0 {
                    return Err(err(format!("{key} must be positive")));
                }
                Ok(v)
            }
            (None, g) if g > 0 => Ok(g as usize),
            (None, _) => Err(err(format!(
                "the graph's input {key} is dynamic: declare slicewise.{key}"
            ))),
        }
    };
    let height = dim("height", in_shape[2])?;
    let width = dim("width", in_shape[3])?;
    let fixed_batch = (in_shape[0] > 0).then_some(in_shape[0] as usize);

    if out_shape.len() != 4 {
        return Err(err(format!(
            "output `{output_name}` has rank {} ({out_shape:?}); [N, K, H, W] is required",
            out_shape.len()
        )));
    }
    let classes = match (output, out_shape[1]) {
        (OutputKind::Sigmoid, 1) | (OutputKind::Sigmoid, -1) => 1,
        (OutputKind::Sigmoid, k) => {
            return Err(err(format!(
                "sigmoid output must have 1 channel, the graph's `{output_name}` has {k}"
            )))
        }
        (OutputKind::Softmax, k) if k >= 2 => k as usize,
        (OutputKind::Softmax, k) => {
            return Err(err(format!(
                "softmax output needs a fixed class dimension K >= 2, the graph's `{output_name}` has {k}"
            )))
        }
    };
    for (i, want) in [(2, height), (3, width)] {
        let g = out_shape[i];
        if g >= 0 && g as usize != want {
            return Err(err(format!(
                "output `{output_name}` shape {out_shape:?} does not match the input size {height}x{width}"
            )));
        }
    }
    if in_shape[0] >= 0 && out_shape[0] >= 0 && in_shape[0] != out_shape[0] {
        return Err(err(format!(
            "output batch {} differs from input batch {}",
            out_shape[0], in_shape[0]
        )));
    }
    let want_labels = classes.saturating_sub(1).max(1);
    if labels.len() != want_labels {
        return Err(err(format!(
            "{} labels declared; this {} model needs {want_labels}",
            labels.len(),
            if output == OutputKind::Sigmoid {
                "sigmoid"
            } else {
                "softmax"
            }
        )));
    }
    let contract = ModelContract {
        name,
        version,
        input_name,
        output_name,
        height,
        width,
        source_channels,
        normalization,
        keep_aspect,
        output,
        threshold,
        labels,
        training_data: get("training_data").map(str::to_string),
    };
    Ok((
        contract,
        GraphFacts {
            fixed_batch,
            classes,
        },
    ))
}

fn parse_num<T: std::str::FromStr>(s: &str, key: &str) -> std::result::Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("slicewise.{key} `{s}` is not a valid number"))
}

fn parse_index_list(s: &str) -> std::result::Result<Vec<usize>, String> {
    let s = s.trim();
    if s.starts_with('[') {
        return serde_json::from_str(s)
            .map_err(|e| format!("source_channels `{s}` is not a JSON array of indices: {e}"));
    }
    s.split(',')
        .map(|p| {
            p.trim()
                .parse()
                .map_err(|_| format!("source_channels `{s}` is not a comma list of indices"))
        })
        .collect()
}

/// Parses the compact (`percentile:0.5,99.5`) or JSON normalisation forms.
pub fn parse_normalization(s: &str) -> std::result::Result<Normalization, String> {
    let s = s.trim();
    if s.starts_with('{') {
        let n: Normalization = serde_json::from_str(s)
            .map_err(|e| format!("normalization `{s}` is not understood: {e}"))?;
        return check_normalization(n);
    }
    let (kind, args) = match s.split_once(':') {
        Some((k, a)) => (k.trim(), Some(a)),
        None => (s, None),
    };
    let two = |a: Option<&str>| -> std::result::Result<(f32, f32), String> {
        let a =
            a.ok_or_else(|| format!("normalization `{s}` needs two numbers, e.g. {kind}:a,b"))?;
        let v: Vec<f32> = a
            .split(',')
            .map(|x| x.trim().parse::<f32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("normalization `{s}`: arguments are not numbers"))?;
        match v.as_slice() {
            [x, y] => Ok((*x, *y)),
            _ => Err(format!("normalization `{s}` needs exactly two numbers")),
        }
    };
    let n = match kind.to_ascii_lowercase().as_str() {
        "none" => Normalization::None,
        "minmax-slice" => Normalization::MinMaxSlice,
        "minmax-volume" | "minmax" => Normalization::MinMaxVolume,
        "zscore" => Normalization::ZScore,
        "percentile" => {
            let (lower, upper) = two(args)?;
            Normalization::Percentile { lower, upper }
        }
        "percentile-fg" => {
            let (lower, upper) = two(args)?;
            Normalization::PercentileForeground { lower, upper }
        }
        "window" => {
            let (center, width) = two(args)?;
            Normalization::Window { center, width }
        }
        _ => {
            return Err(format!(
                "unknown normalization `{s}` (none, minmax-slice, minmax-volume, zscore, percentile:a,b, percentile-fg:a,b, window:c,w)"
            ))
        }
    };
    check_normalization(n)
}

fn check_normalization(n: Normalization) -> std::result::Result<Normalization, String> {
    match n {
        Normalization::Percentile { lower, upper }
        | Normalization::PercentileForeground { lower, upper }
            if !(0.0..=100.0).contains(&lower)
                || !(0.0..=100.0).contains(&upper)
                || lower >= upper =>
        {
            Err(format!(
                "percentile bounds {lower},{upper} must satisfy 0 <= lower < upper <= 100"
            ))
        }
        Normalization::Window { width, center } if !(width > 0.0 && center.is_finite()) => {
            Err(format!("window width {width} must be positive"))
        }
        n => Ok(n),
    }
}

fn parse_labels(s: &str) -> std::result::Result<Vec<LabelInfo>, String> {
    let labels: Vec<LabelInfo> = serde_json::from_str(s).map_err(|e| {
        format!("labels must be a JSON array of {{\"value\",\"name\",\"color\"}}: {e}")
    })?;
    let mut seen = [false; 256];
    for l in &labels {
        if l.value == 0 {
            return Err(format!(
                "label `{}` uses value 0 (reserved for background)",
                l.name
            ));
        }
        if std::mem::replace(&mut seen[l.value as usize], true) {
            return Err(format!("label value {} is declared twice", l.value));
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> BTreeMap<String, String> {
        [
            ("name", "m"),
            ("version", "1"),
            ("channels", "1"),
            ("normalization", "percentile:0.5,99.5"),
            ("output_kind", "sigmoid"),
            ("labels", r#"[{"value":1,"name":"t","color":[1,2,3]}]"#),
        ]
        .iter()
        .map(|(k, v)| (format!("slicewise.{k}"), v.to_string()))
        .collect()
    }

    fn io(inp: Vec<i64>, out: Vec<i64>) -> GraphIo {
        GraphIo {
            inputs: vec![("x".into(), inp)],
            outputs: vec![("y".into(), out)],
        }
    }

    #[test]
    fn minimal_contract_with_defaults() {
        let (c, f) = parse_contract(
            Path::new("m.onnx"),
            &props(),
            &io(vec![-1, 1, 64, 64], vec![-1, 1, 64, 64]),
        )
        .unwrap();
        assert_eq!((c.height, c.width, c.threshold), (64, 64, 0.5));
        assert_eq!(c.source_channels, vec![0]);
        assert_eq!(
            c.normalization,
            Normalization::Percentile {
                lower: 0.5,
                upper: 99.5
            }
        );
        assert_eq!(
            f,
            GraphFacts {
                fixed_batch: None,
                classes: 1
            }
        );
    }

    #[test]
    fn refusals_name_the_reason() {
        let p = Path::new("m.onnx");
        let mut m = props();
        m.remove("slicewise.labels");
        let e = parse_contract(p, &m, &io(vec![-1, 1, 64, 64], vec![-1, 1, 64, 64])).unwrap_err();
        assert!(e.to_string().contains("slicewise.labels"), "{e}");
        let e =
            parse_contract(p, &props(), &io(vec![-1, 1, -1, -1], vec![-1, 1, -1, -1])).unwrap_err();
        assert!(e.to_string().contains("dynamic"), "{e}");
        let mut m = props();
        m.insert("slicewise.normalization".into(), "histeq".into());
        let e = parse_contract(p, &m, &io(vec![-1, 1, 64, 64], vec![-1, 1, 64, 64])).unwrap_err();
        assert!(e.to_string().contains("unknown normalization"), "{e}");
        let e =
            parse_contract(p, &props(), &io(vec![-1, 1, 64, 64], vec![-1, 1, 32, 32])).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }

    #[test]
    fn normalization_forms() {
        assert_eq!(
            parse_normalization("window:40,400").unwrap(),
            Normalization::Window {
                center: 40.0,
                width: 400.0
            }
        );
        assert_eq!(
            parse_normalization(r#"{"kind":"z-score"}"#).unwrap(),
            Normalization::ZScore
        );
        assert!(parse_normalization("percentile:99,1").is_err());
    }
}
