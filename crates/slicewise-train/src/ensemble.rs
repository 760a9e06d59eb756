//! Ensembles of exported models: one ONNX graph that runs every member on the same input and
//! averages their outputs (a `Mean` node), so the engine, the C ABI and the server run an ensemble
//! as one model with one contract.
//!
//! Members must be interchangeable: the same input and output and the same `slicewise.*`
//! contract apart from its version and training-data note, so that averaging their probabilities
//! is meaningful (same normalisation, crop, size, output kind and labels). The members are read
//! with this crate's ONNX subset ([`super::onnx`]), i.e. they must be files this exporter wrote;
//! a file with other fields is refused rather than rewritten without them.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

use super::export::{card_path, sha256_hex, write_card, write_file};
use super::onnx::*;
use slicewise::error::{Error, Result};
use slicewise::infer::contract::KEY_PREFIX;

/// The graph input every member reads and the ensemble keeps.
const INPUT: &str = "input";
/// The graph output every member writes and the ensemble's `Mean` writes.
const OUTPUT: &str = "output";
/// The contract key of the model version, which the ensemble sets to its own.
const VERSION_KEY: &str = "slicewise.version";
/// Contract keys that may differ between members (the ensemble gets its own).
const OWN_KEYS: [&str; 2] = [VERSION_KEY, "slicewise.training_data"];

/// Where an ensemble member came from, as its card records it.
#[derive(Debug, Clone)]
pub struct MemberFile<'a> {
    /// The file it was read from.
    pub path: &'a Path,
    /// SHA-256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: usize,
}

/// An exported model read for an ensemble: its file and the model itself.
pub struct Member<'a> {
    /// Where it came from.
    pub file: MemberFile<'a>,
    /// The decoded model.
    pub model: ModelProto,
}

/// Reads an exported model, refusing files outside the exporter's ONNX subset.
pub fn read_member(path: &Path) -> Result<Member<'_>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let m = ModelProto::decode(bytes.as_slice())
        .map_err(|e| Error::format(path, format!("not an ONNX model: {e}")))?;
    if m.encode_to_vec() != bytes {
        return Err(Error::format(
            path,
            "holds ONNX fields the slicewise exporter does not write; only models exported by \
             slicewise-train can be ensembled",
        ));
    }
    let g = m
        .graph
        .as_ref()
        .ok_or_else(|| Error::format(path, "ONNX model without a graph"))?;
    let names = |v: &[ValueInfoProto]| v.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    if names(&g.input) != [INPUT] || names(&g.output) != [OUTPUT] {
        return Err(Error::format(
            path,
            format!("the graph must have one input `{INPUT}` and one output `{OUTPUT}`"),
        ));
    }
    Ok(Member {
        file: MemberFile {
            path,
            sha256: sha256_hex(&bytes),
            bytes: bytes.len(),
        },
        model: m,
    })
}

/// The `slicewise.*` metadata of a model that every member must share.
fn shared_contract(m: &ModelProto) -> BTreeMap<&str, &str> {
    m.metadata_props
        .iter()
        .filter(|p| p.key.starts_with(KEY_PREFIX) && !OWN_KEYS.contains(&p.key.as_str()))
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect()
}

/// Checks that `other` can be averaged with `first`: same contract, opset, input and output.
fn check_compatible(first: &ModelProto, other: &ModelProto, path: &Path) -> Result<()> {
    let (a, b) = (shared_contract(first), shared_contract(other));
    if let Some(key) = a.keys().chain(b.keys()).find(|k| a.get(*k) != b.get(*k)) {
        return Err(Error::format(
            path,
            format!(
                "its {key} ({}) differs from the first member's ({}); ensemble members must share \
                 their contract",
                b.get(key).unwrap_or(&"absent"),
                a.get(key).unwrap_or(&"absent")
            ),
        ));
    }
    let io = |m: &ModelProto| {
        m.graph
            .as_ref()
            .map(|g| (g.input.clone(), g.output.clone()))
    };
    if first.opset_import != other.opset_import || io(first) != io(other) {
        return Err(Error::format(
            path,
            "its opset or its input/output shapes differ from the first member's",
        ));
    }
    Ok(())
}

/// Renames every value and initializer of `g` under `prefix`, except the shared graph input;
/// the member's output becomes `{prefix}output`.
fn prefixed(mut g: GraphProto, prefix: &str) -> GraphProto {
    let rename = |name: &mut String| {
        // An empty name is an omitted optional input (Resize's roi); the input stays shared.
        if !name.is_empty() && name != INPUT {
            *name = format!("{prefix}{name}");
        }
    };
    for n in &mut g.node {
        n.input.iter_mut().for_each(rename);
        n.output.iter_mut().for_each(rename);
        rename(&mut n.name);
    }
    g.initializer.iter_mut().for_each(|t| rename(&mut t.name));
    g
}

