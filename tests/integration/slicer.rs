//! The 3D Slicer extension (`plugins/slicer`), everything except Slicer's GUI: its ctypes binding
//! against the built library (masks equal the CLI's), its Logic and self-test against a small
//! stand-in for `slicer`/`vtk`/`qt` (`tests/python/slicer_stub`), and static checks of the
//! extension's files (Python compiles, CMake fields, .ui, icon, catalog entry).

use serde_json::Value;

use crate::harness;

fn hippocampus(n: &str) -> std::path::PathBuf {
    harness::data(&format!("msd-hippocampus/images/hippocampus_{n}.nii.gz"))
}

fn error_of<'a>(v: &'a Value, what: &str) -> (&'a str, Option<i64>, &'a str) {
    assert!(v.is_object(), "{what}: no exception was raised ({v})");
    (
        v["type"].as_str().unwrap(),
        v["status"].as_i64(),
        v["message"].as_str().unwrap(),
    )
}

/// The binding on real NIfTI files (uint8, float32, int16; array and affine from nibabel, as
/// Slicer hands them over): the same mask as `slicewise segment` on the file and as the file
/// opened through `slicewise_volume_open`, with postprocessing options too; the mask's IJK→RAS
/// is the source's; cancel by token and callback; errors as typed exceptions. (Its declarations:
/// every function, struct layout and constant, are checked against the header by
/// `capi::header_mirrors_match_the_header`.)
#[test]
fn binding_matches_the_cli_and_cancels_and_raises() {
    let tmp = harness::tmpdir();
    let (lib, ort, bin, models, out) = (
        harness::cdylib(),
        harness::ort_lib(),
        harness::slicewise_bin(),
        harness::repo().join("tests/data"),
        tmp.path().to_path_buf(),
    );
    let niftis = [
        hippocampus("001"),
        hippocampus("003"),
        harness::data("sct-spinalcord/t2/t2.nii.gz"),
    ];
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&lib, &ort, &bin, &models, &out];
    for n in &niftis {
        args.push(n);
    }
    let r = harness::py("slicer_binding.py", &args);

    assert_eq!(r["provider"], "CPUExecutionProvider");
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for c in cases {
        assert_eq!(c["mask_shape"], c["shape_zyx"], "{c}");
        assert_eq!(c["equal_cli"], true, "binding and CLI masks differ: {c}");
        assert_eq!(c["equal_file"], true, "array and file masks differ: {c}");
        assert!(c["voxels"].as_u64().unwrap() > 0, "degenerate mask: {c}");
        assert!(c["affine_diff_cli"].as_f64().unwrap() < 1e-4, "{c}");
        assert!(c["affine_diff_source"].as_f64().unwrap() < 1e-4, "{c}");
        let last = &c["progress_last"];
        assert_eq!(last[0], last[1], "progress did not reach the end: {c}");
        assert_eq!(last[1], c["shape_zyx"][0], "{c}");
        assert_eq!(c["stats_match"], true, "{c}");
    }
    let dtypes: Vec<&str> = cases[..3]
        .iter()
        .map(|c| c["dtype"].as_str().unwrap())
        .collect();
    assert_eq!(dtypes, ["uint8", "float32", "int16"]);
    // Postprocessing shrank the mask (and still matched the CLI's, above).
    assert!(cases[3]["voxels"].as_u64() < cases[0]["voxels"].as_u64());
    // The softmax model: names and colours from its card.
    let soft = cases[4]["stats"].as_array().unwrap();
    let names: Vec<&str> = soft.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["class one", "class two"]);
    assert_eq!(soft[0]["color"], serde_json::json!([255, 0, 0]));

    let cancel = &r["cancel"];
    let t = &cancel["token_thread"];
    let (ty, st, _) = error_of(&t["error"], "token cancelled from another thread");
    assert_eq!((ty, st), ("CancelledError", Some(10)), "{t}");
    assert_eq!(
        t["calls"], 1,
        "the run went on after the token was cancelled: {t}"
    );
    assert_eq!(t["cancelled"], true);
    let p = &cancel["progress_true"];
    assert_eq!(error_of(&p["error"], "progress → True").1, Some(10));
    assert_eq!(p["calls"], 2, "{p}");
    assert_eq!(
        error_of(&cancel["progress_raises"], "raising callback").0,
        "KeyError"
    );
    assert_eq!(
        error_of(&cancel["pre_cancelled"], "pre-cancelled token").1,
        Some(10)
    );
    assert_eq!(cancel["after_ok"], cases[0]["voxels"]);

    let e = &r["errors"];
    let expect = |key: &str, ty: &str, status: Option<i64>, needle: &str| {
        let (t, s, m) = error_of(&e[key], key);
        assert_eq!((t, s), (ty, status), "{key}: {}", e[key]);
        assert!(m.contains(needle), "{key}: {m:?} lacks {needle:?}");
    };
    expect("missing_model", "IoError", Some(2), "missing.onnx");
    expect(
        "no_metadata_model",
        "ModelError",
        Some(6),
        "unet_nometa.onnx",
    );
    expect("bad_device", "InvalidArgumentError", Some(1), "quantum");
    expect("missing_volume", "IoError", Some(2), "nope.nii");
    expect(
        "complex_dtype",
        "InvalidArgumentError",
        Some(1),
        "complex64",
    );
    expect("two_d", "InvalidArgumentError", Some(1), "shape");
    expect(
        "zero_axis_matrix",
        "InvalidArgumentError",
        Some(1),
        "zero-length",
    );
    expect("c_bool_dtype", "InvalidArgumentError", Some(1), "dtype 11");
    expect("c_null_data", "NullPointerError", Some(12), "data");
    expect("c_zero_dim", "InvalidArgumentError", Some(1), "zero");
    expect("c_space", "InvalidArgumentError", Some(1), "space 7");
    expect(
        "c_bad_direction",
        "InvalidArgumentError",
        Some(1),
        "direction",
    );
    expect("closed_handle", "ValueError", None, "closed");
    expect("save_missing_dir", "IoError", Some(2), "no/such/dir");
    assert_eq!(e["status_str_10"], "cancelled");

    for (k, v) in r["dtypes"].as_object().unwrap() {
        assert_eq!(v, true, "converted dtype {k} segments differently");
    }
}

