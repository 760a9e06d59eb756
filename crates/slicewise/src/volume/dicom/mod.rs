//! DICOM series reading: a file, a folder or a folder tree → one [`Volume`].
//!
//! Files are grouped by SeriesInstanceUID ([`list_series`]); one series is read, its frames
//! (single-frame files and/or multi-frame objects with functional groups) sorted along the slice
//! normal. Geometry follows DICOM directly (LPS): origin = ImagePositionPatient of the first
//! slice, i axis = IOP row cosine (direction of increasing column index), j axis = IOP column
//! cosine, k axis = the normalised step between the first and last slice (equal to the normal
//! unless the gantry is tilted), spacing = [PixelSpacing[1], PixelSpacing[0], slice step].
//!
//! Values are real-world: `slope * stored + intercept` (per frame when the functional groups
//! say so; DoseGridScaling for RT dose). Colour becomes three RGB channels as pydicom gives it:
//! RGB as stored, YBR_FULL and YBR_FULL_422 converted (`pixel_array`'s default conversion; the
//! JPEG codecs convert by themselves), PALETTE COLOR expanded through its lookup tables
//! (`apply_color_lut`). Classic multi-frame objects (RT dose) place their frames by
//! GridFrameOffsetVector, relative or absolute. Attributes written with VR UN are read with their
//! dictionary meaning, as pydicom reads them. MONOCHROME1 data is inverted on its stored range (`min + max - v`, before rescale)
//! so that higher values are always brighter; a warning says so. Duplicate slice positions are
//! an error (the series holds several volumes); gaps and tilt are warnings in `meta.warnings`.

mod assemble;
mod colour;
mod jpeg12;
mod pixels;
mod plane;
mod rle;
mod scan;
mod series;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{DType, DicomRefs, ReadOptions, SliceRef, SourceFormat, Volume, VolumeMeta};
use crate::error::{Error, Result};
use ndarray::Array4;
use scan::Header;
pub use series::{Plane, SequenceFacts, SeriesInfo};

/// At most this many skipped-file warnings are listed one by one.
const MAX_SKIP_WARNINGS: usize = 20;

/// Reads a DICOM file, folder or folder tree.
pub fn read(path: &Path, options: &ReadOptions) -> Result<Volume> {
    let scan = scan::scan(path, options)?;
    let groups = group(&scan.headers);
    let chosen = choose(path, &groups, &scan.headers, options)?;
    let headers: Vec<Header> = chosen.iter().map(|&i| scan.headers[i].clone()).collect();
    let mut volume = read_series(path, &headers, options)?;
    let n = scan.skipped.len();
    let mut skipped: Vec<String> = scan.skipped.into_iter().take(MAX_SKIP_WARNINGS).collect();
    if n > MAX_SKIP_WARNINGS {
        skipped.push(format!(
            "... and {} more files skipped",
            n - MAX_SKIP_WARNINGS
        ));
    }
    volume.meta.warnings.extend(skipped);
    Ok(volume)
}

/// Lists the series of DICOM images found in a file, folder or folder tree.
pub fn list_series(path: &Path) -> Result<Vec<SeriesInfo>> {
    let scan = scan::scan(path, &ReadOptions::default())?;
    Ok(group(&scan.headers)
        .iter()
        .map(|(uid, idx)| info(uid, idx, &scan.headers))
        .collect())
}

/// True when any file below `dir` looks like DICOM.
pub fn folder_has_dicom(dir: &Path) -> Result<bool> {
    for f in scan::candidate_files(dir)? {
        // Unreadable entries are not DICOM evidence either way.
        if let Ok(head) = super::read_head(&f, 132) {
            if scan::looks_like_dicom(&head) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Header indices grouped by series UID, in order of first appearance.
fn group(headers: &[Header]) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        match groups.iter_mut().find(|g| g.0 == h.series_uid) {
            Some(g) => g.1.push(i),
            None => groups.push((h.series_uid.clone(), vec![i])),
        }
    }
    groups
}

fn info(uid: &str, idx: &[usize], headers: &[Header]) -> SeriesInfo {
    let first = &headers[idx[0]];
    let slices = idx.iter().map(|&i| headers[i].frames.len()).sum();
    SeriesInfo {
        uid: uid.to_string(),
        description: first.description.clone(),
        modality: first.modality.clone(),
        slices,
        files: idx.len(),
        dims: [first.cols as usize, first.rows as usize, slices],
        first_file: first.path.clone(),
        number: first.series_number,
        image_type: first.image_type.clone(),
        orientation: first.frames.first().and_then(|f| f.orientation),
        sequence: first.sequence.clone(),
    }
}

fn describe(groups: &[(String, Vec<usize>)], headers: &[Header]) -> String {
    groups
        .iter()
        .map(|(uid, idx)| {
            let s = info(uid, idx, headers);
            format!(
                "{} \"{}\" ({} slices)",
                if uid.is_empty() {
                    "<no SeriesInstanceUID>"
                } else {
                    uid
                },
                s.description.unwrap_or_default(),
                s.slices
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn choose<'a>(
    path: &Path,
    groups: &'a [(String, Vec<usize>)],
    headers: &[Header],
    options: &ReadOptions,
) -> Result<&'a [usize]> {
    match &options.series_uid {
        Some(uid) => groups
            .iter()
            .find(|g| g.0 == uid.trim())
            .map(|g| g.1.as_slice())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{}: no series with UID {uid}; found: {}",
                    path.display(),
                    describe(groups, headers)
                ))
            }),
        None if groups.len() == 1 => Ok(&groups[0].1),
        None => Err(Error::InvalidArgument(format!(
            "{}: holds {} DICOM series, choose one by SeriesInstanceUID: {}",
            path.display(),
            groups.len(),
            describe(groups, headers)
        ))),
    }
}

