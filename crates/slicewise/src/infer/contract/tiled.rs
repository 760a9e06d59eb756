//! The `slicewise.tiled` object: what the tiled family (spacing-based resampling, crop to the
//! non-zero box, per-channel normalisation schemes, Gaussian-weighted sliding window) needs to
//! run a model, as nnU-Net 2d configurations define it (docs/nnunet-2d-inference.md). Its
//! parser checks everything the pipeline relies on, so `infer::tiled` never meets a bad value.

use serde::{Deserialize, Deserializer, Serialize};

use super::{Parsed, Refusal};

/// How one resampling is done: nnU-Net's `resample_data_or_seg_to_shape` keyword arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResampleSpec {
    /// Spline order in the plane: 0, 1 or 3.
    pub order: u8,
    /// Order along an in-plane axis resampled separately (the separate-z rule): 0, 1 or 3.
    #[serde(default)]
    pub order_z: u8,
    /// `null`: nnU-Net's anisotropy rule decides; `true`/`false` force it.
    #[serde(default)]
    pub force_separate_z: Option<bool>,
}

/// One input channel's intensity normalisation (nnU-Net's schemes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "lowercase", deny_unknown_fields)]
pub enum ChannelScheme {
    /// `ZScoreNormalization`: (v − mean) / max(std, 1e-8), statistics over the cropped box, or
    /// only inside the hole-filled non-zero mask when `use_mask` (voxels outside it stay 0).
    Zscore {
        /// Statistics and normalisation inside the non-zero mask only.
        #[serde(default)]
        use_mask: bool,
    },
    /// `CTNormalization`: clip to [lower, upper], then (v − mean) / max(std, 1e-8), with the
    /// training set's foreground statistics.
    Ct {
        /// The foreground's 0.5th percentile.
        lower: f64,
        /// The foreground's 99.5th percentile.
        upper: f64,
        /// The foreground's mean.
        mean: f64,
        /// The foreground's standard deviation.
        std: f64,
    },
    /// `NoNormalization`: values as they are.
    None,
    /// `RescaleTo01Normalization`: (v − min) / max(max − min, 1e-8) over the cropped box.
    Rescale01,
    /// `RGBTo01Normalization`: v / 255; values must lie in [0, 255].
    Rgb01,
}

/// The tiled family's parameters (`slicewise.tiled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiledSpec {
    /// nnU-Net's `transpose_forward` over the volume's array axes [z, y, x]; slices are taken
    /// along transposed axis 0.
    pub transpose: [usize; 3],
    /// Target spacing (mm) of the two in-plane axes (a1, a2).
    pub spacing: [f64; 2],
    /// Tile size (p1, p2); equals the model's height and width.
    pub patch: [usize; 2],
    /// Largest tile step as a fraction of the patch (nnU-Net's `tile_step_size`).
    pub step: f64,
    /// Crop to the bounding box of the voxels non-zero in any channel first.
    pub crop_nonzero: bool,
    /// In-plane axes test-time augmentation may mirror (0 = a1, 1 = a2); empty: none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub mirror_axes: Vec<usize>,
    /// How the normalised data is resampled to the target spacing.
    pub resample_data: ResampleSpec,
    /// How the logits are resampled back to the case's spacing.
    pub resample_logits: ResampleSpec,
    /// Spacing ratio above which an axis is resampled separately (nnU-Net: 3).
    pub anisotropy_threshold: f64,
    /// One scheme per model input channel, in channel order.
    pub normalization: Vec<ChannelScheme>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
    Ok(Option::<Vec<usize>>::deserialize(d)?.unwrap_or_default())
}

/// The schemes' names, for refusals.
const SCHEMES: &str = "zscore, ct, none, rescale01, rgb01";

