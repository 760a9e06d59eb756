"""Stand-in base classes with the attributes Slicewise.py reads."""
import unittest


class _Parent:
    pass


class ScriptedLoadableModule:
    def __init__(self, parent=None):
        self.parent = parent if parent is not None else _Parent()


class ScriptedLoadableModuleWidget:
    def __init__(self, parent=None):
        self.parent = parent


class ScriptedLoadableModuleLogic:
    def __init__(self, parent=None):
        pass


class ScriptedLoadableModuleTest(unittest.TestCase):
    def __init__(self, methodName="runTest"):
        super().__init__(methodName)

    def delayDisplay(self, message, msec=0):
        pass
