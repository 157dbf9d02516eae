"""Tokenisers and the Java-backed scorers that text metrics call (pycocoevalcap's jars).

Java calls are expensive (the PTB tokeniser ≈0.3 s per call, METEOR ≈6 s to start), while a
bootstrap recomputes a corpus metric hundreds of times. So PTB tokens are cached per string, one
METEOR process is kept per interpreter, and METEOR's per-segment statistics are cached: a
resample only re-runs the cheap aggregation. Nothing is downloaded; Java must be on PATH.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Sequence

#: Tokens the COCO PTB wrapper drops after tokenising (pycocoevalcap ``PUNCTUATIONS``).
COCO_PUNCTUATION = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                              ".", "?", "!", ",", ":", "-", "--", "...", ";"])
_PTB_CACHE: dict[str, list[str]] = {}
_SENTENCE_END = re.compile(r"\b(\w\w+)\.(?=\s)")
_ABBREVIATIONS = frozenset(["dr", "mr", "mrs", "ms", "vs", "st", "approx", "fig"])


class JavaUnavailable(RuntimeError):
    """Java (or pycocoevalcap's jar) is missing; the message says what to install."""


def _coco_dir() -> Path:
    import pycocoevalcap  # a namespace package: no __file__

    return Path(list(pycocoevalcap.__path__)[0]).resolve()


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise JavaUnavailable("java not found on PATH; the COCO PTB tokenizer and METEOR need "
                              "a Java runtime (e.g. apt-get install openjdk-17-jre-headless)")
    return java


def treebank_tokenize(text: str) -> list[str]:
    """Pure-Python stand-in for the COCO PTB tokeniser: Treebank rules (nltk, no data needed),
    sentence-final periods split off, COCO punctuation removed, lower-cased.

    Agrees with ``ptb`` on ordinary report sentences (tests check a set); rare constructs
    (abbreviations mid-sentence, odd quotes) may differ.
    """
    from nltk.tokenize import TreebankWordTokenizer

    text = _SENTENCE_END.sub(
        lambda m: m.group(0) if m.group(1) in _ABBREVIATIONS else m.group(1) + " .",
        text.replace("\n", " ").lower())
    tokens = TreebankWordTokenizer().tokenize(text, convert_parentheses=True)
    # PTB lower-cases after escaping, so COCO keeps "-lrb-" (its list has "-LRB-"); so do we.
    return [t.lower() for t in tokens if t.lower() not in COCO_PUNCTUATION]


def ptb_tokenize(texts: Sequence[str]) -> list[list[str]]:
    """COCO PTB tokens (Stanford CoreNLP 3.4.1, ``-preserveLines -lowerCase``, punctuation
    dropped) for each text; one Java call for all strings not yet cached."""
    todo = sorted({t for t in texts if t not in _PTB_CACHE})
    if todo:
        lines = [t.replace("\n", " ").replace("\r", " ") for t in todo]
        jar = _coco_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "sentences.txt"
            src.write_text("\n".join(lines), encoding="utf-8")
            out = subprocess.run([_java(), "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
                                  "-preserveLines", "-lowerCase", str(src)],
                                 capture_output=True, check=True).stdout.decode("utf-8")
        rows = out.split("\n")
        if len(rows) < len(todo):
            raise RuntimeError(f"PTB tokenizer returned {len(rows)} lines for {len(todo)}")
        for text, row in zip(todo, rows):
            _PTB_CACHE[text] = [w for w in row.rstrip().split(" ")
                                if w and w not in COCO_PUNCTUATION]
    return [list(_PTB_CACHE[t]) for t in texts]


class _Meteor:
    """One ``meteor-1.5.jar -stdio`` process (as pycocoevalcap runs it), with a stats cache."""

    def __init__(self) -> None:
        folder = _coco_dir() / "meteor"
        self.proc = subprocess.Popen(
            [_java(), "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en",
             "-norm"], cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        self.lock = threading.Lock()
        self.stats: dict[tuple[str, tuple[str, ...]], str] = {}

    def _write(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        self.proc.stdin.flush()

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode("utf-8").strip()

    def corpus(self, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
        with self.lock:
            stats = []
            for hyp, rs in zip(hyps, refs):
                key = (hyp, tuple(rs))
                if key not in self.stats:
                    clean = hyp.replace("|||", "").replace("  ", " ")
                    self._write(" ||| ".join(("SCORE", " ||| ".join(rs), clean)))
                    self.stats[key] = self._readline()
                stats.append(self.stats[key])
            self._write("EVAL ||| " + " ||| ".join(stats))
            for _ in stats:  # one score per segment first, then the corpus aggregate
                self._readline()
            return float(self._readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_METEOR: _Meteor | None = None
_METEOR_LOCK = threading.Lock()


def meteor_corpus(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus METEOR 1.5 as pycocoevalcap's ``Meteor.compute_score`` aggregates it (statistics
    pooled over segments, not a mean of segment scores). NaN with a warning without Java."""
    global _METEOR
    if not hyps:
        return float("nan")
    with _METEOR_LOCK:
        if _METEOR is None or _METEOR.proc.poll() is not None:
            try:
                _METEOR = _Meteor()
            except JavaUnavailable as exc:
                warnings.warn(f"METEOR skipped: {exc}", RuntimeWarning, stacklevel=2)
                return float("nan")
            atexit.register(_METEOR.close)
    return _METEOR.corpus(hyps, refs)


def java_available() -> bool:
    """Whether the Java-backed options (``ptb`` tokens, METEOR) can run here."""
    return shutil.which("java") is not None and os.access(_coco_dir(), os.R_OK)
