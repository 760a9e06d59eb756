use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::*;
use crate::mask::LabelInfo;
use crate::volume::{DType, Geometry, SliceRef, SourceFormat, VolumeMeta};

/// A 3-slice oblique-free mask whose source is a made-up DICOM series.
pub(crate) fn sample_mask(geometry: Geometry) -> Mask {
    let mut m = Mask::zeros([3, 4, 5], geometry);
    m.labels[[0, 1, 2]] = 1;
    m.labels[[2, 3, 4]] = 2;
    m.labels[[2, 0, 0]] = 1;
    m.label_info = vec![
        LabelInfo {
            value: 1,
            name: "tumour".into(),
            color: [255, 0, 0],
        },
        LabelInfo {
            value: 2,
            name: "oedema".into(),
            color: [0, 255, 0],
        },
    ];
    let mut meta = VolumeMeta::new("/nowhere", SourceFormat::Dicom, DType::I16);
    meta.dicom = Some(DicomRefs {
        study_uid: "1.2.3".into(),
        series_uid: "1.2.3.4".into(),
        frame_of_reference_uid: Some("1.2.3.5".into()),
        slices: (0..3)
            .map(|k| SliceRef {
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.4".into(),
                sop_instance_uid: format!("1.2.3.4.{}", k + 10),
                frame: 0,
            })
            .collect(),
        copied_attributes: vec![
            ("PatientName".into(), "Doe^Jane".into()),
            ("PatientID".into(), "P1".into()),
            ("NoSuchKeyword".into(), "x".into()),
            ("StudyDescription".into(), "Brain".into()),
        ],
    });
    m.source = Some(meta);
    m
}

