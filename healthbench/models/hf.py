"""``hf``: any transformers image-text-to-text model, with the model's own processor and chat
template.

    healthbench run --model hf --model-args pretrained=DIR,dtype=bfloat16,attn_implementation=sdpa,device_map=auto

Loading uses ``AutoModelForImageTextToText`` and ``AutoProcessor``; remote code runs only with
``trust_remote_code=true``. Each request becomes one user turn: its images (as many as it has, in
order) followed by its prompt, rendered by the processor's chat template. Batches are left-padded
so that generation continues every row from its last prompt token.

Where the processor cannot be built but the model is known (Qwen2-VL / Qwen2.5-VL without
torchvision, whose processor insists on a video part), the tokenizer and image processor are used
directly and the image placeholder is expanded by hand to the number of vision tokens.

``score_choices`` (the ``loglikelihood`` capability) scores each choice as a continuation of the
rendered prompt: the context is tokenized once with its images, each choice's tokens are appended
(no re-tokenization across the boundary), and one forward pass reads their log-probabilities.
``choice_scores`` holds the mean (``choice_score=mean``, default) or sum log-probability per
choice; ``extra`` always carries the summed ``loglikelihood`` and ``is_greedy`` per choice, which
is what lm-eval expects.
"""
from __future__ import annotations

from typing import Any, Sequence

from healthbench.core.catalog import MODELS
from healthbench.models.base import Model, ModelArgsError, cut_at_stop
from healthbench.core.types import GenerationParams, Request, Response

DTYPES = ("auto", "float32", "float16", "bfloat16")
# Per-token inputs besides input_ids: extended with this value when a continuation is appended.
PER_TOKEN_FILL = {"attention_mask": 1, "token_type_ids": 0, "mm_token_type_ids": 0}


