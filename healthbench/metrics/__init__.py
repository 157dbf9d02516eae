"""Metrics and answer extractors; importing this package registers the built-ins."""
from healthbench.metrics import basic, extract  # noqa: F401
from healthbench.metrics.base import UNPARSED, Metric, aggregate  # noqa: F401
