"""Record linkage: the Fellegi–Sunter engine that identity resolution runs on.

- :mod:`~ringscope.detectors.resolution.matching`: vectorised field comparisons
  (names in hanzi/traditional/pinyin, ID numbers, dates, phones, addresses);
- :mod:`~ringscope.detectors.resolution.linkage`: blocking, pair scoring with
  m/u probabilities estimated on the data, clustering into entities
  (:func:`~ringscope.detectors.resolution.linkage.resolve_records`, also
  ``ringscope resolve``).

The ``identity`` detector (:mod:`ringscope.detectors.identity`) turns the
entities into findings.
"""