/// One model averaging `members` (at least two) under the contract of the first, with
/// `slicewise.version` set to `version`. The members' graphs are moved into it, not copied.
pub fn ensemble(members: Vec<Member>, version: &str) -> Result<ModelProto> {
    let [first, rest @ ..] = members.as_slice() else {
        return Err(Error::InvalidArgument("an ensemble needs members".into()));
    };
    if rest.is_empty() {
        return Err(Error::InvalidArgument(
            "an ensemble needs at least two members".into(),
        ));
    }
    for m in rest {
        check_compatible(&first.model, &m.model, m.file.path)?;
    }
    let doc_string = format!(
        "Mean of {} members: {}",
        members.len(),
        members
            .iter()
            .map(|m| m.model.doc_string.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let mut graph = GraphProto {
        name: format!("slicewise_ensemble_of_{}", members.len()),
        ..Default::default()
    };
    let mut outputs = Vec::new();
    let mut head = None;
    for (i, m) in members.into_iter().enumerate() {
        let prefix = format!("m{i}/");
        let mut model = m.model;
        let g = prefixed(model.graph.take().unwrap_or_default(), &prefix);
        if head.is_none() {
            // The shared input and output, as every member declares them (checked above).
            (graph.input, graph.output) = (g.input, g.output);
            head = Some(model);
        }
        graph.node.extend(g.node);
        graph.initializer.extend(g.initializer);
        outputs.push(format!("{prefix}{OUTPUT}"));
    }
    graph.node.push(NodeProto {
        input: outputs,
        output: vec![OUTPUT.into()],
        name: "ensemble_mean".into(),
        op_type: "Mean".into(),
        ..Default::default()
    });
    let mut model = head.unwrap_or_default();
    for p in &mut model.metadata_props {
        if p.key == VERSION_KEY {
            p.value = version.to_string();
        }
    }
    Ok(ModelProto {
        graph: Some(graph),
        doc_string,
        ..model
    })
}

/// The card of member `path` (`<stem>.card.json` next to it), if it has one.
fn member_card(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(card_path(path)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The ensemble's card: the members (file, digest, their own cards), the first member's contract
/// under the ensemble's version, what the members' cards share (data, split, licence), and the
/// ensemble file's digest and size.
fn card(members: &[MemberFile], version: &str, bytes: &[u8]) -> serde_json::Value {
    let cards: Vec<Option<serde_json::Value>> =
        members.iter().map(|m| member_card(m.path)).collect();
    let field = |key: &'static str| {
        cards
            .iter()
            .map(move |c| c.as_ref().map(|c| c[key].clone()))
    };
    // What every member's card says alike (null where they differ or a card is missing).
    let shared = |key| {
        field(key)
            .reduce(|a, b| if a == b { a } else { None })
            .flatten()
    };
    let parameters: Option<u64> = field("parameters").map(|p| p?.as_u64()).sum();
    let mut contract = field("contract").next().flatten();
    if let Some(c) = contract.as_mut().and_then(|c| c.as_object_mut()) {
        c.insert("version".into(), version.into());
    }
    let member = |(m, card): (&MemberFile, &Option<_>)| {
        serde_json::json!({
            "file": m.path.file_name().map(|n| n.to_string_lossy()),
            "sha256": m.sha256,
            "bytes": m.bytes,
            "card": card,
        })
    };
    serde_json::json!({
        "contract": contract,
        "ensemble": {
            "combine": "mean of the members' output probabilities (one ONNX Mean node)",
            "members": members.iter().zip(&cards).map(member).collect::<Vec<_>>(),
        },
        "data": shared("data"),
        "split": shared("split"),
        "training_data_licence": shared("training_data_licence"),
        "parameters": parameters,
        "sha256": sha256_hex(bytes),
        "bytes": bytes.len(),
    })
}

/// Writes the ensemble of the models at `members` to `out` and its card to `<stem>.card.json`
/// (both atomically; `out` may not be one of the members). Returns the card.
pub fn write(
    members: &[std::path::PathBuf],
    out: &Path,
    version: &str,
) -> Result<serde_json::Value> {
    if let Some(m) = members.iter().find(|m| same_file(m, out)) {
        return Err(Error::InvalidArgument(format!(
            "the ensemble {} would replace its member {}; write it elsewhere",
            out.display(),
            m.display()
        )));
    }
    let read = members
        .iter()
        .map(|p| read_member(p))
        .collect::<Result<Vec<_>>>()?;
    let files: Vec<MemberFile> = read.iter().map(|m| m.file.clone()).collect();
    let bytes = ensemble(read, version)?.encode_to_vec();
    let card = card(&files, version, &bytes);
    write_file(out, &bytes)?;
    write_card(&card_path(out), &card)?;
    Ok(card)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
