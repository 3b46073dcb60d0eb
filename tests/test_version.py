"""The shared library as a binding sees it (ctypes, no header): runtime
version against the header's macros, status messages, and only rad_*
entry points. Run by `make check` with RAD_LIB=lib/librad.so."""
import ctypes
import os
import re
import sys
import unittest

TOP = os.environ.get("RAD_TOP", os.path.join(os.path.dirname(__file__), ".."))
LIB = os.environ.get("RAD_LIB", os.path.join(TOP, "lib", "librad.so"))


def header_macros():
    with open(os.path.join(TOP, "include", "rad", "rad.h")) as f:
        text = f.read()
    macros = dict(re.findall(r"^#define (RAD_VERSION_\w+) (\d+)\s*$", text, re.M))
    string = re.search(r'^#define RAD_VERSION_STRING "([^"]*)"', text, re.M)
    status_min = re.search(r"^#define RAD_STATUS_MIN \((-\d+)\)", text, re.M)
    return macros, string.group(1), int(status_min.group(1))


class VersionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lib = ctypes.CDLL(LIB)
        cls.lib.rad_version.restype = ctypes.c_int
        cls.lib.rad_version_string.restype = ctypes.c_char_p
        cls.lib.rad_status_min.restype = ctypes.c_int
        cls.lib.rad_strerror.restype = ctypes.c_char_p
        cls.lib.rad_strerror.argtypes = [ctypes.c_int]

    def test_version(self):
        macros, string, _ = header_macros()
        major, minor, patch = (int(macros["RAD_VERSION_" + k])
                               for k in ("MAJOR", "MINOR", "PATCH"))
        self.assertEqual(self.lib.rad_version(),
                         major * 10000 + minor * 100 + patch)
        self.assertEqual(self.lib.rad_version_string().decode(), string)
        self.assertEqual(string, "%d.%d.%d" % (major, minor, patch))

    def test_strerror(self):
        _, _, status_min = header_macros()
        self.assertEqual(self.lib.rad_status_min(), status_min)
        unknown = self.lib.rad_strerror(1)
        self.assertEqual(unknown, b"unknown status code")
        msgs = [self.lib.rad_strerror(c) for c in range(0, status_min - 1, -1)]
        self.assertTrue(all(msgs) and unknown not in msgs)
        self.assertEqual(len(set(msgs)), len(msgs))
        for c in (status_min - 1, -(2**31), 2**31 - 1):
            self.assertEqual(self.lib.rad_strerror(c), unknown)


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False).result.wasSuccessful() else 1)
