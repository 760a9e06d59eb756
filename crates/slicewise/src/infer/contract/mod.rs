//! The model contract: what a model declares in its `slicewise.*` metadata, its parser
//! ([`parse_contract`]) and its writer ([`ModelContract::to_metadata`]), one home for both so
//! that what the trainer exports is what the engine reads.
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
//! | `slicewise.channels` | yes | number of model input channels C (with `context_slices` k > 0: of source channels, each entering the graph as 2k+1 channels) |
//! | `slicewise.context_slices` | no | 2.5D context k (default 0; at most 8): each source channel enters the model as its slices z−k…z+k along the slicing axis (slices beyond the volume's first and last replicated), channel-major (channel 0 at z−k…z+k, then channel 1, …), so the graph takes C·(2k+1) channels; the resize family only |
//! | `slicewise.preprocess` | no | the model family: `resize` (default: each slice normalised and resized to the model input, below) or `tiled` (nnU-Net 2d inference: see `slicewise.tiled`) |
//! | `slicewise.tiled` | when preprocess = tiled | the JSON object below |
//! | `slicewise.normalization` | yes (resize; a tiled model may omit it or say `none`) | `none`, `minmax-slice`, `minmax-volume`, `zscore`, `percentile:LOW,HIGH` (0–100), `percentile-fg:LOW,HIGH` (percentiles of the voxels above the minimum; the minimum maps to 0), `percentile-tissue:LOW,HIGH,MEDIAN` (percentile-fg, then scaled so the median of the voxels it maps above 0.1 lands on MEDIAN), `window:CENTER,WIDTH`, or the JSON form `{"kind":"percentile","lower":0.5,"upper":99.5}` |
//! | `slicewise.output_kind` | yes | `sigmoid` (1 output channel, foreground probability), `softmax` (K ≥ 2 channels, class 0 = background), `logits` (K ≥ 2 channels of raw scores, argmax, ties to the lowest class) or `regions` (R channels of region logits: region i where its logit > 0, a later region overwriting an earlier one) — any family |
//! | `slicewise.labels` | yes | JSON array of `{"value":1,"name":"tumour","color":[255,0,0]}`: one for sigmoid; K−1 for softmax and logits (class k ↦ `labels[k-1].value`); R for regions (region i writes `labels[i].value`) |
//! | `slicewise.channel_names` | no | JSON array of one name per model input channel (per source channel with `context_slices`), e.g. `["FLAIR","T1c"]` (shown; named in errors) |
//! | `slicewise.provenance` | no | a JSON object on where the model came from (e.g. nnU-Net version, dataset, trainer, folds, checkpoint digests): carried and shown, not interpreted |
//! | `slicewise.input` | no | input tensor name (default: the graph's only input) |
//! | `slicewise.output` | no | output tensor name (default: the graph's first output) |
//! | `slicewise.layout` | no | `NCHW` (default; the only layout supported) |
//! | `slicewise.height`, `slicewise.width` | when the graph's H/W are dynamic | model input size in pixels; must equal fixed graph dims |
//! | `slicewise.source_channels` | no | comma list (or JSON array) of C source-volume channel indices, default `0,1,…,C−1` |
//! | `slicewise.keep_aspect` | no | `true`/`false` (default): pad to the model's aspect instead of stretching |
//! | `slicewise.crop_foreground` | no | a threshold T in normalised units: crop every slice to the volume's foreground box (normalised values above T; see [`super::crop`]) before resizing, and write the mask back into that box. Absent: no crop |
//! | `slicewise.tta_flips` | no | the flips test-time augmentation averages when a run asks for it: `h` (default: the slice and its left-right mirror) or `hv` (also the front-back mirror and both: four passes) |
//! | `slicewise.threshold` | no | sigmoid threshold, default `0.5`; a voxel is foreground when p > threshold (a run's threshold option on a logits or regions model is ignored with a warning) |
//! | `slicewise.label_codes` | no | JSON array of each label's coded meaning, `{"value":1,"category":CODE,"property_type":CODE}` plus optional `"property_type_modifier"` and `"anatomic_region"`, each CODE `{"value":"5366008","scheme":"SCT","meaning":"Hippocampus"}` (DICOM PS3.16: category CID 7150, type CID 7151, modifier CID 2, region CID 4); DICOM SEG segments carry them. Labels without codes are coded Morphologically Abnormal Structure / Neoplasm |
//! | `slicewise.series_selection` | no | JSON object of the rules a DICOM series must meet for the model to take it (modality, image type, orientation, MR sequence attributes, SeriesDescription patterns, minimum slices; see [`selection`]). Absent: every series. NIfTI and TIFF inputs are always taken |
//! | `slicewise.training_data` | no | free text on the training data |
//! | `slicewise.format_version` | no | `1` |
//!
//! ## The tiled family (`slicewise.tiled`)
//!
//! nnU-Net 2.8.1's inference for a `2d` configuration (docs/nnunet-2d-inference.md), for any
//! model that declares it (parsed and checked in `contract/tiled.rs`, run by `infer::tiled`):
//!
//! ```json
//! {"transpose": [0, 1, 2], "spacing": [1.0, 1.0], "patch": [56, 40], "step": 0.5,
//!  "crop_nonzero": true, "mirror_axes": [0, 1],
//!  "resample_data": {"order": 3, "order_z": 0, "force_separate_z": null},
//!  "resample_logits": {"order": 1, "order_z": 0, "force_separate_z": null},
//!  "anisotropy_threshold": 3.0,
//!  "normalization": [{"scheme": "zscore", "use_mask": false}]}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `transpose` | nnU-Net's `transpose_forward` over the volume's array axes [z, y, x]; planes are taken along transposed axis 0 (a0), (a1, a2) are in-plane; the mask comes back through the inverse |
//! | `spacing` | target spacing (mm) of a1, a2; a0 is never resampled |
//! | `patch` | the tile (p1, p2): exactly 2 entries, equal to the model input (`slicewise.height`/`width` default to it) |
//! | `step` | the largest tile step as a fraction of the patch, in (0, 1]; offsets evenly spaced, rounded half to even |
//! | `crop_nonzero` | crop to the box of voxels non-zero in any channel; 0 outside it in the mask |
//! | `mirror_axes` | in-plane axes TTA mirrors (0 = a1, 1 = a2; `[]`/null: none): the identity plus every combination, logits averaged |
//! | `resample_data`, `resample_logits` | `order` and `order_z` (0, 1 or 3) and `force_separate_z` (null, true, false) of nnU-Net's `resample_data_or_seg_to_shape` |
//! | `anisotropy_threshold` | the spacing ratio above which the separate-z rule applies (3) |
//! | `normalization` | one per input channel: `{"scheme":"zscore","use_mask":bool}`, `{"scheme":"ct","lower","upper","mean","std"}`, `{"scheme":"none"}`, `{"scheme":"rescale01"}`, `{"scheme":"rgb01"}` |
//!
//! Unknown fields and schemes, orders other than 0, 1, 3, a 3-D patch, a transpose that is not a
//! permutation, or a normalisation count other than the channel count are refused naming the
//! field. A tiled model's channels are distinct images: a volume lacking one is refused.
//!
//! The graph must take a rank-4 float input `[N, C, H, W]` (N dynamic or fixed) and give a rank-4
//! float output `[N, K, H, W]`. Anything else is refused with [`Error::Model`] naming the reason
//! (the graph checks are `contract/graph.rs`'s).

