"""Metrics and answer extractors; every module registers itself when the catalog loads."""
from healthbench._autoload import import_submodules

import_submodules(__name__)