class ManualQwenVLProcessor:
    """Tokenizer + image processor for Qwen2-VL-family models, expanding each
    ``<|image_pad|>`` to ``grid_t*grid_h*grid_w / merge_size**2`` copies as the real processor
    does. Used only when ``AutoProcessor`` cannot be built."""

    def __init__(self, tokenizer: Any, image_processor: Any, image_token_id: int) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.image_token_id = image_token_id
        self.image_token = tokenizer.convert_ids_to_tokens(image_token_id)
        self.chat_template = tokenizer.chat_template

    def apply_chat_template(self, messages: list, **kwargs: Any) -> str:
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    def __call__(self, text: list[str], images: list | None = None, **kwargs: Any) -> dict:
        out: dict[str, Any] = {}
        texts = list(text)
        if images:
            vision = self.image_processor(images=images, return_tensors="pt")
            out.update(vision)
            merge = getattr(self.image_processor, "merge_size", 2) ** 2
            counts = [int(g.prod()) // merge for g in vision["image_grid_thw"]]
            texts = self._expand(texts, counts)
        tokens = self.tokenizer(texts, padding=True, return_tensors="pt",
                                add_special_tokens=False)
        out.update(tokens)
        out["mm_token_type_ids"] = (tokens["input_ids"] == self.image_token_id).long()
        return out

    def _expand(self, texts: list[str], counts: list[int]) -> list[str]:
        marker = "\0IMG\0"
        remaining = iter(counts)
        expanded = []
        for t in texts:
            pieces = t.replace(self.image_token, marker).split(marker)
            joined = pieces[0]
            for piece in pieces[1:]:
                try:
                    joined += self.image_token * next(remaining) + piece
                except StopIteration:
                    raise ValueError("more image placeholders than images") from None
            expanded.append(joined)
        if next(remaining, None) is not None:
            raise ValueError("more images than image placeholders in the prompts")
        return expanded


MANUAL_PROCESSORS = {"qwen2_vl": ManualQwenVLProcessor, "qwen2_5_vl": ManualQwenVLProcessor}


@MODELS.register("hf")
class HFModel(Model):
    """Any transformers image-text-to-text model (AutoModelForImageTextToText + its processor)."""

    capabilities = frozenset({"text", "loglikelihood"})
    default_batch_size = 8

    def __init__(self, pretrained: str, dtype: str | None = None, device: str | None = None,
                 device_map: str | None = None, attn_implementation: str | None = None,
                 trust_remote_code: bool = False, revision: str | None = None,
                 system_prompt: str | None = None, choice_score: str = "mean",
                 batch_size: int | None = None, max_images: int | None = None) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText

        if choice_score not in ("mean", "sum"):
            raise ModelArgsError(f"hf: choice_score must be 'mean' or 'sum', got {choice_score!r}")
        if dtype is not None and dtype not in DTYPES:
            raise ModelArgsError(f"hf: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.pretrained = str(pretrained)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # Design default: bf16 on GPU, fp32 on CPU; "auto" keeps the checkpoint's dtype.
        dtype = dtype or ("bfloat16" if self.device.startswith("cuda") else "float32")
        self.dtype = dtype
        self.system_prompt = system_prompt
        self.choice_score = choice_score
        self.max_images = max_images
        if batch_size is not None:
            self.default_batch_size = int(batch_size)
        common: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code)}
        if revision is not None:
            common["revision"] = revision
        load: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
        if device_map is not None:
            load["device_map"] = device_map
        if attn_implementation is not None:
            load["attn_implementation"] = attn_implementation
        try:
            self.config = AutoConfig.from_pretrained(self.pretrained, **common)
            self.model = AutoModelForImageTextToText.from_pretrained(self.pretrained, **load,
                                                                     **common)
        except (OSError, ValueError) as exc:
            raise ModelArgsError(f"hf: cannot load {self.pretrained!r}: {exc}") from exc
        if device_map is None:
            self.model.to(self.device)
        self.model.eval()
        self.processor = self._load_processor(common)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    # ---------------------------------------------------------------- loading

    def _load_processor(self, common: dict[str, Any]) -> Any:
        from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer
        from transformers.processing_utils import ProcessorMixin

        try:
            processor = AutoProcessor.from_pretrained(self.pretrained, **common)
            if isinstance(processor, ProcessorMixin):
                return processor
            reason: Exception = TypeError(f"AutoProcessor gave a {type(processor).__name__}")
        except (ImportError, AttributeError, OSError, ValueError) as exc:
            reason = exc
        manual = MANUAL_PROCESSORS.get(getattr(self.config, "model_type", ""))
        if manual is None:
            raise ModelArgsError(f"hf: cannot build the processor of {self.pretrained!r} "
                                 f"({type(reason).__name__}: {reason})")
        tokenizer = AutoTokenizer.from_pretrained(self.pretrained, **common)
        image_processor = AutoImageProcessor.from_pretrained(self.pretrained, **common)
        return manual(tokenizer, image_processor, int(self.config.image_token_id))

    @property
    def input_device(self) -> Any:
        return self.model.device

    # ---------------------------------------------------------------- prompts

    def _render(self, request: Request) -> str:
        content: list[dict[str, Any]] = [{"type": "image"} for _ in request.images]
        content.append({"type": "text", "text": request.prompt})
        messages: list[dict[str, Any]] = []
        system = self.system_prompt or request.system
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.append({"role": "user", "content": content})
        if getattr(self.processor, "chat_template", None) is None and \
                getattr(self.tokenizer, "chat_template", None) is None:
            token = getattr(self.processor, "image_token", "<image>")
            return token * len(request.images) + request.prompt
        return self.processor.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=False)

    def _check(self, request: Request) -> str | None:
        """Why this request cannot run (a per-sample error), or None."""
        if request.output != "text":
            return f"hf generates text only, not {request.output!r}"
        if self.max_images is not None and len(request.images) > self.max_images:
            return f"{len(request.images)} images, more than max_images={self.max_images}"
        for i, image in enumerate(request.images):
            if not hasattr(image, "convert") or not hasattr(image, "size"):
                return f"image {i} is a {type(image).__name__}, not a decoded PIL image"
        return None

    def _encode(self, requests: Sequence[Request]) -> dict[str, Any]:
        texts = [self._render(r) for r in requests]
        images = [img.convert("RGB") for r in requests for img in r.images]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        batch = self.processor(**kwargs)
        return {k: v.to(self.input_device) if hasattr(v, "to") else v for k, v in batch.items()}

    # ---------------------------------------------------------------- generation

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out: list[Response | None] = [None] * len(requests)
        by_params: dict[GenerationParams, list[int]] = {}
        for i, request in enumerate(requests):
            problem = self._check(request)
            if problem:
                out[i] = Response(error=problem)
            else:
                by_params.setdefault(request.generation, []).append(i)
        for params, indices in by_params.items():
            texts = self._generate([requests[i] for i in indices], params)
            for i, text in zip(indices, texts):
                out[i] = Response(text=text)
        return [r for r in out if r is not None]

    def _generate(self, requests: Sequence[Request], params: GenerationParams) -> list[str]:
        import torch

        inputs = self._encode(requests)
        options: dict[str, Any] = {"max_new_tokens": params.max_new_tokens,
                                   "pad_token_id": self.tokenizer.pad_token_id}
        if params.greedy:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            options.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        with torch.inference_mode():
            generated = self.model.generate(**inputs, **options)
        new = generated[:, inputs["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [cut_at_stop(t, params.stop) for t in texts]

    # ---------------------------------------------------------------- likelihood

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for request in requests:
            problem = self._check(request)
            if problem is None and not request.choices:
                problem = "no choices to score"
            out.append(Response(error=problem) if problem else self._score_one(request))
        return out

    def _score_one(self, request: Request) -> Response:
        import torch

        context = self._encode([request])
        ctx_ids = context["input_ids"][0]
        n_ctx = int(ctx_ids.shape[0])
        conts = [self.tokenizer(c, add_special_tokens=False)["input_ids"]
                 for c in request.choices]
        width = n_ctx + max(len(c) for c in conts)
        k = len(conts)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((k, width), pad, dtype=ctx_ids.dtype, device=ctx_ids.device)
        batch: dict[str, Any] = {}
        for key, value in context.items():
            if key == "input_ids":
                continue
            if torch.is_tensor(value) and value.dim() >= 2 and value.shape[:2] == (1, n_ctx):
                fill = PER_TOKEN_FILL.get(key, 0)
                rows = torch.zeros((k, width), dtype=value.dtype, device=value.device)
                for row, cont in enumerate(conts):
                    rows[row, :n_ctx] = value[0]
                    rows[row, n_ctx:n_ctx + len(cont)] = fill
                batch[key] = rows
            elif torch.is_tensor(value):
                batch[key] = torch.cat([value] * k, dim=0)  # per-image tensors, once per row
            else:
                batch[key] = value
        for row, cont in enumerate(conts):
            ids[row, :n_ctx] = ctx_ids
            ids[row, n_ctx:n_ctx + len(cont)] = torch.tensor(cont, dtype=ids.dtype)
        batch["input_ids"] = ids
        with torch.inference_mode():
            logits = self.model(**batch).logits.float()
        logp = torch.log_softmax(logits, dim=-1)
        sums, means, greedy = [], [], []
        for row, cont in enumerate(conts):
            if not cont:
                sums.append(0.0), means.append(0.0), greedy.append(True)
                continue
            positions = torch.arange(n_ctx - 1, n_ctx - 1 + len(cont), device=logp.device)
            target = ids[row, n_ctx:n_ctx + len(cont)]
            token_lp = logp[row, positions].gather(-1, target.unsqueeze(-1)).squeeze(-1)
            sums.append(float(token_lp.sum()))
            means.append(float(token_lp.mean()))
            greedy.append(bool((logp[row, positions].argmax(-1) == target).all()))
        scores = means if self.choice_score == "mean" else sums
        return Response(choice_scores=tuple(scores),
                        extra={"loglikelihood": tuple(sums), "is_greedy": tuple(greedy),
                               "n_tokens": tuple(len(c) for c in conts)})

    def describe(self) -> dict[str, Any]:
        return {"kind": "transformers image-text-to-text", "pretrained": self.pretrained,
                "class": type(self.model).__name__, "dtype": self.dtype,
                "processor": type(self.processor).__name__,
                "parameters": sum(p.numel() for p in self.model.parameters())}

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
