"""HealthGPT (M3 / L14 / XL32 and a tiny test configuration) as the ``healthgpt`` model plugin.

Modules: ``plugin`` (the Model contract), ``build`` (assembling from local files or a seed),
``model`` (the network and task switching), ``hlora`` (the H-LoRA layer), ``checkpoint``
(strict loading of the released key layout), ``vision`` (preprocessing, CLIP layers, projector),
``templates`` (conversation formats), ``imagegen`` (index tokens), ``vqgan`` (the decoder),
``variants`` and ``tiny`` (configurations). Nothing is imported here: the catalog names
``plugin:HealthGPTPlugin``, and the plugin imports torch/transformers lazily. See docs/healthgpt.md.
"""
