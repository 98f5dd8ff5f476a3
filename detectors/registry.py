"""The detectors ``ringscope detect`` runs, in order.

Adding a detector is one file in ``detectors/`` and one line here. Entries are
``module:Class`` strings so that importing the registry stays cheap and one
broken detector cannot stop the others from being listed.
The order does not matter: the runner resolves entities (identity
resolution's :meth:`~ringscope.detectors.identity.IdentityResolution.resolve`)
before any detector runs.
"""

from __future__ import annotations

import importlib

from ringscope.detectors.base import Detector

__all__ = ["DETECTORS", "detector_class", "build_detector"]

DETECTORS: dict[str, str] = {
    "identity": "ringscope.detectors.identity:IdentityResolution",
    "shared_identifier_rings": "ringscope.detectors.rings:SharedIdentifierRings",
    "guarantee_circles": "ringscope.detectors.guarantees:GuaranteeCircles",
    "device_velocity": "ringscope.detectors.velocity:DeviceVelocity",
    "contact_loops": "ringscope.detectors.contacts:ContactLoops",
    "broker_rings": "ringscope.detectors.brokers:BrokerRings",
    "cashflow": "ringscope.detectors.cashflow:CashflowChecks",
}


def detector_class(name: str) -> type[Detector]:
    """The class registered under ``name``.

    Example
    -------
    >>> detector_class("guarantee_circles").name
    'guarantee_circles'
    """
    try:
        path = DETECTORS[name]
    except KeyError:
        raise KeyError(f"Unknown detector {name!r}; known: {', '.join(DETECTORS)}") from None
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)


def build_detector(name: str, **params) -> Detector:
    """An instance of detector ``name`` with ``params`` (validated by the class)."""
    return detector_class(name)(**params)
