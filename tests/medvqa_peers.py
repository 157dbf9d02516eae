"""Re-statements of the peers' medical-VQA scorers, the oracles of tests/test_medvqa_protocols.py.

Written from the published code, following its control flow line by line (names kept):

* LLaVA-Med (microsoft/LLaVA-Med, tag v1.0.0): ``llava/eval/run_eval.py`` ``evaluate`` and
  ``llava/eval/eval_metrics/glossary.py`` ``normalize_word``, ``evaluate_metrics.py``
  ``calculate_f1score``, ``utils.py`` ``split_sentence``;
* MedEvalKit (alibaba-damo-academy/MedEvalKit): ``utils/VQA_RAD/VQA_RAD.py``,
  ``utils/PATH_VQA/PATH_VQA.py``, ``utils/SLAKE/SLAKE.py`` ``cal_metrics`` and ``utils/utils.py``
  ``parse_response``, ``judge_judgement``, ``judge_close_end_vqa``, ``judge_open_end_vqa``,
  ``extract``; mathruler ``grader.extract_boxed_content``.

Two documented departures: MedEvalKit's crash on an open response without words scores 0, and
its open accuracy is divided once (the printed, twice-divided value is returned beside it).
"""
from __future__ import annotations

import collections
import re

from healthbench.suites.medvqa.llava_med import _CONTRACTIONS

# --- LLaVA-Med v1.0.0, re-stated --------------------------------------------------------------

manual_map = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
              "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
articles = ["a", "an", "the"]
period_strip = re.compile(r"(?!<=\d)(\.)(?!\d)")
comma_strip = re.compile(r"(\d)(\,)(\d)")
punct = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
         "`", ",", "?", "!"]


def normalize_word(token: str) -> str:
    _token = token
    for p in punct:
        if (p + " " in token or " " + p in token) or (re.search(comma_strip, token) is not None):
            _token = _token.replace(p, "")
        else:
            _token = _token.replace(p, " ")
    token = period_strip.sub("", _token, 32)  # the script passes re.UNICODE (32) as count
    _token = []
    temp = token.lower().split()
    for word in temp:
        word = manual_map.setdefault(word, word)
        if word not in articles:
            _token.append(word)
    for i, word in enumerate(_token):
        if word in _CONTRACTIONS:
            _token[i] = _CONTRACTIONS[word]
    token = " ".join(_token)
    token = token.replace(",", "")
    return token


def split_sentence(sentence: str, n: int) -> dict[str, int]:
    words: dict[str, int] = collections.defaultdict(int)
    tmp_sentence = sentence.lower().strip().split()
    for i in range(len(tmp_sentence) - n + 1):
        tmp_words = " ".join(tmp_sentence[i: i + n])
        if tmp_words:
            words[tmp_words] += 1
    return words


def calculate_f1score(candidate: str, reference: str) -> tuple[float, float, float]:
    candidate = normalize_word(candidate)
    reference = normalize_word(reference)
    candidate_words = split_sentence(candidate, 1)
    reference_words = split_sentence(reference, 1)
    word_set = set(candidate_words) | set(reference_words)
    tp = fp = fn = 0
    for word in word_set:
        if word in candidate_words and word in reference_words:
            tp += candidate_words[word]
        elif word in candidate_words and word not in reference_words:
            fp += candidate_words[word]
        elif word not in candidate_words and word in reference_words:
            fn += reference_words[word]
    if len(candidate_words) == 0 or len(reference_words) == 0:
        return 0, 0, 0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    if tp == 0:
        return 0, 0, 0
    return 2 * precision * recall / (precision + recall), precision, recall


def llava_med_evaluate(gt: list[dict], pred: list[dict]) -> dict[str, float | None]:
    """``run_eval.evaluate``: the open recall and the yes/no accuracy it prints (as fractions).
    Where it would divide by zero (no open questions) the value is None."""
    closed_scores: list[int] = []
    recalls: list[float] = []
    for gt_item, pred_item in zip(gt, pred):
        gt_value = normalize_word(gt_item["conversations"][1]["value"].lower())
        pred_value = normalize_word(pred_item["text"].lower())
        if gt_item["answer_type"] == "OPEN":
            recalls.append(calculate_f1score(pred_value, gt_value)[2])
        elif gt_item["answer_type"] == "CLOSED":
            if "yes" in pred_value or "no" in pred_value:
                closed_scores.append(1 if gt_value in pred_value else 0)
            else:
                closed_scores.append(0)
    return {"recall": sum(recalls) / len(recalls) if recalls else None,
            "closed": sum(closed_scores) / len(closed_scores) if closed_scores else 0.0}