/// Reads and checks `slicewise.tiled` (a JSON object) for a model of `channels` input channels.
/// Refusals name the field and the problem.
pub(crate) fn parse_tiled(s: &str, channels: usize) -> Parsed<TiledSpec> {
    let raw: serde_json::Value = serde_json::from_str(s)
        .map_err(|e| Refusal::json(format!("tiled is not a JSON object: {e}"), e))?;
    let obj = raw
        .as_object()
        .ok_or_else(|| Refusal::from("tiled must be a JSON object".to_string()))?;
    check_shapes(obj)?;
    check_schemes(obj)?;
    let spec: TiledSpec = serde_json::from_value(raw.clone())
        .map_err(|e| Refusal::json(format!("tiled is not understood: {e}"), e))?;
    check_values(&spec, channels).map_err(|m| Refusal::from(format!("tiled.{m}")))?;
    Ok(spec)
}

/// The array fields' lengths, checked before serde so the refusal says what is supported.
fn check_shapes(obj: &serde_json::Map<String, serde_json::Value>) -> Parsed<()> {
    for (field, want, what) in [
        ("patch", 2, "only 2-D (in-plane) patches are supported"),
        ("spacing", 2, "the target spacing of the two in-plane axes"),
        ("transpose", 3, "a permutation of the axes 0, 1, 2"),
    ] {
        if let Some(n) = obj.get(field).and_then(|v| v.as_array()).map(Vec::len) {
            if n != want {
                return Err(Refusal::from(format!(
                    "tiled.{field} has {n} entries; {want} expected ({what})"
                )));
            }
        }
    }
    Ok(())
}

/// Unknown normalisation schemes, refused by name.
fn check_schemes(obj: &serde_json::Map<String, serde_json::Value>) -> Parsed<()> {
    let Some(list) = obj.get("normalization").and_then(|v| v.as_array()) else {
        return Ok(());
    };
    for (i, entry) in list.iter().enumerate() {
        let scheme = entry.get("scheme").and_then(|s| s.as_str());
        match scheme {
            Some("zscore" | "ct" | "none" | "rescale01" | "rgb01") => {}
            Some(other) => {
                return Err(Refusal::from(format!(
                    "tiled.normalization[{i}]: unknown scheme `{other}` (supported: {SCHEMES})"
                )))
            }
            None => {
                return Err(Refusal::from(format!(
                    "tiled.normalization[{i}] has no \"scheme\" (supported: {SCHEMES})"
                )))
            }
        }
    }
    Ok(())
}

/// Value checks; the message starts with the field's name (the caller prefixes `tiled.`).
fn check_values(t: &TiledSpec, channels: usize) -> Result<(), String> {
    let mut seen = [false; 3];
    for &a in &t.transpose {
        if a > 2 || std::mem::replace(&mut seen[a], true) {
            return Err(format!(
                "transpose {:?} is not a permutation of [0, 1, 2]",
                t.transpose
            ));
        }
    }
    if !t.spacing.iter().all(|s| s.is_finite() && *s > 0.0) {
        return Err(format!("spacing {:?} must be positive", t.spacing));
    }
    if t.patch.contains(&0) {
        return Err(format!("patch {:?} must be positive", t.patch));
    }
    if !(t.step > 0.0 && t.step <= 1.0) {
        return Err(format!("step {} must lie in (0, 1]", t.step));
    }
    let mut mirrored = [false; 2];
    for &a in &t.mirror_axes {
        if a > 1 || std::mem::replace(&mut mirrored[a], true) {
            return Err(format!(
                "mirror_axes {:?} must list distinct in-plane axes 0 and/or 1",
                t.mirror_axes
            ));
        }
    }
    for (field, r) in [
        ("resample_data", t.resample_data),
        ("resample_logits", t.resample_logits),
    ] {
        for (what, o) in [("order", r.order), ("order_z", r.order_z)] {
            if !matches!(o, 0 | 1 | 3) {
                return Err(format!("{field}.{what} {o} is not supported (0, 1 or 3)"));
            }
        }
    }
    if !(t.anisotropy_threshold.is_finite() && t.anisotropy_threshold > 0.0) {
        return Err(format!(
            "anisotropy_threshold {} must be positive",
            t.anisotropy_threshold
        ));
    }
    if t.normalization.len() != channels {
        return Err(format!(
            "normalization has {} entries but the model has {channels} input channels",
            t.normalization.len()
        ));
    }
    for (i, n) in t.normalization.iter().enumerate() {
        if let ChannelScheme::Ct {
            lower,
            upper,
            mean,
            std,
        } = *n
        {
            if !(lower.is_finite() && upper.is_finite() && mean.is_finite() && std.is_finite())
                || lower > upper
            {
                return Err(format!(
                    "normalization[{i}]: ct needs finite lower <= upper, mean and std"
                ));
            }
        }
    }
    Ok(())
}