mod graph;
pub mod selection;
mod tiled;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mask::coding::LabelCodes;
use crate::mask::LabelInfo;
use graph::check_graph;
pub use graph::{GraphFacts, GraphIo};
pub use selection::{select_series, Selection, SeriesRules, SeriesVerdict};
pub use tiled::{ChannelScheme, ResampleSpec, TiledSpec};

/// The prefix of every model-package key.
pub const KEY_PREFIX: &str = "slicewise.";

/// The model package format this engine reads and writes.
pub const FORMAT_VERSION: &str = "1";

/// How slices are normalised before inference. Its [`Display`](fmt::Display) form is the
/// package's compact text (`percentile:0.5,99.5`), which [`parse_normalization`] reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Normalization {
    /// Values used as they are.
    None,
    /// (v - min) / (max - min) over each slice.
    MinMaxSlice,
    /// (v - min) / (max - min) over the whole volume (per channel).
    MinMaxVolume,
    /// (v - mean) / std over the whole volume (per channel).
    ZScore,
    /// Clip to the [lower, upper] percentiles of the volume (per channel), then scale to [0, 1].
    Percentile {
        /// Lower percentile, 0..100.
        lower: f32,
        /// Upper percentile, 0..100.
        upper: f32,
    },
    /// Like `Percentile`, but the percentiles come from the foreground, the voxels above the
    /// channel's minimum, and voxels at the minimum map to 0. For skull-stripped or masked volumes
    /// whose background is one constant (0 in most files, -3.55 in BraTS' z-scored FLAIR): how
    /// much of the field of view is background no longer moves the clips (with 83 % background,
    /// BraTS' plain 99th percentile falls inside the brain and saturates the tumour), nor does
    /// the background's value; on unmasked scans (a few voxels at the minimum) it equals
    /// `Percentile`.
    #[serde(rename = "percentile-fg")]
    PercentileForeground {
        /// Lower percentile, 0..100.
        lower: f32,
        /// Upper percentile, 0..100.
        upper: f32,
    },
    /// `PercentileForeground`, then one more scale so that the tissue, the voxels that step
    /// maps above [`TISSUE_LEVEL`](crate::infer::preprocess::TISSUE_LEVEL), has its median at
    /// `median`. The upper clip alone places normal tissue wherever the brightest 1 % puts it:
    /// a head's scalp fat puts brain near 0.4, while a skull-stripped brain's own lesion is its
    /// 99th percentile and its brain lands near 0.6 (BraTS' FLAIR: 0.59, the LGG heads 0.41 ±
    /// 0.06). Anchoring the tissue's median makes the two look alike to a model.
    #[serde(rename = "percentile-tissue")]
    PercentileTissue {
        /// Lower percentile, 0..100.
        lower: f32,
        /// Upper percentile, 0..100.
        upper: f32,
        /// Where the tissue's median lands, in (0, 1].
        median: f32,
    },
    /// Fixed window: clip to [center - width/2, center + width/2], scale to [0, 1].
    Window {
        /// Window centre.
        center: f32,
        /// Window width.
        width: f32,
    },
}

impl fmt::Display for Normalization {
    /// The package's text form: `none`, `minmax-slice`, `minmax-volume`, `zscore`,
    /// `percentile:LOW,HIGH`, `percentile-fg:LOW,HIGH`, `percentile-tissue:LOW,HIGH,MEDIAN`,
    /// `window:CENTER,WIDTH` (shortest round-tripping numbers).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Normalization::None => f.write_str("none"),
            Normalization::MinMaxSlice => f.write_str("minmax-slice"),
            Normalization::MinMaxVolume => f.write_str("minmax-volume"),
            Normalization::ZScore => f.write_str("zscore"),
            Normalization::Percentile { lower, upper } => write!(f, "percentile:{lower},{upper}"),
            Normalization::PercentileForeground { lower, upper } => {
                write!(f, "percentile-fg:{lower},{upper}")
            }
            Normalization::PercentileTissue {
                lower,
                upper,
                median,
            } => write!(f, "percentile-tissue:{lower},{upper},{median}"),
            Normalization::Window { center, width } => write!(f, "window:{center},{width}"),
        }
    }
}

/// What the model outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// One channel of foreground probability (sigmoid applied in the model), thresholded.
    Sigmoid,
    /// K channels of class probabilities (softmax in the model), argmax.
    Softmax,
    /// K ≥ 2 channels of raw class scores (no softmax in the graph), argmax; class 0 is
    /// background.
    Logits,
    /// R channels of region logits: region i is foreground where its logit > 0 and writes
    /// `labels[i].value`; a later region overwrites an earlier one.
    Regions,
}

impl OutputKind {
    /// The package's name for it (`slicewise.output_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Sigmoid => "sigmoid",
            OutputKind::Softmax => "softmax",
            OutputKind::Logits => "logits",
            OutputKind::Regions => "regions",
        }
    }

    /// The labels a graph with `classes` output channels declares: one for sigmoid, K−1 for
    /// softmax and logits (class 0 is background), one per region.
    pub fn label_count(self, classes: usize) -> usize {
        match self {
            OutputKind::Sigmoid => 1,
            OutputKind::Softmax | OutputKind::Logits => classes.saturating_sub(1).max(1),
            OutputKind::Regions => classes,
        }
    }

    /// Whether a probability threshold applies (sigmoid only).
    pub fn thresholded(self) -> bool {
        self == OutputKind::Sigmoid
    }
}

/// A softmax model's decision for one pixel: the class with the largest probability, the lowest
/// class on ties (0, background, when there are no values). The engine labels with it and the
/// trainer scores with it, so both read a model's output alike.
#[inline]
pub fn argmax_class(probs: impl IntoIterator<Item = f32>) -> usize {
    let mut probs = probs.into_iter();
    let Some(mut best_p) = probs.next() else {
        return 0;
    };
    let mut best = 0;
    for (k, p) in probs.enumerate() {
        if p > best_p {
            best_p = p;
            best = k + 1;
        }
    }
    best
}

/// The flips test-time augmentation averages over (`slicewise.tta_flips`), when a run asks for
/// it: the model was validated with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtaFlips {
    /// The slice and its left-right mirror (two passes).
    #[default]
    H,
    /// Also the front-back mirror and both mirrors (four passes).
    Hv,
}

impl TtaFlips {
    /// The package's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            TtaFlips::H => "h",
            TtaFlips::Hv => "hv",
        }
    }

    /// The (flip rows, flip columns) of each pass, the unflipped one first.
    pub fn passes(self) -> &'static [(bool, bool)] {
        match self {
            TtaFlips::H => &[(false, false), (false, true)],
            TtaFlips::Hv => &[(false, false), (false, true), (true, false), (true, true)],
        }
    }
}

