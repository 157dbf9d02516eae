"""Labelers turn free text (a generated or reference report) into finding labels; every module
registers itself in ``catalog.LABELERS`` when the catalog loads."""
from healthbench._autoload import import_submodules

import_submodules(__name__)
