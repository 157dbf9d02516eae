"""Model plugins; every module registers itself when the catalog loads. The contract is in
``base``. Plugins import torch/transformers inside functions, so listing models stays fast."""
from healthbench._autoload import import_submodules

import_submodules(__name__)
