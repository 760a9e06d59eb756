"""nnU-Net's own resampling on seeded test volumes: the reference for slicewise's
`infer::resample` (tests/integration/resample.rs).

Usage: nnunet_resample_ref.py OUT_DIR  (run with the interpreter that has nnunetv2: .venv-nnunet)
Writes, per case, `<name>.in.f32` (the [a0, a1, a2] input) and `<name>.out.f32` (what
`resample_data_or_seg_to_shape` returns for it, float32 as nnU-Net stores image data), and prints a
JSON list of cases: name, in/out shapes, spacings, order, order_z and nnU-Net's separate-z axis.
"""
import json
import os
import sys

import numpy as np
from nnunetv2.preprocessing.resampling.default_resampling import (
    compute_new_shape, determine_do_sep_z_and_axis, resample_data_or_seg_to_shape)

# (name, shape [a0, a1, a2], current spacing, new spacing, order) — the spacings of a 2-D
# configuration keep a0's, so a0 is never resampled.
CASES = [
    ("iso_up_down", (4, 37, 30), (1.0, 0.7, 1.6), (1.0, 1.0, 1.0), 3),
    ("sep_a0", (3, 40, 33), (5.0, 0.69, 0.69), (5.0, 1.0, 1.0), 3),
    ("sep_a1", (4, 12, 30), (1.0, 4.0, 1.0), (1.0, 1.0, 1.0), 3),
    ("sep_a2_down", (4, 30, 25), (1.0, 1.0, 3.5), (1.0, 1.0, 4.0), 3),
    ("target_aniso", (5, 20, 24), (1.0, 1.0, 1.0), (1.0, 4.0, 1.0), 3),
    ("iso_linear", (4, 37, 30), (1.0, 0.7, 1.6), (1.0, 1.0, 1.0), 1),
    ("sep_a0_linear", (3, 40, 33), (5.0, 0.69, 0.69), (5.0, 1.0, 1.0), 1),
    ("sep_a1_linear", (4, 12, 30), (1.0, 4.0, 1.0), (1.0, 1.0, 1.0), 1),
]


def volume(shape, seed):
    """Smooth structure, a hard step (cubic rings past it, so clipping matters) and noise."""
    rng = np.random.default_rng(seed)
    a0, a1, a2 = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    v = 50 * np.sin(a1 / 5.0) * np.cos(a2 / 7.0) + 3 * a0
    v += 200 * (a2 > shape[2] / 2) * (1 + a0)
    v += rng.normal(0, 5, size=shape)
    return v.astype(np.float32)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    cases = []
    for seed, (name, shape, cur, new, order) in enumerate(CASES):
        data = volume(shape, seed)
        new_shape = compute_new_shape(shape, cur, new)
        _, axis = determine_do_sep_z_and_axis(None, cur, new)
        res = resample_data_or_seg_to_shape(data[None], new_shape, cur, new, is_seg=False,
                                            order=order, order_z=0, force_separate_z=None)[0]
        data.astype("<f4").tofile(os.path.join(out, name + ".in.f32"))
        np.asarray(res, dtype="<f4").tofile(os.path.join(out, name + ".out.f32"))
        cases.append({"name": name, "shape": list(shape), "out_shape": [int(n) for n in new_shape],
                      "current": list(cur), "new": list(new), "order": order, "order_z": 0,
                      "separate": None if axis is None else int(axis)})
    print(json.dumps(cases))


if __name__ == "__main__":
    main()
