"""The Slicer module's Logic and self-test with a multi-label model, under the stand-in for
slicer/vtk/qt in tests/python/slicer_stub.

    slicer_multilabel.py LIBSLICEWISE ONNXRUNTIME MODEL SAMPLE CLI_MASK

- Logic.run on SAMPLE as Slicer's NIfTI reader hands it over ((k, j, i) array, IJK->RAS = the
  nibabel affine): the segments (name, colour, the label value the stub's import gave them), the
  label map compared with CLI_MASK (the same model's `slicewise segment` mask, read by nibabel),
  the mask's label statistics and the model's labels as the binding reports them.
- The module's self-test with MODEL and no sample override: `slicer.util.loadVolume` (which the
  stub lacks) loads through nibabel the same way and records which file the test chose.

Prints one JSON object.
"""
import os
import sys

import nibabel as nib
import numpy as np

from common import emit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def volume_node(slicer, vtk, path):
    """A scalar volume node as Slicer's NIfTI reader makes it."""
    img = nib.load(path)
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", os.path.basename(path))
    slicer.util.updateVolumeFromArray(
        node, np.ascontiguousarray(np.asanyarray(img.dataobj).transpose(2, 1, 0)))
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, img.affine[r, c])
    node.SetIJKToRASMatrix(m)
    return node


def segments_of(segNode):
    segs = segNode.GetSegmentation()
    return [{"name": segs.GetNthSegment(i).GetName(),
             "color": list(segs.GetNthSegment(i).GetColor()),
             "label_value": segs.GetNthSegment(i).label_value}
            for i in range(segs.GetNumberOfSegments())]


def run_self_test(Slicewise, slicer, vtk, model):
    loaded = []

    def load_volume(path):
        loaded.append(os.path.abspath(path))
        return volume_node(slicer, vtk, path)

    slicer.util.loadVolume = load_volume
    os.environ.pop("SLICEWISE_TEST_SAMPLE", None)
    os.environ["SLICEWISE_TEST_MODEL"] = model
    try:
        Slicewise.SlicewiseTest().runTest()
        result = "passed"
    except Exception as e:  # noqa: BLE001 - reported to the Rust test
        import traceback
        result = "failed: " + "".join(traceback.format_exception(e))
    return {"result": result, "loaded": loaded,
            "self_test_model": os.path.abspath(Slicewise.self_test_model())}


def main():
    lib, ort, model, sample, cli_mask = sys.argv[1:6]
    os.environ["SLICEWISE_LIBRARY"] = lib
    os.environ["SLICEWISE_ORT_LIB"] = ort
    sys.path.insert(0, os.path.join(HERE, "slicer_stub"))
    sys.path.insert(0, os.path.join(REPO, "plugins", "slicer", "Slicewise"))
    import slicer
    import vtk
    import Slicewise

    source = volume_node(slicer, vtk, sample)
    logic = Slicewise.SlicewiseLogic()
    segNode, stats, provider = logic.run(source, model, "cpu", keepLabelmap=True)
    labelNode = [n for n in slicer.mrmlScene.nodes if n.cls == "vtkMRMLLabelMapVolumeNode"][0]
    cli = np.asarray(nib.load(cli_mask).dataobj).astype(np.uint8).transpose(2, 1, 0)
    out = {
        "stub": os.path.dirname(slicer.__file__),
        "provider": provider,
        "segments": segments_of(segNode),
        "model_labels": logic.model(model, "cpu").labels(),
        "label_equal_cli": bool(np.array_equal(labelNode.array, cli)),
        "stats": [s._asdict() for s in stats],
        "cli_counts": {str(int(v)): int((cli == v).sum()) for v in np.unique(cli) if v},
        "self_test": run_self_test(Slicewise, slicer, vtk, model),
    }
    emit(out)


if __name__ == "__main__":
    main()
