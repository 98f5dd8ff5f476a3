"""The registry: every detector resolves from anywhere, and validates its parameters."""

from __future__ import annotations

import subprocess
import sys

from ringscope.detectors.registry import DETECTORS, detector_class


def test_registry_entries_resolve_inside_the_package(tmp_path):
    """Entries name ``ringscope.detectors.*`` modules: a process whose working
    directory is not the repository (a scheduler, a notebook) still finds them,
    and gets the same classes the rest of the package imports."""
    code = ("import importlib; from ringscope.detectors.registry import DETECTORS, detector_class\n"
            "for name, path in DETECTORS.items():\n"
            "    module = path.split(':')[0]\n"
            "    assert module.startswith('ringscope.detectors.'), path\n"
            "    assert detector_class(name).__module__ == module, (name, detector_class(name).__module__)\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_every_registered_class_carries_its_registry_name():
    for name in DETECTORS:
        assert detector_class(name).name == name