/// The Logic end to end under the stand-in: the label map node carries the source's IJK→RAS, its
/// voxels equal the binding's mask, segments are named and coloured from the model's labels in
/// label order, the reference geometry is the source; Cancel while polling gives CancelledError
/// and no mask; the module's own self-test passes under the stand-in.
#[test]
fn logic_builds_an_aligned_labelled_segmentation() {
    let (lib, ort, models) = (
        harness::cdylib(),
        harness::ort_lib(),
        harness::repo().join("tests/data"),
    );
    let nifti = harness::data("sct-spinalcord/t2/t2.nii.gz");
    let r = harness::py("slicer_logic.py", &[&lib, &ort, &models, &nifti]);
    assert!(
        r["stub"]
            .as_str()
            .unwrap()
            .ends_with("tests/python/slicer_stub/slicer"),
        "the real slicer module was not replaced: {}",
        r["stub"]
    );

    let run = &r["run"];
    assert_eq!(run["provider"], "CPUExecutionProvider");
    assert!(
        run["label_ijk_to_ras_diff"].as_f64().unwrap() < 1e-9,
        "{run}"
    );
    assert!(
        run["imported_ijk_to_ras_diff"].as_f64().unwrap() < 1e-9,
        "{run}"
    );
    assert_eq!(run["label_equal_binding"], true);
    assert_eq!(run["label_dtype"], "uint8");
    assert_eq!(run["reference_geometry_is_source"], true);
    assert_eq!(run["display_nodes"], true);
    assert_eq!(run["present_values"], serde_json::json!([1, 2]), "{run}");
    let segments = run["segments"].as_array().unwrap();
    let labels = run["model_labels"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    for (seg, label) in segments.iter().zip(labels) {
        assert_eq!(seg["label_value"], label["value"], "{seg}");
        assert_eq!(seg["name"], label["name"], "{seg}");
        let want: Vec<f64> = harness::f64s(&label["color"])
            .iter()
            .map(|c| c / 255.0)
            .collect();
        assert_eq!(harness::f64s(&seg["color"]), want, "{seg}");
    }
    let ml = run["voxel_ml"].as_f64().unwrap();
    for s in run["stats"].as_array().unwrap() {
        let v = s["value"].to_string();
        assert_eq!(s["voxels"], run["ref_counts"][&v], "{s}");
        let want = s["voxels"].as_f64().unwrap() * ml;
        assert!((s["ml"].as_f64().unwrap() - want).abs() < 1e-9, "{s}");
    }

    let c = &r["cancel"];
    assert_eq!(c["error"], "CancelledError", "{c}");
    assert_eq!(c["status"], 10);
    assert_eq!(c["mask"], false);
    assert_eq!(c["last"], "error");
    assert!(c["progress_events"].as_u64().unwrap() < c["slices"].as_u64().unwrap());

    assert_eq!(r["self_test"], "passed", "{}", r["self_test"]);
    assert_eq!(r["module_title"], "Slicewise");
}

/// The bundled 2-label (softmax) model in the Logic under the stand-in, on its bundled sample:
/// two segments, named and coloured as the model card says, holding the label values of the
/// card's labels; the label map is `slicewise segment`'s mask (read by nibabel) voxel for voxel
/// and the statistics count it. The module's self-test, left to choose, runs this model on this
/// sample (not another model's) and passes, colours included.
#[test]
fn logic_names_and_colours_the_two_label_models_segments_from_its_card() {
    let h = harness::bundled_hippocampus();
    let (model, sample) = (&h.model, &h.image);
    let tmp = harness::tmpdir();
    let out = tmp.path().join("out");
    crate::cli::segment_ok(sample, model, &out, &[]);
    let cli_mask = out.join("hippocampus_375_mask.nii.gz");
    let (lib, ort) = (harness::cdylib(), harness::ort_lib());
    let r = harness::py(
        "slicer_multilabel.py",
        &[&lib, &ort, &model, &sample, &cli_mask],
    );
    assert!(
        r["stub"]
            .as_str()
            .unwrap()
            .ends_with("tests/python/slicer_stub/slicer"),
        "{}",
        r["stub"]
    );
    let card = crate::cli::read_json(&h.card);
    let labels = card["contract"]["labels"].as_array().unwrap();
    assert_eq!(r["model_labels"].as_array(), Some(labels));
    let segments = r["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2, "{r}");
    for (seg, label) in segments.iter().zip(labels) {
        assert_eq!(seg["label_value"], label["value"], "{seg}");
        assert_eq!(seg["name"], label["name"], "{seg}");
        // Slicer's colours are 0..1; to 1e-12 as serde_json may round the JSON's last digit.
        let (got, want) = (harness::f64s(&seg["color"]), harness::f64s(&label["color"]));
        assert_eq!(got.len(), 3, "{seg}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w / 255.0).abs() < 1e-12,
                "{seg}: colour {got:?} vs {want:?}"
            );
        }
    }
    assert_eq!(
        r["label_equal_cli"], true,
        "label map differs from the CLI's mask"
    );
    let stats = r["stats"].as_array().unwrap();
    assert_eq!(stats.len(), 2);
    for (s, label) in stats.iter().zip(labels) {
        assert_eq!((&s["value"], &s["name"]), (&label["value"], &label["name"]));
        assert_eq!(
            s["voxels"],
            r["cli_counts"][&label["value"].to_string()],
            "{s}"
        );
    }
    let t = &r["self_test"];
    assert_eq!(t["result"], "passed", "{}", t["result"]);
    assert_eq!(t["self_test_model"], model.to_str().unwrap());
    assert_eq!(t["loaded"], serde_json::json!([sample]), "{t}");
}

/// The extension's files: every .py compiles; the top CMakeLists sets every EXTENSION_* field
/// the index needs before find_package(Slicer) and has the extension boilerplate; the module's
/// CMakeLists lists existing scripts and resources; the .ui is Qt Designer XML with every widget
/// the Widget code looks up; the icon is a valid 128×128 RGBA PNG; the catalog entry satisfies
/// Slicer's catalog-entry schema v1.0.1; the licence is the crate's.
#[test]
fn extension_files_are_complete() {
    let plugin = harness::repo().join("plugins/slicer");
    let cargo = harness::repo().join("Cargo.toml");
    let r = harness::py("slicer_package.py", &[&plugin, &cargo]);

    assert_eq!(r["py_failed"], serde_json::json!([]));
    let compiled = r["py_compiled"].as_array().unwrap();
    for f in ["Slicewise/Slicewise.py", "Slicewise/slicewise_ctypes.py"] {
        assert!(compiled.iter().any(|c| c == f), "{f} not compiled");
    }
    let cm = &r["cmake"];
    assert_eq!(cm["problems"], serde_json::json!([]), "{cm}");
    assert_eq!(cm["fields"]["EXTENSION_CATEGORY"], "Segmentation");
    assert_eq!(cm["fields"]["EXTENSION_DEPENDS"], "NA");

    let ui = &r["ui"];
    assert_eq!(ui["root_tag"], "ui");
    assert_eq!(ui["top_class"], "qMRMLWidget");
    assert_eq!(ui["missing"], serde_json::json!([]), "{ui}");
    assert_eq!(ui["custom_undeclared"], serde_json::json!([]), "{ui}");
    assert!(ui["used_by_widget_code"].as_array().unwrap().len() >= 12);
    let w = &ui["widgets"];
    for (name, class) in [
        ("inputVolumeSelector", "qMRMLNodeComboBox"),
        ("modelPathLineEdit", "QLineEdit"),
        ("browseModelButton", "QPushButton"),
        ("deviceComboBox", "QComboBox"),
        ("largestComponentCheckBox", "QCheckBox"),
        ("fillHolesCheckBox", "QCheckBox"),
        ("minSizeSpinBox", "QSpinBox"),
        ("thresholdSpinBox", "QDoubleSpinBox"),
        ("applyButton", "QPushButton"),
        ("cancelButton", "QPushButton"),
        ("progressBar", "QProgressBar"),
        ("providerLabel", "QLabel"),
        ("resultsTable", "QTableWidget"),
    ] {
        assert_eq!(w[name], class, "widget {name}");
    }

    let icon = &r["icon"];
    assert_eq!(icon["ok"], true, "{icon}");
    assert_eq!(
        (icon["width"].as_u64(), icon["height"].as_u64()),
        (Some(128), Some(128))
    );
    assert_eq!(icon["color_type"], 6);

    let cat = &r["catalog"];
    assert_eq!(cat["problems"], serde_json::json!([]), "{cat}");
    assert_eq!(cat["entry"]["category"], "Segmentation");
    assert_eq!(cat["entry"]["tier"], 1);
    assert_eq!(cat["entry"]["enabled"], true);

    assert_eq!(r["licence_matches"], true);
    for (k, v) in r["readme_mentions"].as_object().unwrap() {
        assert_eq!(v, true, "README does not mention {k}");
    }
}
