"""A minimal, honest stand-in for the parts of 3D Slicer's `slicer` module that the Slicewise
Logic and self-test call. Nodes keep what Slicer keeps (an array in (k, j, i) order, an IJK->RAS
matrix, segments with a name and colour); no rendering, no real MRML.

Semantics copied from Slicer:
- arrayFromVolume returns the voxel array (k, j, i): it is a view of the node's image data.
- updateVolumeFromArray stores a copy of the array; it leaves the node's geometry unchanged.
- ImportLabelmapToSegmentationNode creates one segment per non-zero label value, in ascending
  value order, on the label map's geometry, with a generated name ("Label_<value>") that callers
  rename.
"""
import numpy as np

from . import ScriptedLoadableModule  # noqa: F401  (import path used by modules)
from . import util  # noqa: F401


class _Node:
    def __init__(self, cls, name):
        self.cls = cls
        self._name = name
        self.ID = None

    def GetName(self):
        return self._name

    def SetName(self, name):
        self._name = name

    def GetID(self):
        return self.ID

    def IsA(self, cls):
        return cls == self.cls


class _VolumeNode(_Node):
    def __init__(self, cls, name):
        super().__init__(cls, name)
        self.array = None
        self._ijk_to_ras = np.eye(4)

    def GetIJKToRASMatrix(self, m):
        for r in range(4):
            for c in range(4):
                m.SetElement(r, c, self._ijk_to_ras[r, c])

    def SetIJKToRASMatrix(self, m):
        self._ijk_to_ras = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])

    def CreateDefaultDisplayNodes(self):
        pass


class _Segment:
    def __init__(self, name, label_value):
        self._name = name
        self._color = (0.5, 0.5, 0.5)
        self.label_value = label_value

    def GetName(self):
        return self._name

    def SetName(self, name):
        self._name = name

    def GetColor(self):
        return self._color

    def SetColor(self, r, g, b):
        self._color = (float(r), float(g), float(b))


class _Segmentation:
    def __init__(self):
        self.segments = []  # (id, segment)

    def GetNumberOfSegments(self):
        return len(self.segments)

    def GetNthSegment(self, i):
        return self.segments[i][1]

    def GetNthSegmentID(self, i):
        return self.segments[i][0]


class _SegmentationNode(_Node):
    def __init__(self, cls, name):
        super().__init__(cls, name)
        self._segmentation = _Segmentation()
        self.reference_geometry_from = None
        self.display_nodes = False

    def GetSegmentation(self):
        return self._segmentation

    def CreateDefaultDisplayNodes(self):
        self.display_nodes = True

    def SetReferenceImageGeometryParameterFromVolumeNode(self, node):
        self.reference_geometry_from = node


_CLASSES = {
    "vtkMRMLScalarVolumeNode": _VolumeNode,
    "vtkMRMLLabelMapVolumeNode": _VolumeNode,
    "vtkMRMLSegmentationNode": _SegmentationNode,
}


class _Scene:
    def __init__(self):
        self.nodes = []
        self._next = 1

    def AddNewNodeByClass(self, cls, name=""):
        node = _CLASSES[cls](cls, name or cls)
        node.ID = f"{cls}{self._next}"
        self._next += 1
        self.nodes.append(node)
        return node

    def RemoveNode(self, node):
        self.nodes.remove(node)

    def Clear(self, close=0):
        self.nodes = []


mrmlScene = _Scene()


class _SegmentationsLogic:
    def ImportLabelmapToSegmentationNode(self, labelmapNode, segmentationNode, *args):
        assert labelmapNode.cls == "vtkMRMLLabelMapVolumeNode", labelmapNode.cls
        labels = labelmapNode.array
        segmentationNode.labelmap = labels.copy()
        segmentationNode.labelmap_ijk_to_ras = labelmapNode._ijk_to_ras.copy()
        for value in np.unique(labels):
            if value == 0:
                continue
            name = f"Label_{int(value)}"
            segmentationNode.GetSegmentation().segments.append((name, _Segment(name, int(value))))
        return True


class _Module:
    def __init__(self, logic):
        self._logic = logic

    def logic(self):
        return self._logic


class _Modules:
    segmentations = _Module(_SegmentationsLogic())


modules = _Modules()
