"""The Slicer module's Logic (plugins/slicer/Slicewise/Slicewise.py) end to end against the minimal
stand-in for slicer/vtk/qt in tests/python/slicer_stub, on a real volume: the label map node gets
the source's IJK->RAS matrix, its array equals the binding's mask, the segments take names and
colours from the model's labels; Cancel from the polling thread; then the module's own self-test
(SlicewiseTest.runTest, synthetic oblique volume) runs under the stub.

    slicer_logic.py LIBSLICEWISE ONNXRUNTIME MODELDIR NIFTI

Prints one JSON object.
"""
import os
import sys
import time

import nibabel as nib
import numpy as np

from common import emit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def main():
    lib, ort, model_dir, nifti = sys.argv[1:5]
    os.environ["SLICEWISE_LIBRARY"] = lib
    os.environ["SLICEWISE_ORT_LIB"] = ort
    sys.path.insert(0, os.path.join(HERE, "slicer_stub"))
    sys.path.insert(0, os.path.join(REPO, "plugins", "slicer", "Slicewise"))
    import slicer
    import vtk
    import Slicewise
    import slicewise_ctypes as sw

    out = {"stub": os.path.dirname(slicer.__file__)}
    softmax = os.path.join(model_dir, "unet_softmax.onnx")

    # A volume node as Slicer's NIfTI reader makes it: (k, j, i) array, IJK->RAS = the affine.
    img = nib.load(nifti)
    zyx = np.ascontiguousarray(np.asanyarray(img.dataobj).transpose(2, 1, 0))
    source = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "source")
    slicer.util.updateVolumeFromArray(source, zyx)
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, img.affine[r, c])
    source.SetIJKToRASMatrix(m)

    logic = Slicewise.SlicewiseLogic()
    segNode, stats, provider = logic.run(source, softmax, "cpu", keepLabelmap=True)
    labelNode = [n for n in slicer.mrmlScene.nodes if n.cls == "vtkMRMLLabelMapVolumeNode"][0]

    # The reference: the binding called directly, the same array and affine.
    with sw.Model(softmax, device="cpu") as model, sw.Volume.from_array(zyx, img.affine) as v, \
            model.segment(v) as mask:
        ref = mask.array()
        labels = model.labels()
    segs = segNode.GetSegmentation()
    segments = [{"id": segs.GetNthSegmentID(i), "name": segs.GetNthSegment(i).GetName(),
                 "color": list(segs.GetNthSegment(i).GetColor()),
                 "label_value": segs.GetNthSegment(i).label_value}
                for i in range(segs.GetNumberOfSegments())]
    out["run"] = {
        "provider": provider,
        "label_ijk_to_ras_diff": float(np.abs(logic.ijkToRas(labelNode) - img.affine).max()),
        "imported_ijk_to_ras_diff": float(np.abs(segNode.labelmap_ijk_to_ras - img.affine).max()),
        "label_equal_binding": bool(np.array_equal(labelNode.array, ref)),
        "label_dtype": str(labelNode.array.dtype),
        "reference_geometry_is_source": segNode.reference_geometry_from is source,
        "display_nodes": segNode.display_nodes,
        "segments": segments,
        "model_labels": labels,
        "present_values": sorted(int(v) for v in np.unique(ref) if v),
        "stats": [s._asdict() for s in stats],
        "ref_counts": {str(int(v)): int((ref == v).sum()) for v in np.unique(ref) if v},
        "voxel_ml": float(np.prod(img.header.get_zooms()[:3])) / 1000.0,
    }

    # Cancel while the "GUI thread" polls the job's queue, as the Widget's QTimer does.
    job = logic.start(source, softmax, "cpu", batch_size=1)
    events = []
    deadline = time.time() + 120
    while time.time() < deadline:
        new = job.poll()
        events += new
        if any(e[0] == "progress" for e in new):
            job.cancel()
        if any(e[0] in ("done", "error") for e in events):
            break
        time.sleep(0.001)
    job.wait(60)
    events += job.poll()
    kinds = [e[0] for e in events]
    out["cancel"] = {"error": type(job.error).__name__ if job.error else None,
                     "status": getattr(job.error, "status", None),
                     "progress_events": kinds.count("progress"), "last": kinds[-1] if kinds else None,
                     "slices": int(zyx.shape[0]), "mask": job.mask is not None}

    # The module's self-test, under the stub (synthetic oblique volume, the test model).
    os.environ["SLICEWISE_TEST_SAMPLE"] = ""
    os.environ["SLICEWISE_TEST_MODEL"] = os.path.join(model_dir, "unet_sigmoid.onnx")
    test = Slicewise.SlicewiseTest()
    try:
        test.runTest()
        out["self_test"] = "passed"
    except Exception as e:  # noqa: BLE001 - reported to the Rust test
        import traceback
        out["self_test"] = "failed: " + "".join(traceback.format_exception(e))
    out["module_title"] = Slicewise.Slicewise(None).parent.title
    emit(out)


if __name__ == "__main__":
    main()