fn oblique() -> Geometry {
    Geometry {
        spacing: [0.5, 0.75, 3.0],
        origin: [-10.0, 20.0, 5.5],
        // i → −P, j → +S, k → +L (a sagittal-like grid with flipped axes).
        direction: [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    }
}

fn strs(obj: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.element(tag).unwrap().to_str().unwrap().to_string()
}

fn items(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Vec<InMemDicomObject> {
    match obj.element(tag).unwrap().value() {
        Value::Sequence(s) => s.items().to_vec(),
        _ => panic!("not a sequence"),
    }
}

#[test]
fn non_dicom_source_is_invalid_argument() {
    let mut m = sample_mask(Geometry::identity());
    m.source.as_mut().unwrap().dicom = None;
    let e = build(&m, &DicomSegOptions::default()).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    m.source = None;
    assert!(matches!(
        build(&m, &DicomSegOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn binary_frames_positions_and_references() {
    let m = sample_mask(oblique());
    let opts = DicomSegOptions {
        omit_empty_frames: false,
        ..Default::default()
    };
    let f = build(&m, &opts).unwrap();
    assert_eq!(f.meta().media_storage_sop_class_uid(), SEGMENTATION_STORAGE);
    assert_eq!(strs(&f, tags::SEGMENTATION_TYPE), "BINARY");
    assert_eq!(strs(&f, tags::PATIENT_NAME), "Doe^Jane");
    assert_eq!(strs(&f, tags::STUDY_DESCRIPTION), "Brain");
    assert_eq!(strs(&f, tags::FRAME_OF_REFERENCE_UID), "1.2.3.5");
    assert_eq!(strs(&f, tags::NUMBER_OF_FRAMES), "6");
    let frames = items(&f, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    assert_eq!(frames.len(), 6);
    for (n, fr) in frames.iter().enumerate() {
        let (seg, k) = (n / 3 + 1, n % 3);
        let pos = items(fr, tags::PLANE_POSITION_SEQUENCE);
        let ipp: Vec<f64> = pos[0]
            .element(tags::IMAGE_POSITION_PATIENT)
            .unwrap()
            .to_multi_float64()
            .unwrap();
        let want = m.geometry.index_to_lps([0.0, 0.0, k as f64]);
        for c in 0..3 {
            assert!(
                (ipp[c] - want[c]).abs() < 1e-9,
                "frame {n}: {ipp:?} vs {want:?}"
            );
        }
        let der = items(fr, tags::DERIVATION_IMAGE_SEQUENCE);
        let src = items(&der[0], tags::SOURCE_IMAGE_SEQUENCE);
        assert_eq!(
            strs(&src[0], tags::REFERENCED_SOP_INSTANCE_UID),
            format!("1.2.3.4.{}", k + 10)
        );
        let ident = items(fr, tags::SEGMENT_IDENTIFICATION_SEQUENCE);
        assert_eq!(
            ident[0]
                .element(tags::REFERENCED_SEGMENT_NUMBER)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            seg as u16
        );
    }
    let shared = &items(&f, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)[0];
    let orient = &items(shared, tags::PLANE_ORIENTATION_SEQUENCE)[0];
    let iop = orient
        .element(tags::IMAGE_ORIENTATION_PATIENT)
        .unwrap()
        .to_multi_float64()
        .unwrap();
    assert_eq!(iop, vec![0.0, -1.0, 0.0, 0.0, 0.0, 1.0]);
    let px = f.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
    // 6 frames × 20 pixels = 120 bits = 15 bytes, padded to 16.
    assert_eq!(px.len(), 16);
    // Segment 1 (value 1), slice 0, voxel (y=1, x=2) → bit 7.
    assert_eq!(frames::unpack_frame_bits(&px, 0, 20).unwrap()[7], 1);
    // Segment 2, slice 2, voxel (3, 4) → frame 5, pixel 19.
    let f5 = frames::unpack_frame_bits(&px, 5, 20).unwrap();
    assert_eq!(f5.iter().filter(|&&b| b == 1).count(), 1);
    assert_eq!(f5[19], 1);
}

#[test]
fn empty_frames_are_omitted_and_labelmap_keeps_values() {
    let m = sample_mask(Geometry::identity());
    let f = build(&m, &DicomSegOptions::default()).unwrap();
    // Segment 1 on slices 0 and 2, segment 2 on slice 2.
    assert_eq!(strs(&f, tags::NUMBER_OF_FRAMES), "3");
    let lm = build(&m, &DicomSegOptions::default().kind(SegKind::Labelmap)).unwrap();
    assert_eq!(
        lm.meta().media_storage_sop_class_uid(),
        LABEL_MAP_SEGMENTATION_STORAGE
    );
    assert_eq!(strs(&lm, tags::NUMBER_OF_FRAMES), "2");
    let segs = items(&lm, tags::SEGMENT_SEQUENCE);
    assert_eq!(segs.len(), 3); // background + 2
    let px = lm.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
    assert_eq!(px.len(), 40);
    assert_eq!(px[5 + 2], 1); // slice 0, (1, 2)
    assert_eq!(px[20 + 19], 2); // slice 2, (3, 4)
    assert_eq!(px[20], 1); // slice 2, (0, 0)
}

#[test]
fn slice_count_must_match_references() {
    let mut m = sample_mask(Geometry::identity());
    m.source
        .as_mut()
        .unwrap()
        .dicom
        .as_mut()
        .unwrap()
        .slices
        .pop();
    assert!(matches!(
        build(&m, &DicomSegOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn written_seg_reads_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let g = Geometry {
        spacing: [0.5, 0.75, 3.0],
        origin: [-10.0, 20.0, 5.5],
        // Right-handed (k = i × j), as a DICOM reader sorting along the normal produces.
        direction: [[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    };
    let mask = sample_mask(g);
    for kind in [SegKind::Binary, SegKind::Labelmap] {
        for omit in [false, true] {
            let p = dir.path().join("s.dcm");
            let opts = DicomSegOptions {
                kind,
                omit_empty_frames: omit,
                ..Default::default()
            };
            let f = build(&mask, &opts).unwrap();
            f.write_to_file(&p).unwrap();
            let seg = crate::mask::dicom_seg::read_seg(&p, None).unwrap();
            assert_eq!(seg.kind, kind);
            assert_eq!(seg.segments.len(), 2);
            assert_eq!(seg.segments[0].label, "tumour");
            let lm = seg.label_map().unwrap();
            if omit {
                // The grid spans slices 0..=2 (both ends hold labels).
                assert_eq!(lm.dim(), (3, 4, 5));
            }
            assert_eq!(lm, mask.labels, "{kind:?} omit={omit}");
            for c in 0..3 {
                assert!((seg.geometry.origin[c] - g.origin[c]).abs() < 1e-9);
                assert!((seg.geometry.spacing[c] - g.spacing[c]).abs() < 1e-9);
            }
            assert_eq!(seg.geometry.direction, g.direction);
            let m = seg.to_mask().unwrap();
            assert_eq!(m.label_info[0].color, [255, 0, 0]);
        }
    }
}

/// The encoder writes into memory the SEG the path writer writes into a file (each with its own
/// new UIDs, so they are compared as read back, not byte for byte).
#[test]
fn encoder_and_path_writer_write_the_same_seg() {
    let dir = tempfile::tempdir().unwrap();
    let mask = sample_mask(Geometry {
        spacing: [0.5, 0.75, 3.0],
        origin: [-10.0, 20.0, 5.5],
        direction: [[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    });
    let opts = DicomSegOptions::default().kind(SegKind::Labelmap);
    let from_path = dir.path().join("path.dcm");
    write_mask_with(&from_path, &mask, &opts).unwrap();
    let mut bytes = Vec::new();
    write_mask_to(&mask, &opts, &mut bytes).unwrap();
    let from_memory = dir.path().join("memory.dcm");
    std::fs::write(&from_memory, &bytes).unwrap();
    let a = crate::mask::dicom_seg::read_seg(&from_path, None).unwrap();
    let b = crate::mask::dicom_seg::read_seg(&from_memory, None).unwrap();
    assert_eq!((a.kind, a.segments.len()), (b.kind, b.segments.len()));
    assert_eq!(a.label_map().unwrap(), b.label_map().unwrap());
    assert_eq!(a.label_map().unwrap(), mask.labels);
    assert_eq!(a.geometry, b.geometry);
}

/// The card's codes reach the segment descriptions (the modifier inside the type's item, as the
/// reader looks for it), a label the card does not code keeps the default, and both kinds agree.
#[test]
fn label_codes_code_their_segments_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mask = sample_mask(Geometry::identity());
    let hippocampus = LabelCodes {
        value: 2,
        category: Code::new("91723000", "SCT", "Anatomical Structure"),
        property_type: Code::new("5366008", "SCT", "Hippocampus"),
        property_type_modifier: Some(Code::new("255551008", "SCT", "Posterior")),
        anatomic_region: Some(Code::new("12738006", "SCT", "Brain")),
    };
    for kind in [SegKind::Binary, SegKind::Labelmap] {
        let opts = DicomSegOptions::default()
            .kind(kind)
            .with_label_codes(std::slice::from_ref(&hippocampus));
        let p = dir.path().join("coded.dcm");
        write_mask_with(&p, &mask, &opts).unwrap();
        let seg = crate::mask::dicom_seg::read_seg(&p, None).unwrap();
        let (one, two) = (&seg.segments[0], &seg.segments[1]);
        assert_eq!(
            one.category,
            Some(Code::morphologically_abnormal_structure())
        );
        assert_eq!(one.property_type, Some(Code::neoplasm()));
        assert_eq!(
            (&one.property_type_modifier, &one.anatomic_region),
            (&None, &None)
        );
        assert_eq!(two.category.as_ref(), Some(&hippocampus.category));
        assert_eq!(two.property_type.as_ref(), Some(&hippocampus.property_type));
        assert_eq!(
            two.property_type_modifier,
            hippocampus.property_type_modifier
        );
        assert_eq!(two.anatomic_region, hippocampus.anatomic_region);
    }
}