impl FromStr for TtaFlips {
    type Err = String;

    /// The package's name (`h` or `hv`), as [`TtaFlips::as_str`] writes it.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "h" => Ok(TtaFlips::H),
            "hv" => Ok(TtaFlips::Hv),
            _ => Err(format!("tta_flips `{s}` is not supported (h or hv)")),
        }
    }
}

/// The contract a model declares in its `slicewise.*` metadata (or sidecar card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelContract {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Input tensor name.
    pub input_name: String,
    /// Output tensor name.
    pub output_name: String,
    /// Model input height and width in pixels.
    pub height: usize,
    /// Model input width in pixels.
    pub width: usize,
    /// For each model input channel, the source volume channel it takes.
    pub source_channels: Vec<usize>,
    /// Normalisation.
    pub normalization: Normalization,
    /// Keep the slice aspect ratio when resizing (pad to square) instead of stretching.
    pub keep_aspect: bool,
    /// Crop each slice to the volume's foreground box (normalised values above this) first.
    #[serde(default)]
    pub crop_foreground: Option<f32>,
    /// 2.5D context k: each source channel enters the model as slices z−k…z+k (see
    /// [`ModelContract::input_channels`]); 0 for plain slices. Absent from older cards.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub context_slices: usize,
    /// The flips test-time augmentation averages over.
    #[serde(default)]
    pub tta_flips: TtaFlips,
    /// Output kind.
    pub output: OutputKind,
    /// Threshold for sigmoid output.
    pub threshold: f32,
    /// Labels (value 1.. for sigmoid: one label; softmax: one per non-background class).
    pub labels: Vec<LabelInfo>,
    /// Free-text note on the training data.
    pub training_data: Option<String>,
    /// The coded meaning of the labels that declare one (at most one entry per label value);
    /// empty when the card codes none. Absent from a card's JSON when empty, so older cards read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_codes: Vec<LabelCodes>,
    /// The tiled family's parameters (`slicewise.preprocess = tiled`); `None` for the resize
    /// family. Its normalisation is per channel there, and [`ModelContract::normalization`] is
    /// `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiled: Option<TiledSpec>,
    /// A name per model input channel (`slicewise.channel_names`), or empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channel_names: Vec<String>,
    /// Where the model came from (`slicewise.provenance`): a JSON object carried and shown,
    /// not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<serde_json::Value>,
    /// The rules a DICOM series must meet for the model to take it; `None`: every series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_selection: Option<SeriesRules>,
}

fn is_zero(k: &usize) -> bool {
    *k == 0
}

/// The largest 2.5D context a contract may declare (17 slices per source channel).
pub const MAX_CONTEXT_SLICES: usize = 8;

impl ModelContract {
    /// The graph's input channels: each source channel's 2k+1 context slices, channel-major.
    pub fn input_channels(&self) -> usize {
        self.source_channels.len() * (2 * self.context_slices + 1)
    }

    /// The contract as model-package key/value pairs (keys with the `slicewise.` prefix, format
    /// 1), every key stated explicitly: what an exporter writes into `metadata_props` and
    /// [`parse_contract`] reads back.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let mut kv: Vec<(&str, String)> = vec![
            ("format_version", FORMAT_VERSION.into()),
            ("name", self.name.clone()),
            ("version", self.version.clone()),
            ("layout", "NCHW".into()),
            ("input", self.input_name.clone()),
            ("output", self.output_name.clone()),
            ("channels", self.source_channels.len().to_string()),
            ("source_channels", list(&self.source_channels)),
            ("height", self.height.to_string()),
            ("width", self.width.to_string()),
            ("normalization", self.normalization.to_string()),
            ("keep_aspect", self.keep_aspect.to_string()),
            ("tta_flips", self.tta_flips.as_str().into()),
            ("output_kind", self.output.as_str().into()),
            ("threshold", self.threshold.to_string()),
            (
                "labels",
                serde_json::to_string(&self.labels).unwrap_or_default(),
            ),
        ];
        if let Some(t) = self.crop_foreground {
            kv.push(("crop_foreground", t.to_string()));
        }
        if self.context_slices > 0 {
            kv.push(("context_slices", self.context_slices.to_string()));
        }
        if let Some(t) = &self.training_data {
            kv.push(("training_data", t.clone()));
        }
        if !self.label_codes.is_empty() {
            kv.push((
                "label_codes",
                serde_json::to_string(&self.label_codes).unwrap_or_default(),
            ));
        }
        if let Some(t) = &self.tiled {
            kv.push(("preprocess", "tiled".into()));
            kv.push(("tiled", serde_json::to_string(t).unwrap_or_default()));
        }
        if !self.channel_names.is_empty() {
            kv.push((
                "channel_names",
                serde_json::to_string(&self.channel_names).unwrap_or_default(),
            ));
        }
        if let Some(p) = &self.provenance {
            kv.push(("provenance", p.to_string()));
        }
        if let Some(r) = &self.series_selection {
            kv.push(("series_selection", r.to_json()));
        }
        kv.into_iter()
            .map(|(k, v)| (format!("{KEY_PREFIX}{k}"), v))
            .collect()
    }
}

/// Why one value was refused: the message, and the JSON parser's error when one reported it.
pub(crate) struct Refusal {
    message: String,
    source: Option<serde_json::Error>,
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Refusal {
            message,
            source: None,
        }
    }
}

impl Refusal {
    fn json(message: String, source: serde_json::Error) -> Self {
        Refusal {
            message,
            source: Some(source),
        }
    }
}

type Parsed<T> = std::result::Result<T, Refusal>;

/// A model's merged `slicewise.*` metadata, with the errors that name the model.
pub(crate) struct Keys<'a> {
    path: &'a Path,
    props: &'a BTreeMap<String, String>,
}

impl<'a> Keys<'a> {
    /// The value of `slicewise.<key>`, trimmed.
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.props
            .get(&format!("{KEY_PREFIX}{key}"))
            .map(|s| s.trim())
    }

    /// The value of a required key.
    fn require(&self, key: &str) -> Result<&'a str> {
        self.get(key).ok_or_else(|| {
            self.err(format!(
                "missing model-package key `{KEY_PREFIX}{key}` (in the ONNX metadata_props or a sidecar card)"
            ))
        })
    }

    /// A model error for this model.
    pub(crate) fn err(&self, message: impl Into<String>) -> Error {
        Error::model(self.path, message)
    }

    /// A refused value as a model error, keeping the parser's error as its source.
    fn refused(&self, r: Refusal) -> Error {
        let e = self.err(r.message);
        match r.source {
            Some(s) => e.with_source(s),
            None => e,
        }
    }

    /// The number in `s`, the value of `key`.
    pub(crate) fn number<T: FromStr>(&self, s: &str, key: &str) -> Result<T> {
        parse_num(s, key).map_err(|m| self.err(m))
    }

    /// The package-level checks: slicewise keys present, a supported format and layout.
    fn check_package(&self) -> Result<()> {
        if !self.props.keys().any(|k| k.starts_with(KEY_PREFIX)) {
            return Err(self.err(
                "not a slicewise model package: no `slicewise.*` metadata and no sidecar card",
            ));
        }
        if let Some(v) = self.get("format_version") {
            if v != FORMAT_VERSION {
                return Err(self.err(format!(
                    "model package format_version {v} is not supported (1 is)"
                )));
            }
        }
        let layout = self.get("layout").unwrap_or("NCHW");
        if !layout.eq_ignore_ascii_case("NCHW") {
            return Err(self.err(format!("layout {layout} is not supported (NCHW only)")));
        }
        Ok(())
    }
}

