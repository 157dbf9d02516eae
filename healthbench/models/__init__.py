"""Model plugins; importing registers the built-ins. The contract lives in ``base``."""
from healthbench.models import baselines, tiny  # noqa: F401
from healthbench.models.base import Model, create_model, parse_model_args  # noqa: F401