impl TiledSpec {
    /// The mirrorings test-time augmentation runs, (flip a1, flip a2) each, the identity first,
    /// then nnU-Net's combinations of `mirror_axes` by size.
    pub fn passes(&self, tta: bool) -> Vec<(bool, bool)> {
        let mut out = vec![(false, false)];
        if !tta {
            return out;
        }
        let flip = |axes: &[usize]| (axes.contains(&0), axes.contains(&1));
        for &a in &self.mirror_axes {
            out.push(flip(&[a]));
        }
        if self.mirror_axes.len() == 2 {
            out.push((true, true));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn example() -> String {
        r#"{"transpose":[0,1,2],"spacing":[1.0,1.0],"patch":[56,40],"step":0.5,
            "crop_nonzero":true,"mirror_axes":[0,1],
            "resample_data":{"order":3,"order_z":0,"force_separate_z":null},
            "resample_logits":{"order":1,"order_z":0,"force_separate_z":null},
            "anisotropy_threshold":3.0,
            "normalization":[{"scheme":"zscore","use_mask":false}]}"#
            .to_string()
    }

    fn refusal(s: &str, channels: usize) -> String {
        match parse_tiled(s, channels) {
            Ok(t) => panic!("accepted: {t:?}"),
            Err(r) => r.message,
        }
    }

    #[test]
    fn the_example_parses() {
        let t = parse_tiled(&example(), 1).map_err(|r| r.message).unwrap();
        assert_eq!(t.patch, [56, 40]);
        assert_eq!(
            t.normalization,
            vec![ChannelScheme::Zscore { use_mask: false }]
        );
        assert_eq!(
            t.passes(true),
            vec![(false, false), (true, false), (false, true), (true, true)]
        );
        assert_eq!(t.passes(false), vec![(false, false)]);
        let none = example().replace("[0,1],\n", "null,\n");
        let t = parse_tiled(&none, 1).map_err(|r| r.message).unwrap();
        assert!(t.mirror_axes.is_empty());
        assert_eq!(t.passes(true), vec![(false, false)]);
    }

    #[test]
    fn refusals_name_the_field_and_problem() {
        let ex = example();
        for (bad, channels, want) in [
            (
                ex.replace("\"zscore\",\"use_mask\":false", "\"histeq\""),
                1,
                "tiled.normalization[0]: unknown scheme `histeq`",
            ),
            (
                ex.replace("[56,40]", "[56,40,32]"),
                1,
                "tiled.patch has 3 entries; 2 expected (only 2-D",
            ),
            (
                ex.replace("[0,1,2]", "[0,1,1]"),
                1,
                "tiled.transpose [0, 1, 1] is not a permutation",
            ),
            (
                ex.replace("\"order\":3", "\"order\":2"),
                1,
                "tiled.resample_data.order 2 is not supported",
            ),
            (
                ex.clone(),
                2,
                "tiled.normalization has 1 entries but the model has 2",
            ),
            (ex.replace("0.5,", "1.5,"), 1, "tiled.step 1.5"),
            (ex.replace("[0,1],", "[0,2],"), 1, "tiled.mirror_axes"),
            (ex.replace("[1.0,1.0]", "[1.0,-1.0]"), 1, "tiled.spacing"),
        ] {
            let m = refusal(&bad, channels);
            assert!(m.contains(want), "{want}: {m}");
        }
    }
}
