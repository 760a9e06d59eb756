//! `slicewise evaluate`: compares predicted masks with ground truth (see [`slicewise::metrics`] for
//! the definitions and the empty-mask conventions).
//!
//! A pair of files (or an LGG patient folder as truth) gives one case; a pair of folders of masks
//! gives one case per name present in both (matched by file-name stem, with a trailing `_mask`
//! dropped, so `TCGA_X_mask.tif` matches the patient folder `TCGA_X` and `h_001_mask.nii.gz`
//! matches `h_001.nii.gz`).
//!
//! Label names come from the prediction (else the truth) when it is a `slicewise segment` mask:
//! the job's sidecar `<base>.slicewise.json` next to `<base>_mask.<ext>` lists the model's labels;
//! a DICOM SEG names its segments itself.
//!
//! A DICOM SEG (`.dcm`, ours or another tool's) is read as a label mask: each segment becomes its
//! segment number on the grid of the series it references, given with `--series`, else on the
//! other mask's grid (a NIfTI of that series has it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use ndarray::Array3;
use serde::{Deserialize, Serialize};

use super::masks::{self, MaskVolume};
use slicewise::error::{Error, Result};
use slicewise::metrics::{self, Metrics, SliceMeans};
use slicewise::volume::Geometry;

/// Arguments of `slicewise evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Predicted mask (any supported format) or a folder of them.
    #[arg(long)]
    pub pred: PathBuf,
    /// Ground-truth mask (any supported format, or an LGG patient folder) or a folder of them.
    #[arg(long)]
    pub truth: PathBuf,
    /// Print JSON (with per-slice metrics) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Treat every value > 0 as foreground even when the masks hold several labels.
    #[arg(long)]
    pub binary: bool,
    /// The DICOM series a DICOM SEG prediction or truth references: its segments are placed on
    /// that series' grid (default: on the other mask's grid; needed when both are SEGs).
    #[arg(long)]
    pub series: Option<PathBuf>,
}

/// Metrics of one label of one case.
#[derive(Debug, Clone, Serialize)]
pub struct LabelResult {
    /// The label value; 0 means binary mode (every value > 0 is foreground).
    pub label: u32,
    /// The label's name, when the prediction (or the truth) carries one.
    pub name: Option<String>,
    /// Whole-volume metrics.
    pub volume: Metrics,
    /// Means of the per-slice metrics (both-empty slices excluded).
    pub slice_mean: SliceMeans,
    /// Per-slice metrics along z.
    pub slices: Vec<Metrics>,
}

/// One compared pair.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Case name (the matched stem).
    pub name: String,
    /// Predicted mask path.
    pub pred: PathBuf,
    /// Truth mask path.
    pub truth: PathBuf,
    /// `[x, y, z]`.
    pub dims: [usize; 3],
    /// Voxel spacing `[x, y, z]` in mm (the truth's).
    pub spacing: [f64; 3],
    /// Per label.
    pub labels: Vec<LabelResult>,
}

/// What `evaluate --json` prints.
#[derive(Debug, Serialize)]
struct Output<'a> {
    cases: &'a [CaseResult],
    errors: &'a [(String, String)],
    mean: BTreeMap<String, MeanRow>,
    conventions: &'static str,
}

/// Means of the volume metrics over cases, per label.
#[derive(Debug, Clone, Serialize)]
struct MeanRow {
    name: Option<String>,
    cases: usize,
    dice: f64,
    iou: f64,
    precision: f64,
    recall: f64,
    accuracy: f64,
    hd95_mm: Option<f64>,
    assd_mm: Option<f64>,
    slice_dice: Option<f64>,
}

const CONVENTIONS: &str = "surface = foreground voxels with a 6-neighbour (slices: 4-neighbour) in the background, outside = background; \
distances: exact Euclidean distance transform in mm; HD95 = max of the two directed 95th percentiles (numpy linear); \
ASSD = mean of both directed distance sets; both masks empty: Dice/IoU/precision/recall 1, HD95/ASSD 0, excluded from slice means; \
one mask empty: HD95/ASSD null, zero-denominator ratios 0";

