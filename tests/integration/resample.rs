//! `infer::resample` against nnU-Net's own `resample_data_or_seg_to_shape` (run from the
//! nnU-Net venv, `.venv-nnunet`, made by `scripts/setup --nnunet`): the cubic image path (not
//! separate, separate along the slice axis, separate along an in-plane axis, a target that is
//! anisotropic) and the linear path nnU-Net uses for logits.

use std::process::Command;

use ndarray::{Array3, Axis};
use slicewise::infer::resample::{new_shape, separate_axis, Order, PlaneResampler};

use crate::harness;

fn arr3(v: &serde_json::Value) -> [usize; 3] {
    let v: Vec<usize> = serde_json::from_value(v.clone()).unwrap();
    [v[0], v[1], v[2]]
}

#[test]
fn planes_resample_as_nnunet_does() {
    let dir = harness::tmpdir();
    let out = Command::new(harness::nnunet_python())
        .arg(harness::repo().join("tests/python/nnunet_resample_ref.py"))
        .arg(dir.path())
        .output()
        .expect("start nnU-Net Python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cases.len(), 8);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let (shape, want_shape) = (arr3(&case["shape"]), arr3(&case["out_shape"]));
        let spacing = |k: &str| -> [f64; 3] { serde_json::from_value(case[k].clone()).unwrap() };
        let (cur, new) = (spacing("current"), spacing("new"));
        // The shape and the separate-z decision, as nnU-Net takes them.
        let out_shape = new_shape(cur, new, shape);
        assert_eq!(out_shape, want_shape, "{name}: new shape");
        let separate = separate_axis(cur, new, 3.0, None);
        assert_eq!(
            separate,
            case["separate"].as_u64().map(|a| a as usize),
            "{name}: separate axis"
        );
        let order = Order::from_int(case["order"].as_i64().unwrap()).unwrap();
        let input = harness::read_f32(&dir.path().join(format!("{name}.in.f32")));
        let input = Array3::from_shape_vec(shape, input).unwrap();
        let want = harness::read_f32(&dir.path().join(format!("{name}.out.f32")));
        let want = Array3::from_shape_vec(out_shape, want).unwrap();
        let r = if order == Order::Cubic {
            PlaneResampler::for_volume(input.view(), out_shape, order, Order::Nearest, separate)
        } else {
            PlaneResampler::for_shape(shape, out_shape, order, Order::Nearest, separate)
        }
        .unwrap();
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (k, plane) in input.axis_iter(Axis(0)).enumerate() {
            let got = r.plane(k, plane);
            let want = want.index_axis(Axis(0), k);
            let worst = got
                .iter()
                .zip(want.iter())
                .map(|(g, w)| (g - w).abs())
                .fold(0f32, f32::max);
            // Both sides compute in f64 and store f32: one f32 rounding apart at most.
            assert!(
                worst <= scale * 2e-7,
                "{name}: plane {k} differs from nnU-Net by {worst} (values up to {scale})"
            );
        }
    }
}
