"""Slicewise: slice-by-slice ONNX U-Net segmentation inside 3D Slicer, in-process through
libslicewise's C ABI (no PyTorch, no subprocess). See ../README.md."""

import glob
import os
import queue
import sys
import threading

import numpy as np
import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
if MODULE_DIR not in sys.path:
    sys.path.insert(0, MODULE_DIR)

import slicewise_ctypes as sw  # noqa: E402  (needs MODULE_DIR on sys.path)

SETTINGS_LIBRARY = "Slicewise/LibraryPath"
SETTINGS_RUNTIME = "Slicewise/RuntimePath"
SETTINGS_MODEL = "Slicewise/ModelPath"
DEVICE_CHOICES = ["auto", "cpu", "cuda"]


def search_roots():
    """Folders a bundled model or sample may lie in: the installed extension (next to the
    module, or the extension's share folder) and, in a source checkout, the repository root."""
    roots = [MODULE_DIR, os.path.dirname(MODULE_DIR)]
    # plugins/slicer/Slicewise -> repository root
    roots.append(os.path.normpath(os.path.join(MODULE_DIR, "..", "..", "..")))
    return roots


def is_variant(path):
    """Whether a model file is a variant of another (`<name>.int8.onnx` of `<name>.onnx`)."""
    return "." in os.path.splitext(os.path.basename(path))[0]


def bundled_models():
    """Every .onnx under models/ (or Resources/models/) of the search roots, sorted, the
    full-precision models before their variants (`<name>.int8.onnx`): the default model and the
    self-test run the reference the variants are carded against."""
    found = []
    for root in search_roots():
        for sub in ("models", os.path.join("Resources", "models")):
            for p in sorted(glob.glob(os.path.join(root, sub, "*.onnx"))):
                if p not in found:
                    found.append(p)
    return sorted(found, key=is_variant)


def default_model():
    """The bundled model, else (source checkout) the test model, else None."""
    models = bundled_models()
    if models:
        return models[0]
    for root in search_roots():
        p = os.path.join(root, "tests", "data", "unet_sigmoid.onnx")
        if os.path.exists(p):
            return p
    return None


SAMPLE_PATTERNS = ("*.nii.gz", "*.nii", "*.nrrd")


def first_image(folder):
    """The first volume file in `folder` that is not a label map (`*_labels.*`, `*_mask.*`:
    a sample's ground truth lies next to it), or None."""
    for pat in SAMPLE_PATTERNS:
        for p in sorted(glob.glob(os.path.join(folder, pat))):
            name = os.path.basename(p)
            if "_labels." not in name and "_mask." not in name:
                return p
    return None


def bundled_sample(modelPath=None):
    """A sample volume shipped with a bundled model, or None.

    For a model `<dir>/<name>.onnx`, its own sample: the first image in `<dir>/samples/<prefix>/`
    where `<name>` starts with `<prefix>` (msd-hippocampus-small.onnx has
    samples/msd-hippocampus/), so that a model never runs on another model's sample. Without a
    model, the first image in samples/ or models/ of the search roots."""
    if modelPath:
        stem = os.path.splitext(os.path.basename(modelPath))[0]
        root = os.path.join(os.path.dirname(os.path.abspath(modelPath)), "samples")
        for folder in sorted(glob.glob(os.path.join(root, "*"))):
            if os.path.isdir(folder) and stem.startswith(os.path.basename(folder)):
                hit = first_image(folder)
                if hit:
                    return hit
        return None
    for root in search_roots():
        for sub in ("samples", "models"):
            hit = first_image(os.path.join(root, sub))
            if hit:
                return hit
    return None


def self_test_model():
    """The model the self-test runs: the first bundled model that has its own sample (the
    multi-label hippocampus model), else the default model."""
    for p in bundled_models():
        if bundled_sample(p):
            return p
    return default_model()


