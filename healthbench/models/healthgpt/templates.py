"""The three conversation formats of the released scripts, rendered exactly (DCDmllm/HealthGPT
``llava/conversation.py``: ``phi3_instruct``, ``phi4_instruct``, ``qwen_2``).

A prompt is returned as text chunks with an image slot between consecutive chunks, the way
upstream's ``tokenizer_image_token`` splits the rendered prompt on ``<image>``: the chunks are
tokenised one by one and the image features go between them. Building chunks directly (instead
of splitting a string on ``<image>``) means a question that happens to contain the text
``<image>`` cannot create an extra image slot.

One image gives upstream's single-turn prompt, ``<image>\\n{question}`` in the user turn; k
images give k ``<image>\\n`` lines before the question (upstream only ever used one image).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    """One conversation format: system turn, user-turn header, end of turn, assistant header."""

    name: str
    system: str
    user: str
    end: str
    assistant: str

    def chunks(self, question: str, n_images: int, system: str | None = None) -> list[str]:
        """Text chunks of the prompt; an image goes between chunk i and i+1 (n_images + 1)."""
        head = self.system.format(system=self.default_system if system is None else system)
        head += self.user
        tail = f"{question}{self.end}{self.assistant}"
        if n_images == 0:
            return [head + tail]
        return [head] + ["\n"] * (n_images - 1) + ["\n" + tail]

    def render(self, question: str, n_images: int, system: str | None = None) -> str:
        """The prompt as one string with ``<image>`` placeholders (for logs and tests)."""
        return "<image>".join(self.chunks(question, n_images, system))

    @property
    def default_system(self) -> str:
        return DEFAULT_SYSTEM[self.name]

    @property
    def stop_text(self) -> str:
        return self.end


DEFAULT_SYSTEM = {
    "phi3_instruct": "You are a helpful AI assistant.",
    # Upstream's L14 script uses Microsoft's Phi-4 model-card example as its system prompt;
    # kept as released (override with the ``system_prompt`` model argument).
    "phi4_instruct": "You are a medieval knight and must provide explanations to modern people.",
    "qwen_2": "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
}

TEMPLATES: dict[str, Template] = {
    "phi3_instruct": Template("phi3_instruct", system="<|system|>\n{system}<|end|>\n",
                              user="<|user|>\n", end="<|end|>", assistant="\n<|assistant|>\n"),
    "phi4_instruct": Template("phi4_instruct",
                              system="<|im_start|>system<|im_sep|>\n{system}<|im_end|>\n",
                              user="<|im_start|>user<|im_sep|>\n", end="<|im_end|>",
                              assistant="\n<|im_start|>assistant<|im_sep|>\n"),
    "qwen_2": Template("qwen_2", system="<|im_start|>system\n{system}<|im_end|>\n",
                       user="<|im_start|>user\n", end="<|im_end|>",
                       assistant="\n<|im_start|>assistant\n"),
}


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown conversation template {name!r} "
                         f"(known: {', '.join(TEMPLATES)})") from None
