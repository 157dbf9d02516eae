"""Builders for the model-plugin tests: tiny transformers VLM folders and a loopback chat server.

Everything is built from configs with random weights (nothing from the hub), and the HTTP server
listens on 127.0.0.1 only. Each builder is a plain function so that a test shows what it uses.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "<|system|>", "<|user|>",
            "<|assistant|>", "<|end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
CORPUS = [
    "Which imaging modality was used to acquire this image? CT MRI X-ray Ultrasound",
    "Is there a pleural effusion? yes no maybe. The answer is A. The answer is B.",
    "No acute cardiopulmonary process. Mild cardiomegaly. Small left pleural effusion.",
    "Question: Answer: Context: benign malignant fracture pneumonia normal abnormal",
]

# A LLaVA/Phi-3 style template: images as <image> before the text of the user turn.
LLAVA_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
# A Qwen2-VL style template: each image as <|vision_start|><|image_pad|><|vision_end|>.
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def build_tokenizer(chat_template: str, eos: str) -> Any:
    """A fresh byte-level BPE tokenizer (one per model folder: processors stamp their class in)."""
    from healthbench.models.tiny import build_tokenizer as tiny_tokenizer

    fast = tiny_tokenizer(SPECIALS, CORPUS, eos)
    fast.chat_template = chat_template
    return fast


def _text_config(tokenizer: Any) -> dict[str, Any]:
    return dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)


def build_tiny_llava(folder: Path, seed: int = 0, image_size: int = 112) -> Path:
    """LLaVA (CLIP-ViT + Phi-3) with a full LlavaProcessor and chat template saved in ``folder``.

    A 112-pixel, 14-patch vision tower gives 64 image tokens per image, which keeps tests fast.
    """
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, Phi3Config)

    tokenizer = build_tokenizer(LLAVA_TEMPLATE, eos="<|end|>")
    vision = CLIPVisionConfig(image_size=image_size, patch_size=14, hidden_size=32,
                              intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=Phi3Config(**_text_config(tokenizer)),
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-2, vision_feature_select_strategy="default")
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               patch_size=14, vision_feature_select_strategy="default",
                               chat_template=LLAVA_TEMPLATE, image_token="<image>",
                               num_additional_image_tokens=1)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_qwen2vl(folder: Path, seed: int = 0) -> Path:
    """Qwen2-VL with tokenizer + image processor but no processor config (the real processor
    needs torchvision for its video part, which is not installable here)."""
    import torch
    from transformers import (Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessor)

    tokenizer = build_tokenizer(QWEN_TEMPLATE, eos="<|im_end|>")
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"),
        ("vision_end_token_id", "<|vision_end|>"))}
    text = _text_config(tokenizer)
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1e4,
                               "mrope_section": [2, 3, 3]}
    config = Qwen2VLConfig(text_config=text,
                           vision_config=dict(depth=1, embed_dim=32, hidden_size=64,
                                              num_heads=2, mlp_ratio=2, patch_size=14,
                                              spatial_merge_size=2, temporal_patch_size=2),
                           **ids)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112).save_pretrained(folder)
    return folder


def noise_image(seed: int = 0, size: tuple[int, int] = (96, 80)) -> Any:
    """A small deterministic RGB PIL image (noise), different per seed."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


# --------------------------------------------------------------------------------------------
# A loopback OpenAI-compatible chat server with scripted failures.


@dataclass
class ServerBehaviour:
    """What the fake server does. ``fail_rate`` of (request, attempt) pairs answer 500 (drawn
    from a hash, so reruns are identical); prompts containing ``always_fail`` always answer 500;
    ``hang`` waits until the server stops (or ``hang_limit`` s) without answering;
    ``malformed`` answers 200 with a body that is not a chat completion; ``delay`` is added to
    every answer; ``rate_limit_first`` answers 429 to the first attempt of each prompt."""

    fail_rate: float = 0.0
    always_fail: str = "ALWAYS_FAIL"
    hang: bool = False
    hang_limit: float = 10.0
    malformed: bool = False
    delay: float = 0.0
    rate_limit_first: bool = False
    expected_key: str | None = None


@dataclass
class ServerLog:
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def answer_for(body: dict[str, Any]) -> str:
    """The deterministic answer the fake server gives: prompt text and image count."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return f"echo:{content}|images=0"
    text = "".join(part.get("text", "") for part in content if part["type"] == "text")
    images = [part for part in content if part["type"] == "image_url"]
    for part in images:
        url = part["image_url"]["url"]
        assert url.startswith("data:image/"), url
        base64.b64decode(url.split(",", 1)[1], validate=True)
    return f"echo:{text}|images={len(images)}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Tests open 8+ connections at once. With socketserver's default listen backlog of 5 the
    # kernel may drop a connection attempt and retry it a second later, past a test's timeout,
    # so the server would never see that request.
    request_queue_size = 128


class ChatServer:
    """``with ChatServer(ServerBehaviour(...)) as server: server.base_url``."""

    def __init__(self, behaviour: ServerBehaviour | None = None) -> None:
        self.behaviour = behaviour or ServerBehaviour()
        self.log = ServerLog()
        self.stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                outer._handle(self)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        b, log = self.behaviour, self.log
        length = int(handler.headers.get("Content-Length", 0))
        body = json.loads(handler.rfile.read(length))
        prompt = json.dumps(body["messages"][-1]["content"], sort_keys=True)
        with log.lock:
            log.requests.append(body)
            log.headers.append(dict(handler.headers))
            attempt = log.attempts[prompt] = log.attempts.get(prompt, 0) + 1
            log.in_flight += 1
            log.max_in_flight = max(log.max_in_flight, log.in_flight)
        try:
            if b.delay:
                time.sleep(b.delay)
            if handler.path != "/v1/chat/completions":
                return self._finish(log, self._send, handler, 404, {"error": {"message": "no such route"}})
            if b.expected_key is not None and \
                    handler.headers.get("Authorization") != f"Bearer {b.expected_key}":
                return self._finish(log, self._send, handler, 401, {"error": {"message": "bad key"}})
            if b.hang:
                self.stopping.wait(b.hang_limit)
                return self._finish(log, lambda *a: None)  # never answers; the connection closes when the server stops
            if b.always_fail in prompt:
                return self._finish(log, self._send, handler, 500, {"error": {"message": "scripted failure"}})
            if b.rate_limit_first and attempt == 1:
                return self._finish(log, self._send, handler, 429, {"error": {"message": "slow down"}},
                                  {"Retry-After": "0"})
            draw = int(hashlib.sha256(f"{prompt}\0{attempt}".encode()).hexdigest()[:8], 16)
            if draw / 0xFFFFFFFF < b.fail_rate:
                return self._finish(log, self._send, handler, 503, {"error": {"message": "overloaded"}})
            if b.malformed:
                return self._finish(log, self._send_raw, handler, 200, b"<html>not json</html>")
            return self._finish(log, self._send, handler, 200, {
                "id": "cmpl-test", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer_for(body)}}]})
        except Exception:
            self._finish(log, lambda *a: None)
            raise

    @staticmethod
    def _finish(log: Any, send: Any, *args: Any) -> None:
        """Leave the in-flight count *before* the reply goes out: once the client has its answer
        it may send the next request at once, and that must not count as concurrent."""
        with log.lock:
            log.in_flight -= 1
        send(*args)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        ChatServer._send_raw(handler, status, json.dumps(payload).encode(), headers)

    @staticmethod
    def _send_raw(handler: BaseHTTPRequestHandler, status: int, data: bytes,
                  headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: on a shared 2-core machine, tiny models are 10-50x faster
    than with threads that spin against other processes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
