"""Model plugins behind one contract (``base``). A model knows no benchmark and no metric: it
imports only ``healthbench.core`` and ``healthbench.data``. Plugins import torch/transformers
inside functions, so listing models stays fast."""
