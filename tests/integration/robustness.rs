//! Bad input and hostile surroundings, each test named after what it guards: a closed standard
//! output, NaN/Inf voxels, stale temporaries of a killed run, unwritable output folders,
//! corrupt compressed data, and a bounded mutation loop (truncations, bit flips, runs of 0xFF
//! and 0x00 bytes) over real files of every format, each mutant read by the CLI under a memory
//! limit: a panic, an abort (a failed allocation), a hang or an unclear error fails the test;
//! and a corpus of corrupt JPEG 2000, JPEG and RLE DICOM files whose peak memory is measured
//! against a bound of a few times the file plus its declared volume.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use slicewise::{output, Error, Geometry, Mask, Volume};

use crate::{cli, harness};

const CT3: &str = "dcmqi-ct3slice-seg/segmentations/ct-3slice/01.dcm";
const SEG: &str = "dcmqi-ct3slice-seg/segmentations/liver.dcm";
const LGG_LZW: &str = "lgg/TCGA_DU_6399_19830416/TCGA_DU_6399_19830416_10.tif";
const LGG_RAW: &str = "lgg/TCGA_CS_4943_20000902/TCGA_CS_4943_20000902_10.tif";
const FLAIR_DEFLATE: &str = "lgg-flair/TCGA_CS_4941_19960909/TCGA_CS_4941_19960909_10.tif";

/// A file of a reference package's own test data, found under the project's `.venv`.
fn venv_file(rel: &str) -> PathBuf {
    let lib = harness::repo().join(".venv/lib");
    let py = std::fs::read_dir(&lib)
        .expect(".venv/lib")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("site-packages").is_dir())
        .expect("a python folder in .venv/lib");
    let p = py.join("site-packages").join(rel);
    assert!(p.is_file(), "missing {}", p.display());
    p
}

/// `println!` panicked ("failed printing to stdout: Broken pipe") when the reader of
/// `slicewise info X | head -c1` had gone; now the output is written once and a closed pipe
/// ends the command quietly with exit 0.
#[test]
fn info_into_a_closed_pipe_exits_cleanly_without_a_panic() {
    let image = harness::bundled_hippocampus().image;
    for json in [false, true] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader); // every write now fails with EPIPE
        let mut c = cli::cmd(&[&"info", &image]);
        if json {
            c.arg("--json");
        }
        let out = c.stdout(writer).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "json={json}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "json={json}: {stderr}");
        assert!(stderr.is_empty(), "json={json}: {stderr}");
    }
}

/// A float NIfTI holding NaN and Inf: read as stored, counted in a warning that says what
/// segmentation does with them (normalised over the finite voxels, 0 in their place), and
/// segmented with exit 0 and that warning in the report.
#[test]
fn nan_and_inf_voxels_are_counted_in_a_warning_and_segment_defined() {
    let dir = harness::tmpdir();
    let mut g = Geometry::identity();
    g.spacing = [1.0, 1.0, 2.0];
    let mut data = ndarray::Array4::<f32>::from_shape_fn((1, 4, 24, 20), |(_, z, y, x)| {
        (x * 3 + y * 5 + z * 7) as f32
    });
    data[[0, 0, 0, 0]] = f32::NAN;
    data[[0, 1, 5, 5]] = f32::NAN;
    data[[0, 2, 9, 9]] = f32::INFINITY;
    data[[0, 3, 1, 2]] = f32::NEG_INFINITY;
    let mut meta = slicewise::volume::VolumeMeta::new(
        "memory",
        slicewise::volume::SourceFormat::Memory,
        slicewise::volume::DType::F32,
    );
    meta.warnings.clear();
    let input = dir.path().join("nan.nii.gz");
    output::nifti::write_volume(
        &input,
        &Volume {
            data,
            geometry: g,
            meta,
        },
    )
    .unwrap();
    let v = Volume::open(&input).unwrap();
    assert!(v.data[[0, 0, 0, 0]].is_nan() && v.data[[0, 2, 9, 9]] == f32::INFINITY);
    let w = v.meta.warnings.join("\n");
    assert!(w.contains("2 NaN and 2 infinite voxel value(s)"), "{w}");

    let out = dir.path().join("out");
    let report = dir.path().join("report.json");
    cli::segment_ok(&input, &cli::test_model(), &out, &[&"--report", &report]);
    let r = cli::read_json(&report);
    let job = &r["jobs"][0];
    assert!(
        job["warnings"].to_string().contains("2 NaN and 2 infinite"),
        "{job}"
    );
    let masks: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("_mask"))
        .collect();
    assert_eq!(masks.len(), 1, "one mask written");
}

