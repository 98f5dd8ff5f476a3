"""A labeled synthetic lending portfolio: the demo's, the tests' and the benchmarks' data."""

from ingest.synthetic.generator import (
    HARD_NEGATIVES,
    TYPOLOGIES,
    GenerationSummary,
    GeneratorConfig,
    generate_portfolio,
)

__all__ = ["GeneratorConfig", "GenerationSummary", "generate_portfolio", "TYPOLOGIES", "HARD_NEGATIVES"]
