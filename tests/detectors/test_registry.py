"""The registry: every detector resolves from anywhere, and validates its parameters."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, fields

import pytest

from ringscope.detectors.base import Detector, ParamSpec, param
from ringscope.detectors.registry import DETECTORS, build_detector, detector_class


def test_registry_entries_resolve_inside_the_package(tmp_path):
    """Entries name ``ringscope.detectors.*`` modules: a process whose working
    directory is not the repository (a scheduler, a notebook) still finds them,
    and gets the same classes the rest of the package imports."""
    code = (
        "import importlib; from ringscope.detectors.registry import DETECTORS, detector_class\n"
        "for name, path in DETECTORS.items():\n"
        "    module = path.split(':')[0]\n"
        "    assert module.startswith('ringscope.detectors.'), path\n"
        "    assert detector_class(name).__module__ == module, (name, detector_class(name).__module__)\n"
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_every_registered_class_carries_its_registry_name():
    for name in DETECTORS:
        assert detector_class(name).name == name


# -- parameters: declared once, validated in one place ------------------------------------------------------


def _bad_values(spec: ParamSpec, defaults: dict) -> list:
    """Values just outside what ``spec`` accepts (bounds naming a parameter read its default)."""

    def value(bound):
        return defaults[bound] if isinstance(bound, str) else bound

    step = 1 if spec.kind is int else 1e-6
    if spec.kind is tuple:
        return [(), list(spec.choices or ()), ("no-such-choice",)]
    bad: list = ["3", True, None]
    if spec.kind is int:
        bad.append(2.5)
    if spec.ge is not None:
        bad.append(value(spec.ge) - step)
    if spec.gt is not None:
        bad.append(value(spec.gt))
    if spec.le is not None:
        bad.append(value(spec.le) + step)
    if spec.lt is not None:
        bad.append(value(spec.lt))
    if spec.nonzero:
        bad.append(0)
    if any(b is not None for b in (spec.ge, spec.gt, spec.le, spec.lt)) and spec.kind is not int:
        bad.append(float("nan"))
    return bad


CASES = [(name, parameter) for name in DETECTORS for parameter in detector_class(name).param_specs()]


@pytest.mark.parametrize("name", list(DETECTORS))
def test_every_field_is_a_declared_parameter_and_the_defaults_validate(name):
    cls = detector_class(name)
    detector = cls()  # raises if a default breaks its own bounds
    assert set(cls.param_specs()) == {f.name for f in fields(cls)} == set(detector.params())
    assert cls.param_specs(), name


@pytest.mark.parametrize(("name", "parameter"), CASES, ids=[f"{n}.{p}" for n, p in CASES])
def test_a_bad_value_of_any_parameter_fails_naming_it(name, parameter):
    cls = detector_class(name)
    defaults = cls().params()
    spec = cls.param_specs()[parameter]
    bad_values = _bad_values(spec, defaults)
    assert len(bad_values) >= 2
    for bad in bad_values:
        with pytest.raises(ValueError) as err:
            build_detector(name, **{parameter: bad})
        expected = f"The {parameter!r} parameter of {cls.__name__} must be {spec.expected(cls())}. Got {bad!r} instead."
        assert str(err.value) == expected


def test_a_bound_naming_another_parameter_reads_its_value():
    from ringscope.detectors.cashflow import CashflowChecks
    from ringscope.detectors.rings import SharedIdentifierRings

    assert CashflowChecks(z_start=1.0, z_full=1.5).z_full == 1.5
    with pytest.raises(ValueError, match=r"'z_full' parameter of CashflowChecks must be a number > z_start \(7.0\)"):
        CashflowChecks(z_start=7.0)
    with pytest.raises(ValueError, match=r"'max_ring_size' .* must be an int >= min_people \(12\). Got 10"):
        SharedIdentifierRings(min_people=12, max_ring_size=10)


def test_an_undeclared_field_is_refused_when_built():
    @dataclass(frozen=True, kw_only=True)
    class Sloppy(Detector):
        size: int = 3

    with pytest.raises(TypeError, match="Sloppy.size is not declared with param"):
        Sloppy()


def test_a_default_outside_its_own_bounds_fails_at_class_definition():
    with pytest.raises(TypeError, match="default 0 is not an int >= 1"):
        param(0, ge=1)