/// `kill -9` during a write leaves `.slicewise-*.part` behind. The next write into that folder
/// removes those untouched for over an hour, and leaves younger ones (another process may be
/// writing them) and files that are not ours alone.
#[test]
fn stale_temporaries_of_a_killed_run_are_removed_and_live_ones_kept() {
    let dir = harness::tmpdir();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let aged = |name: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, b"half a mask").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(two_hours_ago).unwrap();
        p
    };
    let stale = aged(".slicewise-killed1.part");
    let stale2 = aged(".slicewise-killed2.part");
    let not_ours = aged(".slicewise-notes.txt");
    let live = dir.path().join(".slicewise-live.part");
    std::fs::write(&live, b"being written").unwrap();

    let mask = dir.path().join("mask.nii.gz");
    output::write_mask(&mask, &Mask::zeros([2, 3, 4], Geometry::identity())).unwrap();
    assert!(mask.is_file());
    assert!(
        !stale.exists() && !stale2.exists(),
        "stale temporaries left"
    );
    assert!(live.exists(), "a live temporary was removed");
    assert!(not_ours.exists(), "a file that is not ours was removed");
    let parts: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert_eq!(parts, [".slicewise-live.part"], "our own write left none");
    // The function itself: nothing older than a day here.
    let n = output::remove_stale_temporaries(dir.path(), Duration::from_secs(86400));
    assert_eq!(n, 0);
}

/// An output folder no file can be created in is reported by name before any work (the batch
/// found it only after each job's inference).
#[test]
fn unwritable_output_folder_is_refused_by_name() {
    let dir = harness::tmpdir();
    output::check_writable_folder(dir.path()).unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "the probe left a file");
    // sysfs refuses new files even to root; a plain file is no folder.
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    for bad in [Path::new("/sys"), file.as_path()] {
        let e = output::check_writable_folder(bad).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        assert!(e.to_string().contains(&*bad.to_string_lossy()), "{e}");
    }
}

