//! The conformance corpus: every DICOM, NIfTI and TIFF file of the reference packages' own test
//! data (pydicom, nibabel) plus files written by other tools for the cases they do not ship
//! (`tests/python/conformance_ref.py` assembles it and reads each file with pydicom, nibabel or
//! tifffile). Each file the reference opens as an image is opened through `Volume::open` (format
//! detection included) and must give the reference's voxels (exactly, or within the tolerance
//! the reference states: float32 rounding of rescaled values, or a lossy codec's) and geometry
//! (LPS affine to 1e-4), or an error that names the file: never a panic, a hang, or silently
//! different values. The per-file outcome is printed as a table; "differs" fails the test.

// Matrix comparisons read best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use slicewise::volume::Volume;
use slicewise::{Error, Result};

use crate::harness;

/// A real 12-bit MR series (its first file is JPEG-compressed at 12 bits by dcmtk).
const MR12_SERIES: &str = "mr-dicom-series/Study3/11-T1post-18670";
/// A real RGB MR slice (pre-contrast, FLAIR, post-contrast), for the TIFF codecs.
const RGB_TIFF: &str = "lgg/TCGA_CS_4943_20000902/TCGA_CS_4943_20000902_10.tif";

/// The first file of a folder, in name order.
fn first_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("series folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .next()
        .expect("a file in the series folder")
}

/// Longest a single read may take before it counts as a hang.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Files that must be read identically: the cases issue 16 found refused or wrong, so that a
/// regression to "refused" fails as loudly as a wrong value.
const MUST_MATCH: &[&str] = &[
    "CT_small.dcm",
    "MR_small.dcm",
    "SC_rgb_jpeg.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "MR_small_bigendian.dcm",
    "rtdose.dcm",
    "rtdose_expb.dcm",
    "rtdose_rle.dcm",
    "rtdose_expb_1frame.dcm",
    "rtdose_rle_1frame.dcm",
    "dcmtk_rtdose_big_endian.dcm",
    "dcmtk_rle_rtdose.dcm",
    "dcmtk_rle_rtdose_1frame.dcm",
    "gen_signed32_big_endian.dcm",
    "gen_rtdose_absolute_offsets.dcm",
    "gen_rtdose_decreasing_offsets.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "gen_ybr_full_planar0.dcm",
    "gen_ybr_full_planar1.dcm",
    "gen_ybr_full_422.dcm",
    "examples_palette.dcm",
    "gen_palette16.dcm",
    "gen_shear_sform.nii.gz",
    "gen_shear_nifti2.nii",
    // Issue 30: 12-bit JPEG Extended (each also compared exactly with dcmtk's dcmdjpeg), and
    // TIFF with zstd, LZMA and JPEG 2000 compression.
    "JPGExtended.dcm",
    "dcmtk_jpeg_extended12_mr.dcm",
    "dcmtk_jpeg_extended12_ct.dcm",
    "zstd_u16.tif",
    "zstd_ct_i16.tif",
    "zstd_ct_predictor_i16.tif",
    "zstd_mr_rgb_tiled_u8.tif",
    "lzma_u8.tif",
    "lzma_ct_i16.tif",
    "lzma_ct_strips_i16.tif",
    "lzma_ct_tiled_big_endian_i16.tif",
    "lzma_mr_rgb_planar_u8.tif",
    "jpeg2000_u8.tif",
    "jpeg2000_ct_i16.tif",
    "jpeg2000_ct_tiled_i16.tif",
    "jpeg2000_mr_rgb_u8.tif",
];

/// What happened to one file.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Same voxels and geometry as the reference.
    Identical,
    /// A clear error naming the file (the message).
    Refused(String),
    /// The reference cannot open it as an image; slicewise refused it too, or read it.
    NoReference(String),
    /// Read, but not what the reference reads; or an error that does not name the file; or a
    /// panic or hang.
    Differs(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Identical => "identical",
            Outcome::Refused(_) => "refused",
            Outcome::NoReference(_) => "no-reference",
            Outcome::Differs(_) => "DIFFERS",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Outcome::Identical => "",
            Outcome::Refused(s) | Outcome::NoReference(s) | Outcome::Differs(s) => s,
        }
    }
}

/// Opens `path` on a thread of its own, so that a panic is caught and a hang is reported.
fn open_guarded(path: &Path) -> std::result::Result<Result<Volume>, String> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| Volume::open(&p));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(READ_TIMEOUT) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err("panicked".into()),
        Err(_) => Err(format!("no answer within {READ_TIMEOUT:?} (hang)")),
    }
}

/// A refusal must name the file and be a format, unsupported-feature or size error.
fn refusal(path: &Path, e: &Error) -> Outcome {
    let msg = e.to_string();
    let named = path
        .file_name()
        .is_some_and(|n| msg.contains(&*n.to_string_lossy()));
    let kind_ok = matches!(
        e,
        Error::Format { .. } | Error::Unsupported { .. } | Error::TooLarge { .. }
    );
    if named && kind_ok {
        Outcome::Refused(msg)
    } else {
        Outcome::Differs(format!("unclear error ({:?}): {msg}", e.kind()))
    }
}

