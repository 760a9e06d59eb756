"""Helpers shared by the reference scripts: each prints one JSON object on stdout."""
import json
import sys

import numpy as np


def dump(arr, path, dtype="<f4"):
    """Writes an array as raw little-endian values in C order (what the Rust harness reads)."""
    np.ascontiguousarray(np.asarray(arr).astype(dtype)).tofile(path)


def emit(obj):
    """Prints a JSON object (numpy values converted) and exits."""
    def conv(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        raise TypeError(type(o))
    json.dump(obj, sys.stdout, default=conv)
    sys.stdout.write("\n")