/// `slicewise segment --out` a folder that takes no files stops before loading the model or
/// reading any input, with exit 2 and the folder's name.
#[test]
fn segment_refuses_an_unwritable_output_folder_before_any_work() {
    let h = harness::bundled_hippocampus();
    let r = cli::run(&[
        &"segment", &h.image, &"--model", &h.model, &"--out", &"/sys",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("/sys"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("running on"),
        "the model was loaded: {}",
        r.stderr
    );
}

/// A real LZW TIFF (and a deflate one) with its compressed strips overwritten: the codec's
/// error is a format error naming the file (it was an I/O error, as if the disk had failed).
#[test]
fn corrupt_lzw_and_deflate_tiff_are_format_errors_naming_the_file() {
    let dir = harness::tmpdir();
    for (rel, name) in [(LGG_LZW, "lzw.tif"), (FLAIR_DEFLATE, "deflate.tif")] {
        let mut b = std::fs::read(harness::data(rel)).unwrap();
        let (start, end) = strip_range(&b);
        for v in &mut b[start + 4..end.min(start + 4 + 600)] {
            *v = 0xFF;
        }
        let p = dir.path().join(name);
        std::fs::write(&p, &b).unwrap();
        let e = Volume::open(&p).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{name}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(name) && msg.contains("corrupt compressed"),
            "{msg}"
        );
    }
}

/// The byte range of the first strip of a little-endian TIFF's first page (StripOffsets and
/// StripByteCounts, single values or the first of a list).
fn strip_range(b: &[u8]) -> (usize, usize) {
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
    assert_eq!(&b[..2], b"II", "little-endian TIFF");
    let ifd = u32_at(4);
    let first = |tag: usize| -> usize {
        for i in 0..u16_at(ifd) {
            let e = ifd + 2 + 12 * i;
            if u16_at(e) == tag {
                let (typ, count) = (u16_at(e + 2), u32_at(e + 4));
                let size = if typ == 3 { 2 } else { 4 };
                let at = if count * size <= 4 {
                    e + 8
                } else {
                    u32_at(e + 8)
                };
                return if typ == 3 { u16_at(at) } else { u32_at(at) };
            }
        }
        panic!("tag {tag} missing");
    };
    let start = first(273);
    (start, start + first(279))
}

/// Deterministic mutants of `bytes`: truncations, single bit flips, and 16-byte runs of 0xFF
/// and of 0x00 at pseudo-random places (the same on every run). Half the flips and runs land in
/// the first 2 KiB, where the headers the parsers trust are.
fn mutants(bytes: &[u8], seed: u64) -> Vec<(String, Vec<u8>)> {
    let n = bytes.len();
    let r = harness::uniform(seed, 64);
    let head = n.min(2048);
    let at = |k: usize| {
        let span = if k.is_multiple_of(2) { head } else { n };
        ((r[k] as f64 * span as f64) as usize).min(n - 1)
    };
    let mut out = Vec::new();
    for f in [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999] {
        let cut = ((n as f64 * f) as usize).min(n - 1);
        out.push((format!("cut{cut}"), bytes[..cut].to_vec()));
    }
    for k in 0..14 {
        let (pos, bit) = (at(k), (r[k + 20] * 8.0) as u8 % 8);
        let mut m = bytes.to_vec();
        m[pos] ^= 1 << bit;
        out.push((format!("flip{pos}.{bit}"), m));
    }
    for (k, fill) in [
        (40, 0xFFu8),
        (41, 0xFF),
        (42, 0xFF),
        (43, 0xFF),
        (44, 0),
        (45, 0),
    ] {
        let pos = at(k);
        let mut m = bytes.to_vec();
        let end = (pos + 16).min(n);
        m[pos..end].fill(fill);
        out.push((format!("run{fill:02x}@{pos}"), m));
    }
    out
}

/// Whether one mutant was read (`Ok(true)`) or refused cleanly (`Ok(false)`), or what went
/// wrong with it.
fn read_mutant(bin: &Path, path: &Path) -> Result<bool, String> {
    // 3 GB of address space: far more than any of these files needs, far less than the
    // gigabytes a corrupt length made the parser ask for.
    let script = "ulimit -v 3000000; exec timeout 120 \"$0\" info \"$1\"";
    let out = Command::new("bash")
        .args(["-c", script])
        .arg(bin)
        .arg(path)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = path.file_name().unwrap().to_string_lossy();
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) if stderr.contains(&*name) && !stderr.contains("panicked") => Ok(false),
        Some(124) => Err("hang (no answer within 120 s)".into()),
        code => Err(format!("exit {code:?}: {}", stderr.trim())),
    }
}

/// The seed files of the mutation loop, each with the extension its mutants are written
/// under: every reader (DICOM native, big-endian, RLE, JPEG, JPEG 2000, palette and YBR colour,
/// multi-frame, 1-bit SEG, implicit VR behind an explicit meta group; NIfTI-1 plain and
/// gzipped, NIfTI-2; TIFF raw, LZW and deflate).
pub(crate) fn mutant_seeds() -> Vec<(PathBuf, &'static str)> {
    let pyd = "pydicom/data/test_files/";
    vec![
        (harness::data(CT3), "dcm"),
        (venv_file(&format!("{pyd}MR_small_bigendian.dcm")), "dcm"),
        (venv_file(&format!("{pyd}MR_small_RLE.dcm")), "dcm"),
        (venv_file(&format!("{pyd}SC_rgb_jpeg_dcmtk.dcm")), "dcm"),
        (venv_file(&format!("{pyd}MR_small_jp2klossless.dcm")), "dcm"),
        (venv_file(&format!("{pyd}examples_palette.dcm")), "dcm"),
        (
            venv_file(&format!("{pyd}SC_ybr_full_422_uncompressed.dcm")),
            "dcm",
        ),
        (venv_file(&format!("{pyd}rtdose.dcm")), "dcm"),
        (venv_file(&format!("{pyd}SC_rgb_jpeg.dcm")), "dcm"),
        (harness::data(SEG), "dcm"),
        (venv_file("nibabel/tests/data/anatomical.nii"), "nii"),
        (harness::bundled_hippocampus().image, "nii.gz"),
        (
            venv_file("nibabel/tests/data/example_nifti2.nii.gz"),
            "nii.gz",
        ),
        (harness::data(LGG_RAW), "tif"),
        (harness::data(LGG_LZW), "tif"),
        (harness::data(FLAIR_DEFLATE), "tif"),
    ]
}

