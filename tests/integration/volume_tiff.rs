//! TIFF reading and writing against tifffile: generated fixtures covering every sample type,
//! compression, predictor, layout and metadata flavour, the real LGG slice folders, round trips
//! through our writers, and a corpus of malformed inputs.

use std::path::{Path, PathBuf};

use slicewise::volume::tiff::{read, read_mask_folder, slice_pairs};
use slicewise::{Error, Geometry, LabelInfo, Mask, ReadOptions, Volume};

use crate::harness;

fn flat(v: &Volume) -> Vec<f32> {
    v.data.iter().copied().collect()
}

fn check_against(v: &Volume, case: &serde_json::Value, what: &str) -> Result<(), String> {
    let shape: Vec<usize> = harness::f64s(&case["shape"])
        .iter()
        .map(|&x| x as usize)
        .collect();
    if v.data.shape() != shape.as_slice() {
        return Err(format!(
            "{what}: shape {:?} vs tifffile {shape:?}",
            v.data.shape()
        ));
    }
    let reference = harness::read_f32(Path::new(case["ref"].as_str().unwrap()));
    let ours = flat(v);
    if let Some((i, (a, b))) = ours
        .iter()
        .zip(&reference)
        .enumerate()
        .find(|(_, (a, b))| a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan()))
    {
        return Err(format!("{what}: voxel {i} is {a}, tifffile says {b}"));
    }
    let spacing = v.geometry.spacing;
    if case["spacing"].is_null() {
        if spacing != [1.0; 3]
            || !v
                .meta
                .warnings
                .iter()
                .any(|w| w == "no spacing in file; assumed 1 mm")
        {
            return Err(format!(
                "{what}: expected 1 mm with a warning, got {spacing:?} {:?}",
                v.meta.warnings
            ));
        }
    } else {
        let want = harness::f64s(&case["spacing"]);
        for a in 0..3 {
            if (spacing[a] - want[a]).abs() > 1e-6 * want[a].abs().max(1e-3) {
                return Err(format!("{what}: spacing {spacing:?} vs tifffile {want:?}"));
            }
        }
    }
    if v.geometry.origin != [0.0; 3] || v.geometry.direction != Geometry::identity().direction {
        return Err(format!("{what}: origin/direction not identity"));
    }
    Ok(())
}