fn dtype(h: &Header) -> DType {
    match (h.bits_allocated, h.signed) {
        (1, _) => DType::Bool,
        (8, false) => DType::U8,
        (8, true) => DType::I8,
        (16, false) => DType::U16,
        (16, true) => DType::I16,
        (32, false) => DType::U32,
        _ => DType::I32,
    }
}

/// Reads one series (its headers already scanned) into a volume.
fn read_series(source: &Path, headers: &[Header], options: &ReadOptions) -> Result<Volume> {
    let asm = assemble::assemble(source, headers)?;
    let first = &headers[0];
    for h in headers {
        if h.bits_allocated != first.bits_allocated || h.photometric != first.photometric {
            return Err(Error::format(
                &h.path,
                format!(
                    "BitsAllocated {} / {} differ from {} in the same series",
                    h.bits_allocated,
                    h.photometric,
                    first.path.display()
                ),
            ));
        }
    }
    // A palette image's single index becomes three RGB channels.
    let channels = if first.palette.is_some() {
        3
    } else {
        first.samples_per_pixel
    };
    let (c, z, y, x) = (
        channels as usize,
        asm.order.len(),
        first.rows as usize,
        first.cols as usize,
    );
    options.check_size(source, &[c as u64, z as u64, y as u64, x as u64])?;
    // z index of every (file, frame).
    let mut z_of: Vec<Vec<usize>> = headers.iter().map(|h| vec![0; h.frames.len()]).collect();
    for (zi, f) in asm.order.iter().enumerate() {
        z_of[f.file][f.frame] = zi;
    }
    let data = Mutex::new(Array4::<f32>::zeros((c, z, y, x)));
    decode_all(headers, &z_of, &data)?;
    let data = data
        .into_inner()
        .map_err(|_| Error::format(source, "pixel decoding worker failed"))?;

    let mut meta = VolumeMeta::new(source, SourceFormat::Dicom, dtype(first));
    meta.modality = first.modality.clone();
    meta.series_uid = Some(first.series_uid.clone()).filter(|s| !s.is_empty());
    meta.description = first.description.clone();
    if c == 3 {
        meta.channel_names = vec!["R".into(), "G".into(), "B".into()];
    }
    meta.warnings = asm.warnings;
    if first.photometric == "MONOCHROME1" {
        meta.warnings.push(
            "MONOCHROME1: values inverted on the stored range (min + max - v) so that higher is \
             brighter"
                .into(),
        );
    }
    if headers.iter().any(|h| !h.has_meta) {
        meta.warnings
            .push("file(s) without a DICOM meta group: read as raw data sets".into());
    }
    meta.dicom = Some(DicomRefs {
        study_uid: first.study_uid.clone(),
        series_uid: first.series_uid.clone(),
        frame_of_reference_uid: first.frame_of_reference_uid.clone(),
        slices: asm
            .order
            .iter()
            .map(|f| {
                let h = &headers[f.file];
                SliceRef {
                    sop_class_uid: h.sop_class_uid.clone(),
                    sop_instance_uid: h.sop_instance_uid.clone(),
                    frame: if h.multi_frame { f.frame as u32 + 1 } else { 0 },
                }
            })
            .collect(),
        copied_attributes: first.copied.clone(),
    });
    Ok(Volume {
        data,
        geometry: asm.geometry,
        meta,
    })
}

/// Decodes every file into `data`, on up to `available_parallelism` threads (codecs such as
/// JPEG 2000 dominate read time).
fn decode_all(headers: &[Header], z_of: &[Vec<usize>], data: &Mutex<Array4<f32>>) -> Result<()> {
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(headers.len())
        .clamp(1, 16);
    let work = || -> Result<()> {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(h) = headers.get(i) else {
                return Ok(());
            };
            pixels::decode_file(h, |frame, plane| {
                let zi = z_of[i][frame];
                let mut d = data
                    .lock()
                    .map_err(|_| Error::format(&h.path, "pixel decoding worker failed"))?;
                let (c, _, y, x) = d.dim();
                for ci in 0..c {
                    let src = &plane[ci * y * x..(ci + 1) * y * x];
                    let mut dst = d.slice_mut(ndarray::s![ci, zi, .., ..]);
                    for (o, v) in dst.iter_mut().zip(src) {
                        *o = *v;
                    }
                }
                Ok(())
            })?;
        }
    };
    if threads == 1 {
        return work();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        let mut result = Ok(());
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(Error::Panic("DICOM decoding thread panicked".into())));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}
