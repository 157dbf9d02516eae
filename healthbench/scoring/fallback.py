"""Official random fallbacks, drawn per sample so that a metric stays a pure function.

Several official scorers (MMMU's ``eval_utils.py``, MMOral's ``get_single_choice_prediction``)
guess a random option letter when no answer can be parsed, from one global random stream. A
stream makes a sample's letter depend on what was scored before it, so here the letter is drawn
from a generator seeded by (seed, sample id) alone: the same sample gets the same letter whatever
else is scored, in whatever order, and the letter is written into samples.jsonl with the score.
"""
from __future__ import annotations

import random
from typing import Sequence


def seeded_choice(seed: int, sample_id: str, letters: Sequence[str]) -> str:
    """``random.Random(f"{seed}\\0{sample_id}").choice(letters)``: one draw for one sample."""
    if not letters:
        raise ValueError(f"sample {sample_id!r}: no option letters to draw a fallback from")
    return random.Random(f"{seed}\0{sample_id}").choice(list(letters))