/// Every mutant of every seed of [`mutant_seeds`], each written into `dir` (as
/// `seed{i}.{what}.{ext}`) when the iterator reaches it: yields the seed and the mutant's path.
pub(crate) fn write_mutants(dir: &Path) -> impl Iterator<Item = (PathBuf, PathBuf)> + '_ {
    mutant_seeds()
        .into_iter()
        .enumerate()
        .flat_map(move |(i, (seed, ext))| {
            let bytes = std::fs::read(&seed).unwrap();
            mutants(&bytes, 1000 + i as u64)
                .into_iter()
                .map(move |(what, m)| {
                    let p = dir.join(format!("seed{i}.{what}.{ext}"));
                    std::fs::write(&p, &m).unwrap();
                    (seed.clone(), p)
                })
        })
}

/// The bounded fuzz run: every reader (see [`mutant_seeds`]) on mutants of real files, through
/// `slicewise info` under `ulimit -v`. Exit 0 (read) or 1 with an error naming the file pass; a
/// panic, an abort, an exhausted address space or a hang fail. The C ABI gets the same mutants
/// under ASan in `capi::volume_open_under_sanitizers_survives_mutants_of_real_files`.
#[test]
fn mutants_of_real_files_never_crash_or_hang_the_readers() {
    let dir = harness::tmpdir();
    let bin = cli::bin();
    let mut problems = Vec::new();
    let (mut count, mut refused) = (0, 0);
    for (seed, p) in write_mutants(dir.path()) {
        count += 1;
        match read_mutant(&bin, &p) {
            Err(problem) => {
                problems.push(format!("{} ({}): {problem}", p.display(), seed.display()))
            }
            Ok(read) => {
                refused += usize::from(!read);
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    assert!(count >= 300, "{count} mutants");
    // The mutants really are broken: a good share is refused (truncations alone are a quarter).
    assert!(
        refused * 4 >= count,
        "only {refused} of {count} mutants refused"
    );
    if !problems.is_empty() {
        let kept = dir.keep();
        panic!(
            "{} of {count} mutants crashed, hung or gave an unclear error (kept in {}):\n{}",
            problems.len(),
            kept.display(),
            problems.join("\n")
        );
    }
}

/// A header in the wrong unit (spacing 1e9 mm) was accepted silently: volumes in mL and
/// distances in mm are then off by the same factor. Now a warning says so; normal files get none.
#[test]
fn absurd_voxel_spacing_is_warned_about() {
    let dir = harness::tmpdir();
    let mut g = Geometry::identity();
    g.spacing = [0.8, 0.8, 1e9];
    let p = dir.path().join("absurd.nii");
    output::write_mask(&p, &Mask::zeros([2, 3, 4], g)).unwrap();
    let w = Volume::open(&p).unwrap().meta.warnings.join("\n");
    assert!(w.contains("implausible voxel spacing"), "{w}");
    let normal = Volume::open(harness::bundled_hippocampus().image).unwrap();
    assert!(
        !normal
            .meta
            .warnings
            .iter()
            .any(|w| w.contains("implausible")),
        "{:?}",
        normal.meta.warnings
    );
}

/// Where the encapsulated pixel data of a DICOM file begins: just past the last PixelData tag
/// (7FE0,0010). The mutants of the codec corpus land from there on, so the DICOM header, and the
/// volume it declares, stay as they were.
fn pixel_data_start(bytes: &[u8]) -> usize {
    let tag = [0xE0, 0x7F, 0x10, 0x00];
    bytes
        .windows(4)
        .rposition(|w| w == tag)
        .expect("a PixelData element")
        + 4
}

/// Deterministic mutants of the codestreams in `bytes`: single bit flips, random bytes, random
/// 32-bit words (a JPEG 2000 SIZ field or a JPEG frame size turned absurd) and 16-byte runs of
/// 0xFF and 0x00. Half land in the first 512 bytes of the pixel data (the codestream headers:
/// SIZ/COD/QCD, SOF/DHT/DQT, the RLE segment table), half anywhere in it.
fn codec_mutants(bytes: &[u8], seed: u64, count: usize) -> Vec<(String, Vec<u8>)> {
    let start = pixel_data_start(bytes);
    let span = bytes.len() - start;
    let r = harness::uniform(seed, 3 * count);
    (0..count)
        .map(|k| {
            let reach = if k % 2 == 0 { span.min(512) } else { span };
            let pos = start + ((r[3 * k] as f64 * reach as f64) as usize).min(span - 1);
            let v = (r[3 * k + 1] * 4_294_967_295.0) as u32;
            let mut m = bytes.to_vec();
            let what = match (r[3 * k + 2] * 5.0) as usize {
                0 => {
                    m[pos] ^= 1 << (v % 8);
                    "flip"
                }
                1 => {
                    m[pos] = v as u8;
                    "byte"
                }
                2 => {
                    let end = (pos + 4).min(m.len());
                    m[pos..end].copy_from_slice(&v.to_be_bytes()[..end - pos]);
                    "word"
                }
                k => {
                    let end = (pos + 16).min(m.len());
                    m[pos..end].fill(if k == 3 { 0xFF } else { 0 });
                    "run"
                }
            };
            (format!("{what}@{pos}"), m)
        })
        .collect()
}

/// Whether a DICOM file's transfer syntax is RLE Lossless.
fn is_rle(bytes: &[u8]) -> bool {
    bytes.windows(19).any(|w| w == b"1.2.840.10008.1.2.5")
}

/// Mutants that change only the size a codestream declares: a JPEG 2000 SIZ marker's Xsiz and
/// Ysiz (to the values that made openjp2 take 4.4 GB), its tile size (1x1 tiles), its component
/// count; a JPEG frame header's height and width (65535). None for RLE.
fn declared_size_mutants(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let start = pixel_data_start(bytes);
    let find = |pat: &[u8]| {
        bytes[start..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|i| start + i)
    };
    let mut edits: Vec<(&str, usize, Vec<u8>)> = Vec::new();
    if let Some(siz) = find(&[0xFF, 0x4F, 0xFF, 0x51]) {
        edits.push(("xsiz", siz + 8, 0x0020_0200u32.to_be_bytes().to_vec()));
        edits.push(("ysiz", siz + 12, 0x0100_0200u32.to_be_bytes().to_vec()));
        edits.push(("tiles", siz + 24, [0, 0, 0, 1, 0, 0, 0, 1].to_vec()));
        edits.push(("csiz", siz + 40, vec![0x01, 0x00]));
    } else if let Some(sof) = (0xC0..=0xC3u8).find_map(|m| find(&[0xFF, m])) {
        edits.push(("height", sof + 5, vec![0xFF, 0xFF]));
        edits.push(("width", sof + 7, vec![0xFF, 0xFF]));
    }
    edits
        .into_iter()
        .map(|(what, at, with)| {
            let mut m = bytes.to_vec();
            m[at..at + with.len()].copy_from_slice(&with);
            (what.to_string(), m)
        })
        .collect()
}

/// Deterministic mutants of the DICOM header of `bytes` (after the preamble, before the pixel
/// data): bit flips, random bytes and 0xFFFFFFFF words; and one whose first data-set UI
/// element's VR is corrupted to "U!" (read as UN, the next four value bytes become a length of
/// hundreds of MB: the "Could not read data set token" after 1.67 GB).
fn header_mutants(bytes: &[u8], seed: u64, count: usize) -> Vec<(String, Vec<u8>)> {
    let end = pixel_data_start(bytes);
    let r = harness::uniform(seed, 3 * count);
    let mut out: Vec<(String, Vec<u8>)> = (0..count)
        .map(|k| {
            let pos = 132 + ((r[3 * k] as f64 * (end - 132) as f64) as usize).min(end - 133);
            let v = (r[3 * k + 1] * 255.0) as u8;
            let mut m = bytes.to_vec();
            let what = match (r[3 * k + 2] * 3.0) as usize {
                0 => {
                    m[pos] ^= 1 << (v % 8);
                    "hflip"
                }
                1 => {
                    m[pos] = v;
                    "hbyte"
                }
                _ => {
                    m[pos..pos + 4].fill(0xFF);
                    "hword"
                }
            };
            (format!("{what}@{pos}"), m)
        })
        .collect();
    // The first "UI" VR of the data set (group 0008, past the meta group's group 0002).
    let ui =
        (132..end - 6).find(|&i| bytes[i..i + 2] == [0x08, 0x00] && &bytes[i + 4..i + 6] == b"UI");
    if let Some(i) = ui {
        let mut m = bytes.to_vec();
        m[i + 5] = b'!';
        out.push((format!("vr@{}", i + 4), m));
    }
    out
}

/// `slicewise info` on `path` under an address-space limit of `limit_kb`; (exit code, stderr
/// without the last line, peak RSS in KiB from GNU time's last line).
fn info_with_peak(bin: &Path, path: &Path, limit_kb: u64) -> (Option<i32>, String, u64) {
    let script = format!(
        "ulimit -v {limit_kb}; exec /usr/bin/time -f 'peak-rss-kb %M' timeout 60 \"$0\" info \"$1\""
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .arg(bin)
        .arg(path)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, last) = stderr
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", stderr.trim_end()));
    let peak = last
        .strip_prefix("peak-rss-kb ")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time: {stderr}"));
    (out.status.code(), rest.to_string(), peak)
}

/// The seeds of the codec corpus: real JPEG 2000 (a 512x512 CT slice, the totalseg series'
/// first file, and pydicom's MR), JPEG (baseline RGB; lossless and 12-bit extended written by
/// dcmtk from real CT and MR slices) and RLE (pydicom's MR; dcmtk's of the CT slice) files.
fn codec_seeds(dir: &Path) -> Vec<PathBuf> {
    let pyd = "pydicom/data/test_files/";
    let totalseg = harness::data("totalseg-ref/tests/reference_files/example_ct_dicom");
    let mut j2k_ct: Vec<PathBuf> = std::fs::read_dir(&totalseg)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    j2k_ct.sort();
    let mr12 = harness::data("mr-dicom-series/Study3/11-T1post-18670/000000.dcm");
    let mut seeds = vec![
        j2k_ct.swap_remove(0),
        venv_file(&format!("{pyd}MR_small_jp2klossless.dcm")),
        venv_file(&format!("{pyd}SC_rgb_jpeg_dcmtk.dcm")),
        venv_file(&format!("{pyd}MR_small_RLE.dcm")),
    ];
    for (tool, opt, src, name) in [
        (
            "dcmcjpeg",
            "+el",
            harness::data(CT3),
            "jpeg_lossless_ct.dcm",
        ),
        ("dcmcjpeg", "+ee", mr12, "jpeg_extended12_mr.dcm"),
        ("dcmcrle", "+cd", harness::data(CT3), "rle_ct.dcm"),
    ] {
        let dst = dir.join(name);
        let st = Command::new(harness::tool(tool))
            .arg(opt)
            .arg(&src)
            .arg(&dst)
            .status()
            .unwrap();
        assert!(st.success(), "{tool} {opt} {}", src.display());
        seeds.push(dst);
    }
    seeds
}

/// Issue 30: a 0.5 MB DICOM with a corrupted JPEG 2000 stream drove `slicewise info` to 1.67 GB
/// (one flipped bit in the SIZ marker's Xsiz: 4.4 GB and 15 s here) before an error, and a
/// declared width larger than the header's panicked in the codec adapter; a corrupted VR in the
/// header made the parser allocate hundreds of MB. Each mutant of the corpus (see
/// [`codec_mutants`], [`declared_size_mutants`], [`header_mutants`]) must now be read or refused naming the file, without
/// "panicked" on stderr, within 60 s, and with a peak RSS under 48 MiB (the process itself)
/// plus 4 × (the file + its declared volume as f32). A 1 GiB address-space limit turns any
/// runaway allocation into a failed run instead of a burden on the machine.
#[test]
fn corrupt_jpeg2000_jpeg_and_rle_dicom_end_cleanly_within_bounded_memory() {
    let dir = harness::tmpdir();
    let bin = cli::bin();
    harness::tool("time");
    let (mut problems, mut count, mut worst) = (Vec::new(), 0usize, (0u64, String::new()));
    for (i, seed) in codec_seeds(dir.path()).iter().enumerate() {
        let bytes = std::fs::read(seed).unwrap();
        let volume = Volume::open(seed).expect("the seed reads");
        let declared = volume.data.len() as u64 * 4;
        let bound_kb = 48 * 1024 + 4 * (bytes.len() as u64 + declared) / 1024;
        let mut mutants = declared_size_mutants(&bytes);
        mutants.extend(codec_mutants(&bytes, 3000 + i as u64, 24));
        // Header mutants may declare a larger volume (Rows, NumberOfFrames); the compressed
        // seeds refuse any that disagrees with their codestream, but RLE decodes to what the
        // header says, which the seed's volume does not bound: those are left to the mutation
        // loop above.
        if !is_rle(&bytes) {
            mutants.extend(header_mutants(&bytes, 4000 + i as u64, 12));
        }
        for (what, m) in mutants {
            let p = dir.path().join(format!("codec{i}.{what}.dcm"));
            std::fs::write(&p, &m).unwrap();
            count += 1;
            let (code, stderr, peak) = info_with_peak(&bin, &p, 1 << 20);
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let clean = match code {
                Some(0) => true,
                Some(1) => stderr.contains(&name),
                _ => false,
            };
            if !clean || stderr.contains("panicked") || peak > bound_kb {
                problems.push(format!(
                    "{name} (seed {}): exit {code:?}, peak {peak} KiB (bound {bound_kb}): {}",
                    seed.display(),
                    stderr.trim()
                ));
            } else {
                std::fs::remove_file(&p).unwrap();
            }
            if peak > worst.0 {
                worst = (peak, name);
            }
        }
    }
    eprintln!(
        "{count} codec mutants; highest peak RSS {} KiB ({})",
        worst.0, worst.1
    );
    assert!(count >= 220, "{count} mutants");
    if !problems.is_empty() {
        let kept = dir.keep();
        panic!(
            "{} of {count} corrupt codec files crashed, hung, gave an unclear error or exceeded \
             the memory bound (kept in {}):\n{}",
            problems.len(),
            kept.display(),
            problems.join("\n")
        );
    }
}

/// pydicom's UN_sequence.dcm (674 bytes; a private UN element of undefined length holding
/// implicit-VR items) made the DICOM parser, which reads those items in explicit VR, allocate a
/// garbage length: 3.6 GB peak and 49 s before "Could not read data set token". The length
/// pre-flight now follows the parser's reading and refuses the file at once, naming the element
/// and how to convert the file.
#[test]
fn undefined_length_un_with_implicit_items_is_refused_without_the_parsers_blow_up() {
    let file = venv_file("pydicom/data/test_files/UN_sequence.dcm");
    let bin = cli::bin(); // may build it: not part of the timing
    let started = std::time::Instant::now();
    let (code, stderr, peak) = info_with_peak(&bin, &file, 1 << 20);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("UN_sequence.dcm") && stderr.contains("(4453,100C)"),
        "{stderr}"
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