/// What the keys declare on their own, before the graph is consulted.
struct Declared {
    name: String,
    version: String,
    normalization: Normalization,
    output: OutputKind,
    labels: Vec<LabelInfo>,
    label_codes: Vec<LabelCodes>,
    series_selection: Option<SeriesRules>,
    threshold: f32,
    keep_aspect: bool,
    crop_foreground: Option<f32>,
    context_slices: usize,
    tta_flips: TtaFlips,
    source_channels: Vec<usize>,
    tiled: Option<TiledSpec>,
    channel_names: Vec<String>,
    provenance: Option<serde_json::Value>,
}

impl Declared {
    /// Reads the required keys, then the optional ones, in the order their errors are reported.
    fn read(keys: &Keys) -> Result<Declared> {
        let name = keys.require("name")?.to_string();
        let version = keys.require("version")?.to_string();
        let channels = channels(keys)?;
        let tiled = tiled_spec(keys, channels)?;
        let normalization = normalization(keys, tiled.is_some())?;
        let output = output_kind(keys)?;
        let labels = parse_labels(keys.require("labels")?).map_err(|r| keys.refused(r))?;
        let label_codes = match keys.get("label_codes") {
            Some(s) => parse_label_codes(s, &labels).map_err(|r| keys.refused(r))?,
            None => Vec::new(),
        };
        let series_selection = keys
            .get("series_selection")
            .map(SeriesRules::from_json)
            .transpose()
            .map_err(|m| keys.err(m))?;
        Ok(Declared {
            name,
            version,
            normalization,
            output,
            labels,
            label_codes,
            series_selection,
            threshold: threshold(keys)?,
            keep_aspect: keep_aspect(keys)?,
            crop_foreground: crop_foreground(keys)?,
            context_slices: context_slices(keys, tiled.is_some())?,
            tta_flips: tta_flips(keys)?,
            source_channels: source_channels(keys, channels)?,
            tiled,
            channel_names: channel_names(keys, channels)?,
            provenance: provenance(keys)?,
        })
    }

    /// The label count the graph's classes call for: one for sigmoid, K−1 for softmax and
    /// logits, R for regions.
    fn check_label_count(&self, keys: &Keys, classes: usize) -> Result<()> {
        let want_labels = self.output.label_count(classes);
        if self.labels.len() != want_labels {
            return Err(keys.err(format!(
                "{} labels declared; this {} model needs {want_labels}",
                self.labels.len(),
                self.output.as_str()
            )));
        }
        Ok(())
    }
}

/// Builds and checks the contract from the merged metadata and the graph's inputs/outputs.
pub fn parse_contract(
    path: &Path,
    props: &BTreeMap<String, String>,
    io: &GraphIo,
) -> Result<(ModelContract, GraphFacts)> {
    let keys = Keys { path, props };
    keys.check_package()?;
    let d = Declared::read(&keys)?;
    let with_patch;
    let keys = match &d.tiled {
        Some(t) => {
            with_patch = patch_as_size(props, t);
            Keys {
                path,
                props: &with_patch,
            }
        }
        None => keys,
    };
    let inputs = d.source_channels.len() * (2 * d.context_slices + 1);
    let g = check_graph(&keys, inputs, d.output, io)?;
    d.check_label_count(&keys, g.facts.classes)?;
    if let Some(t) = &d.tiled {
        if t.patch != [g.height, g.width] {
            return Err(keys.err(format!(
                "slicewise.tiled.patch {:?} differs from the model input {}x{}",
                t.patch, g.height, g.width
            )));
        }
    }
    let contract = ModelContract {
        name: d.name,
        version: d.version,
        input_name: g.input_name,
        output_name: g.output_name,
        height: g.height,
        width: g.width,
        source_channels: d.source_channels,
        normalization: d.normalization,
        keep_aspect: d.keep_aspect,
        crop_foreground: d.crop_foreground,
        context_slices: d.context_slices,
        tta_flips: d.tta_flips,
        output: d.output,
        threshold: d.threshold,
        labels: d.labels,
        training_data: keys.get("training_data").map(str::to_string),
        label_codes: d.label_codes,
        tiled: d.tiled,
        channel_names: d.channel_names,
        provenance: d.provenance,
        series_selection: d.series_selection,
    };
    Ok((contract, g.facts))
}

/// The metadata with `slicewise.height` / `.width` taken from the tiled patch where the keys do
/// not state them (the patch is the model input size).
fn patch_as_size(props: &BTreeMap<String, String>, t: &TiledSpec) -> BTreeMap<String, String> {
    let mut p = props.clone();
    for (k, v) in [("height", t.patch[0]), ("width", t.patch[1])] {
        p.entry(format!("{KEY_PREFIX}{k}"))
            .or_insert_with(|| v.to_string());
    }
    p
}

/// `slicewise.preprocess` (`resize`, the default, or `tiled`) and, for tiled, `slicewise.tiled`.
fn tiled_spec(keys: &Keys, channels: usize) -> Result<Option<TiledSpec>> {
    let family = keys
        .get("preprocess")
        .unwrap_or("resize")
        .to_ascii_lowercase();
    match family.as_str() {
        "resize" => Ok(None),
        "tiled" => {
            let s = keys.require("tiled")?;
            tiled::parse_tiled(s, channels)
                .map(Some)
                .map_err(|r| keys.refused(r))
        }
        other => Err(keys.err(format!(
            "slicewise.preprocess `{other}` is not supported (resize or tiled)"
        ))),
    }
}

/// `slicewise.normalization`: required for the resize family; for the tiled family optional
/// and, if present, `none` (its schemes are per channel in `slicewise.tiled`).
fn normalization(keys: &Keys, tiled: bool) -> Result<Normalization> {
    if !tiled {
        return normalization_from_text(keys.require("normalization")?)
            .map_err(|r| keys.refused(r));
    }
    match keys.get("normalization") {
        None => Ok(Normalization::None),
        Some(s) => match normalization_from_text(s).map_err(|r| keys.refused(r))? {
            Normalization::None => Ok(Normalization::None),
            n => Err(keys.err(format!(
                "slicewise.normalization `{n}` does not apply to a tiled model (its schemes are slicewise.tiled.normalization); omit it or say none"
            ))),
        },
    }
}

/// `slicewise.channel_names`: a JSON array of one name per input channel.
fn channel_names(keys: &Keys, channels: usize) -> Result<Vec<String>> {
    let Some(s) = keys.get("channel_names") else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = serde_json::from_str(s).map_err(|e| {
        keys.refused(Refusal::json(
            format!("slicewise.channel_names must be a JSON array of names: {e}"),
            e,
        ))
    })?;
    if names.len() != channels {
        return Err(keys.err(format!(
            "slicewise.channel_names lists {} names but the model has {channels} input channels",
            names.len()
        )));
    }
    Ok(names)
}

