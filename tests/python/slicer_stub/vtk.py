"""Stand-in for the one vtk class the Slicewise Logic uses."""


class vtkMatrix4x4:
    def __init__(self):
        self._m = [[1.0 if r == c else 0.0 for c in range(4)] for r in range(4)]

    def GetElement(self, r, c):
        return self._m[r][c]

    def SetElement(self, r, c, v):
        self._m[r][c] = float(v)

    def DeepCopy(self, other):
        self._m = [[other.GetElement(r, c) for c in range(4)] for r in range(4)]