def find_runtime(configured=None):
    """ONNX Runtime's shared library: the configured path, $SLICEWISE_ORT_LIB, one bundled in
    lib/ next to the module, or the one inside a pip-installed `onnxruntime` package (Slicer's
    `slicer.util.pip_install("onnxruntime")`). None lets libslicewise search itself."""
    if configured:
        return configured
    env = os.environ.get("SLICEWISE_ORT_LIB")
    if env:
        return env
    for d in (os.path.join(MODULE_DIR, "lib"), os.path.join(os.path.dirname(MODULE_DIR), "lib")):
        hits = sorted(glob.glob(os.path.join(d, "libonnxruntime.so*"))
                      + glob.glob(os.path.join(d, "libonnxruntime*.dylib"))
                      + glob.glob(os.path.join(d, "onnxruntime.dll")))
        if hits:
            return hits[-1]
    try:
        import onnxruntime  # noqa: F401  (only its location is used)
    except ImportError:
        return None
    capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
    hits = sorted(glob.glob(os.path.join(capi, "libonnxruntime.so*"))
                  + glob.glob(os.path.join(capi, "libonnxruntime*.dylib"))
                  + glob.glob(os.path.join(capi, "onnxruntime.dll")))
    return hits[-1] if hits else None


#
# Module
#