/// `slicewise.provenance`: any JSON object, carried.
fn provenance(keys: &Keys) -> Result<Option<serde_json::Value>> {
    let Some(s) = keys.get("provenance") else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(s).map_err(|e| {
        keys.refused(Refusal::json(
            format!("slicewise.provenance must be a JSON object: {e}"),
            e,
        ))
    })?;
    if !v.is_object() {
        return Err(keys.err("slicewise.provenance must be a JSON object"));
    }
    Ok(Some(v))
}

fn channels(keys: &Keys) -> Result<usize> {
    let channels: usize = keys.number(keys.require("channels")?, "channels")?;
    if channels == 0 {
        return Err(keys.err("channels must be at least 1"));
    }
    Ok(channels)
}

fn output_kind(keys: &Keys) -> Result<OutputKind> {
    match keys.require("output_kind")?.to_ascii_lowercase().as_str() {
        "sigmoid" => Ok(OutputKind::Sigmoid),
        "softmax" => Ok(OutputKind::Softmax),
        "logits" => Ok(OutputKind::Logits),
        "regions" => Ok(OutputKind::Regions),
        o => Err(keys.err(format!(
            "output_kind `{o}` is not supported (sigmoid, softmax, logits or regions)"
        ))),
    }
}

fn threshold(keys: &Keys) -> Result<f32> {
    let threshold = match keys.get("threshold") {
        Some(t) => keys.number::<f32>(t, "threshold")?,
        None => 0.5,
    };
    if !(0.0..=1.0).contains(&threshold) {
        return Err(keys.err(format!("threshold {threshold} is outside [0, 1]")));
    }
    Ok(threshold)
}

fn keep_aspect(keys: &Keys) -> Result<bool> {
    match keys.get("keep_aspect").map(|s| s.to_ascii_lowercase()) {
        None => Ok(false),
        Some(s) if s == "true" || s == "1" => Ok(true),
        Some(s) if s == "false" || s == "0" => Ok(false),
        Some(s) => Err(keys.err(format!("keep_aspect `{s}` is not true/false"))),
    }
}

fn crop_foreground(keys: &Keys) -> Result<Option<f32>> {
    let Some(t) = keys.get("crop_foreground") else {
        return Ok(None);
    };
    let t: f32 = keys.number(t, "crop_foreground")?;
    if !t.is_finite() {
        return Err(keys.err(format!("crop_foreground {t} is not a finite threshold")));
    }
    Ok(Some(t))
}

/// `slicewise.context_slices`: 0 when absent; at most [`MAX_CONTEXT_SLICES`]; the resize family
/// only (the tiled family's channels are distinct images).
fn context_slices(keys: &Keys, tiled: bool) -> Result<usize> {
    let Some(k) = keys.get("context_slices") else {
        return Ok(0);
    };
    let k: usize = keys.number(k, "context_slices")?;
    if k > MAX_CONTEXT_SLICES {
        return Err(keys.err(format!(
            "context_slices {k} is more than {MAX_CONTEXT_SLICES}"
        )));
    }
    if k > 0 && tiled {
        return Err(keys.err(
            "context_slices is not supported with slicewise.preprocess = tiled (resize only)",
        ));
    }
    Ok(k)
}

fn tta_flips(keys: &Keys) -> Result<TtaFlips> {
    match keys.get("tta_flips") {
        None => Ok(TtaFlips::H),
        Some(s) => s
            .to_ascii_lowercase()
            .parse()
            .map_err(|m: String| keys.err(m)),
    }
}

fn source_channels(keys: &Keys, channels: usize) -> Result<Vec<usize>> {
    let source_channels = match keys.get("source_channels") {
        Some(s) => parse_index_list(s).map_err(|r| keys.refused(r))?,
        None => (0..channels).collect(),
    };
    if source_channels.len() != channels {
        return Err(keys.err(format!(
            "source_channels lists {} channels but channels is {channels}",
            source_channels.len()
        )));
    }
    Ok(source_channels)
}

fn parse_num<T: FromStr>(s: &str, key: &str) -> std::result::Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("slicewise.{key} `{s}` is not a valid number"))
}

fn parse_index_list(s: &str) -> Parsed<Vec<usize>> {
    let s = s.trim();
    if s.starts_with('[') {
        return serde_json::from_str(s).map_err(|e| {
            Refusal::json(
                format!("source_channels `{s}` is not a JSON array of indices: {e}"),
                e,
            )
        });
    }
    s.split(',')
        .map(|p| {
            p.trim().parse().map_err(|_| {
                Refusal::from(format!(
                    "source_channels `{s}` is not a comma list of indices"
                ))
            })
        })
        .collect()
}

/// Parses the compact (`percentile:0.5,99.5`, the [`Display`](fmt::Display) form) or JSON
/// normalisation forms.
pub fn parse_normalization(s: &str) -> std::result::Result<Normalization, String> {
    normalization_from_text(s).map_err(|r| r.message)
}

fn normalization_from_text(s: &str) -> Parsed<Normalization> {
    let s = s.trim();
    if s.starts_with('{') {
        let n: Normalization = serde_json::from_str(s)
            .map_err(|e| Refusal::json(format!("normalization `{s}` is not understood: {e}"), e))?;
        return check_normalization(n).map_err(Refusal::from);
    }
    let (kind, args) = match s.split_once(':') {
        Some((k, a)) => (k.trim(), Some(a)),
        None => (s, None),
    };
    let numbers = |a: Option<&str>, n: usize| -> std::result::Result<Vec<f32>, String> {
        let example = ["a", "b", "c"][..n].join(",");
        let a = a.ok_or_else(|| {
            format!("normalization `{s}` needs {n} numbers, e.g. {kind}:{example}")
        })?;
        let v: Vec<f32> = a
            .split(',')
            .map(|x| x.trim().parse::<f32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("normalization `{s}`: arguments are not numbers"))?;
        if v.len() != n {
            return Err(format!("normalization `{s}` needs exactly {n} numbers"));
        }
        Ok(v)
    };
    let two = |a: Option<&str>| numbers(a, 2).map(|v| (v[0], v[1]));
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
        "percentile-tissue" => {
            let v = numbers(args, 3)?;
            Normalization::PercentileTissue {
                lower: v[0],
                upper: v[1],
                median: v[2],
            }
        }
        "window" => {
            let (center, width) = two(args)?;
            Normalization::Window { center, width }
        }
        _ => {
            return Err(Refusal::from(format!(
                "unknown normalization `{s}` (none, minmax-slice, minmax-volume, zscore, percentile:a,b, percentile-fg:a,b, percentile-tissue:a,b,m, window:c,w)"
            )))
        }
    };
    check_normalization(n).map_err(Refusal::from)
}

