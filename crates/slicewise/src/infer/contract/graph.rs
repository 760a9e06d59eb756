//! The contract's graph side: which input and output tensors the `slicewise.*` keys name (or
//! the graph's defaults), the model input size, and the checks of the declared channels and
//! output kind against the graph's shapes.

use super::{Keys, OutputKind};
use crate::error::Result;

/// Input and output names and shapes of an ONNX graph (-1 for a dynamic dimension).
#[derive(Debug, Clone, Default)]
pub struct GraphIo {
    /// (name, shape) of each input.
    pub inputs: Vec<(String, Vec<i64>)>,
    /// (name, shape) of each output.
    pub outputs: Vec<(String, Vec<i64>)>,
}

/// What [`parse_contract`](super::parse_contract) derives beyond the contract: batch and class
/// facts of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphFacts {
    /// A fixed batch dimension, if the graph has one.
    pub fixed_batch: Option<usize>,
    /// Output channels K.
    pub classes: usize,
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
        (OutputKind::Softmax | OutputKind::Logits, k)
            if (2..=MAX_CLASSES as i64).contains(&k) =>
        {
            Ok(k as usize)
        }
        (OutputKind::Regions, k) if (1..MAX_CLASSES as i64).contains(&k) => Ok(k as usize),
        (OutputKind::Regions, k) => Err(keys.err(format!(
            "regions output needs a fixed region dimension 1 <= R < {MAX_CLASSES}, the graph's `{name}` has {k}"
        ))),
        (kind, k) => Err(keys.err(format!(
            "{} output needs a fixed class dimension 2 <= K <= {MAX_CLASSES}, the graph's `{name}` has {k}",
            kind.as_str()
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
