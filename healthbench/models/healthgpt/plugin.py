"""``healthgpt``: the model plugin (Requests in, Responses out) over ``HealthGPT``.

Text requests run on the comprehension task, image requests on the generation task; a batch
holding both is split, and the answers come back in request order. Decoding is batched with
left padding (greedy unless a request asks for a temperature); ``score_choices`` scores every
option of every request in one forward. Heavy imports happen in ``__init__`` only.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from healthbench.core.catalog import MODELS
from healthbench.models.base import Model, ModelArgsError, each_alone
from healthbench.core.types import Request, Response

#: Upstream gen_infer.py's token budget for one image (1024 indices + end + slack).
IMAGE_MAX_NEW_TOKENS = 1100


@MODELS.register("healthgpt")
class HealthGPTPlugin(Model):
    """HealthGPT M3 / L14 / XL32 from local weights, or the tiny random-weight configuration.

    Arguments (``--model-args``): ``variant`` (m3, l14, xl32, tiny; default tiny), ``llm_path``,
    ``vit_path``, ``com_hlora_path``, ``gen_hlora_path``, ``fusion_path``, ``vqgan_path``,
    ``vqgan_config`` (taming ``model.yaml``; default: the one beside the checkpoint, else the
    shape read from the checkpoint), ``com_hlora_alpha`` / ``gen_hlora_alpha`` /
    ``hlora_experts`` (default: the variant's; the rank is read from the adapter file),
    ``dtype`` (auto: bf16 on GPU, fp32 on CPU), ``attn_implementation`` (sdpa), ``device``,
    ``device_map``, ``seed`` (tiny weights), ``system_prompt`` (replaces the template's),
    ``constrained_image_decoding`` (force exactly one image of index tokens; default: only tiny).
    Speed (docs/benchmarks.md): ``random_weights`` (m3/l14/xl32 at full size with random
    weights, comprehension only, no files: for benchmarks; ``random_shape: mid`` builds the
    layout at CPU size instead, hidden 256, 4 layers), ``cache_implementation`` (dynamic or
    static KV cache for generation), ``compile`` (torch.compile of the static-cache decode step
    and of the option-scoring forward; GPU only), ``pad_multiple`` (left-pad batches to a
    multiple of this many tokens; default 64 with compile, else 1), ``preprocess_workers``
    (threads for image preprocessing), ``max_batch_size`` (cap of ``--batch-size auto``),
    ``batch_invariant`` (each request computed alone under a per-sample seed, so outputs do not
    depend on the batch; default false: batches run padded, for throughput).
    """

    capabilities = frozenset({"text", "loglikelihood", "image"})
    default_batch_size = 8
    #: Variants with a released generation adapter (checked against ``variants.VARIANTS`` in the
    #: tests; kept here so capabilities are known without importing torch).
    GENERATION_VARIANTS = frozenset({"m3", "tiny"})

    @classmethod
    def capabilities_for(cls, args: Mapping[str, Any]) -> frozenset[str]:
        """From the arguments alone: ``tiny`` does everything; ``random_weights`` is
        comprehension only; a released variant comprehends with ``com_hlora_path`` and generates
        images only when it has a generation adapter (M3) and ``gen_hlora_path`` is given."""
        variant = str(args.get("variant", "tiny")).lower()
        if variant == "tiny":
            return cls.capabilities
        if args.get("random_weights"):
            return frozenset({"text", "loglikelihood"})
        caps = {"text", "loglikelihood"} if args.get("com_hlora_path") else set()
        if variant in cls.GENERATION_VARIANTS and args.get("gen_hlora_path"):
            caps.add("image")
        return frozenset(caps)

    def __init__(self, variant: str = "tiny", llm_path: str | None = None,
                 vit_path: str | None = None, com_hlora_path: str | None = None,
                 gen_hlora_path: str | None = None, fusion_path: str | None = None,
                 vqgan_path: str | None = None, dtype: str = "auto",
                 attn_implementation: str = "sdpa", device: str | None = None,
                 device_map: str | None = None, seed: int = 0, system_prompt: str | None = None,
                 constrained_image_decoding: bool | None = None,
                 random_weights: bool = False, cache_implementation: str = "dynamic",
                 compile: bool = False, pad_multiple: int | None = None,
                 preprocess_workers: int | None = None, max_batch_size: int = 128,
                 vqgan_config: str | None = None, com_hlora_alpha: float | None = None,
                 gen_hlora_alpha: float | None = None,
                 hlora_experts: int | None = None,
                 batch_invariant: bool = False, random_shape: str | None = None) -> None:
        from healthbench.models.healthgpt import build
        from healthbench.models.healthgpt.adapters import HLoRAArgs
        from healthbench.models.healthgpt.variants import GENERATION, get_variant

        try:
            spec = get_variant(str(variant))
            torch_device = build.resolve_device(device)
            torch_dtype = build.resolve_dtype(dtype, torch_device)
        except ValueError as exc:
            raise ModelArgsError(f"healthgpt: {exc}") from exc
        paths = build.Paths(llm_path, vit_path, com_hlora_path, gen_hlora_path, fusion_path,
                            vqgan_path, vqgan_config)
        hlora = HLoRAArgs(com_hlora_alpha, gen_hlora_alpha, hlora_experts)
        if cache_implementation not in ("dynamic", "static"):
            raise ModelArgsError(f"healthgpt: cache_implementation {cache_implementation!r}: "
                                 "expected dynamic or static")
        if compile and torch_device.type == "cpu":
            raise ModelArgsError("healthgpt: compile=true needs a GPU (the CPU path stays "
                                 "eager)")
        if random_shape is not None and not (random_weights and spec.name != "tiny"):
            raise ModelArgsError("healthgpt: random_shape is a shape for random_weights")
        if spec.name == "tiny":
            built = build.build_tiny(spec, paths, torch_dtype, torch_device, attn_implementation,
                                     int(seed), hlora)
        elif random_weights:
            if paths.given():
                raise ModelArgsError("healthgpt: random_weights takes no weight paths")
            if random_shape is not None:
                from healthbench.models.healthgpt.shapes import get_shape

                try:
                    get_shape(random_shape)
                except ValueError as exc:
                    raise ModelArgsError(f"healthgpt: random_shape: {exc}") from exc
            built = build.build_random(spec, torch_dtype, torch_device, attn_implementation,
                                       int(seed), random_shape)
        else:
            built = build.build_released(spec, paths, torch_dtype, torch_device,
                                         attn_implementation, device_map, hlora)
        self.variant = spec
        self.net = built.net
        self.vqgan = built.vqgan
        self.stop_ids = built.stop_ids
        self.system_prompt = system_prompt
        self.constrained_image_decoding = (spec.name == "tiny"
                                           if constrained_image_decoding is None
                                           else bool(constrained_image_decoding))
        #: Token budget for one generated image (upstream: 1100 for 1024 indices).
        self.image_max_new_tokens = IMAGE_MAX_NEW_TOKENS
        self.dtype_name = str(torch_dtype).replace("torch.", "")
        self.paths = paths.given()
        self.random_weights = bool(random_weights) and spec.name != "tiny"
        self.net.cache_implementation = cache_implementation
        self.net.compile = bool(compile)
        self.net.pad_multiple = int(pad_multiple if pad_multiple is not None
                                    else (64 if compile else 1))
        if preprocess_workers is not None:
            self.net.preprocess.workers = int(preprocess_workers)
        self.max_batch_size = int(max_batch_size)
        self.vqgan_info = built.info.get("vqgan")
        #: Each request computed alone under its own seed (base.each_alone); opt-in, because
        #: batched image generation is ~3x faster even on the CPU (docs/models.md).
        self.batch_invariant = bool(batch_invariant)
        self.seed = int(seed)
        tasks = set(built.info["tasks"])
        caps = {"text", "loglikelihood"} if "comprehension" in tasks else set()
        if GENERATION in tasks and self.vqgan is not None:
            caps.add("image")
        self.capabilities = frozenset(caps)

    # ---- helpers ------------------------------------------------------------------------------
    def _rows(self, requests: Sequence[Request], suffix: Sequence[int] = ()) -> tuple[list, list]:
        rows, images = [], []
        for request in requests:
            segments = self.net.prompt_segments(request.prompt, len(request.images), len(images),
                                                self.system_prompt or request.system)
            if suffix:
                segments.append(list(suffix))
            rows.append(segments)
            images.extend(request.images)
        return rows, images

    def _need(self, task: str) -> None:
        if task not in self.net.tasks:
            raise RuntimeError(f"healthgpt ({self.variant.name}) was built without {task} "
                               "weights")
        self.net.activate(task)

    def _cut(self, tokens: list[int], limit: int, stops: Sequence[int]) -> list[int]:
        tokens = tokens[:limit]
        stop = set(stops)
        for i, token in enumerate(tokens):
            if token in stop:
                return tokens[:i]
        return tokens

    # ---- the contract -----------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if self.batch_invariant:
            return each_alone(self._generate, requests, self.seed)
        return self._generate(requests)

    def _generate(self, requests: Sequence[Request]) -> list[Response]:
        out: list[Response | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, request in enumerate(requests):
            gen = request.generation
            groups.setdefault((request.output, gen.temperature, gen.top_p), []).append(i)
        for (kind, _, _), indices in groups.items():
            batch = [requests[i] for i in indices]
            answers = self._images(batch) if kind == "image" else self._texts(batch)
            for i, answer in zip(indices, answers):
                out[i] = answer
        return out  # type: ignore[return-value]

    def _texts(self, requests: Sequence[Request]) -> list[Response]:
        import torch

        self._need("comprehension")
        gen = requests[0].generation
        with torch.inference_mode():
            rows, images = self._rows(requests)
            embeds, attention = self.net.embed_rows(rows, self.net.image_features(images))
            limit = max(r.generation.max_new_tokens for r in requests)
            ids = self.net.generate_ids(embeds, attention, limit, self.stop_ids,
                                        gen.temperature, gen.top_p).tolist()
        return [self._text_from_ids(row, request.generation.max_new_tokens,
                                    request.generation.stop)
                for request, row in zip(requests, ids)]

    def _text_from_ids(self, row: list[int], limit: int, stops: Sequence[str] = ()) -> Response:
        """New token ids → the text answer (cut at the limit and stop ids/strings)."""
        tokens = self._cut(row, limit, self.stop_ids)
        text_ids = [t for t in tokens if t < self.net.base_vocab]
        text = self.net.tokenizer.decode(text_ids, skip_special_tokens=True)
        for stop in stops:
            if stop and stop in text:
                text = text[: text.index(stop)]
        extra = {"dropped_image_tokens": len(tokens) - len(text_ids)} \
            if len(text_ids) != len(tokens) else {}
        return Response(text=text, extra=extra)

    def _texts_from_ids(self, rows: Sequence[list[int]], limit: int) -> list[Response]:
        return [self._text_from_ids(row, limit) for row in rows]

    def _image_stop_ids(self) -> list[int]:
        return [self.net.end_index_id, *self.stop_ids]

    def _generate_image_tokens(self, requests: Sequence[Request]) -> list[list[int]]:
        """New token ids per request, after ``<start_index>`` (greedy unless asked otherwise)."""
        import torch

        from healthbench.models.healthgpt.imagegen import ImageTokenConstraint

        net = self.net
        count = self.vqgan.config.tokens  # type: ignore[union-attr]
        gen = requests[0].generation
        processors = [ImageTokenConstraint(net.first_index_id, net.vq_tokens, count,
                                           net.end_index_id, net.vocab_size, net.device)] \
            if self.constrained_image_decoding else []
        limit = max([self.image_max_new_tokens] + [r.generation.max_new_tokens for r in requests])
        with torch.inference_mode():
            rows, images = self._rows(requests, suffix=[net.start_index_id])
            embeds, attention = net.embed_rows(rows, net.image_features(images))
            ids = net.generate_ids(embeds, attention, limit, self._image_stop_ids(),
                                   gen.temperature, gen.top_p, processors)
        return ids.tolist()

    def _images(self, requests: Sequence[Request]) -> list[Response]:
        import torch

        from healthbench.models.healthgpt.imagegen import parse_image_tokens

        self._need("generation")
        if self.vqgan is None:
            raise RuntimeError("healthgpt: image generation needs vqgan_path")
        count = self.vqgan.config.tokens
        parsed = [parse_image_tokens(tokens, self.net.first_index_id, self.net.vq_tokens, count,
                                     self._image_stop_ids())
                  for tokens in self._generate_image_tokens(requests)]
        good = [p for p in parsed if not isinstance(p, str)]
        pictures = iter(())
        if good:
            device = next(self.vqgan.parameters()).device
            with torch.inference_mode():
                pictures = iter(self.vqgan.decode_to_uint8(
                    torch.tensor(good, dtype=torch.long, device=device)).cpu().numpy())
        return [Response(error=p) if isinstance(p, str) else Response(image=next(pictures))
                for p in parsed]

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        """Mean log-probability of each choice's tokens as the answer (each prompt alone when
        ``batch_invariant``: no padding against the other prompts of the batch).

        Each prompt runs once (``HealthGPT.shared_prefix_logprobs``): one forward over the
        prompts scores every choice's first token at the last position, and multi-token choices
        continue from the prompts' KV cache. Single-token choices (option letters) therefore
        cost exactly one forward per request with the LM head at one position.
        """
        if self.batch_invariant and len(requests) > 1:
            return each_alone(self.score_choices, requests, self.seed)
        import torch

        self._need("comprehension")
        tokenizer = self.net.tokenizer
        rows, images, continuations = [], [], []
        for request in requests:
            rows.append(self.net.prompt_segments(request.prompt, len(request.images),
                                                 len(images), self.system_prompt or request.system))
            images.extend(request.images)
            continuations.append([list(tokenizer(choice, add_special_tokens=False)["input_ids"])
                                  for choice in request.choices])
        per_request: list[list[float]] = [[] for _ in requests]
        with torch.inference_mode():
            if any(continuations):
                embeds, attention = self.net.embed_rows(rows, self.net.image_features(images))
                longest = max(len(c) for conts in continuations for c in conts)
                if self.net.fits_shared_prefix(attention.shape[1], longest):
                    per_request = self.net.shared_prefix_logprobs(embeds, attention,
                                                                  continuations)
                else:
                    per_request = self._whole_row_scores(rows, images, continuations)
        return [Response(choice_scores=tuple(s)) for s in per_request]

    def _whole_row_scores(self, rows: list, images: list,
                          continuations: list[list[list[int]]]) -> list[list[float]]:
        """One row per (request, choice), all in one forward (prompts beyond a sliding window)."""
        flat, conts, owners = [], [], []
        for k, (base, choices) in enumerate(zip(rows, continuations)):
            for cont in choices:
                flat.append(base + [cont] if cont else list(base))
                conts.append(cont)
                owners.append(k)
        embeds, attention = self.net.embed_rows(flat, self.net.image_features(images))
        scores = self.net.continuation_logprobs(embeds, attention, conts).tolist()
        out: list[list[float]] = [[] for _ in rows]
        for owner, score in zip(owners, scores):
            out[owner].append(score)
        return out

    def auto_batch_size(self, requests: Sequence[Request]) -> int:
        """On a GPU: as many ~1k-token image prompts as fit in 80% of the free memory (KV cache
        for 1024 + 64 tokens, one layer's MLP activations, the CLIP tower), capped by
        ``max_batch_size`` and rounded down to a multiple of 8; on the CPU the default."""
        import torch

        device = self.net.device
        if device.type != "cuda":
            return self.default_batch_size
        free, _ = torch.cuda.mem_get_info(device)
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        config = self.net.llm.config
        item = torch.finfo(self.net.dtype).bits // 8
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        tokens = 1024 + 64
        kv = 2 * config.num_hidden_layers * kv_heads * head_dim * item * tokens
        act = tokens * (3 * config.intermediate_size + 6 * config.hidden_size) * item
        vision = self.net.vision.config
        clip = 577 * (vision.intermediate_size + 6 * vision.hidden_size) * item
        per_sample = kv + act + clip
        size = int(0.8 * free // per_sample)
        size = min(self.max_batch_size, max(1, size))
        return max(1, size - size % 8) if size >= 8 else size

    def describe(self) -> dict[str, Any]:
        net = self.net
        return {
            "variant": self.variant.name,
            "description": self.variant.description,
            "dtype": self.dtype_name,
            "tasks": {name: {"hlora_rank": t.hlora.rank, "hlora_alpha": t.hlora.alpha,
                             "experts": t.hlora.experts, "hlora_scaling": t.hlora.scaling,
                             "vision_layer": t.vision_layer}
                      for name, t in net.tasks.items()},
            **({"vqgan": self.vqgan_info} if self.vqgan_info else {}),
            "template": net.template.name,
            "weights": {k: str(v) for k, v in self.paths.items()},
            "parameters": sum(p.numel() for p in net.parameters()),
            "constrained_image_decoding": self.constrained_image_decoding,
            "random_weights": self.random_weights,
            "cache_implementation": net.cache_implementation,
            "compile": net.compile,
            "pad_multiple": net.pad_multiple,
            "batch_invariant": self.batch_invariant,
        }

    def close(self) -> None:
        self.net = None  # type: ignore[assignment]
        self.vqgan = None
