//! [`SegmentOptions`]: how one segmentation runs (batch, threshold, test-time augmentation,
//! post-processing), declared once for every front end, and the [`CancelToken`] that stops it.
//!
//! The names are the ones users see — the CLI's `--min-size`, the server's `params` keys,
//! Python's keyword arguments, the report's `options` object — and serde uses them, so a front
//! end that takes options as a JSON object or keyword arguments deserialises them here
//! ([`SegmentOptions::from_json`]) and a new option added here reaches every one of them. The C
//! ABI's versioned struct converts in one place (`slicewise-capi`'s `segment.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Cooperative cancellation, settable from any thread.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Options for one segmentation run. `SegmentOptions::default()` is what every front end does
/// when told nothing (`slicewise segment`'s defaults); change it with the builder methods:
///
/// ```
/// use slicewise::infer::SegmentOptions;
/// let o = SegmentOptions::default().tta(true).min_size(50);
/// assert_eq!((o.batch_size, o.min_size, o.tta), (8, 50, true));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SegmentOptions {
    /// Slices per inference batch (at least 1).
    pub batch_size: usize,
    /// Overrides the model's threshold (sigmoid models), from 0 to 1.
    pub threshold: Option<f32>,
    /// Keep only the largest 3-D connected component of each label.
    pub largest_component: bool,
    /// Fill holes in each label (3-D, background not connected to the border).
    pub fill_holes: bool,
    /// Remove 3-D components smaller than this many voxels (0: keep all).
    pub min_size: usize,
    /// Average predictions over test-time augmentation: the flips the model's contract names
    /// (`tta_flips`; default the left-right mirror).
    pub tta: bool,
    /// Cancellation token checked between batches (and terminating the batch in flight). Not an
    /// option a user writes: never serialised.
    #[serde(skip)]
    pub cancel: Option<CancelToken>,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            batch_size: 8,
            threshold: None,
            largest_component: false,
            fill_holes: false,
            min_size: 0,
            tta: false,
            cancel: None,
        }
    }
}

impl SegmentOptions {
    /// The options named in a JSON object (a server's `params`, Python's keyword arguments):
    /// missing keys and keys set to `null` take the defaults, keys that are not options are
    /// ignored (a MONAI Label client sends its own), and the result is [validated](Self::validate).
    /// A value of the wrong type is an `InvalidArgument` error naming its key.
    pub fn from_json(value: &Value) -> Result<SegmentOptions> {
        let Value::Object(map) = value else {
            return Err(Error::InvalidArgument(format!(
                "options must be a JSON object, not {value}"
            )));
        };
        // null means "the default", as the front ends have always read it.
        let given: serde_json::Map<String, Value> = map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let options: SegmentOptions = from_json_named(&Value::Object(given))?;
        options.validate()?;
        Ok(options)
    }

    /// The options as a JSON object with the names users see (no cancellation token).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Checks the values every front end must refuse: `batch_size` 0, a `threshold` outside
    /// 0 to 1 (or not a number).
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch_size must be at least 1".into(),
            ));
        }
        if let Some(t) = self.threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(Error::InvalidArgument(format!(
                    "threshold must be a number from 0 to 1, not {t}"
                )));
            }
        }
        Ok(())
    }

    /// Sets the slices per inference batch.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Sets the threshold for sigmoid models (`None`: the model's).
    pub fn threshold(mut self, t: Option<f32>) -> Self {
        self.threshold = t;
        self
    }
    /// Keeps only the largest 3-D connected component of each label.
    pub fn largest_component(mut self, on: bool) -> Self {
        self.largest_component = on;
        self
    }
    /// Fills holes in each label.
    pub fn fill_holes(mut self, on: bool) -> Self {
        self.fill_holes = on;
        self
    }
    /// Removes 3-D components smaller than `voxels`.
    pub fn min_size(mut self, voxels: usize) -> Self {
        self.min_size = voxels;
        self
    }
    /// Averages over the model's test-time flips.
    pub fn tta(mut self, on: bool) -> Self {
        self.tta = on;
        self
    }
    /// Checks `token` between batches.
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }
}

/// `T` from a JSON object of options, a value of the wrong type an `InvalidArgument` error
/// naming its key (`option tta: invalid type: string "yes", expected a boolean`): how every
/// front end's option objects are read, the engine's [`SegmentOptions`] and the job layer's own.
pub fn from_json_named<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| Error::InvalidArgument(format!("option {}: {}", e.path(), e.inner())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_names_are_the_users_and_foreign_keys_are_ignored() {
        let o = SegmentOptions::from_json(&json!({
            "threshold": 0.3, "min_size": 10, "tta": true, "fill_holes": null,
            "result_extension": ".nrrd", "client_id": "x"
        }))
        .unwrap();
        assert_eq!((o.threshold, o.min_size, o.tta), (Some(0.3), 10, true));
        assert_eq!((o.batch_size, o.fill_holes), (8, false));
        let back = o.to_json();
        assert_eq!(back["min_size"], 10);
        assert_eq!(back["threshold"], json!(0.3f32));
        assert!(back.get("cancel").is_none());
        assert_eq!(
            SegmentOptions::from_json(&back).unwrap().to_json(),
            back,
            "round trip"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (v, key) in [
            (json!({"threshold": 2}), "threshold"),
            (json!({"threshold": "high"}), "threshold"),
            (json!({"min_size": -1}), "min_size"),
            (json!({"tta": "yes"}), "tta"),
            (json!({"batch_size": 0}), "batch_size"),
            (json!([1]), "object"),
        ] {
            let e = SegmentOptions::from_json(&v).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{v}");
            assert!(e.to_string().contains(key), "{v}: {e}");
        }
    }

    #[test]
    fn builder_sets_what_it_names() {
        let o = SegmentOptions::default()
            .batch_size(2)
            .threshold(Some(0.7))
            .largest_component(true)
            .fill_holes(true)
            .min_size(5)
            .tta(true);
        assert_eq!(
            (
                o.batch_size,
                o.threshold,
                o.largest_component,
                o.fill_holes,
                o.min_size,
                o.tta
            ),
            (2, Some(0.7), true, true, 5, true)
        );
        assert!(o.validate().is_ok());
        assert!(SegmentOptions::default()
            .threshold(Some(f32::NAN))
            .validate()
            .is_err());
    }
}
