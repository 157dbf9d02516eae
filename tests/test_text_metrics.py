"""Text metrics agree with nltk and pycocoevalcap on the same inputs, random ones included."""
from __future__ import annotations

import random
import warnings

import pytest

from healthbench.core.catalog import METRICS
from healthbench.scoring.text import (corpus_bleu, cider_d, rouge_l, sentence_bleu, token_prf,
                                      tokenize)
from healthbench.scoring.text_backends import java_available
from healthbench.core.types import Response, Sample, SampleResult

VOCAB = "the a no acute lung heart normal effusion left right is are mild small large".split()
TOL = 1e-6


def _random_corpus(seed: int, n: int = 30) -> tuple[list[list[str]], list[list[list[str]]]]:
    rng = random.Random(seed)
    words = VOCAB[: rng.randint(4, len(VOCAB))]
    sent = lambda: [rng.choice(words) for _ in range(rng.randint(1, 12))]  # noqa: E731
    return [sent() for _ in range(n)], [[sent() for _ in range(rng.randint(1, 3))]
                                        for _ in range(n)]


def _coco(hyps, refs):
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(h)] for i, h in enumerate(hyps)}
    return gts, res


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("smoothing", ["none", "method1", "method2", "method3"])
def test_bleu_matches_nltk_corpus_and_sentence(seed: int, smoothing: str) -> None:
    from nltk.translate import bleu_score as nb

    hyps, refs = _random_corpus(seed)
    fn = getattr(nb.SmoothingFunction(), "method0" if smoothing == "none" else smoothing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in range(1, 5):
            w = tuple([1.0 / n] * n)
            expected = nb.corpus_bleu(refs, hyps, weights=w, smoothing_function=fn)
            assert corpus_bleu(hyps, refs, n, "nltk", smoothing) == pytest.approx(expected,
                                                                                  abs=TOL)
            for h, r in zip(hyps[:8], refs[:8]):
                expected = nb.sentence_bleu(r, h, weights=w, smoothing_function=fn)
                assert sentence_bleu(h, r, n, "nltk", smoothing) == pytest.approx(expected,
                                                                                  abs=TOL)


@pytest.mark.parametrize("seed", range(6))
def test_bleu_matches_pycocoevalcap(seed: int) -> None:
    from pycocoevalcap.bleu.bleu import Bleu

    hyps, refs = _random_corpus(seed)
    corpus, per_item = Bleu(4).compute_score(*_coco(hyps, refs), verbose=0)
    for n in range(1, 5):
        assert corpus_bleu(hyps, refs, n, "coco") == pytest.approx(corpus[n - 1], abs=TOL)
        for i in range(len(hyps)):
            assert sentence_bleu(hyps[i], refs[i], n, "coco") == pytest.approx(
                per_item[n - 1][i], abs=TOL)


def test_bleu_styles_differ_where_documented() -> None:
    hyp, refs = ["no", "effusion"], [["no", "pleural", "effusion"]]
    assert sentence_bleu(hyp, refs, 4, "nltk") == 0.0  # no 3-/4-grams at all
    assert 0 < sentence_bleu(hyp, refs, 4, "coco") < 0.01  # COCO's epsilons


@pytest.mark.parametrize("seed", range(6))
def test_rouge_l_and_cider_match_pycocoevalcap(seed: int) -> None:
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    hyps, refs = _random_corpus(seed)
    gts, res = _coco(hyps, refs)
    _, rouge_items = Rouge().compute_score(gts, res)
    for i in range(len(hyps)):
        assert rouge_l(hyps[i], refs[i]) == pytest.approx(rouge_items[i], abs=TOL)
    cider, cider_items = Cider().compute_score(gts, res)
    mine, mine_items = cider_d(hyps, refs)
    assert mine == pytest.approx(cider, abs=TOL)
    assert mine_items == pytest.approx(list(cider_items), abs=TOL)


def test_token_overlap_set_and_bag() -> None:
    hyp, ref = "no no effusion seen".split(), "no effusion".split()
    assert token_prf(hyp, ref, "set") == pytest.approx((2 / 3, 1.0, 0.8))
    assert token_prf(hyp, ref, "bag") == pytest.approx((0.5, 1.0, 2 / 3))
    assert token_prf([], ref) == (0.0, 0.0, 0.0)


def test_pmc_tokenizer_is_pmc_mi_bench_rule() -> None:
    assert tokenize(["No effusion. Heart normal."], "pmc") == [
        ["no", "effusion", ".", "heart", "normal", "."]]


REPORTS = ["Dr. Smith saw no acute findings. Heart size is normal (mild).",
           "No pleural effusion or pneumothorax.",
           "The cardiomediastinal silhouette is within normal limits; lungs are clear.",
           "There's a 2.5 cm nodule in the right upper lobe, likely benign.",
           "Mild cardiomegaly, stable since 03/12/2019.",
           "Impression: \"no acute disease\" - follow up in 6 months!",
           "Is there evidence of pneumonia? No. Heart ok.",
           "T2-weighted MRI shows hyperintense lesion (3x4 mm) at L4-L5."]

needs_java = pytest.mark.skipif(not java_available(), reason="java not on PATH")


@needs_java
def test_treebank_tokens_equal_coco_ptb_on_report_sentences() -> None:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    coco = PTBTokenizer().tokenize({i: [{"caption": s}] for i, s in enumerate(REPORTS)})
    ptb = tokenize(REPORTS, "ptb")
    assert ptb == [coco[i][0].split() for i in range(len(REPORTS))]
    assert tokenize(REPORTS, "treebank") == ptb


@needs_java
def test_meteor_matches_pycocoevalcap_aggregate() -> None:
    """pycocoevalcap's own ``compute_score`` protocol, run on the same jar process as ours (one
    JVM start instead of two: METEOR takes ~6 s to load its paraphrase table)."""
    import threading

    from pycocoevalcap.meteor.meteor import Meteor

    from healthbench.scoring import text_backends

    hyps, refs = _random_corpus(3, n=12)
    gts, res = _coco(hyps, refs)
    records = [SampleResult(id=str(i), task="t", target=gts[i], response=res[i][0],
                            parsed=res[i][0], scores={}, meta={}) for i in gts]
    metric = METRICS.get("meteor")(tokenizer="whitespace")
    mine = metric.corpus(records)
    class Borrowed(Meteor):
        def __del__(self) -> None:  # the process is ours; do not let its finaliser kill it
            pass

    reference = Borrowed.__new__(Borrowed)  # skip its constructor: borrow our running jar
    reference.meteor_p, reference.lock = text_backends._METEOR.proc, threading.Lock()
    expected, _ = reference.compute_score(gts, res)
    assert mine == pytest.approx(expected, abs=TOL)
    assert metric.corpus(records[::-1]) == pytest.approx(expected, abs=TOL)  # cached stats


def _records(hyps, refs) -> list[SampleResult]:
    return [SampleResult(id=str(i), task="t", target=[" ".join(r) for r in rs],
                         response=" ".join(h), parsed=" ".join(h), scores={}, meta={})
            for i, (h, rs) in enumerate(zip(hyps, refs))]


def test_registered_corpus_metrics_score_records() -> None:
    hyps, refs = _random_corpus(1)
    records = _records(hyps, refs)
    bleu = METRICS.get("bleu")(n=2, tokenizer="whitespace")
    assert bleu.name == "bleu2"
    assert bleu.corpus(records) == pytest.approx(corpus_bleu(hyps, refs, 2))
    coco = METRICS.get("bleu")(style="coco", tokenizer="whitespace")
    assert coco.name == "coco_bleu4"
    cider = METRICS.get("cider")(tokenizer="whitespace")
    assert cider.corpus(records) == pytest.approx(cider_d(hyps, refs)[0])


def test_unparsed_answer_scores_zero_per_sample() -> None:
    sample = Sample(id="s", target="no acute cardiopulmonary findings")
    for name in ("sentence_bleu", "rouge_l", "token_f1"):
        metric = METRICS.get(name)()
        assert metric.per_sample(sample, Response(text=None), None) == 0.0
        assert metric.per_sample(sample, Response(text="x"), "No acute cardiopulmonary findings") == 1.0


@pytest.mark.parametrize("args", [{"n": 5}, {"style": "sacre"}, {"smoothing": "method7"},
                                  {"style": "coco", "smoothing": "method1"},
                                  {"tokenizer": "spacy"}])
def test_bad_bleu_arguments_are_refused_up_front(args: dict) -> None:
    with pytest.raises(ValueError):
        METRICS.get("bleu")(**args)


def test_ptb_refused_for_per_sample_metrics() -> None:
    with pytest.raises(ValueError, match="ptb"):
        METRICS.get("rouge_l")(tokenizer="ptb")
