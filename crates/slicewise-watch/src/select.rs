//! Which series a model takes, in two steps:
//! - [`selects`], before anything is fetched, on what QIDO-RS or Orthanc say of a series: a model
//!   takes *image* series only (not SEG, SR, PR, KO, RTSTRUCT, RTPLAN, RTDOSE, RTRECORD, DOC, REG,
//!   AU, which also keeps the watcher off the results it stores itself) with at least one instance;
//! - [`card_refuses`], once the series is fetched, on its headers: the model card's
//!   `series_selection` rules (modality, image type, orientation, sequence, description, slices),
//!   the same rules `slicewise segment` applies to a study folder (`slicewise_batch::jobs::select`).
//!   QIDO-RS does not return the headers those rules read (image type, orientation, sequence
//!   times), so they are judged on the fetched files.

use std::path::Path;

use slicewise::infer::contract::Selection;
use slicewise::infer::Model;
use slicewise::volume::dicom::list_series;
use slicewise_dicomweb::SeriesInfo;

/// Modalities that hold no image to segment.
const NOT_IMAGES: [&str; 11] = [
    "SEG", "SR", "PR", "KO", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "DOC", "REG", "AU",
];

/// `Ok` when `model` may take `series` by what the PACS says of it, else why not (said in the
/// audit line).
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

/// The rule of `model`'s card that the series fetched into `folder` fails, if any (`None` for a
/// model without rules, or a folder whose headers cannot be listed: the job then says why).
pub fn card_refuses(model: &Model, folder: &Path) -> Option<String> {
    let rules = model.contract().series_selection.as_ref()?;
    let series = list_series(folder).ok()?;
    let first = series.first()?;
    match rules.evaluate(first) {
        Selection::Selected => None,
        Selection::NotSelected(why) => Some(why),
    }
}
