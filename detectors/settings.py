"""One settings object for detection and training: ``ringscope detect --config FILE``.

A TOML file overrides any detector parameter and any training setting;
everything not named keeps its default::

    # ringscope.toml
    [detectors.shared_identifier_rings]
    fence_mads = 3.5          # hub fence: MADs above the median of log(people sharing)
    min_hub_people = 6

    [detectors.device_velocity]
    window_hours = 48

    [training]
    review_capacity = 0.03    # the team reviews 3% of applications

``detect`` saves the settings it ran with in the store (one ``Settings``
node, replaced with the findings), so ``train`` and ``flag`` run the
detectors with the same parameters without being told again. Every finding,
model and flag carries the settings' :attr:`Settings.digest`: two results
with the same digest came from the same parameters.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ringscope.detectors.registry import DETECTORS, build_detector

__all__ = [
    "Settings",
    "SettingsError",
    "SettingsWarning",
    "load_settings",
    "stored_settings",
    "store_settings",
    "settings_batch",
    "TRAINING_KEYS",
]

#: the training settings a file may set (the target is chosen per command, the seed is fixed for reproducibility)
TRAINING_KEYS = (
    "validation_share",
    "review_capacity",
    "review_threshold",
    "decline_threshold",
    "prefer_scorecard_within",
    "honest_sample",
    "negatives_per_positive",
)


class SettingsError(ValueError):
    """A settings file that cannot be used, with the reason."""


class SettingsWarning(UserWarning):
    """Results that were made with different settings are being combined."""


def _plain(value: Any) -> Any:
    """A parameter value as JSON/TOML can hold it (tuples become lists)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Settings:
    """Overrides of detector parameters and training settings, validated when built.

    Parameters
    ----------
    detectors : dict
        ``{detector name: {parameter: value}}``; names and parameters are
        checked against the registry (each detector validates its values).
    training : dict
        Fields of :class:`~ringscope.detectors.risk.scoring.TrainingConfig`
        (see :data:`TRAINING_KEYS`).
    source : str
        Where they came from (a file name, ``"defaults"``, ``"store"``).

    Example
    -------
    >>> s = Settings({"guarantee_circles": {"max_cycle_length": 5}})
    >>> s.effective()["detectors"]["guarantee_circles"]
    {'max_cycle_length': 5, 'max_cycles': 20}
    >>> s.digest == Settings().digest, len(s.digest)
    (False, 16)
    >>> Settings({"rings": {}})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    SettingsError: Unknown detector 'rings' in the settings; known: identity, ...
    """

    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    source: str = "defaults"

    def __post_init__(self) -> None:
        from ringscope.detectors.risk.config import TrainingConfig

        # TOML and JSON have arrays where the detectors take tuples
        object.__setattr__(
            self,
            "detectors",
            {
                name: {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
                if isinstance(overrides, dict)
                else overrides
                for name, overrides in self.detectors.items()
            },
        )
        for name, overrides in self.detectors.items():
            if name not in DETECTORS:
                raise SettingsError(f"Unknown detector {name!r} in the settings; known: {', '.join(DETECTORS)}")
            if not isinstance(overrides, dict):
                raise SettingsError(f"[detectors.{name}] must be a table of parameters; got {overrides!r}")
            try:
                build_detector(name, **overrides)
            except TypeError as err:  # an unknown keyword
                known = ", ".join(build_detector(name).params())
                raise SettingsError(f"[detectors.{name}]: {err}; its parameters: {known}") from None
            except ValueError as err:
                raise SettingsError(f"[detectors.{name}]: {err}") from None
        unknown = sorted(set(self.training) - set(TRAINING_KEYS))
        if unknown:
            raise SettingsError(f"Unknown training setting(s) {', '.join(unknown)}; known: {', '.join(TRAINING_KEYS)}")
        try:
            TrainingConfig(**self.training)
        except ValueError as err:
            raise SettingsError(f"[training]: {err}") from None

    def detector(self, name: str):
        """Detector ``name`` built with these settings' parameters."""
        return build_detector(name, **self.detectors.get(name, {}))

    def detector_params(self) -> dict[str, dict[str, Any]]:
        """The overrides in the form :func:`~ringscope.detectors.runner.run_detectors` takes."""
        return {name: dict(params) for name, params in self.detectors.items()}

    def training_config(self, target: str = "fraud", **explicit: Any):
        """A :class:`~ringscope.detectors.risk.scoring.TrainingConfig` for ``target``:
        ``explicit`` values (command-line options) win over the settings."""
        from ringscope.detectors.risk.config import TrainingConfig

        values = {**self.training, **{k: v for k, v in explicit.items() if v is not None}}
        return TrainingConfig(target=target, **values)

    def effective(self) -> dict[str, Any]:
        """Every parameter of every detector and every training setting, defaults filled in."""
        from ringscope.detectors.risk.config import TrainingConfig

        defaults = TrainingConfig(**self.training)
        return {
            "detectors": {
                name: {k: _plain(v) for k, v in build_detector(name, **self.detectors.get(name, {})).params().items()}
                for name in DETECTORS
            },
            "training": {key: getattr(defaults, key) for key in TRAINING_KEYS},
        }

    @cached_property
    def digest(self) -> str:
        """16 hex digits of SHA-256 over :meth:`effective`: equal digests, equal parameters."""
        text = json.dumps(self.effective(), sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def same_detectors(self, other: Settings) -> bool:
        """Whether both run the detectors with the same parameters (training may differ)."""
        return self.effective()["detectors"] == other.effective()["detectors"]

    def to_json(self) -> str:
        """The overrides and their source, as stored on the ``Settings`` node."""
        return json.dumps(
            {"detectors": self.detectors, "training": self.training, "source": self.source},
            sort_keys=True,
            ensure_ascii=False,
            default=_plain,
        )

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        return cls(data.get("detectors", {}), data.get("training", {}), data.get("source", "store"))

    def to_toml(self) -> str:
        """Every setting with its value, as a file ``--config`` reads (a starting point to edit).

        Example
        -------
        >>> print(Settings().to_toml().split("\\n\\n")[1])
        [detectors.shared_identifier_rings]
        min_people = 3
        fence_mads = 3.0
        min_hub_people = 5
        cohesion_threshold = 0.5
        max_ring_size = 300
        max_household = 6
        """
        effective = self.effective()
        lines = [f"# ringscope settings (digest {self.digest})"]
        sections = [(f"detectors.{name}", params) for name, params in effective["detectors"].items()]
        sections.append(("training", effective["training"]))
        for section, params in sections:
            lines.append("") if len(lines) > 1 else None
            lines.append(f"[{section}]")
            lines.extend(f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in params.items())
        return "\n".join(lines) + "\n"


def load_settings(path: str | Path | None) -> Settings:
    """Settings from a TOML file (``None``: the defaults).

    Example
    -------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ringscope.toml")
    >>> _ = open(path, "w").write("[detectors.cashflow]\\nmin_peers = 50\\n[training]\\nreview_capacity = 0.03\\n")
    >>> s = load_settings(path)
    >>> s.detectors, s.training_config().review_capacity
    ({'cashflow': {'min_peers': 50}}, 0.03)
    """
    if path is None:
        return Settings()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"No settings file {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SettingsError(f"{path} is not valid TOML: {err}") from None
    unknown = sorted(set(data) - {"detectors", "training"})
    if unknown:
        raise SettingsError(
            f"{path}: unknown section(s) {', '.join(unknown)}; a settings file has [detectors.NAME] and [training]"
        )
    try:
        return Settings(dict(data.get("detectors", {})), dict(data.get("training", {})), source=str(path))
    except SettingsError as err:
        raise SettingsError(f"{path}: {err}") from None


def store_settings(store: Any) -> Settings:
    """What ``train`` and ``flag`` run the detectors with: the settings of the
    store's last ``detect``, or the defaults when it saved none."""
    return stored_settings(store) or Settings()


def stored_settings(store: Any) -> Settings | None:
    """The settings the store's last ``detect`` ran with (``None``: no detect, or one from before settings)."""
    try:
        nodes = store.read_nodes("Settings", ["settings"])
    except KeyError:
        return None
    if nodes.empty:
        return None
    row = nodes[nodes["key"] == "detect"]
    return Settings.from_json(row["settings"].iloc[0]) if len(row) else None


def settings_batch(settings: Settings, saved_at: str) -> dict[str, Any]:
    """The ``Settings`` node ``detect`` writes beside its findings (one row, key ``detect``)."""
    import pandas as pd

    return {
        "Settings": pd.DataFrame(
            {
                "key": ["detect"],
                "digest": [settings.digest],
                "settings": [settings.to_json()],
                "source": [settings.source],
                "saved_at": [saved_at],
            }
        )
    }
