"""The risk model and everything that scores applications with it.

- :mod:`~ringscope.detectors.risk.features`: per-application features from the
  graph and the findings;
- :mod:`~ringscope.detectors.risk.scoring`: the explainable model (training,
  out-of-time validation, the compiled scorecard);
- :mod:`~ringscope.detectors.risk.reasons`: reason codes with evidence;
- :mod:`~ringscope.detectors.risk.training`: ``ringscope train`` over a store;
- :mod:`~ringscope.detectors.risk.flagging` (with ``flagging_single`` and
  ``flag_state``): scoring new applications against the stored portfolio;
- :mod:`~ringscope.detectors.risk.model_store`: champion and challenger on disk;
- :mod:`~ringscope.detectors.risk.monitoring`: drift and outcome monitoring.
"""
