"""The HealthGPT network: LLM with H-LoRA, CLIP tower, per-task projector/adapters/fusion layers.

``HealthGPT`` holds one base LLM and one vision tower and any number of *tasks*
(comprehension, generation). A task is everything the released weights switch together: an
H-LoRA adapter on every wrapped linear, a visual projector, the CLIP layer it reads and, for
generation, the fusion embedding/head. ``activate(task)`` points the model at one task's
weights; nothing is recomputed or merged, so outputs after any sequence of switches equal those
of a model that only ever had that task.

Batches are built as input embeddings: each row is a list of segments (token ids, or an image
index whose projected patch features are spliced in), left-padded to the longest row, with
position ids counted over real tokens only. Decoding uses transformers' ``generate`` on those
embeddings; likelihood scoring runs one forward over all candidate rows and applies the LM head
only at the continuation positions.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from healthbench.models.healthgpt.checkpoint import (
    CheckpointError,
    adapter_layout,
    check_keys,
    fusion_layout,
    projector_layout,
    read_state_dict,
)
from healthbench.models.healthgpt.hlora import (
    TARGETS,
    HLoRAConfig,
    HLoRALinear,
    set_active,
    wrap_linears,
)
from healthbench.models.healthgpt.templates import Template
from healthbench.models.healthgpt.variants import (
    EXTRA_TOKENS_BEYOND_INDICES,
    VISION_LAYER,
)
from healthbench.models.healthgpt.vision import (
    ImagePreprocessor,
    build_projector,
    clip_patch_features,
)

#: A row segment: token ids, or the index of an image in the batch's image features.
Segment = list[int] | int


@dataclass
class Task:
    name: str
    hlora: HLoRAConfig
    vision_layer: int
    projector: nn.Sequential
    embed: nn.Parameter | None = None   # fusion embedding layer (None: the base one)
    head: nn.Parameter | None = None    # fusion output head (None: the base one)


class HealthGPT(nn.Module):
    def __init__(self, llm: nn.Module, vision: nn.Module, tokenizer: Any, processor: Any,
                 family: str, template: Template, vq_tokens: int) -> None:
        super().__init__()
        self.llm = llm
        self.vision = vision
        self.tokenizer = tokenizer
        self.preprocess = ImagePreprocessor(processor)
        self.template = template
        self.base_vocab = len(tokenizer)
        self.vq_tokens = vq_tokens
        if vq_tokens:
            self._append_vq_rows(vq_tokens + EXTRA_TOKENS_BEYOND_INDICES)
        self.hlora_layers: dict[str, HLoRALinear] = wrap_linears(llm, TARGETS[family])
        self.projectors = nn.ModuleDict()
        self.tasks: dict[str, Task] = {}
        self.active: str | None = None
        self._base_embed = llm.get_input_embeddings().weight
        self._base_head = llm.get_output_embeddings().weight
        self.pad_id = next(i for i in (tokenizer.pad_token_id, tokenizer.unk_token_id,
                                       tokenizer.eos_token_id, 0) if i is not None)
        #: Speed options (plugin model args): KV cache kind for ``generate`` ("dynamic" or
        #: "static"), torch.compile of the decode step (static cache) and of the scoring
        #: forward, and left padding of every batch to a multiple of ``pad_multiple`` tokens
        #: (fewer distinct shapes for compiled code; padding never changes a result).
        self.cache_implementation = "dynamic"
        self.compile = False
        self.pad_multiple = 1
        self._compiled_body: Any = None
        self._chunk_ids: dict[tuple[str, bool], list[int]] = {}

    # ---- vocabulary -------------------------------------------------------------------------
    @property
    def start_index_id(self) -> int:
        return self.base_vocab

    @property
    def first_index_id(self) -> int:
        return self.base_vocab + 1

    @property
    def end_index_id(self) -> int:
        return self.base_vocab + 1 + self.vq_tokens

    @torch.no_grad()
    def _append_vq_rows(self, count: int) -> None:
        """Upstream's resize: rows from ``len(tokenizer)`` on, for embeddings and head, are set
        to the mean of the rows before them (whatever the padded matrix held there)."""
        base, size = self.base_vocab, self.base_vocab + count
        for module in (self.llm.get_input_embeddings(), self.llm.get_output_embeddings()):
            old = module.weight
            if old.shape[0] < base:
                raise ValueError(f"LLM has {old.shape[0]} embedding rows but the tokenizer has "
                                 f"{base} tokens")
            new = old.new_empty(size, old.shape[1])
            new[:base] = old[:base]
            new[base:] = old[:base].float().mean(0).to(old.dtype)
            module.weight = nn.Parameter(new, requires_grad=False)
            if isinstance(module, nn.Embedding):
                module.num_embeddings = size
            else:
                module.out_features = size
        self.llm.config.vocab_size = size

    @property
    def vocab_size(self) -> int:
        return self._base_embed.shape[0]

    @property
    def hidden_size(self) -> int:
        return self._base_embed.shape[1]

    @property
    def device(self) -> torch.device:
        return self._base_embed.device

    @property
    def dtype(self) -> torch.dtype:
        return self._base_embed.dtype

    # ---- tasks ------------------------------------------------------------------------------
    def add_task(self, name: str, hlora: HLoRAConfig) -> Task:
        vision_hidden = self.vision.config.hidden_size
        projector = build_projector(vision_hidden, self.hidden_size, self.dtype, self.device)
        self.projectors[name] = projector
        for layer in self.hlora_layers.values():
            layer.add_adapter(name, hlora)
        task = Task(name, hlora, VISION_LAYER[name], projector)
        self.tasks[name] = task
        return task

    def activate(self, name: str) -> None:
        if name == self.active:
            return
        task = self.tasks[name]
        set_active(self.hlora_layers.values(), name)
        self.llm.get_input_embeddings().weight = task.embed if task.embed is not None \
            else self._base_embed
        self.llm.get_output_embeddings().weight = task.head if task.head is not None \
            else self._base_head
        self.active = name

    def _layouts(self, task: Task) -> tuple[dict, dict, dict]:
        dims = {path: (layer.in_features, layer.out_features)
                for path, layer in self.hlora_layers.items()}
        adapters = adapter_layout(dims, task.hlora.rank, task.hlora.experts)
        projector = projector_layout(self.vision.config.hidden_size, self.hidden_size)
        fusion = fusion_layout(self.vocab_size, self.hidden_size)
        return adapters, projector, fusion

    @torch.no_grad()
    def load_task(self, name: str, hlora_path: str, fusion_path: str | None = None,
                  hlora_state: Mapping[str, torch.Tensor] | None = None) -> None:
        """Load a released H-LoRA file (+ optional fusion file) into task ``name``, strictly
        (``hlora_state``: the file's tensors when the caller has read them already)."""
        task = self.tasks[name]
        adapters, projector, fusion = self._layouts(task)
        state = read_state_dict(hlora_path) if hlora_state is None else hlora_state
        found = check_keys(hlora_path, state,
                           required={**adapters, **projector}, optional=fusion)
        if fusion_path is not None:
            found.update(check_keys(fusion_path, read_state_dict(fusion_path), required=fusion))
        grouped: dict[str, dict[str, torch.Tensor]] = {}
        for slot, tensor in found.values():
            if slot.kind == "adapter":
                grouped.setdefault(slot.target, {})[slot.tensor] = tensor
            elif slot.kind == "projector":
                task.projector.get_parameter(slot.target).copy_(tensor)
            else:
                param = nn.Parameter(tensor.to(self.device, self.dtype), requires_grad=False)
                setattr(task, slot.kind, param)
        for path, tensors in grouped.items():
            self.hlora_layers[path].adapters[name].load(**tensors)
        if self.active == name:  # re-point embeddings/head at the new tensors
            self.active = None
            self.activate(name)

    def set_fusion(self, name: str, embed: torch.Tensor, head: torch.Tensor) -> None:
        task = self.tasks[name]
        for kind, tensor in (("embed", embed), ("head", head)):
            if tuple(tensor.shape) != (self.vocab_size, self.hidden_size):
                raise CheckpointError(f"fusion {kind} has shape {tuple(tensor.shape)}, expected "
                                      f"{(self.vocab_size, self.hidden_size)}")
            setattr(task, kind, nn.Parameter(tensor.to(self.device, self.dtype),
                                             requires_grad=False))

    # ---- inputs -----------------------------------------------------------------------------
    def prompt_segments(self, question: str, n_images: int, first_image: int,
                        system: str | None = None) -> list[Segment]:
        """Token-id chunks with image indices between them (upstream ``tokenizer_image_token``:
        each chunk tokenised on its own, special tokens such as BOS only on the first)."""
        segments: list[Segment] = []
        for i, chunk in enumerate(self.template.chunks(question, n_images, system)):
            if i:
                segments.append(first_image + i - 1)
            ids = self._tokenize(chunk, i == 0)
            if ids:
                segments.append(list(ids))
        return segments

    def _tokenize(self, chunk: str, special: bool) -> list[int]:
        """Token ids of one prompt chunk; the template's fixed chunks are tokenised once."""
        key = (chunk, special)
        ids = self._chunk_ids.get(key)
        if ids is None:
            ids = list(self.tokenizer(chunk, add_special_tokens=special)["input_ids"])
            if len(chunk) <= 512 and len(self._chunk_ids) < 4096:
                self._chunk_ids[key] = ids
        return list(ids)

    def image_features(self, images: Sequence[Any]) -> torch.Tensor | None:
        """Projected patch features of the active task, (N, P, H), or None without images."""
        if not images:
            return None
        task = self.tasks[self.active]  # type: ignore[index]
        pixels = self.preprocess(images).to(self.vision.device, self.vision.dtype)
        feats = clip_patch_features(self.vision, pixels, task.vision_layer)
        return task.projector(feats.to(self.device, self.dtype))

    def embed_rows(self, rows: Sequence[Sequence[Segment]],
                   features: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded input embeddings (B, L, H) and attention mask (B, L) for the rows."""
        per_image = 0 if features is None else features.shape[1]
        lengths = [sum(per_image if isinstance(s, int) else len(s) for s in row) for row in rows]
        width = max(lengths)
        if self.pad_multiple > 1:
            width = -(-width // self.pad_multiple) * self.pad_multiple
        ids: list[int] = []
        is_image: list[bool] = []
        order: list[int] = []
        for row, length in zip(rows, lengths):
            ids.extend([self.pad_id] * (width - length))
            is_image.extend([False] * (width - length))
            for seg in row:
                if isinstance(seg, int):
                    ids.extend([self.pad_id] * per_image)
                    is_image.extend([True] * per_image)
                    order.append(seg)
                else:
                    ids.extend(seg)
                    is_image.extend([False] * len(seg))
        shape = (len(rows), width)
        ids_t = torch.tensor(ids, dtype=torch.long, device=self.device).view(shape)
        embeds = self.llm.get_input_embeddings()(ids_t)
        if order:
            assert features is not None
            mask = torch.tensor(is_image, device=self.device).view(*shape, 1)
            picked = features[torch.tensor(order, device=features.device)]
            embeds = embeds.masked_scatter(mask, picked.to(embeds.dtype))
        lengths_t = torch.tensor(lengths, device=self.device)
        attention = (torch.arange(width, device=self.device) >= (width - lengths_t)[:, None])
        return embeds, attention.long()

    # ---- decoding and scoring ----------------------------------------------------------------
    def generate_ids(self, embeds: torch.Tensor, attention: torch.Tensor, max_new_tokens: int,
                     stop_ids: Sequence[int], temperature: float = 0.0, top_p: float = 1.0,
                     logits_processor: Sequence[Any] = ()) -> torch.Tensor:
        """New token ids (B, T); rows that stopped early are padded with ``pad_id``."""
        from transformers import GenerationConfig, LogitsProcessorList

        sample = temperature > 0
        static = self.cache_implementation == "static"
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=sample,
                                  eos_token_id=list(stop_ids), pad_token_id=self.pad_id,
                                  use_cache=True, num_beams=1,
                                  **({"cache_implementation": "static",
                                      "disable_compile": not self.compile} if static else {}),
                                  **({"temperature": temperature, "top_p": top_p} if sample
                                     else {}))
        return self.llm.generate(inputs_embeds=embeds, attention_mask=attention,
                                 generation_config=config,
                                 logits_processor=LogitsProcessorList(list(logits_processor)))

    def _body(self, **kwargs: Any) -> Any:
        """The LLM body (no head), compiled on first use when ``compile`` is on."""
        if not self.compile:
            return self.llm.model(**kwargs)
        if self._compiled_body is None:
            self._compiled_body = torch.compile(self.llm.model, dynamic=True)
        return self._compiled_body(**kwargs)

    def fits_shared_prefix(self, width: int, longest: int) -> bool:
        """Whether the prompt KV cache can be rolled back after each choice (sliding-window
        caches cannot once the window is full; those rows are scored as whole rows)."""
        window = getattr(self.llm.config, "sliding_window", None)
        return longest <= 1 or not window or width + longest <= window

    def shared_prefix_logprobs(self, embeds: torch.Tensor, attention: torch.Tensor,
                               continuations: Sequence[Sequence[Sequence[int]]]
                               ) -> list[list[float]]:
        """Mean log-probability of each continuation of each prompt row: ``[row][choice]``.

        Equals ``continuation_logprobs`` on rows ``prompt + continuation`` but runs the prompt
        once per row, not once per choice: one forward over the prompts (the LM head only at
        the last position, which scores every continuation's first token), then, only if some
        continuation has more than one token, one short forward per choice index over the
        continuations' remaining tokens on top of the prompts' KV cache, which is cut back to
        the prompts after each. Single-token continuations (option letters) cost one forward
        over the prompts and nothing else. Empty continuations score -inf.
        """
        longest = max((len(c) for conts in continuations for c in conts), default=0)
        multi = longest > 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        body = self.llm.model if multi else self._body   # the compiled body returns no cache
        out = body(inputs_embeds=embeds, attention_mask=attention, position_ids=positions,
                   use_cache=multi)
        head = self.llm.get_output_embeddings()
        first = torch.log_softmax(head(out.last_hidden_state[:, -1]).float(), dim=-1)   # (B, V)
        sums = [[0.0] * len(conts) for conts in continuations]
        firsts = [(b, k, c[0]) for b, conts in enumerate(continuations)
                  for k, c in enumerate(conts) if c]
        if firsts:
            where_b = torch.tensor([f[0] for f in firsts], device=first.device)
            where_t = torch.tensor([f[2] for f in firsts], device=first.device)
            for (b, k, _), value in zip(firsts, first[where_b, where_t].tolist()):
                sums[b][k] = value
        if multi:
            cache = out.past_key_values
            lengths = attention.sum(-1)
            for k in range(max(len(conts) for conts in continuations)):
                feeds = [list(conts[k][:-1]) if k < len(conts) and len(conts[k]) > 1 else []
                         for conts in continuations]
                steps = max(len(f) for f in feeds)
                if steps == 0:
                    continue
                ids = torch.tensor([f + [self.pad_id] * (steps - len(f)) for f in feeds],
                                   dtype=torch.long, device=attention.device)
                real = torch.tensor([[1] * len(f) + [0] * (steps - len(f)) for f in feeds],
                                    dtype=attention.dtype, device=attention.device)
                step = torch.arange(steps, device=attention.device)
                hidden = self.llm.model(input_ids=ids,
                                        attention_mask=torch.cat([attention, real], dim=1),
                                        position_ids=lengths[:, None] + step[None, :],
                                        past_key_values=cache, use_cache=True).last_hidden_state
                cache.crop(-steps)   # back to the prompts (negative: tokens to drop)
                targets = torch.tensor([list(conts[k][1:]) + [0] * (steps + 1 - len(conts[k]))
                                        if len(f) else [0] * steps
                                        for conts, f in zip(continuations, feeds)],
                                       dtype=torch.long, device=attention.device)
                logp = torch.log_softmax(head(hidden).float(), dim=-1)
                token = (logp.gather(-1, targets[..., None]).squeeze(-1) * real).sum(-1)
                for b, value in enumerate(token.tolist()):
                    if feeds[b]:
                        sums[b][k] += value
        return [[s / len(c) if c else float("-inf") for s, c in zip(row, conts)]
                for row, conts in zip(sums, continuations)]

    def continuation_logprobs(self, embeds: torch.Tensor, attention: torch.Tensor,
                              continuations: Sequence[Sequence[int]]) -> torch.Tensor:
        """Mean log-probability of each row's continuation (its last tokens), shape (B,).

        One forward over all rows; the LM head runs only at the continuation positions.
        Rows with an empty continuation score -inf.
        """
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        hidden = self.llm.model(inputs_embeds=embeds, attention_mask=attention,
                                position_ids=positions, use_cache=False).last_hidden_state
        width = attention.shape[1]
        longest = max(1, max(len(c) for c in continuations))
        counts = torch.tensor([len(c) for c in continuations], device=hidden.device)
        step = torch.arange(longest, device=hidden.device)
        valid = step[None, :] < counts[:, None]                                   # (B, C)
        # Token j of a continuation of length c sits at width - c + j; it is predicted at - 1.
        where = (width - 1 - counts[:, None] + step[None, :]).clamp(0, width - 1)
        targets = torch.tensor([[*c] + [0] * (longest - len(c)) for c in continuations],
                               dtype=torch.long, device=hidden.device)
        picked = hidden.gather(1, where[..., None].expand(-1, -1, hidden.shape[-1]))
        logp = torch.log_softmax(self.llm.get_output_embeddings()(picked).float(), dim=-1)
        token = logp.gather(-1, targets[..., None]).squeeze(-1) * valid
        mean = token.sum(-1) / counts.clamp(min=1)
        return torch.where(counts > 0, mean, torch.full_like(mean, float("-inf")))
