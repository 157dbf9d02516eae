"""The registries every task file and CLI name resolves through, filled on import.

Importing this module imports the built-in loaders, prompt builders, extractors, metrics and
models, which register themselves. Third-party models come in through the ``healthbench.models``
entry-point group (looked up lazily, only when a name is not built in).
"""
from __future__ import annotations

from healthbench.registry import Registry

LOADERS: Registry = Registry("dataset format")
SAMPLE_BUILDERS: Registry = Registry("sample builder")
PROMPT_BUILDERS: Registry = Registry("prompt builder")
EXTRACTORS: Registry = Registry("answer extractor")
METRICS: Registry = Registry("metric")
MODELS: Registry = Registry("model", entry_point_group="healthbench.models")
#: Report text → finding labels (e.g. the 14 CheXpert observations); used by extractors/metrics.
LABELERS: Registry = Registry("labeler", entry_point_group="healthbench.labelers")


def _import_builtins() -> None:
    # Imported for their registration side effects; order does not matter.
    import healthbench.data  # noqa: F401
    import healthbench.labelers  # noqa: F401
    import healthbench.metrics  # noqa: F401
    import healthbench.models  # noqa: F401


_import_builtins()