/// Runs `slicewise evaluate`.
pub fn run(args: EvaluateArgs) -> Result<ExitCode> {
    let pairs = pairs(&args.pred, &args.truth)?;
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for (name, p, t) in pairs {
        match evaluate_pair(&name, &p, &t, args.binary, args.series.as_deref()) {
            Ok(c) => cases.push(c),
            Err(e) => {
                eprintln!("slicewise: {name}: {e}");
                errors.push((name, e.to_string()));
            }
        }
    }
    let mean = means(&cases);
    if args.json {
        let out = Output {
            cases: &cases,
            errors: &errors,
            mean,
            conventions: CONVENTIONS,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&out)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?
        );
    } else {
        print_table(&cases, &mean);
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Evaluates one prediction against one truth (`series`: the DICOM series a SEG among them
/// references).
pub fn evaluate_pair(
    name: &str,
    pred: &Path,
    truth: &Path,
    binary: bool,
    series: Option<&Path>,
) -> Result<CaseResult> {
    let (p, t) = masks::read_pair(pred, truth, series)?;
    check_geometry(&p, &t)?;
    let labels = if binary { vec![0] } else { label_set(&p, &t)? };
    let mut names = t.names.clone();
    names.extend(p.names.clone());
    names.extend(label_names(pred, truth));
    let spacing = t.geometry.spacing;
    let results = labels
        .into_iter()
        .map(|l| {
            let sel = |m: &MaskVolume| -> Array3<bool> {
                if l == 0 {
                    m.values.mapv(|v| v > 0.0)
                } else {
                    m.values.mapv(|v| v.round() as u32 == l && v > 0.0)
                }
            };
            let (pb, tb) = (sel(&p), sel(&t));
            let slices = metrics::per_slice(pb.view(), tb.view(), spacing);
            LabelResult {
                label: l,
                name: names.get(&l).cloned(),
                volume: metrics::volume(pb.view(), tb.view(), spacing),
                slice_mean: metrics::slice_means(&slices),
                slices,
            }
        })
        .collect();
    let s = t.values.shape();
    Ok(CaseResult {
        name: name.to_string(),
        pred: pred.to_path_buf(),
        truth: truth.to_path_buf(),
        dims: [s[2], s[1], s[0]],
        spacing,
        labels: results,
    })
}

/// What `evaluate` reads of a `slicewise segment` job's sidecar (see `report::JobRecord`).
#[derive(Debug, Deserialize)]
struct Sidecar {
    mask: Option<SidecarFile>,
    #[serde(default)]
    labels: Vec<SidecarLabel>,
}

#[derive(Debug, Deserialize)]
struct SidecarFile {
    path: PathBuf,
}

#[derive(Debug, Deserialize)]
struct SidecarLabel {
    value: u32,
    name: String,
}

/// Label names by value: the prediction's, then the truth's for values it does not name.
fn label_names(pred: &Path, truth: &Path) -> BTreeMap<u32, String> {
    let mut names = sidecar_names(truth);
    names.extend(sidecar_names(pred));
    names
}

/// The names in the sidecar of a `slicewise segment` mask `<base>_mask.<ext>`, if it has one
/// that describes this very file (a sidecar left from another mask names nothing).
fn sidecar_names(mask: &Path) -> BTreeMap<u32, String> {
    let file_name = mask.file_name().map(|n| n.to_string_lossy().into_owned());
    let base = match (&file_name, collection_key(mask)) {
        (Some(n), Some(base)) if mask.is_file() && n.starts_with(&format!("{base}_mask.")) => base,
        _ => return BTreeMap::new(),
    };
    let Some(sidecar) = read_sidecar(&mask.with_file_name(format!("{base}.slicewise.json"))) else {
        return BTreeMap::new();
    };
    let named = |m: &SidecarFile| m.path.file_name().map(|n| n.to_string_lossy().into_owned());
    if sidecar.mask.as_ref().and_then(named) != file_name {
        return BTreeMap::new();
    }
    sidecar
        .labels
        .into_iter()
        .filter(|l| !l.name.is_empty())
        .map(|l| (l.value, l.name))
        .collect()
}

/// A sidecar, or None when there is none. Names are decoration: an unreadable sidecar is a
/// warning, never a failed evaluation.
fn read_sidecar(path: &Path) -> Option<Sidecar> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|e| {
            log::warn!(
                "{}: not a slicewise sidecar ({e}); no label names",
                path.display()
            )
        })
        .ok()
}

