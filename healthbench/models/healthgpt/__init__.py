"""HealthGPT (M3 / L14 / XL32 and a tiny test configuration) as the ``healthgpt`` model plugin.

Modules: ``plugin`` (the Model contract), ``build`` (assembling from local files or a seed),
``model`` (the network and task switching), ``hlora`` (the H-LoRA layer), ``checkpoint``
(strict loading of the released key layout), ``vision`` (preprocessing, CLIP layers, projector),
``templates`` (conversation formats), ``imagegen`` (index tokens), ``vqgan`` (the decoder),
``variants`` and ``tiny`` (configurations). Only ``plugin`` is imported here, and it imports
torch/transformers lazily, so listing models stays fast. See docs/healthgpt.md.
"""
from healthbench.models.healthgpt.plugin import HealthGPTPlugin

__all__ = ["HealthGPTPlugin"]
