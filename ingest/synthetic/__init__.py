"""A labeled synthetic lending portfolio: the demo's, the tests' and the benchmarks' data.

>>> from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
>>> sorted(GeneratorConfig().rates)[:2]
['broker_ring', 'cashflow_inconsistency']
"""

from ringscope.ingest.synthetic.config import HARD_NEGATIVES, TYPOLOGIES, GenerationSummary, GeneratorConfig
from ringscope.ingest.synthetic.generator import generate_portfolio
from ringscope.ingest.synthetic.scenario import SCENARIOS, Scenario, generate_scenario, random_scenario

__all__ = [
    "GeneratorConfig",
    "GenerationSummary",
    "generate_portfolio",
    "TYPOLOGIES",
    "HARD_NEGATIVES",
    "Scenario",
    "SCENARIOS",
    "random_scenario",
    "generate_scenario",
]
