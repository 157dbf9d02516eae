"""Dataset loaders, one module per benchmark layout; every module is imported (and registers
itself) when the catalog loads."""
from healthbench._autoload import import_submodules

import_submodules(__name__)
