//! Which series a model takes: the one call the watcher makes to decide, [`selects`].
//!
//! INTERIM: until the model card declares its series selection rules (issue 32, another
//! branch), a model takes every *image* series: any series whose Modality is not a non-image
//! object (SEG, SR, PR, KO, RTSTRUCT, RTPLAN, RTDOSE, RTRECORD, DOC, REG, AU),
//! which also keeps the watcher off the results it stores itself, and which has at least one
//! instance. When the card's rules land, [`selects`] calls them instead, with the same answer
//! shape (the reason a series is not taken).

use slicewise::infer::Model;
use slicewise_dicomweb::SeriesInfo;

/// Modalities that hold no image to segment.
const NOT_IMAGES: [&str; 11] = [
    "SEG", "SR", "PR", "KO", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "DOC", "REG", "AU",
];

/// `Ok` when `model` takes `series`, else why not (said in the audit line).
pub fn selects(_model: &Model, series: &SeriesInfo) -> Result<(), String> {
    if let Some(m) = series
        .modality
        .as_deref()
        .filter(|m| NOT_IMAGES.contains(m))
    {
        return Err(format!("modality {m} is not an image"));
    }
    if series.instances == Some(0) {
        return Err("the series has no instances".into());
    }
    Ok(())
}