/// Compares a volume with the reference entry: shape, voxels within `tol`, LPS affine to 1e-4.
fn compare(v: &Volume, e: &Value) -> Outcome {
    let shape: Vec<usize> = harness::f64s(&e["shape"])
        .iter()
        .map(|&x| x as usize)
        .collect();
    if v.data.shape() != shape.as_slice() {
        return Outcome::Differs(format!("shape {:?}, reference {shape:?}", v.data.shape()));
    }
    let reference = harness::read_f32(Path::new(e["data"].as_str().expect("data")));
    let tol = e["tol"].as_f64().expect("tol") as f32;
    let mut worst = (0usize, 0f32);
    for (i, (a, b)) in v.data.iter().zip(&reference).enumerate() {
        let d = if a.is_nan() && b.is_nan() || a == b {
            0.0
        } else {
            (a - b).abs()
        };
        if d.is_nan() || d > worst.1 {
            worst = (i, if d.is_nan() { f32::INFINITY } else { d });
        }
    }
    if worst.1 > tol {
        let ours: Vec<f32> = v.data.iter().copied().collect();
        return Outcome::Differs(format!(
            "voxel {} is {}, reference {} (max difference {}, tolerance {tol}: {})",
            worst.0,
            ours[worst.0],
            reference[worst.0],
            worst.1,
            e["tol_why"].as_str().unwrap_or("")
        ));
    }
    if !e["affine_lps"].is_null() {
        let want = harness::mat4(&e["affine_lps"]);
        let got = v.geometry.affine_lps();
        for r in 0..4 {
            for c in 0..4 {
                if (got[r][c] - want[r][c]).abs() > 1e-4 {
                    return Outcome::Differs(format!(
                        "affine[{r}][{c}] is {}, reference {}",
                        got[r][c], want[r][c]
                    ));
                }
            }
        }
    }
    Outcome::Identical
}

/// The outcome of one corpus entry.
fn judge(e: &Value) -> Outcome {
    let path = PathBuf::from(e["path"].as_str().expect("path"));
    let read = match open_guarded(&path) {
        Ok(r) => r,
        Err(why) => return Outcome::Differs(why),
    };
    let has_ref = e["ref"].as_bool().unwrap_or(false);
    match (has_ref, read) {
        (true, Ok(v)) => compare(&v, e),
        (true, Err(err)) => refusal(&path, &err),
        (false, Ok(v)) => Outcome::NoReference(format!(
            "read as {:?} ({}); reference: {}",
            v.dims_xyz(),
            v.channels(),
            e["reason"].as_str().unwrap_or("")
        )),
        (false, Err(err)) => match refusal(&path, &err) {
            Outcome::Refused(m) => Outcome::NoReference(format!("refused too: {m}")),
            other => other,
        },
    }
}

fn file_name(e: &Value) -> String {
    let p = Path::new(e["path"].as_str().unwrap_or("?"));
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One line per file, then the tally per format and outcome.
fn table(rows: &[(Value, Outcome)]) -> String {
    let mut t = String::new();
    for (e, o) in rows {
        t.push_str(&format!(
            "{:<13} {:<6} {:<9} {:<44} {}\n",
            o.label(),
            e["format"].as_str().unwrap_or(""),
            e["source"].as_str().unwrap_or(""),
            file_name(e),
            o.detail().chars().take(160).collect::<String>()
        ));
    }
    for fmt in ["dicom", "nifti", "tiff"] {
        let of: Vec<&Outcome> = rows
            .iter()
            .filter(|(e, _)| e["format"] == fmt)
            .map(|(_, o)| o)
            .collect();
        let count = |l: &str| of.iter().filter(|o| o.label() == l).count();
        t.push_str(&format!(
            "{fmt}: {} files: {} identical, {} refused, {} without reference, {} differ\n",
            of.len(),
            count("identical"),
            count("refused"),
            count("no-reference"),
            count("DIFFERS")
        ));
    }
    t
}

#[test]
fn conformance_corpus_matches_reference_readers_or_is_refused_by_name() {
    let dir = harness::tmpdir();
    // dcmtk writes part of the corpus (big endian, RLE, JPEG lossless and 12-bit extended) and
    // decodes the 12-bit JPEG files a second time: named if missing.
    for t in ["dcmconv", "dcmcrle", "dcmcjpeg", "dcmdjpeg"] {
        harness::tool(t);
    }
    let ct = harness::data("dcmqi-ct3slice-seg/segmentations/ct-3slice/01.dcm");
    let mr12 = first_file(&harness::data(MR12_SERIES));
    let rgb = harness::data(RGB_TIFF);
    let r = harness::py("conformance_ref.py", &[&dir.path(), &ct, &mr12, &rgb]);
    let files = r["files"].as_array().expect("files");
    let rows: Vec<(Value, Outcome)> = files.iter().map(|e| (e.clone(), judge(e))).collect();
    let report = table(&rows);
    eprintln!("{report}");
    let differs: Vec<String> = rows
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Differs(_)))
        .map(|(e, o)| format!("{}: {}", e["path"].as_str().unwrap_or("?"), o.detail()))
        .collect();
    assert!(
        differs.is_empty(),
        "{} file(s) differ from the reference:\n{}",
        differs.len(),
        differs.join("\n")
    );
    for name in MUST_MATCH {
        // Every entry of the file (some have two references: pydicom's and dcmdjpeg's).
        let of: Vec<&Outcome> = rows
            .iter()
            .filter(|(e, _)| file_name(e) == *name)
            .map(|(_, o)| o)
            .collect();
        assert!(!of.is_empty(), "{name} is missing from the corpus");
        for o in of {
            assert_eq!(*o, Outcome::Identical, "{name}");
        }
    }
    // The corpus really is the packages' test data (a reference mix-up cannot pass empty).
    let identical = |fmt: &str| {
        rows.iter()
            .filter(|(e, o)| e["format"] == fmt && *o == Outcome::Identical)
            .count()
    };
    assert!(identical("dicom") >= 112, "{report}");
    assert!(identical("nifti") >= 9, "{report}");
    assert!(identical("tiff") >= 19, "{report}");
}
