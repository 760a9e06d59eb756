"""Stand-in for PythonQt's `qt`: the Logic never calls it; the Widget (not run here) does."""


class _Unavailable:
    def __init__(self, *a, **k):
        raise RuntimeError("qt is not available in the slicer stub: only the Logic is tested")


QTimer = QSettings = QFileDialog = QTableWidgetItem = _Unavailable