# --- MedEvalKit, re-stated --------------------------------------------------------------------

def extract_boxed_content(text: str) -> str:
    depth, end_pos = 0, -1
    start_pos = text.rfind(r"\boxed{")
    if start_pos != -1:
        content = text[start_pos + len(r"\boxed{"):]
        for i, char in enumerate(content):
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            if depth == -1:
                end_pos = i
                break
    if end_pos != -1:
        return content[:end_pos].strip()
    return "None"


def get_content_between_a_b(start_tag: str, end_tag: str, text: str) -> str:
    extracted_text = ""
    start_index = text.find(start_tag)
    while start_index != -1:
        end_index = text.find(end_tag, start_index + len(start_tag))
        if end_index != -1:
            extracted_text += text[start_index + len(start_tag): end_index] + " "
            start_index = text.find(start_tag, end_index + len(end_tag))
        else:
            break
    return extracted_text.strip()


def extract(text: str, type: str, hard: bool = True) -> str:  # noqa: A002 (peer's name)
    if text:
        target_str = get_content_between_a_b(f"<{type}>", f"</{type}>", text)
        if target_str:
            return target_str
        return text if hard else ""
    return ""


def parse_response(response: str) -> str:
    response = response.lower()
    if "boxed" in response:
        response = extract_boxed_content(response)
    elif "<answer>" in response:
        response = extract(response, "answer")
    for answer_pattern in ["**answer**:", "**answer**", "*answer*:", "**answer:**", "answer is",
                           "answer:", "答案:", "final answer", "final answer is"]:
        if answer_pattern in response:
            response = response.split(answer_pattern)[-1]
    return response


def judge_close_end_vqa(answer: str, response: str) -> bool:
    answer = answer.lower()
    response = parse_response(response).replace("\n", "").replace(".", "")
    return response == answer


def judge_judgement(answer: str, response: str) -> bool:
    answer = answer.lower()
    response = parse_response(response).replace("\n", "").replace(".", "")
    if ("yes" in response) ^ ("no" in response):
        if answer in response:
            return True
    return False


class Crash(Exception):
    """Where ``judge_open_end_vqa`` raises (ROUGE's empty hypothesis; ``calculate_f1``'s bare
    0 unpacked into three names)."""


def judge_open_end_vqa_em(answer: str, response: str) -> bool:
    answer = answer.lower()
    response = parse_response(response)
    if not [s for s in response.split(".") if s] or not response.split():
        raise Crash
    return response == answer


def medevalkit_cal_metrics(out_samples: list[dict], slake: bool) -> dict[str, float]:
    """``cal_metrics`` of VQA_RAD / PATH_VQA (``slake=False``) or SLAKE: the accuracies."""
    total = right = close_total = close_right = open_total = open_right = 0
    for out_sample in out_samples:
        response = out_sample["response"]
        if extract_boxed_content(response) != "None":
            response = extract_boxed_content(response)
        elif "<answer>" in response:
            response = extract(response, "answer")
        answer = out_sample["answer"]
        if not slake:
            answer, response = answer.lower().strip(), response.lower().strip()
            is_open = answer not in ["yes", "no"]
        else:
            is_open = out_sample["answer_type"] == "OPEN"
        total += 1
        if is_open:
            open_total += 1
            try:
                flag = judge_open_end_vqa_em(answer, response)
            except Crash:
                flag = False  # MedEvalKit stops here; documented as a score of 0
            open_right += flag
        else:
            close_total += 1
            if answer in ["yes", "no"]:
                flag = judge_judgement(answer, response)
            else:
                flag = judge_close_end_vqa(answer, response)
            close_right += flag
        right += flag
    return {"total": right / total, "open": open_right / open_total,
            "close": close_right / close_total, "open_printed": open_right / open_total
            / open_total}