class Slicewise(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Slicewise"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["slicewise developers"]
        self.parent.helpText = (
            "Segments a scalar volume slice by slice with an ONNX U-Net, in Slicer's own process "
            "through libslicewise. Choose a model (the bundled one by default), a device, "
            "postprocessing, then Apply; Cancel stops at the next batch.")
        self.parent.acknowledgementText = "slicewise is licensed under the Apache License 2.0."


#
# Logic (no Qt: testable without the GUI)
#

class SegmentationJob:
    """One segmentation on a worker thread. The worker only touches slicewise handles; it
    reports through a thread-safe queue that the GUI thread drains with poll()."""

    def __init__(self, model, volume, options):
        self.model = model
        self.volume = volume
        self.options = dict(options)
        self.events = queue.Queue()
        self.cancelToken = sw.CancelToken()
        self.mask = None
        self.error = None
        self.thread = threading.Thread(target=self._run, name="slicewise-segment", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        try:
            mask = self.model.segment(
                self.volume, cancel=self.cancelToken,
                progress=lambda done, total: self.events.put(("progress", done, total)),
                **self.options)
            self.events.put(("done", mask))
        except sw.SlicewiseError as e:
            self.events.put(("error", e))
        except Exception as e:  # report, never die silently on the worker
            self.events.put(("error", e))

    def cancel(self):
        self.cancelToken.cancel()

    def poll(self):
        """Events so far, without blocking: ("progress", done, total), ("done", mask) or
        ("error", exception)."""
        out = []
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return out
            if ev[0] == "done":
                self.mask = ev[1]
            elif ev[0] == "error":
                self.error = ev[1]
            out.append(ev)

    def wait(self, timeout=None):
        self.thread.join(timeout)
        return not self.thread.is_alive()


class SlicewiseLogic(ScriptedLoadableModuleLogic):
    """Volume node -> slicewise volume -> mask -> segmentation node."""

    def __init__(self, libraryPath=None, runtimePath=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self.libraryPath = libraryPath
        self.runtimePath = runtimePath
        self._models = {}
        self._runtimeReady = False

    def initialize(self):
        """Loads libslicewise and ONNX Runtime (once)."""
        sw.load_library(self.libraryPath)
        if not self._runtimeReady:
            sw.runtime_init(find_runtime(self.runtimePath))
            self._runtimeReady = True

    def model(self, path, device="auto"):
        """A loaded model, cached per (path, device)."""
        self.initialize()
        key = (os.path.abspath(path), device)
        if key not in self._models:
            self._models[key] = sw.Model(path, device=device)
        return self._models[key]

    @staticmethod
    def ijkToRas(volumeNode):
        m = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(m)
        return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])

    def volumeFromNode(self, volumeNode):
        """Copies the node's voxels (numpy (k, j, i)) and IJK-to-RAS geometry into the library.
        On the GUI thread: MRML nodes must not be read from the worker."""
        self.initialize()
        array = slicer.util.arrayFromVolume(volumeNode)
        return sw.Volume.from_array(array, self.ijkToRas(volumeNode), space=sw.SPACE_RAS)

    def start(self, volumeNode, modelPath, device="auto", **options):
        """Starts a segmentation on a worker thread; returns the SegmentationJob."""
        model = self.model(modelPath, device)
        volume = self.volumeFromNode(volumeNode)
        return SegmentationJob(model, volume, options).start()

    def createSegmentation(self, volumeNode, mask, labels, name=None):
        """A segmentation node from `mask` on `volumeNode`'s grid: one segment per label value
        present, named and coloured from the model's `labels` ([{value, name, color}]).
        Returns (segmentationNode, labelmapNode)."""
        name = name or (volumeNode.GetName() + " slicewise")
        scene = slicer.mrmlScene
        labelNode = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", name + " labels")
        slicer.util.updateVolumeFromArray(labelNode, mask.array())
        m = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(m)
        labelNode.SetIJKToRASMatrix(m)

        segNode = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        segNode.CreateDefaultDisplayNodes()
        segNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
        slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(labelNode, segNode)

        # Import makes one segment per non-zero value, in ascending value order.
        present = [s.value for s in mask.label_stats() if s.voxels > 0]
        byValue = {int(l["value"]): l for l in labels}
        segmentation = segNode.GetSegmentation()
        for i in range(segmentation.GetNumberOfSegments()):
            if i >= len(present):
                break
            value = present[i]
            segment = segmentation.GetNthSegment(i)
            label = byValue.get(value)
            if label is None:
                segment.SetName(f"label {value}")
                continue
            segment.SetName(label.get("name") or f"label {value}")
            color = label.get("color")
            if color:
                segment.SetColor(color[0] / 255.0, color[1] / 255.0, color[2] / 255.0)
        return segNode, labelNode

    def run(self, volumeNode, modelPath, device="auto", keepLabelmap=False, **options):
        """Segments synchronously (scripts, self-test): returns (segmentationNode, stats,
        provider)."""
        job = self.start(volumeNode, modelPath, device, **options)
        job.wait()
        job.poll()
        if job.error is not None:
            raise job.error
        model = self.model(modelPath, device)
        segNode, labelNode = self.createSegmentation(volumeNode, job.mask, model.labels())
        if not keepLabelmap:
            slicer.mrmlScene.RemoveNode(labelNode)
        return segNode, job.mask.label_stats(), model.provider()


#
# Widget
#

class SlicewiseWidget(ScriptedLoadableModuleWidget):
    """GUI: the worker thread reports through the job's queue, drained by a QTimer here, so Qt
    is only ever touched on the GUI thread."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None
        self.job = None
        self.jobVolume = None
        self.timer = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/Slicewise.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        settings = qt.QSettings()
        self.logic = SlicewiseLogic(settings.value(SETTINGS_LIBRARY) or None,
                                    settings.value(SETTINGS_RUNTIME) or None)

        self.ui.deviceComboBox.clear()
        for d in ("Auto", "CPU", "CUDA"):
            self.ui.deviceComboBox.addItem(d)
        model = settings.value(SETTINGS_MODEL) or default_model() or ""
        self.ui.modelPathLineEdit.text = model
        self.ui.libraryPathLineEdit.text = settings.value(SETTINGS_LIBRARY) or ""
        self.ui.progressBar.setValue(0)
        self.ui.cancelButton.enabled = False
        self.ui.resultsTable.setColumnCount(4)
        self.ui.resultsTable.setHorizontalHeaderLabels(["Value", "Label", "Voxels", "Volume (mL)"])

        self.ui.browseModelButton.connect("clicked(bool)", self.onBrowseModel)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateButtons)

        self.timer = qt.QTimer()
        self.timer.setInterval(100)
        self.timer.connect("timeout()", self.onPoll)
        self.updateButtons()

    def cleanup(self):
        if self.job is not None:
            self.job.cancel()
        if self.timer is not None:
            self.timer.stop()

    def updateButtons(self, *_):
        busy = self.job is not None
        self.ui.applyButton.enabled = (not busy and self.ui.inputVolumeSelector.currentNode()
                                       is not None)
        self.ui.cancelButton.enabled = busy

    def onBrowseModel(self):
        path = qt.QFileDialog.getOpenFileName(None, "ONNX model", self.ui.modelPathLineEdit.text,
                                              "ONNX models (*.onnx)")
        if path:
            self.ui.modelPathLineEdit.text = path

    def options(self):
        threshold = self.ui.thresholdSpinBox.value
        return {
            "threshold": None if threshold < 0 else threshold,
            "largest_component": self.ui.largestComponentCheckBox.checked,
            "fill_holes": self.ui.fillHolesCheckBox.checked,
            "min_component_voxels": int(self.ui.minSizeSpinBox.value),
        }

    def onApply(self):
        volumeNode = self.ui.inputVolumeSelector.currentNode()
        modelPath = self.ui.modelPathLineEdit.text
        device = DEVICE_CHOICES[max(0, self.ui.deviceComboBox.currentIndex)]
        settings = qt.QSettings()
        settings.setValue(SETTINGS_MODEL, modelPath)
        lib = self.ui.libraryPathLineEdit.text.strip()
        if lib:
            settings.setValue(SETTINGS_LIBRARY, lib)
            self.logic.libraryPath = lib
        try:
            self.job = self.logic.start(volumeNode, modelPath, device, **self.options())
            self.ui.providerLabel.text = self.logic.model(modelPath, device).provider() or "?"
        except Exception as e:
            self.job = None
            slicer.util.errorDisplay(f"Slicewise could not start: {e}")
            return
        self.jobVolume = volumeNode
        self.jobModel = (modelPath, device)
        self.ui.progressBar.setValue(0)
        self.ui.statusLabel.text = "Segmenting..."
        self.updateButtons()
        self.timer.start()

    def onCancel(self):
        if self.job is not None:
            self.job.cancel()
            self.ui.statusLabel.text = "Cancelling..."

    def onPoll(self):
        if self.job is None:
            self.timer.stop()
            return
        for ev in self.job.poll():
            if ev[0] == "progress":
                _, done, total = ev
                self.ui.progressBar.setValue(int(100 * done / max(total, 1)))
            elif ev[0] == "done":
                self.finish(ev[1], None)
            elif ev[0] == "error":
                self.finish(None, ev[1])

    def finish(self, mask, error):
        self.timer.stop()
        job, self.job = self.job, None
        job.wait(1.0)
        self.updateButtons()
        if error is not None:
            cancelled = isinstance(error, sw.CancelledError)
            self.ui.statusLabel.text = "Cancelled." if cancelled else f"Failed: {error}"
            self.ui.progressBar.setValue(0)
            if not cancelled:
                slicer.util.errorDisplay(f"Slicewise failed: {error}")
            return
        model = self.logic.model(*self.jobModel)
        segNode, labelNode = self.logic.createSegmentation(self.jobVolume, mask, model.labels())
        slicer.mrmlScene.RemoveNode(labelNode)
        stats = mask.label_stats()
        table = self.ui.resultsTable
        table.setRowCount(len(stats))
        for row, s in enumerate(stats):
            for col, text in enumerate((str(s.value), s.name, str(s.voxels), f"{s.ml:.3f}")):
                table.setItem(row, col, qt.QTableWidgetItem(text))
        self.ui.progressBar.setValue(100)
        self.ui.statusLabel.text = "Done: " + ", ".join(f"{s.name or s.value} {s.ml:.2f} mL"
                                                        for s in stats)
        mask.close()


#
# Test
#

class SlicewiseTest(ScriptedLoadableModuleTest):
    """Reload and Test in the module panel (developer mode) runs this inside Slicer: a bundled
    model on its own bundled sample, or, when absent, the default model (else the test model
    tests/data/unet_sigmoid.onnx) on a synthetic volume with an oblique geometry."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_SegmentAndImport()

    def sampleVolume(self, modelPath):
        sample = os.environ.get("SLICEWISE_TEST_SAMPLE", bundled_sample(modelPath))
        if sample:
            return slicer.util.loadVolume(sample)
        z, y, x = np.mgrid[0:24, 0:40, 0:48]
        blob = ((x - 24) ** 2 + (y - 20) ** 2 + ((z - 12) * 2) ** 2) < 150
        array = (100.0 * blob + 10.0 * np.sin(x / 3.0)).astype(np.int16)
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "slicewise-synthetic")
        slicer.util.updateVolumeFromArray(node, array)
        m = vtk.vtkMatrix4x4()
        # 0.8 x 0.9 x 2.5 mm voxels, rotated 30 degrees about S, shifted.
        c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
        rows = [[c * 0.8, -s * 0.9, 0, -20.0], [s * 0.8, c * 0.9, 0, 15.0], [0, 0, 2.5, -30.0],
                [0, 0, 0, 1]]
        for r in range(4):
            for col in range(4):
                m.SetElement(r, col, rows[r][col])
        node.SetIJKToRASMatrix(m)
        return node

    def test_SegmentAndImport(self):
        self.delayDisplay("Slicewise: segmenting")
        modelPath = os.environ.get("SLICEWISE_TEST_MODEL") or self_test_model()
        self.assertIsNotNone(modelPath, "no bundled model and no tests/data/unet_sigmoid.onnx")
        volumeNode = self.sampleVolume(modelPath)
        logic = SlicewiseLogic()

        # Progress arrives on the queue; the result is on the source grid.
        job = logic.start(volumeNode, modelPath, "cpu")
        self.assertTrue(job.wait(600))
        events = job.poll()
        self.assertIsNone(job.error)
        progress = [e for e in events if e[0] == "progress"]
        self.assertTrue(progress and progress[-1][1] == progress[-1][2])
        mask = job.mask
        array = slicer.util.arrayFromVolume(volumeNode)
        self.assertEqual(mask.array().shape, array.shape)
        self.assertTrue(np.allclose(mask.ijk_to_ras(), logic.ijkToRas(volumeNode), atol=1e-4))

        model = logic.model(modelPath, "cpu")
        segNode, labelNode = logic.createSegmentation(volumeNode, mask, model.labels())
        self.assertTrue(np.allclose(logic.ijkToRas(labelNode), logic.ijkToRas(volumeNode)))
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(labelNode), mask.array()))
        present = [s for s in mask.label_stats() if s.voxels > 0]
        self.assertEqual(segNode.GetSegmentation().GetNumberOfSegments(), len(present))
        labels = {int(l["value"]): l for l in model.labels()}
        for i, s in enumerate(present):
            segment = segNode.GetSegmentation().GetNthSegment(i)
            label = labels.get(s.value, {})
            self.assertEqual(segment.GetName(), label.get("name") or f"label {s.value}")
            if label.get("color"):
                self.assertEqual([round(c * 255) for c in segment.GetColor()],
                                 [int(c) for c in label["color"]])

        # Cancel from another thread stops the run with CancelledError.
        job = logic.start(volumeNode, modelPath, "cpu", batch_size=1)
        job.cancel()
        self.assertTrue(job.wait(600))
        job.poll()
        self.assertIsInstance(job.error, sw.CancelledError)
        self.delayDisplay("Slicewise: test passed")