fn check_normalization(n: Normalization) -> std::result::Result<Normalization, String> {
    match n {
        Normalization::Percentile { lower, upper }
        | Normalization::PercentileForeground { lower, upper }
        | Normalization::PercentileTissue { lower, upper, .. }
            if !(0.0..=100.0).contains(&lower)
                || !(0.0..=100.0).contains(&upper)
                || lower >= upper =>
        {
            Err(format!(
                "percentile bounds {lower},{upper} must satisfy 0 <= lower < upper <= 100"
            ))
        }
        Normalization::PercentileTissue { median, .. } if !(median > 0.0 && median <= 1.0) => {
            Err(format!("tissue median {median} must lie in (0, 1]"))
        }
        Normalization::Window { width, center } if !(width > 0.0 && center.is_finite()) => {
            Err(format!("window width {width} must be positive"))
        }
        n => Ok(n),
    }
}

fn parse_labels(s: &str) -> Parsed<Vec<LabelInfo>> {
    let labels: Vec<LabelInfo> = serde_json::from_str(s).map_err(|e| {
        Refusal::json(
            format!("labels must be a JSON array of {{\"value\",\"name\",\"color\"}}: {e}"),
            e,
        )
    })?;
    let mut seen = [false; 256];
    for l in &labels {
        if l.value == 0 {
            return Err(Refusal::from(format!(
                "label `{}` uses value 0 (reserved for background)",
                l.name
            )));
        }
        if std::mem::replace(&mut seen[l.value as usize], true) {
            return Err(Refusal::from(format!(
                "label value {} is declared twice",
                l.value
            )));
        }
    }
    Ok(labels)
}

/// Reads `slicewise.label_codes`: every entry codes a declared label, once, with codes that fit
/// a DICOM code item.
fn parse_label_codes(s: &str, labels: &[LabelInfo]) -> Parsed<Vec<LabelCodes>> {
    let codes: Vec<LabelCodes> = serde_json::from_str(s).map_err(|e| {
        Refusal::json(
            format!("label_codes must be a JSON array of {{\"value\",\"category\",\"property_type\"[,\"property_type_modifier\",\"anatomic_region\"]}}, each code {{\"value\",\"scheme\",\"meaning\"}}: {e}"),
            e,
        )
    })?;
    check_label_codes(&codes, labels)?;
    Ok(codes)
}

