"""Throughput of the healthgpt plugin end to end vs. upstream-style and raw loops (issue #8).

One process, one model, one synthetic OmniMedVQA-shaped workload, four measurements:

1. ``one_at_a_time``: the upstream scripts' loop (batch 1, PIL preprocessing, HF ``generate``
   with the dynamic cache, ``--answer-tokens`` new tokens for multiple choice).
2. ``raw``: a minimal batched loop on pre-processed, pre-tokenised inputs already on the device.
   Multiple choice: one forward per sample, LM head at the last position only, argmax over the
   option letters. Open: plain HF batched ``generate`` with the dynamic cache.
3. ``healthbench``: the real pipeline (task YAML → loader → runner with image decoding threads
   → plugin → scoring → samples.jsonl) via ``healthbench.run.evaluate.evaluate``.
4. ``lmeval``: lm-eval's ``hf-multimodal`` on a LLaVA-layout model of the same base shapes (random
   weights saved to a folder), the same documents, the same batch size (``--skip-lmeval`` skips).
   ``hf-multimodal`` has no log-likelihood, so its multiple choice is ``generate_until`` with
   ``--answer-tokens`` tokens, like (1).

Models have random weights, built directly on the device in the chosen dtype (no downloads, no
full-size float32 copy on the CPU). ``--tiny`` runs everything at toy size on the CPU (smoke test);
``--shape mid`` the variant's layout at CPU size (hidden 256, 4 layers), all four phases in
minutes, for the agreement check (below 0.98 agreement with the raw loop the run fails).
See docs/benchmarks.md for the GPU commands and the meaning of every number.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), by a substring of the device name.
BF16_PEAK_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4),
                    ("GH200", 989.4), ("A100", 312.0), ("L40S", 362.1), ("A10G", 70.0))
MC_PROMPT = ("\nQuestion: {question}\nOptions: \n{options}\nAnswer with the option's letter from "
             "the given choices directly.")
OPEN_PROMPT = "\nQuestion: {question}\nDescribe the findings in detail."
LETTERS = "ABCD"
#: Below this fraction of answers equal to the raw loop's, the run fails (bf16 near-ties may
#: flip a few answers; a different prompt flips most).
MIN_AGREEMENT = 0.98


# ----------------------------------------------------------------------------- workload

def question_text(rng: random.Random, words: int) -> str:
    from healthbench.models.healthgpt.shapes import WORDS

    pool = [w for w in WORDS if w.isalpha() and len(w) > 1]
    return " ".join(rng.choice(pool) for _ in range(words)).capitalize() + "?"


def write_dataset(root: Path, n: int, question_words: int, image_sizes: list[tuple[int, int]],
                  seed: int) -> Path:
    """``n`` OmniMedVQA-format items (4 options) over PNG images of the given sizes."""
    import numpy as np
    from PIL import Image

    rng = random.Random(seed)
    base = root / "OmniMedVQA"
    images = base / "Images" / "bench"
    images.mkdir(parents=True, exist_ok=True)
    qa = base / "QA_information" / "Open-access"
    qa.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(seed)
    pool = []
    for k, (w, h) in enumerate(image_sizes * 4):
        smooth = generator.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        picture = Image.fromarray(smooth).resize((w, h), Image.BILINEAR)
        pool.append((k, picture))
    items = []
    for i in range(n):
        k, picture = pool[i % len(pool)]
        rel = f"Images/bench/{i:05d}.png"
        picture.save(base / rel)
        options = [question_text(rng, 2)[:-1] for _ in range(4)]
        answer = rng.randrange(4)
        items.append({"question": question_text(rng, question_words),
                      "gt_answer": options[answer], "image_path": rel,
                      **{f"option_{L}": o for L, o in zip(LETTERS, options)},
                      "modality_type": "CT(Computed Tomography)",
                      "question_type": "Modality Recognition"})
    (qa / "bench.json").write_text(json.dumps(items), encoding="utf-8")
    return base


def task_config(workload: str, open_tokens: int) -> Any:
    from healthbench.taskconfig.schema import parse_task

    common = {"version": "bench", "output": "text", "group_by": ["modality"],
              "dataset": {"format": "omnimedvqa", "path": "OmniMedVQA",
                          "options": {"access": ["Open-access"]}}}
    if workload == "mc":
        data = {"task": "bench_mc", **common, "scorer": "loglikelihood",
                "choice_template": " {letter}", "prompt": {"template": MC_PROMPT},
                "metrics": [{"name": "accuracy"}]}
    else:
        data = {"task": "bench_open", **common, "scorer": "generate",
                "prompt": {"template": OPEN_PROMPT}, "extract": {"name": "choice_letter"},
                "metrics": [{"name": "accuracy"}, {"name": "parse_failure"}],
                "generation": {"max_new_tokens": open_tokens}}
    return parse_task(data, f"<benchmark {workload}>")


# ----------------------------------------------------------------------------- measurement

class Meter:
    """Wall time (device synchronised), peak device memory, tokens and FLOPs of one phase."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.generated = 0

    @contextmanager
    def timed(self) -> Iterator[Meter]:
        import torch

        cuda = self.device.type == "cuda"
        gc.collect()
        if cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        yield self
        if cuda:
            torch.cuda.synchronize(self.device)
        self.seconds = time.perf_counter() - start
        self.peak_gib = (torch.cuda.max_memory_allocated(self.device) / 2**30) if cuda else None