/// Binary (`[0]`) when each mask has at most one distinct non-zero value or any value is not an
/// integer label; else the union of the label values.
fn label_set(p: &MaskVolume, t: &MaskVolume) -> Result<Vec<u32>> {
    let mut multi = false;
    let mut union = std::collections::BTreeSet::new();
    for m in [p, t] {
        let mut seen = std::collections::BTreeSet::new();
        for &v in m.values.iter() {
            if !v.is_finite() {
                return Err(Error::format(&m.path, "mask holds a non-finite value"));
            }
            if v > 0.0 {
                if v.fract() != 0.0 || v > 65535.0 {
                    return Ok(vec![0]);
                }
                seen.insert(v as u32);
            }
        }
        multi |= seen.len() > 1;
        union.extend(seen);
    }
    Ok(if multi {
        union.into_iter().collect()
    } else {
        vec![0]
    })
}

fn check_geometry(p: &MaskVolume, t: &MaskVolume) -> Result<()> {
    if p.values.shape() != t.values.shape() {
        let d = |m: &MaskVolume| {
            let s = m.values.shape();
            format!("{}×{}×{}", s[2], s[1], s[0])
        };
        return Err(Error::InvalidArgument(format!(
            "{} is {} voxels (x×y×z) but {} is {}",
            p.path.display(),
            d(p),
            t.path.display(),
            d(t)
        )));
    }
    let close = |a: &Geometry, b: &Geometry| {
        let sp =
            (0..3).all(|i| (a.spacing[i] - b.spacing[i]).abs() <= 1e-4 * a.spacing[i].max(1.0));
        let or = (0..3).all(|i| (a.origin[i] - b.origin[i]).abs() <= 1e-3);
        let dir =
            (0..3).all(|r| (0..3).all(|c| (a.direction[r][c] - b.direction[r][c]).abs() <= 1e-4));
        sp && or && dir
    };
    if !close(&p.geometry, &t.geometry) {
        return Err(Error::InvalidArgument(format!(
            "geometry differs: {} has spacing {:?} origin {:?} orientation {}, {} has spacing {:?} origin {:?} orientation {}",
            p.path.display(),
            p.geometry.spacing,
            p.geometry.origin,
            p.geometry.orientation_code(),
            t.path.display(),
            t.geometry.spacing,
            t.geometry.origin,
            t.geometry.orientation_code()
        )));
    }
    Ok(())
}

/// A mask inside a collection folder: NIfTI, TIFF, DICOM files, or sub-folders.
fn collection_key(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    if name.starts_with('.') {
        return None;
    }
    let stem = if path.is_dir() {
        name
    } else {
        let lower = name.to_lowercase();
        let ext = [
            ".nii.gz", ".nii", ".tiff", ".tif", ".dcm", ".hdr", ".hdr.gz",
        ]
        .into_iter()
        .find(|e| lower.ends_with(e))?;
        name[..name.len() - ext.len()].to_string()
    };
    Some(stem.strip_suffix("_mask").unwrap_or(&stem).to_string())
}

/// A folder that is itself one mask (an LGG patient folder or a DICOM series), not a collection.
fn is_single(path: &Path) -> Result<bool> {
    if !path.is_dir() {
        return Ok(true);
    }
    if masks::is_mask_slice_folder(path) {
        return Ok(true);
    }
    Ok(matches!(
        slicewise::volume::detect(path),
        Ok(slicewise::volume::InputKind::Dicom)
    ))
}

fn list(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io("list folder", dir, e))? {
        let p = e.map_err(|e| Error::io("list folder", dir, e))?.path();
        if let Some(k) = collection_key(&p) {
            out.insert(k, p);
        }
    }
    Ok(out)
}

/// The (name, pred, truth) pairs to compare.
fn pairs(pred: &Path, truth: &Path) -> Result<Vec<(String, PathBuf, PathBuf)>> {
    for p in [pred, truth] {
        if !p.exists() {
            return Err(Error::io(
                "open",
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not found"),
            ));
        }
    }
    if is_single(pred)? || is_single(truth)? {
        let name = collection_key(truth).unwrap_or_else(|| truth.display().to_string());
        return Ok(vec![(name, pred.to_path_buf(), truth.to_path_buf())]);
    }
    let (ps, ts) = (list(pred)?, list(truth)?);
    let out: Vec<_> = ps
        .iter()
        .filter_map(|(k, p)| ts.get(k).map(|t| (k.clone(), p.clone(), t.clone())))
        .collect();
    if out.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no file names match between {} and {}",
            pred.display(),
            truth.display()
        )));
    }
    for k in ps.keys().filter(|k| !ts.contains_key(*k)) {
        log::warn!("{k}: no truth in {}", truth.display());
    }
    Ok(out)
}

