"""Stand-in for slicer.util: the array <-> node calls the Logic makes."""
import numpy as np


def arrayFromVolume(node):
    if node.array is None:
        raise ValueError(f"{node.GetName()} has no image data")
    return node.array


def updateVolumeFromArray(node, array):
    a = np.asarray(array)
    if a.ndim != 3:
        raise ValueError(f"expected a (k, j, i) array, got shape {a.shape}")
    node.array = np.array(a, copy=True)


def loadVolume(path):
    raise RuntimeError("loadVolume is not available in the slicer stub")


def errorDisplay(text, *args, **kwargs):
    raise RuntimeError(text)