def count_new_tokens(ids: Any, stop_ids: set[int]) -> int:
    total = 0
    for row in ids.tolist():
        n = len(row)
        for i, t in enumerate(row):
            if t in stop_ids:
                n = i + 1
                break
        total += n
    return total


class FlopModel:
    """Useful floating-point operations of the HealthGPT forward (no padding counted)."""

    def __init__(self, net: Any) -> None:
        c = net.llm.config
        self.layers = c.num_hidden_layers
        self.hidden = c.hidden_size
        heads = c.num_attention_heads
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
        kv = (getattr(c, "num_key_value_heads", None) or heads) * head_dim
        self.attn_dim = heads * head_dim
        linear = (self.hidden * (self.attn_dim + 2 * kv) + self.attn_dim * self.hidden
                  + 3 * self.hidden * c.intermediate_size)
        task = net.tasks["comprehension"].hlora
        adapters = sum(layer.in_features * (task.rank + task.experts)
                       + task.rank * layer.out_features
                       for path, layer in net.hlora_layers.items() if ".layers.0." in path)
        self.per_token_layer = 2 * (linear + adapters)
        self.vocab = net.vocab_size
        v = net.vision.config
        self.v_layers = len(getattr(net.vision, "vision_model", net.vision).encoder.layers)
        index = net.tasks["comprehension"].vision_layer
        self.v_used = index if index >= 0 else self.v_layers + 1 + index
        self.v_hidden, self.v_inter = v.hidden_size, v.intermediate_size
        self.v_tokens = (v.image_size // v.patch_size) ** 2 + 1
        self.v_patch = 3 * v.patch_size ** 2
        self.proj = 2 * 576 * (v.hidden_size * self.hidden + self.hidden * self.hidden)

    def image(self) -> float:
        t, d = self.v_tokens, self.v_hidden
        per_layer = 2 * t * (4 * d * d + 2 * d * self.v_inter) + 4 * t * t * d
        return self.v_used * per_layer + 2 * (t - 1) * self.v_patch * d + self.proj

    def prefill(self, tokens: int) -> float:
        return self.layers * (tokens * self.per_token_layer + 2 * tokens * tokens * self.attn_dim)

    def decode(self, context: int, new: int) -> float:
        total = 0.0
        for j in range(new):   # the first new token comes from the prefill's last position
            total += 2 * self.hidden * self.vocab
            if j:
                total += self.layers * (self.per_token_layer + 4 * (context + j) * self.attn_dim)
        return total


def summarise(name: str, meter: Meter, n: int, batch: int | str, prompt_tokens: int,
              flops: float, peak_tflops: float | None, **extra: Any) -> dict[str, Any]:
    s = meter.seconds
    tflops = flops / s / 1e12
    out = {"n": n, "batch_size": batch, "seconds": round(s, 4),
           "samples_per_s": n / s, "prompt_tokens_per_s": prompt_tokens / s,
           "generated_tokens_per_s": meter.generated / s,
           "tokens_per_s": (prompt_tokens + meter.generated) / s,
           "generated_tokens": meter.generated, "prompt_tokens": prompt_tokens,
           "tflop": flops / 1e12, "tflops_per_s": tflops,
           "share_of_bf16_peak": (tflops / peak_tflops) if peak_tflops else None,
           "peak_memory_gib": meter.peak_gib, **extra}
    print(f"  {name:14s} {out['samples_per_s']:9.2f} samples/s  {out['tokens_per_s']:10.0f} "
          f"tok/s  {tflops:8.2f} TFLOP/s" + (f"  {100 * out['share_of_bf16_peak']:5.1f}% peak"
                                             if peak_tflops else "")
          + (f"  {meter.peak_gib:6.1f} GiB" if meter.peak_gib is not None else ""), flush=True)
    return out


# ----------------------------------------------------------------------------- phases

class Workload:
    """The samples as healthbench loads them, with prompts, images and token counts."""

    def __init__(self, task: Any, data_root: Path, net: Any, n: int) -> None:
        from PIL import Image

        from healthbench.run.prepare import load_task_data
        from healthbench.taskconfig.prompts import render

        loaded, _ = load_task_data(task, data_root)
        self.samples = [s for s in loaded.items if hasattr(s, "options")][:n]
        # render() returns (text, system): every phase gets the text and the system turn apart,
        # as the healthbench plugin does (a printed tuple would add ~11 tokens to each prompt)
        rendered = [render(task.prompt, s) for s in self.samples]
        self.prompts = [text for text, _ in rendered]
        self.systems = [system for _, system in rendered]
        self.paths = [s.images[0].path for s in self.samples]
        self.segments = [net.prompt_segments(p, 1, 0, sys_) for p, sys_ in
                         zip(self.prompts, self.systems)]
        self.tokens = [sum(576 if isinstance(x, int) else len(x) for x in seg)
                       for seg in self.segments]
        self.open = Image.open

    def image(self, i: int) -> Any:
        with self.open(self.paths[i]) as img:
            return img.convert("RGB")


def phase_one_at_a_time(plugin: Any, work: Workload, n: int, new_tokens: int,
                        meter: Meter) -> None:
    import torch

    net = plugin.net
    stops = set(plugin.stop_ids)
    with torch.inference_mode():
        for i in range(n):
            segments = net.prompt_segments(work.prompts[i], 1, 0, work.systems[i])
            embeds, attention = net.embed_rows([segments], net.image_features([work.image(i)]))
            ids = net.generate_ids(embeds, attention, new_tokens, plugin.stop_ids)
            meter.generated += count_new_tokens(ids, stops)
            net.tokenizer.decode(ids[0].tolist(), skip_special_tokens=True)


def phase_raw(plugin: Any, work: Workload, batch: int, workload: str, new_tokens: int,
              meter: Meter, prepared: dict) -> list[Any]:
    """Minimal batched loop; inputs (pixels, token rows) prepared before the timer starts."""
    import torch
    from transformers import GenerationConfig

    from healthbench.models.healthgpt.vision import clip_patch_features

    net = plugin.net
    task = net.tasks["comprehension"]
    letters = prepared["letters"]
    answers: list[Any] = [None] * len(work.samples)
    stops = set(plugin.stop_ids)
    config = GenerationConfig(max_new_tokens=new_tokens, do_sample=False, num_beams=1,
                              eos_token_id=list(plugin.stop_ids), pad_token_id=net.pad_id,
                              use_cache=True)
    with torch.inference_mode():
        for order, pixels in prepared["batches"]:
            feats = task.projector(clip_patch_features(net.vision, pixels, task.vision_layer))
            rows = [[work.segments[i][0], j, *work.segments[i][2:]]
                    for j, i in enumerate(order)]
            embeds, attention = net.embed_rows(rows, feats)
            if workload == "mc":
                positions = (attention.cumsum(-1) - 1).clamp(min=0)
                hidden = net.llm.model(inputs_embeds=embeds, attention_mask=attention,
                                       position_ids=positions, use_cache=False
                                       ).last_hidden_state[:, -1]
                logits = net.llm.get_output_embeddings()(hidden).float()
                picked = torch.log_softmax(logits, -1)[:, letters].argmax(-1).tolist()
                for i, k in zip(order, picked):
                    answers[i] = LETTERS[k]
            else:
                ids = net.llm.generate(inputs_embeds=embeds, attention_mask=attention,
                                       generation_config=config)
                meter.generated += count_new_tokens(ids, stops)
                for i, row in zip(order, ids.tolist()):
                    answers[i] = row
    return answers


def prepare_raw(plugin: Any, work: Workload, batch: int) -> dict:
    net = plugin.net
    order = sorted(range(len(work.samples)), key=lambda i: (-work.tokens[i], i))
    batches = []
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        pixels = net.preprocess([work.image(i) for i in chunk]).to(net.device, net.dtype)
        batches.append((chunk, pixels))
    letters = [net.tokenizer(f" {x}", add_special_tokens=False)["input_ids"][-1]
               for x in LETTERS]
    return {"batches": batches, "letters": letters}


def phase_healthbench(plugin: Any, task: Any, data_root: Path, out: Path, run_id: str,
                      batch: int | str, limit: int, meter: Meter) -> dict[str, Any]:
    from healthbench.run.evaluate import RunSpec, evaluate
    from healthbench.run.runner import RunSettings

    spec = RunSpec(model="healthgpt", model_args={}, tasks=[task], data_root=data_root,
                   output_path=out, run_id=run_id, limit=limit,
                   settings=RunSettings(batch_size=batch, workers=4, progress=False),
                   command="benchmarks/throughput.py")
    return evaluate(spec, model=plugin)


@contextmanager
def counting_generation(plugin: Any, meter: Meter) -> Iterator[None]:
    net = plugin.net
    original = net.generate_ids
    stops = set(plugin.stop_ids)

    def counted(*args: Any, **kwargs: Any) -> Any:
        ids = original(*args, **kwargs)
        meter.generated += count_new_tokens(ids, stops)
        return ids

    net.generate_ids = counted
    try:
        yield
    finally:
        del net.generate_ids


# ----------------------------------------------------------------------------- lm-eval

LMEVAL_UTILS = '''
from PIL import Image

def doc_to_image(doc):
    with Image.open(doc["image"]) as img:
        return [img.convert("RGB")]

def process(doc, results):
    return {"exact_match": float(results[0].strip() == doc["target"])}
'''


def build_llava_dir(args: argparse.Namespace, path: Path, dtype: Any, device: Any,
                    tokenizer_size: int) -> None:
    """A LLaVA-layout model of the variant's base shapes, random weights, saved to ``path``."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from healthbench.models.healthgpt import shapes

    tokenizer = shapes.build_tokenizer(tokenizer_size)
    if args.tiny:
        from transformers import CLIPVisionConfig, Phi3Config
        text = Phi3Config(vocab_size=tokenizer_size, hidden_size=64, intermediate_size=128,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=4096, tie_word_embeddings=False,
                          pad_token_id=tokenizer.pad_token_id)
        vision = CLIPVisionConfig(image_size=336, patch_size=14, hidden_size=32,
                                  intermediate_size=64, num_hidden_layers=3,
                                  num_attention_heads=2, projection_dim=32)
    else:
        text = shapes.llm_config(shape_name(args), tokenizer, "sdpa")
        vision = shapes.vision_config("sdpa", shape_name(args))
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-2, vision_feature_select_strategy="default",
                         projector_hidden_act="gelu")
    previous = torch.get_default_dtype()
    with torch.device(device):
        torch.set_default_dtype(dtype)
        try:
            model = LlavaForConditionalGeneration(config)
        finally:
            torch.set_default_dtype(previous)
    model.save_pretrained(path)
    del model
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 336},
                                           crop_size={"height": 336, "width": 336}),
        tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
        image_token="<image>", num_additional_image_tokens=1)
    processor.save_pretrained(path)


def phase_lmeval(args: argparse.Namespace, work: Workload, net: Any, workdir: Path,
                 dtype_name: str, device: Any, new_tokens: int, n: int, batch: int,
                 peak: float | None, flop: FlopModel) -> dict[str, Any]:
    import torch

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval import simple_evaluate
    from lm_eval.models.hf_vlms import HFMultimodalLM
    from lm_eval.tasks import TaskManager

    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype_name, torch.float32)
    model_dir = Path(args.lmeval_dir) if args.lmeval_dir else workdir / "llava"
    t0 = time.perf_counter()
    if not (model_dir / "config.json").exists():
        build_llava_dir(args, model_dir, dtype, device, len(net.tokenizer))
    built_s = time.perf_counter() - t0
    tasks = workdir / "lmeval_tasks"
    tasks.mkdir(exist_ok=True)
    docs = tasks / "docs.jsonl"
    with docs.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"context": net.template.render(work.prompts[i], 1,
                                                                 work.systems[i]),
                                 "image": str(work.paths[i]),
                                 "target": work.samples[i].target}) + "\n")
    (tasks / "bench_utils.py").write_text(LMEVAL_UTILS, encoding="utf-8")
    (tasks / "bench.yaml").write_text(json.dumps({
        "task": "healthbench_throughput", "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(docs)}}, "test_split": "test",
        "output_type": "generate_until", "doc_to_image": "!function bench_utils.doc_to_image",
        "doc_to_text": "{{context}}", "doc_to_target": "target",
        "process_results": "!function bench_utils.process",
        "generation_kwargs": {"until": ["<|end|>"], "do_sample": False,
                              "max_gen_toks": new_tokens},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean",
                         "higher_is_better": True}],
        "metadata": {"version": 1.0}}).replace('"!function bench_utils.doc_to_image"',
                                               "!function bench_utils.doc_to_image")
        .replace('"!function bench_utils.process"', "!function bench_utils.process"),
        encoding="utf-8")
    t0 = time.perf_counter()
    lm = HFMultimodalLM(pretrained=str(model_dir), dtype=dtype_name, device=str(device),
                        batch_size=batch, max_images=1, attn_implementation="sdpa")
    load_s = time.perf_counter() - t0
    manager = TaskManager(include_path=str(tasks), include_defaults=False)

    def run(limit: int) -> Any:
        return simple_evaluate(model=lm, tasks=["healthbench_throughput"], task_manager=manager,
                               limit=limit, bootstrap_iters=0, log_samples=False,
                               batch_size=batch)

    run(min(n, batch))  # warm-up
    meter = Meter(device)
    with meter.timed():
        run(n)
    meter.generated = n * new_tokens   # upper bound: lm-eval reports no token counts
    prompt_tokens = sum(work.tokens[:n])
    flops = sum(flop.image() + flop.prefill(t) + flop.decode(t, new_tokens)
                for t in work.tokens[:n])
    out = summarise("lmeval", meter, n, batch, prompt_tokens, flops, peak,
                    lm_eval_version=lm_eval.__version__, build_seconds=round(built_s, 2),
                    load_seconds=round(load_s, 2), model_dir=str(model_dir),
                    generated_tokens_note="n × max_gen_toks (upper bound)")
    return out


# ----------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", choices=("m3", "l14", "xl32"), default="m3")
    p.add_argument("--workload", choices=("mc", "open"), default="mc")
    p.add_argument("--n", type=int, default=512, help="samples for raw, healthbench, lm-eval")
    p.add_argument("--n-single", type=int, default=64,
                   help="samples for the one-at-a-time loop (it is slow)")
    p.add_argument("--batch-size", default="64", help="an integer, or auto (plugin's choice)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", help="auto: bfloat16 on GPU, float32 on CPU")
    p.add_argument("--out", default=None, help="JSON file for the record")
    p.add_argument("--skip-lmeval", action="store_true")
    p.add_argument("--skip-single", action="store_true")
    p.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU (smoke run)")
    p.add_argument("--shape", choices=("full", "mid"), default="full",
                   help="mid: the variant's layout at CPU size (hidden 256, 4 layers, random "
                        "weights): all four phases on a CPU in minutes, for the agreement check")
    p.add_argument("--answer-tokens", type=int, default=6,
                   help="new tokens per multiple-choice answer for (1) and lm-eval")
    p.add_argument("--open-tokens", type=int, default=64)
    p.add_argument("--question-words", type=int, default=60,
                   help="words per synthetic question (the prompt is ~700 tokens with the image)")
    p.add_argument("--cache", choices=("dynamic", "static"), default=None,
                   help="healthbench KV cache for generation (default: static with --compile)")
    p.add_argument("--compile", action="store_true",
                   help="healthbench: torch.compile the scoring forward / static-cache decode")
    p.add_argument("--pad-multiple", type=int, default=None)
    p.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak override")
    p.add_argument("--lmeval-dir", default=None, help="reuse/keep the saved LLaVA model here")
    p.add_argument("--workdir", default=None, help="keep data and outputs here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.tiny:
        args.n = min(args.n, 8) if "--n" in (argv or sys.argv) else 8
        args.n_single = min(args.n_single, 2)
        args.batch_size = args.batch_size if "--batch-size" in (argv or sys.argv) else "4"
        args.answer_tokens = min(args.answer_tokens, 2)
        args.open_tokens = min(args.open_tokens, 4)
        args.question_words = min(args.question_words, 12)
        args.device = "cpu"
    if args.shape == "mid" and not args.tiny:
        given = argv or sys.argv
        args.n = args.n if "--n" in given else 32
        args.n_single = min(args.n_single, 8)
        args.batch_size = args.batch_size if "--batch-size" in given else "8"
        args.open_tokens = args.open_tokens if "--open-tokens" in given else 16
        args.device = args.device if "--device" in given else "cpu"
    return args


def shape_name(args: argparse.Namespace) -> str:
    """The shapes.py entry of the random model (and of lm-eval's LLaVA copy of it)."""
    return args.variant if args.shape == "full" else args.shape


def environment(device: Any) -> dict[str, Any]:
    import torch
    import transformers

    env = {"python": platform.python_version(), "torch": torch.__version__,
           "transformers": transformers.__version__, "platform": platform.platform(),
           "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30,
                   multiprocessors=props.multi_processor_count, cuda=torch.version.cuda)
    try:
        import subprocess
        env["git_sha"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO,
                                        capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        pass
    return env


def peak_for(device: Any, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name(device)
    return next((v for key, v in BF16_PEAK_TFLOPS if key in name), None)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import torch

    from healthbench.models.base import create_model
    from healthbench.models.healthgpt.build import resolve_device, resolve_dtype

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    dtype_name = str(dtype).replace("torch.", "")
    peak = peak_for(device, args.peak_tflops)
    cache = args.cache or ("static" if args.compile else "dynamic")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="hb-throughput-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HOME", str(workdir / "hf_home"))
    batch: int | str = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    new_tokens = args.answer_tokens if args.workload == "mc" else args.open_tokens
    print(f"healthbench throughput: variant={'tiny' if args.tiny else args.variant} "
          f"shape={'tiny' if args.tiny else args.shape} "
          f"workload={args.workload} n={args.n} batch={batch} device={device} dtype={dtype_name} "
          f"cache={cache} compile={args.compile} workdir={workdir}", flush=True)

    data_root = workdir / "data"
    if not (data_root / "OmniMedVQA" / "QA_information").exists():
        write_dataset(data_root, args.n, args.question_words,
                      [(512, 512), (640, 480), (384, 512), (1024, 768)], args.seed)
    task = task_config(args.workload, args.open_tokens)

    t0 = time.perf_counter()
    model_args = {"variant": "tiny"} if args.tiny else {
        "variant": args.variant, "random_weights": True,
        **({"random_shape": args.shape} if args.shape != "full" else {})}
    model_args.update(dtype=dtype_name, device=str(device), seed=args.seed,
                      cache_implementation=cache, compile=args.compile,
                      **({"pad_multiple": args.pad_multiple} if args.pad_multiple else {}))
    plugin = create_model("healthgpt", model_args)
    build_s = time.perf_counter() - t0
    net = plugin.net
    net.activate("comprehension")
    model_memory = (torch.cuda.memory_allocated(device) / 2**30) if device.type == "cuda" \
        else None
    print(f"  built in {build_s:.1f} s, {sum(p.numel() for p in net.parameters()) / 1e9:.3f} "
          f"B parameters" + (f", {model_memory:.1f} GiB" if model_memory else ""), flush=True)
    if batch == "auto":
        batch = plugin.auto_batch_size([])
        print(f"  auto batch size: {batch}", flush=True)
    work = Workload(task, data_root, net, args.n)
    n = len(work.samples)
    flop = FlopModel(net)
    record: dict[str, Any] = {
        "schema": "healthbench-throughput/1", "argv": sys.argv if argv is None else argv,
        "config": {**{k: v for k, v in vars(args).items()}, "batch_size": batch, "cache": cache,
                   "dtype": dtype_name, "device": str(device)},
        "env": environment(device), "model": plugin.describe(),
        "model_build_seconds": round(build_s, 2), "model_memory_gib": model_memory,
        "bf16_peak_tflops": peak,
        "workload": {"n": n, "kind": args.workload, "new_tokens": new_tokens,
                     "mean_prompt_tokens": sum(work.tokens) / n,
                     "max_prompt_tokens": max(work.tokens), "min_prompt_tokens": min(work.tokens),
                     "image_tokens": 576, "task": task.name},
        "results": {}}

    def mc_flops(idx: list[int]) -> float:
        return sum(flop.image() + flop.prefill(work.tokens[i]) + 2 * flop.hidden * flop.vocab
                   for i in idx)

    def gen_flops(idx: list[int], new: int) -> float:
        return sum(flop.image() + flop.prefill(work.tokens[i]) + flop.decode(work.tokens[i], new)
                   for i in idx)

    # (1) one at a time, upstream style
    if not args.skip_single:
        k = min(args.n_single, n)
        phase_one_at_a_time(plugin, work, min(2, k), new_tokens, Meter(device))  # warm-up
        meter = Meter(device)
        with meter.timed():
            phase_one_at_a_time(plugin, work, k, new_tokens, meter)
        record["results"]["one_at_a_time"] = summarise(
            "one_at_a_time", meter, k, 1, sum(work.tokens[:k]),
            gen_flops(list(range(k)), new_tokens), peak, new_tokens=new_tokens)

    # (2) raw batched loop
    bsize = int(batch)
    prepared = prepare_raw(plugin, work, bsize)
    warm = {"batches": prepared["batches"][:1], "letters": prepared["letters"]}
    phase_raw(plugin, work, bsize, args.workload, new_tokens, Meter(device), warm)
    meter = Meter(device)
    with meter.timed():
        raw_answers = phase_raw(plugin, work, bsize, args.workload, new_tokens, meter, prepared)
    del prepared, warm
    all_idx = list(range(n))
    raw_flops = mc_flops(all_idx) if args.workload == "mc" else gen_flops(all_idx, new_tokens)
    record["results"]["raw"] = summarise(
        "raw", meter, n, bsize, sum(work.tokens), raw_flops, peak,
        what="last-position letter scoring" if args.workload == "mc"
        else "HF generate, dynamic cache")

    # (3) healthbench end to end
    real_close = plugin.close
    plugin.close = lambda: None
    try:
        phase_healthbench(plugin, task, data_root, workdir / "runs", "warmup", bsize,
                          min(n, 2 * bsize), Meter(device))
        meter = Meter(device)
        with counting_generation(plugin, meter), meter.timed():
            payload = phase_healthbench(plugin, task, data_root, workdir / "runs", "timed",
                                        bsize, n, meter)
    finally:
        plugin.close = real_close
    hb_flops = mc_flops(all_idx) if args.workload == "mc" else gen_flops(all_idx, new_tokens)
    samples_path = workdir / "runs" / "timed" / task.name / "samples.jsonl"
    records = [json.loads(line) for line in samples_path.read_text().splitlines()]
    by_id = {r["id"]: r for r in records}
    errors = sum(1 for r in records if r.get("error"))
    agree = None
    if args.workload == "mc":
        agree = sum(by_id.get(s.id, {}).get("parsed") == raw_answers[i]
                    for i, s in enumerate(work.samples)) / n
    else:   # raw ids → text exactly as the plugin decodes them
        texts = [r.text for r in plugin._texts_from_ids(raw_answers, new_tokens)] \
            if hasattr(plugin, "_texts_from_ids") else None
        if texts is not None:
            agree = sum(by_id.get(s.id, {}).get("response") == texts[i]
                        for i, s in enumerate(work.samples)) / n
    record["results"]["healthbench"] = summarise(
        "healthbench", meter, n, bsize, sum(work.tokens), hb_flops, peak,
        errors=errors, samples_jsonl=str(samples_path),
        task_seconds=payload["tasks"][task.name].get("seconds"),
        agreement_with_raw=agree)
    print(f"  healthbench agreement with raw: {agree if agree is None else round(agree, 4)}",
          flush=True)
    if errors:
        print(f"  WARNING: {errors} samples failed; first: "
              f"{next(r['error'] for r in records if r.get('error'))}", flush=True)

    # free the healthbench model before lm-eval builds its own
    plugin.close()
    del plugin, net
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # (4) lm-eval hf-multimodal, same shapes and documents
    if not args.skip_lmeval:
        try:
            record["results"]["lmeval"] = phase_lmeval(
                args, work, _TemplateOnly(work, args), workdir, dtype_name, device, new_tokens, n,
                bsize, peak, flop)
        except Exception as exc:  # noqa: BLE001  recorded, not fatal: the other numbers stand
            print(f"  lmeval failed: {type(exc).__name__}: {exc}", flush=True)
            record["results"]["lmeval"] = {"error": f"{type(exc).__name__}: {exc}"}

    res = record["results"]
    hb = res["healthbench"]["samples_per_s"]

    def ratio(key: str) -> float | None:
        other = res.get(key, {}).get("samples_per_s")
        return hb / other if other else None

    record["ratios"] = {"healthbench_over_one_at_a_time": ratio("one_at_a_time"),
                        "healthbench_over_raw": ratio("raw"),
                        "healthbench_over_lmeval": ratio("lmeval")}
    targets = ({"over_one_at_a_time": 10.0, "over_raw": 0.9, "over_lmeval": 3.0}
               if args.workload == "mc" else {"over_raw": 3.0})
    record["targets"] = {k: {"want": v, "got": record["ratios"][f"healthbench_{k}"],
                             "met": (record["ratios"][f"healthbench_{k}"] or 0) >= v}
                         for k, v in targets.items()}
    print("  ratios: " + ", ".join(f"{k}={v:.2f}" if v is not None else f"{k}=n/a"
                                   for k, v in record["ratios"].items()), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        print(f"  wrote {args.out}", flush=True)
    agree = res["healthbench"].get("agreement_with_raw")
    if agree is not None and agree < MIN_AGREEMENT:
        raise SystemExit(f"FAILED: healthbench agrees with the raw loop on {agree:.1%} of the "
                         f"samples (< {MIN_AGREEMENT:.0%}): the phases do not compute the same "
                         "answers, so their speeds are not comparable")
    return record


class _TemplateOnly:
    """What ``phase_lmeval`` needs of the (freed) healthbench model: template and tokenizer."""

    def __init__(self, work: Workload, args: argparse.Namespace) -> None:
        from healthbench.models.healthgpt import shapes
        from healthbench.models.healthgpt.templates import get_template
        from healthbench.models.healthgpt.variants import get_variant

        variant = get_variant("tiny" if args.tiny else args.variant)
        self.template = get_template(variant.template)
        size = 512 if args.tiny else shapes.get_shape(shape_name(args)).tokenizer_size
        self.tokenizer = _Sized(size)


class _Sized:
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


if __name__ == "__main__":
    main()