#[test]
fn generated_fixtures_match_tifffile() {
    let dir = harness::tmpdir();
    let out = harness::py("tiff_gen.py", &[&dir.path()]);
    let cases = out["cases"].as_array().unwrap();
    assert!(cases.len() > 40);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let file = PathBuf::from(case["file"].as_str().unwrap());
        let result = read(&file, &ReadOptions::default());
        match (case["error"].as_str(), result) {
            (None, Ok(v)) => {
                if let Err(e) = check_against(&v, case, name) {
                    failures.push(e);
                }
                let rgb = name.starts_with("rgb") || name.contains("planar_rgb");
                if rgb && v.meta.channel_names != ["R", "G", "B"] {
                    failures.push(format!("{name}: channel names {:?}", v.meta.channel_names));
                }
                if name.contains("alpha") && !v.meta.warnings.iter().any(|w| w.contains("alpha")) {
                    failures.push(format!("{name}: no warning about the dropped alpha"));
                }
            }
            (None, Err(e)) => failures.push(format!("{name}: {e}")),
            (Some(kind), Ok(_)) => failures.push(format!("{name}: read but expected {kind} error")),
            (Some(kind), Err(e)) => {
                let ok = match kind {
                    "unsupported" => matches!(e, Error::Unsupported { .. }),
                    _ => matches!(e, Error::Format { .. }),
                };
                if !ok || !e.to_string().contains(name) {
                    failures.push(format!("{name}: wrong error {e:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// An uncompressed and an LZW patient: numeric slice order, masks not counted, mask folder.
#[test]
fn lgg_folders_match_tifffile() {
    for patient in ["TCGA_CS_4943_20000902", "TCGA_DU_6399_19830416"] {
        let dir = harness::data(&format!("lgg/{patient}"));
        let tmp = harness::tmpdir();
        let r = harness::py("tiff_lgg.py", &[&dir, &tmp.path()]);
        let n = r["images"].as_array().unwrap().len();
        assert!(n > 10, "{patient}: {n} slices");

        let pairs = slice_pairs(&dir).unwrap();
        let names: Vec<String> = pairs
            .iter()
            .map(|p| p.image.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let want: Vec<String> = r["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, want, "{patient}: slice order");
        assert!(names[1].ends_with("_2.tif") && names[9].ends_with("_10.tif"));
        assert!(pairs.iter().all(|p| p.mask.is_some()));

        let v = read(&dir, &ReadOptions::default()).unwrap();
        assert_eq!(v.data.shape(), &[3, n, 256, 256], "{patient}");
        assert_eq!(v.meta.channel_names, ["R", "G", "B"]);
        let img = harness::read_f32(&tmp.path().join("image.f32"));
        harness::assert_close(&flat(&v), &img, 0.0, patient);
        assert_eq!(v.geometry.spacing, [1.0; 3]);
        assert!(v.meta.warnings.iter().any(|w| w.contains("assumed 1 mm")));

        let m = read_mask_folder(&dir, &ReadOptions::default()).unwrap();
        assert_eq!(m.data.shape(), &[1, n, 256, 256], "{patient} mask");
        let mask = harness::read_f32(&tmp.path().join("mask.f32"));
        harness::assert_close(&flat(&m), &mask, 0.0, &format!("{patient} mask"));
        assert!(mask.contains(&255.0), "{patient}: masks hold tumour");
        // Through the generic entry point too.
        let v2 = Volume::open(&dir).unwrap();
        assert_eq!(v2.data, v.data);
    }
}

fn round_trip(path: &Path, tmp: &Path) -> serde_json::Value {
    harness::py("tiff_read.py", &[&path, &tmp.join("rt.f32")])
}

#[test]
fn writers_round_trip_through_tifffile() {
    let tmp = harness::tmpdir();
    let mut g = Geometry::identity();
    g.spacing = [0.9375, 0.5, 6.5];
    g.origin = [3.0, 4.0, 5.0];

    // Mask: uint8 pages.
    let mut mask = Mask::zeros([4, 9, 13], g);
    for (i, v) in mask.labels.iter_mut().enumerate() {
        *v = (i * 7 % 5) as u8;
    }
    mask.label_info.push(LabelInfo {
        value: 1,
        name: "t".into(),
        color: [1, 2, 3],
    });
    let p = tmp.path().join("mask.tif");
    slicewise::output::write_mask(&p, &mask).unwrap();
    let r = round_trip(&p, tmp.path());
    assert_eq!(r["dtype"], "uint8");
    assert_eq!(harness::f64s(&r["shape"]), [4.0, 9.0, 13.0]);
    let got = harness::read_f32(&tmp.path().join("rt.f32"));
    let want: Vec<f32> = mask.labels.iter().map(|&x| x as f32).collect();
    harness::assert_close(&got, &want, 0.0, "mask via tifffile");
    assert_eq!(r["compression"], 5);
    let sp = harness::f64s(&r["spacing"]);
    for a in 0..3 {
        assert!((sp[a] - g.spacing[a]).abs() < 1e-5, "mask spacing {sp:?}");
    }
    let back = read(&p, &ReadOptions::default()).unwrap();
    assert!(back.meta.warnings.is_empty(), "{:?}", back.meta.warnings);
    for a in 0..3 {
        assert!((back.geometry.spacing[a] - g.spacing[a]).abs() < 1e-5);
    }

    // Volumes: 1 channel float, 3 channels u8-valued (RGB pages), 2 channels (hyperstack).
    for (c, rgb) in [(1usize, false), (3, true), (2, false)] {
        let mut data = ndarray::Array4::<f32>::zeros((c, 5, 9, 13));
        for (i, v) in data.iter_mut().enumerate() {
            *v = if rgb {
                (i % 256) as f32
            } else {
                i as f32 * 0.37 - 100.0
            };
        }
        let meta = slicewise::volume::VolumeMeta::new(
            "mem",
            slicewise::volume::SourceFormat::Memory,
            slicewise::volume::DType::F32,
        );
        let vol = Volume {
            data: data.clone(),
            geometry: g,
            meta,
        };
        let p = tmp.path().join(format!("vol{c}.tif"));
        slicewise::output::write_volume(&p, &vol).unwrap();
        let r = round_trip(&p, tmp.path());
        assert_eq!(
            r["dtype"],
            if rgb { "uint8" } else { "float32" },
            "{c} channels"
        );
        let got = harness::read_f32(&tmp.path().join("rt.f32"));
        // tiff_read.py rearranges to [c, z, y, x].
        harness::assert_close(
            &got,
            data.as_slice().unwrap(),
            0.0,
            &format!("{c}-channel volume"),
        );
        let sp = harness::f64s(&r["spacing"]);
        for a in 0..3 {
            assert!((sp[a] - g.spacing[a]).abs() < 1e-5, "volume spacing {sp:?}");
        }
        let back = read(&p, &ReadOptions::default()).unwrap();
        assert_eq!(back.data, data, "{c}-channel volume through our reader");
    }
}

fn expect_err(path: &Path, options: &ReadOptions, name: &str) {
    let r = std::panic::catch_unwind(|| read(path, options));
    let r = r.unwrap_or_else(|_| panic!("{name}: panicked"));
    let e = match r {
        Ok(v) => panic!("{name}: read {:?}", v.data.shape()),
        Err(e) => e,
    };
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        e.to_string().contains(&file),
        "{name}: error does not name the file: {e}"
    );
}

/// A minimal little-endian classic TIFF header with one IFD of the given (tag, type, value).
fn crafted(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut b = b"II*\0".to_vec();
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for &(tag, ty, v) in entries {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 16]);
    b
}

#[test]
fn malformed_corpus_gives_errors_not_panics() {
    let tmp = harness::tmpdir();
    let d = tmp.path();
    let opts = ReadOptions::default();
    // A real file to damage: an LZW LGG slice.
    let src = harness::data("lgg/TCGA_DU_6399_19830416/TCGA_DU_6399_19830416_10.tif");
    let good = std::fs::read(&src).unwrap();
    let mut n = 0;
    for cut in [4usize, 8, 12, 100, good.len() / 2, good.len() - 10] {
        let p = d.join(format!("trunc_{cut}.tif"));
        std::fs::write(&p, &good[..cut.min(good.len())]).unwrap();
        expect_err(&p, &opts, "truncated");
        n += 1;
    }
    // Corrupt bytes in the middle of the image data and the IFD area.
    for (i, at) in [(0usize, good.len() / 3), (1, good.len() - 200), (2, 10)].into_iter() {
        let mut bad = good.clone();
        for k in 0..64 {
            if let Some(b) = bad.get_mut(at + k) {
                *b ^= 0xA5;
            }
        }
        let p = d.join(format!("corrupt_{i}.tif"));
        std::fs::write(&p, &bad).unwrap();
        // Corrupted compressed data may still decode; it must not panic.
        let r = std::panic::catch_unwind(|| read(&p, &opts));
        assert!(r.is_ok(), "corrupt_{i}: panicked");
    }
    let p = d.join("wrong_magic.tif");
    std::fs::write(&p, b"PK\x03\x04 not a tiff at all").unwrap();
    expect_err(&p, &opts, "wrong magic");
    let p = d.join("empty.tif");
    std::fs::write(&p, b"").unwrap();
    expect_err(&p, &opts, "empty");
    // 2^31 x 2^31 pixels, declared in a few bytes.
    let huge = crafted(&[
        (256, 4, 1 << 31),
        (257, 4, 1 << 31),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8),
        (277, 3, 1),
        (278, 4, 1 << 31),
        (279, 4, 16),
    ]);
    let p = d.join("huge.tif");
    std::fs::write(&p, &huge).unwrap();
    expect_err(&p, &opts, "huge");
    // 65535 x 65535 under a small limit: refused by our limit before allocation.
    let big = crafted(&[
        (256, 3, 65535),
        (257, 3, 65535),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8),
        (277, 3, 1),
        (278, 4, 65535),
        (279, 4, 16),
    ]);
    let p = d.join("big.tif");
    std::fs::write(&p, &big).unwrap();
    match read(&p, &ReadOptions::default().max_values(1 << 20)) {
        Err(Error::TooLarge { .. }) => {}
        other => panic!("big: {other:?}"),
    }
    // Zero width.
    let zero = crafted(&[
        (256, 3, 0),
        (257, 3, 10),
        (258, 3, 8),
        (262, 3, 1),
        (273, 4, 8),
        (279, 4, 0),
    ]);
    let p = d.join("zero.tif");
    std::fs::write(&p, &zero).unwrap();
    expect_err(&p, &opts, "zero width");
    // Folders: empty, only masks, one broken slice among good ones.
    let empty = d.join("empty_dir");
    std::fs::create_dir(&empty).unwrap();
    let e = read(&empty, &opts).unwrap_err().to_string();
    assert!(e.contains("empty_dir"), "{e}");
    let masks = d.join("masks_only");
    std::fs::create_dir(&masks).unwrap();
    std::fs::copy(&src, masks.join("p_1_mask.tif")).unwrap();
    let e = read(&masks, &opts).unwrap_err().to_string();
    assert!(e.contains("masks_only") && e.contains("mask"), "{e}");
    let e = Volume::open(&masks).unwrap_err().to_string();
    assert!(e.contains("masks_only"), "{e}");
    let mixed = d.join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::copy(&src, mixed.join("p_1.tif")).unwrap();
    std::fs::write(mixed.join("p_2.tif"), &good[..good.len() / 2]).unwrap();
    let e = read(&mixed, &opts).unwrap_err().to_string();
    assert!(e.contains("p_2.tif"), "{e}");
    assert!(n > 0);
}
