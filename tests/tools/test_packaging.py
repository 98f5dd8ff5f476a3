"""The wheel installs one top-level package, ``ringscope``, and nothing else.

Four generic names (``app``, ``graph``, ``detectors``, ``ingest``) at the top of
site-packages would collide with any other package of that name; these tests
build the real wheel and import from it with our editable install out of the way.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("app", "graph", "detectors", "ingest")


def _declared_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


def test_every_subpackage_is_declared():
    found = {"ringscope"}
    for room in ROOMS:
        for init in (ROOT / room).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT)
            if relative.parts[:2] == ("app", "api"):  # installed as `ringscope` itself
                continue
            found.add(".".join(("ringscope", *relative.parts)))
    assert found == _declared_packages()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # built from a copy: setuptools leaves build/ and *.egg-info beside the sources
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for room in ROOMS:
        shutil.copytree(ROOT / room, source / room, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("ringscope-*.whl")
    return path


@pytest.mark.slow
def test_wheel_holds_only_the_ringscope_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"ringscope"}
    for expected in (
        "ringscope/__init__.py",
        "ringscope/__main__.py",
        "ringscope/app/cli/__init__.py",
        "ringscope/app/cli/__main__.py",
        "ringscope/app/dashboard/main.py",
        "ringscope/app/dashboard/pages/queue.py",
        "ringscope/detectors/rings.py",
        "ringscope/graph/embedded.py",
        "ringscope/ingest/synthetic/generator.py",
        "ringscope/app/dashboard/locale/zh_CN/LC_MESSAGES/ringscope.po",
    ):  # the dashboard's words
        assert expected in names
    assert not any(name.startswith("ringscope/app/api/") for name in names)  # no second copy of the API
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "ringscope = ringscope.app.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_installed_wheel_imports_under_its_namespace(wheel, tmp_path):
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # -S: no .pth files, so the editable install's finder is not there; the
    # dependencies come from our site-packages, ringscope only from the wheel.
    probe = (
        "import sys, importlib.util\n"
        f"sys.path[:0] = [{str(target)!r}]\n"
        f"sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
        "import ringscope, ringscope.app.cli\n"
        "from ringscope.detectors.rings import SharedIdentifierRings\n"
        "from ringscope.detectors.registry import DETECTORS, build_detector\n"
        "modules = {type(build_detector(name)).__module__ for name in DETECTORS}\n"
        "assert all(m.startswith('ringscope.detectors.') for m in modules), modules\n"
        "print(ringscope.__file__)\n"
        "print(sorted(set(ringscope.__all__) - set(dir(ringscope))))\n"
        "print([n for n in ('app', 'graph', 'detectors', 'ingest') if importlib.util.find_spec(n)])\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    location, missing, top_level = done.stdout.splitlines()
    assert Path(location) == target / "ringscope" / "__init__.py"
    assert missing == "[]"  # every name in __all__ exists
    assert top_level == "[]"


def test_no_api_name_shadows_a_room():
    """``import ringscope.ingest.pipeline as p`` must keep working: a function
    named after a room would hide the sub-package (and be replaced by it)."""
    import ringscope
    import ringscope.ingest.pipeline as pipeline

    assert not set(ringscope.__all__) & set(ROOMS)
    assert callable(ringscope.ingest_export) and pipeline.__name__ == "ringscope.ingest.pipeline"