/// Checks label codes against the labels they code: every entry names a declared label, once,
/// and its codes fit a DICOM code item. The parser and the trainer's exporter both apply it.
pub fn check_label_codes(
    codes: &[LabelCodes],
    labels: &[LabelInfo],
) -> std::result::Result<(), String> {
    let mut seen = [false; 256];
    for c in codes {
        if !labels.iter().any(|l| l.value == c.value) {
            return Err(format!(
                "label_codes codes label value {}, which labels does not declare",
                c.value
            ));
        }
        if std::mem::replace(&mut seen[c.value as usize], true) {
            return Err(format!("label_codes codes label value {} twice", c.value));
        }
        c.check().map_err(|m| format!("label_codes: {m}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_class_takes_the_largest_and_the_lowest_on_ties() {
        assert_eq!(argmax_class([0.2, 0.5, 0.3]), 1);
        assert_eq!(argmax_class([0.4, 0.2, 0.4]), 0);
        assert_eq!(argmax_class([0.1, 0.45, 0.45]), 1);
        assert_eq!(argmax_class(std::iter::empty()), 0);
    }
    use crate::mask::coding::Code;
    use std::error::Error as _;

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
        assert_eq!(c.tta_flips, TtaFlips::H);
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
        let mut m = props();
        m.insert("slicewise.tta_flips".into(), "rot90".into());
        let e = parse_contract(p, &m, &io(vec![-1, 1, 64, 64], vec![-1, 1, 64, 64])).unwrap_err();
        assert!(e.to_string().contains("tta_flips `rot90`"), "{e}");
        let e =
            parse_contract(p, &props(), &io(vec![-1, 1, 64, 64], vec![-1, 1, 32, 32])).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }

    #[test]
    fn label_codes_are_optional_and_checked() {
        let p = Path::new("m.onnx");
        let graph = io(vec![-1, 1, 64, 64], vec![-1, 1, 64, 64]);
        let (c, _) = parse_contract(p, &props(), &graph).unwrap();
        assert!(c.label_codes.is_empty(), "a card without codes still reads");
        let code = r#"{"value":"108369006","scheme":"SCT","meaning":"Neoplasm"}"#;
        let entry = |value: u32, type_code: &str| {
            format!(r#"{{"value":{value},"category":{code},"property_type":{type_code}}}"#)
        };
        let with = |codes: String| {
            let mut m = props();
            m.insert("slicewise.label_codes".into(), codes);
            parse_contract(p, &m, &graph)
        };
        let (c, _) = with(format!("[{}]", entry(1, code))).unwrap();
        assert_eq!(c.label_codes[0].property_type, Code::neoplasm());
        for (codes, want) in [
            (format!("[{}]", entry(2, code)), "labels does not declare"),
            (format!("[{},{}]", entry(1, code), entry(1, code)), "twice"),
            (
                format!(
                    "[{}]",
                    entry(1, r#"{"value":"","scheme":"SCT","meaning":"x"}"#)
                ),
                "1 to 16 characters",
            ),
            (r#"[{"value":1}]"#.to_string(), "missing field"),
        ] {
            let e = with(codes).unwrap_err();
            assert!(e.to_string().contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn json_refusals_keep_the_parser_error_as_source() {
        let p = Path::new("m.onnx");
        let graph = io(vec![-1, 1, 64, 64], vec![-1, 1, 64, 64]);
        for (key, bad) in [
            ("labels", "[{\"value\":1"),
            ("source_channels", "[0,"),
            ("normalization", "{\"kind\":\"percentile\""),
        ] {
            let mut m = props();
            m.insert(format!("slicewise.{key}"), bad.into());
            let e = parse_contract(p, &m, &graph).unwrap_err();
            let src = e
                .source()
                .unwrap_or_else(|| panic!("{key}: no source: {e}"));
            assert!(src.is::<serde_json::Error>(), "{key}: {src}");
            assert!(e.to_string().contains(&src.to_string()), "{e}");
        }
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

    #[test]
    fn every_normalization_round_trips_through_its_text_form() {
        let all = [
            Normalization::None,
            Normalization::MinMaxSlice,
            Normalization::MinMaxVolume,
            Normalization::ZScore,
            Normalization::Percentile {
                lower: 0.5,
                upper: 99.5,
            },
            Normalization::Percentile {
                lower: 0.1,
                upper: 99.9,
            },
            Normalization::PercentileForeground {
                lower: 1.0,
                upper: 99.0,
            },
            Normalization::Window {
                center: -600.0,
                width: 1500.0,
            },
            Normalization::Window {
                center: 40.25,
                width: 0.3,
            },
        ];
        for n in all {
            let text = n.to_string();
            assert_eq!(parse_normalization(&text), Ok(n.clone()), "{text}");
        }
        assert_eq!(Normalization::ZScore.to_string(), "zscore");
        assert_eq!(
            Normalization::PercentileForeground {
                lower: 1.0,
                upper: 99.5
            }
            .to_string(),
            "percentile-fg:1,99.5"
        );
        let tissue = Normalization::PercentileTissue {
            lower: 1.0,
            upper: 99.0,
            median: 0.4,
        };
        assert_eq!(tissue.to_string(), "percentile-tissue:1,99,0.4");
        assert_eq!(
            parse_normalization("percentile-tissue:1,99,0.4"),
            Ok(tissue)
        );
        for bad in [
            "percentile-tissue:1,99",
            "percentile-tissue:1,99,0",
            "percentile-tissue:1,99,1.5",
        ] {
            assert!(parse_normalization(bad).is_err(), "{bad}");
        }
    }

    /// The graph a contract describes, with dynamic N, H and W (so height and width come from
    /// the keys).
    fn graph_of(c: &ModelContract) -> GraphIo {
        let classes = match c.output {
            OutputKind::Sigmoid => 1,
            OutputKind::Softmax | OutputKind::Logits => c.labels.len() as i64 + 1,
            OutputKind::Regions => c.labels.len() as i64,
        };
        GraphIo {
            inputs: vec![(
                c.input_name.clone(),
                vec![-1, c.input_channels() as i64, -1, -1],
            )],
            outputs: vec![(c.output_name.clone(), vec![-1, classes, -1, -1])],
        }
    }

    fn round_trip(c: &ModelContract) -> (ModelContract, GraphFacts) {
        let props: BTreeMap<String, String> = c.to_metadata().into_iter().collect();
        assert!(props.keys().all(|k| k.starts_with(KEY_PREFIX)), "{props:?}");
        parse_contract(Path::new("m.onnx"), &props, &graph_of(c)).expect("parses back")
    }

    fn label(value: u8, name: &str, color: [u8; 3]) -> LabelInfo {
        LabelInfo {
            value,
            name: name.into(),
            color,
        }
    }

    #[test]
    fn sigmoid_contract_round_trips_through_writer_and_parser() {
        let c = ModelContract {
            name: "lgg-flair".into(),
            version: "1.2.0".into(),
            input_name: "input".into(),
            output_name: "output".into(),
            height: 256,
            width: 192,
            source_channels: vec![1],
            normalization: Normalization::PercentileForeground {
                lower: 0.5,
                upper: 99.5,
            },
            keep_aspect: true,
            crop_foreground: Some(0.1),
            context_slices: 0,
            tta_flips: TtaFlips::Hv,
            output: OutputKind::Sigmoid,
            threshold: 0.35,
            labels: vec![label(7, "tumour", [255, 64, 0])],
            training_data: Some("LGG FLAIR, 110 patients".into()),
            label_codes: vec![LabelCodes {
                value: 7,
                category: Code::morphologically_abnormal_structure(),
                property_type: Code::neoplasm(),
                property_type_modifier: None,
                anatomic_region: Some(Code::new("12738006", "SCT", "Brain")),
            }],
            tiled: None,
            channel_names: Vec::new(),
            provenance: None,
            series_selection: Some(
                SeriesRules::from_json(
                    r#"{"modality":["MR"],"any_of":[{"name":"FLAIR","description":{"include":["flair"]}}]}"#,
                )
                .unwrap(),
            ),
        };
        let (back, facts) = round_trip(&c);
        assert_eq!(back, c);
        assert_eq!(
            facts,
            GraphFacts {
                fixed_batch: None,
                classes: 1
            }
        );
        let meta: BTreeMap<_, _> = c.to_metadata().into_iter().collect();
        assert_eq!(meta["slicewise.format_version"], "1");
        assert_eq!(meta["slicewise.channels"], "1");
        assert_eq!(meta["slicewise.output_kind"], "sigmoid");
        assert_eq!(meta["slicewise.normalization"], "percentile-fg:0.5,99.5");
        assert_eq!(meta["slicewise.tta_flips"], "hv");
    }

    /// A 2.5D contract: `context_slices` round-trips, the graph takes C·(2k+1) channels, and a
    /// graph of C channels, a context above the bound or one on a tiled model are refused.
    #[test]
    fn context_slices_round_trip_and_refusals() {
        let mut c = ModelContract {
            name: "ctx".into(),
            version: "1".into(),
            input_name: "input".into(),
            output_name: "output".into(),
            height: 64,
            width: 64,
            source_channels: vec![0, 1],
            normalization: Normalization::ZScore,
            keep_aspect: false,
            crop_foreground: None,
            context_slices: 2,
            tta_flips: TtaFlips::H,
            output: OutputKind::Sigmoid,
            threshold: 0.5,
            labels: vec![label(1, "lesion", [255, 0, 0])],
            training_data: None,
            label_codes: Vec::new(),
            tiled: None,
            channel_names: Vec::new(),
            provenance: None,
            series_selection: None,
        };
        assert_eq!(c.input_channels(), 10);
        let (back, _) = round_trip(&c);
        assert_eq!(back, c);
        let meta: BTreeMap<String, String> = c.to_metadata().into_iter().collect();
        assert_eq!(meta["slicewise.context_slices"], "2");
        assert_eq!(meta["slicewise.channels"], "2");
        // The same keys on a graph of two channels: the context is not there.
        let mut plain = graph_of(&c);
        plain.inputs[0].1[1] = 2;
        let e = parse_contract(Path::new("m.onnx"), &meta, &plain).unwrap_err();
        assert!(e.to_string().contains("declares 10 input channels"), "{e}");
        let mut too_many = meta.clone();
        too_many.insert("slicewise.context_slices".into(), "9".into());
        let e = parse_contract(Path::new("m.onnx"), &too_many, &graph_of(&c)).unwrap_err();
        assert!(
            e.to_string().contains("context_slices 9 is more than 8"),
            "{e}"
        );
        let mut tiled = meta.clone();
        tiled.remove("slicewise.normalization");
        tiled.insert("slicewise.preprocess".into(), "tiled".into());
        tiled.insert(
            "slicewise.tiled".into(),
            serde_json::to_string(&tiled_spec(2)).unwrap(),
        );
        let e = parse_contract(Path::new("m.onnx"), &tiled, &graph_of(&c)).unwrap_err();
        assert!(
            e.to_string()
                .contains("not supported with slicewise.preprocess = tiled"),
            "{e}"
        );
        // No context: no key written, and older cards (without it) read as 0.
        c.context_slices = 0;
        assert!(!c
            .to_metadata()
            .iter()
            .any(|(k, _)| k.ends_with("context_slices")));
    }

    #[test]
    fn softmax_contract_round_trips_through_writer_and_parser() {
        let labels = vec![
            label(1, "necrosis", [255, 0, 0]),
            label(2, "oedema", [0, 255, 0]),
            label(4, "enhancing \"core\"", [0, 0, 255]),
        ];
        // Two of the three labels coded, one with a modifier: the third keeps the default.
        let codes = vec![
            LabelCodes {
                value: 1,
                category: Code::new("91723000", "SCT", "Anatomical Structure"),
                property_type: Code::new("5366008", "SCT", "Hippocampus"),
                property_type_modifier: Some(Code::new("255549009", "SCT", "Anterior")),
                anatomic_region: None,
            },
            LabelCodes {
                value: 4,
                category: Code::morphologically_abnormal_structure(),
                property_type: Code::new("79654002", "SCT", "Edema"),
                property_type_modifier: None,
                anatomic_region: Some(Code::new("12738006", "SCT", "Brain")),
            },
        ];
        for normalization in [
            Normalization::None,
            Normalization::MinMaxSlice,
            Normalization::MinMaxVolume,
            Normalization::ZScore,
            Normalization::Percentile {
                lower: 2.0,
                upper: 98.0,
            },
            Normalization::PercentileForeground {
                lower: 0.1,
                upper: 99.9,
            },
            Normalization::Window {
                center: 40.0,
                width: 400.0,
            },
        ] {
            let c = ModelContract {
                name: "brats".into(),
                version: "3".into(),
                input_name: "image".into(),
                output_name: "probs".into(),
                height: 128,
                width: 160,
                source_channels: vec![2, 0, 3, 1],
                normalization,
                keep_aspect: false,
                crop_foreground: None,
                context_slices: 0,
                tta_flips: TtaFlips::H,
                output: OutputKind::Softmax,
                threshold: 0.5,
                labels: labels.clone(),
                training_data: None,
                label_codes: codes.clone(),
                tiled: None,
                channel_names: Vec::new(),
                provenance: None,
                series_selection: None,
            };
            let (back, facts) = round_trip(&c);
            assert_eq!(back, c);
            assert_eq!(facts.classes, 4);
        }
    }

    fn tiled_spec(channels: usize) -> TiledSpec {
        TiledSpec {
            transpose: [2, 0, 1],
            spacing: [0.7, 1.25],
            patch: [56, 40],
            step: 0.5,
            crop_nonzero: true,
            mirror_axes: vec![0, 1],
            resample_data: ResampleSpec {
                order: 3,
                order_z: 0,
                force_separate_z: None,
            },
            resample_logits: ResampleSpec {
                order: 1,
                order_z: 0,
                force_separate_z: Some(false),
            },
            anisotropy_threshold: 3.0,
            normalization: [
                ChannelScheme::Zscore { use_mask: true },
                ChannelScheme::Ct {
                    lower: -1000.0,
                    upper: 1500.5,
                    mean: 40.25,
                    std: 300.0,
                },
                ChannelScheme::None,
                ChannelScheme::Rescale01,
                ChannelScheme::Rgb01,
            ][..channels]
                .to_vec(),
        }
    }

    #[test]
    fn tiled_contracts_round_trip_for_logits_and_regions() {
        for (output, labels) in [
            (
                OutputKind::Logits,
                vec![
                    label(1, "anterior", [1, 2, 3]),
                    label(2, "posterior", [4, 5, 6]),
                ],
            ),
            (
                OutputKind::Regions,
                vec![
                    label(1, "whole", [1, 2, 3]),
                    label(2, "core", [4, 5, 6]),
                    label(3, "enh", [7, 8, 9]),
                ],
            ),
        ] {
            let c = ModelContract {
                name: "Dataset004_Hippocampus".into(),
                version: "2.8.1".into(),
                input_name: "image".into(),
                output_name: "logits".into(),
                height: 56,
                width: 40,
                source_channels: vec![0, 1, 2, 3, 4],
                normalization: Normalization::None,
                keep_aspect: false,
                crop_foreground: None,
                context_slices: 0,
                tta_flips: TtaFlips::H,
                output,
                threshold: 0.5,
                labels,
                training_data: None,
                label_codes: Vec::new(),
                tiled: Some(tiled_spec(5)),
                channel_names: ["T1", "CT", "raw", "x", "rgb"].map(String::from).to_vec(),
                provenance: Some(serde_json::json!({"source": "nnU-Net", "folds": [0, 1]})),
                series_selection: None,
            };
            let (back, facts) = round_trip(&c);
            assert_eq!(back, c);
            // Two labels plus background, or three regions.
            assert_eq!(facts.classes, 3);
            let meta: BTreeMap<_, _> = c.to_metadata().into_iter().collect();
            assert_eq!(meta["slicewise.preprocess"], "tiled");
            assert_eq!(meta["slicewise.output_kind"], output.as_str());
        }
    }

    fn tiled_props(edit: impl FnOnce(&mut BTreeMap<String, String>)) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = [
            ("name", "n"),
            ("version", "1"),
            ("channels", "1"),
            ("preprocess", "tiled"),
            ("output_kind", "logits"),
            ("labels", r#"[{"value":1,"name":"a","color":[1,2,3]}]"#),
        ]
        .iter()
        .map(|(k, v)| (format!("slicewise.{k}"), v.to_string()))
        .collect();
        m.insert(
            "slicewise.tiled".into(),
            serde_json::to_string(&tiled_spec(1)).unwrap(),
        );
        edit(&mut m);
        m
    }

    #[test]
    fn tiled_refusals_name_the_key() {
        let p = Path::new("m.onnx");
        let graph = io(vec![-1, 1, -1, -1], vec![-1, 2, -1, -1]);
        let (c, _) = parse_contract(p, &tiled_props(|_| {}), &graph).unwrap();
        assert_eq!((c.height, c.width), (56, 40), "the patch is the input size");
        let fixed = io(vec![-1, 1, 64, 40], vec![-1, 2, 64, 40]);
        let e = parse_contract(p, &tiled_props(|_| {}), &fixed).unwrap_err();
        assert!(
            e.to_string()
                .contains("the contract declares height 56 but the graph's input is 64"),
            "{e}"
        );
        let sized = |m: &mut BTreeMap<String, String>| {
            m.insert("slicewise.height".into(), "64".into());
        };
        let e = parse_contract(p, &tiled_props(sized), &fixed).unwrap_err();
        assert!(
            e.to_string()
                .contains("slicewise.tiled.patch [56, 40] differs"),
            "{e}"
        );
        for (edit, want) in [
            (
                ("preprocess", "nnunet"),
                "slicewise.preprocess `nnunet` is not supported",
            ),
            (
                ("normalization", "zscore"),
                "does not apply to a tiled model",
            ),
            (
                ("channel_names", r#"["a","b"]"#),
                "channel_names lists 2 names",
            ),
            (("provenance", "[1]"), "provenance must be a JSON object"),
            (
                ("channels", "2"),
                "tiled.normalization has 1 entries but the model has 2",
            ),
            (
                ("output_kind", "regions"),
                "1 labels declared; this regions model needs 2",
            ),
        ] {
            let props = tiled_props(|m| {
                m.insert(format!("slicewise.{}", edit.0), edit.1.into());
            });
            let e = parse_contract(p, &props, &graph).unwrap_err();
            assert!(e.to_string().contains(want), "{want}: {e}");
        }
        let none = tiled_props(|m| {
            m.insert("slicewise.normalization".into(), "none".into());
            m.remove("slicewise.tiled");
        });
        let e = parse_contract(p, &none, &graph).unwrap_err();
        assert!(e.to_string().contains("slicewise.tiled"), "{e}");
    }
}
