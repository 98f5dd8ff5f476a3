"""A labeled synthetic lending portfolio: the demo's, the tests' and the benchmarks' data.

>>> from ingest.synthetic import GeneratorConfig, generate_portfolio
>>> sorted(GeneratorConfig().rates)[:2]
['broker_ring', 'cashflow_inconsistency']
"""

from ingest.synthetic.config import HARD_NEGATIVES, TYPOLOGIES, GenerationSummary, GeneratorConfig
from ingest.synthetic.generator import generate_portfolio
from ingest.synthetic.scenario import SCENARIOS, Scenario, generate_scenario, random_scenario

__all__ = ["GeneratorConfig", "GenerationSummary", "generate_portfolio", "TYPOLOGIES", "HARD_NEGATIVES",
           "Scenario", "SCENARIOS", "random_scenario", "generate_scenario"]