fn means(cases: &[CaseResult]) -> BTreeMap<String, MeanRow> {
    let mut by_label: BTreeMap<u32, Vec<&LabelResult>> = BTreeMap::new();
    for c in cases {
        for l in &c.labels {
            by_label.entry(l.label).or_default().push(l);
        }
    }
    by_label
        .into_iter()
        .map(|(label, ls)| {
            let n = ls.len() as f64;
            let avg =
                |f: &dyn Fn(&Metrics) -> f64| ls.iter().map(|l| f(&l.volume)).sum::<f64>() / n;
            let opt = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            let key = if label == 0 {
                "foreground".to_string()
            } else {
                format!("label {label}")
            };
            (
                key,
                MeanRow {
                    name: ls.iter().find_map(|l| l.name.clone()),
                    cases: ls.len(),
                    dice: avg(&|m| m.dice),
                    iou: avg(&|m| m.iou),
                    precision: avg(&|m| m.precision),
                    recall: avg(&|m| m.recall),
                    accuracy: avg(&|m| m.accuracy),
                    hd95_mm: opt(ls.iter().filter_map(|l| l.volume.hd95_mm).collect()),
                    assd_mm: opt(ls.iter().filter_map(|l| l.volume.assd_mm).collect()),
                    slice_dice: opt(ls.iter().filter_map(|l| l.slice_mean.dice).collect()),
                },
            )
        })
        .collect()
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into())
}

/// One table row: the case and label columns, five ratios, three optional distances/means.
fn table_row(case: &str, label: &str, ratios: [f64; 5], opt: [Option<f64>; 3]) -> String {
    let [dice, iou, precision, recall, accuracy] = ratios;
    format!(
        "{case:<32} {label:>5} {dice:>7.4} {iou:>7.4} {precision:>7.4} {recall:>7.4} {accuracy:>8.5} {:>9} {:>9} {:>10}",
        fmt_opt(opt[0]),
        fmt_opt(opt[1]),
        fmt_opt(opt[2])
    )
}

/// "mean of 1 case", "mean of 2 cases".
fn mean_caption(cases: usize) -> String {
    format!("mean of {cases} case{}", if cases == 1 { "" } else { "s" })
}

fn print_table(cases: &[CaseResult], mean: &BTreeMap<String, MeanRow>) {
    // The name column goes last, and only when some label has a name: names hold spaces, and
    // the columns before it stay where scripts reading the table expect them.
    let named = cases
        .iter()
        .flat_map(|c| &c.labels)
        .any(|l| l.name.is_some());
    let name = |n: &Option<String>| match (named, n) {
        (false, _) => String::new(),
        (true, n) => format!(" {}", n.as_deref().unwrap_or("-")),
    };
    println!(
        "{:<32} {:>5} {:>7} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9} {:>10}{}",
        "case",
        "label",
        "dice",
        "iou",
        "prec",
        "recall",
        "accuracy",
        "hd95_mm",
        "assd_mm",
        "slice_dice",
        if named { " name" } else { "" }
    );
    for c in cases {
        for l in &c.labels {
            let m = &l.volume;
            let label = match l.label {
                0 => "fg".to_string(),
                v => v.to_string(),
            };
            let ratios = [m.dice, m.iou, m.precision, m.recall, m.accuracy];
            let opt = [m.hd95_mm, m.assd_mm, l.slice_mean.dice];
            println!(
                "{}{}",
                table_row(&c.name, &label, ratios, opt),
                name(&l.name)
            );
        }
    }
    for (k, r) in mean {
        let label = match k.as_str() {
            "foreground" => "fg",
            k => k.trim_start_matches("label "),
        };
        let ratios = [r.dice, r.iou, r.precision, r.recall, r.accuracy];
        let opt = [r.hd95_mm, r.assd_mm, r.slice_dice];
        println!(
            "{}{}",
            table_row(&mean_caption(r.cases), label, ratios, opt),
            name(&r.name)
        );
    }
}
