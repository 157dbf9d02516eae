"""MIMIC-CXR report-F1 protocols: each one's labels and F1 equal a re-statement, written here,
of the peer's own scorer run on the same small files in the peer's format.

The labeler is the offline rule labeler on both sides (the peers run CheXbert; healthbench's
CheXbert is checked against the official one in test_labelers.py): what is under test is the
protocol around it: which references, which text preparation and cut, which uncertainty
convention, which aggregate. The restatements follow, at the pinned commits:

* LLaVA-Rad (microsoft/LLaVA-Rad @ 1fc44096): ``llava/utils.py``
  (``data_loader_mimic_reason_findings``), ``llava/eval/rrg_eval/rrg_eval/chexbert.py``
  (``evaluate``, ``compute_statistic``, ``bootstrap_confidence_interval``),
  ``rrg_eval/factuality_utils.py`` (``map_to_binary``), ``rrg_eval/factuality_eval.py``
  (``generate_classification_report``);
* UniX (ZrH42/UniX @ a7ec625d): ``eval/base/dataset.py``, ``eval/calculate_und_metrics.py``
  (``process_csv_file``), ``eval/und_metrics/metrics_clinical.py`` (``mini_batch``,
  ``_calculate_metrics``), ``eval/und_metrics/chexbert_metrics.py``;
* f1chexbert (PyPI f1chexbert 0.0.2): ``f1chexbert/f1chexbert.py`` (``get_label`` mode
  ``"rrg"``, ``forward``).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from healthbench.core.types import Sample
from healthbench.report.leaderboard import build_leaderboard
from healthbench.report.runs import load_runs
from healthbench.run.evaluate import RunSpec, build_metrics, evaluate
from healthbench.run.runner import RunSettings
from healthbench.suites.mimic_cxr.labels import (CHEXBERT_HEAD_ORDER, POSITIVE, BLANK,
                                                 get_labeler)
from healthbench.suites.mimic_cxr.loader import load_mimic_cxr
from healthbench.suites.mimic_cxr.metrics import chexpert_labels
from healthbench.suites.mimic_cxr.peer_files import (load_llava_rad_findings,
                                                     load_unix_test_data)
from healthbench.taskconfig.schema import TaskConfigError, parse_task

from helpers import write_png

TASKS = Path(__file__).resolve().parents[1] / "tasks" / "mimic_cxr"
METRIC_KEYS = {  # healthbench metric → (average, label set, convention)
    f"chexpert_{avg}_f1_{n}_u{conv[:3]}": (avg, n, conv)
    for avg in ("micro", "macro") for n in ("14", "5") for conv in ("negative", "positive")}


def rules_codes(texts: list[str]) -> list[list[int]]:
    """The labeler's output per text in CheXbert head order (what the peers' CheXbert returns)."""
    rows = get_labeler("chexpert_rules").label(texts)
    return [[row[name] for name in CHEXBERT_HEAD_ORDER] for row in rows]


def task_with_rules(name: str):
    """A shipped task file, with the rule labeler in place of CheXbert on both sides."""
    raw = yaml.safe_load((TASKS / f"{name}.yaml").read_text())
    raw["dataset"].setdefault("options", {})["labeler"] = "chexpert_rules"
    raw["extract"]["args"]["labeler"] = "chexpert_rules"
    return parse_task(raw, str(TASKS / f"{name}.yaml"))


def run_replay(tmp_path: Path, task, responses: dict[str, str],
               run_id: str | None = None) -> dict[str, Any]:
    saved = tmp_path / f"{task.name}.jsonl"
    saved.write_text("".join(json.dumps({"task": task.name, "id": i, "response": r}) + "\n"
                             for i, r in responses.items()))
    spec = RunSpec(model="replay", model_args={"path": str(saved)}, tasks=[task],
                   data_root=tmp_path, output_path=tmp_path / "out", run_id=run_id or f"r-{task.name}",
                   settings=RunSettings(progress=False, workers=1))
    return evaluate(spec)["tasks"][task.name]


# --------------------------------------------------------------------------- UniX

FILLER = "The patient is rotated. "
LONG_BODY = (FILLER * 20 + "Small right pneumothorax."     # ends at character 505 of the body
             + " IMPRESSION: Mild pulmonary edema.")      # beyond 512 on both readings
UNIX_ROWS = [  # (prompt, reference, generation)
    ("<image>Review this X-ray and provide detailed FINDINGS.",
     "FINDINGS: Moderate cardiomegaly. Small left pleural effusion.",
     "Moderate cardiomegaly. No pleural effusion."),
    ("<image>Examine this X-ray image and describe the FINDINGS and IMPRESSION.",
     "FINDINGS: " + LONG_BODY,                                  # 549 characters, prefix kept
     LONG_BODY),
    ("<image>Interpret this X-ray image and summarize the FINDINGS.",
     "FINDINGS: Possible left lower lobe atelectasis. Mild pulmonary edema.",
     "\n\n" + " " * 20 + FILLER * 20 + "Small right pneumothorax. Possible atelectasis."),
    ("<image>Analyze this chest X-ray and give the FINDINGS.",
     "FINDINGS: Heart size is normal. No pleural effusion. No pneumothorax.",
     "Heart size is normal. Lungs are clear \ufffd no pleural effusion."),
    ("<image>Review this X-ray and provide detailed FINDINGS.",
     "FINDINGS: Mild pulmonary edema. Moderate cardiomegaly.",
     "FINDINGS: Mild pulmonary edema. Possible cardiomegaly."),
]


def write_unix(root: Path) -> Path:
    base = root / "mimic-cxr-jpg"
    rows = []
    for n, (prompt, reference, _) in enumerate(UNIX_ROWS):
        image = f"files/p10/p1000000{n}/s5000000{n}/d{n}.jpg"
        write_png(base / image, seed=n)
        rows.append({"messages": [{"content": prompt, "role": "user"},
                                  {"content": reference, "role": "assistant"}],
                     "images": [image]})
    (base / "test_data.json").write_text(json.dumps(rows, indent=4))
    return base


def unix_restated(predictions: list[str], references: list[str]) -> dict[str, float]:
    """UniX's scorer: process_csv_file → calculate_chexbert_metrics → _calculate_metrics."""
    preds, truths = [], []
    for p, t in zip(predictions, references):               # calculate_und_metrics.py
        report = str(p).replace("\ufffd", "?").strip()
        truth = str(t).replace("\ufffd", "?").strip()
        if not report or not truth:
            continue
        truths.append(truth)
        preds.append(report)
    gts = [text[:512] if len(text) > 512 else text for text in truths]   # mini_batch
    res = [text[:512] if len(text) > 512 else text for text in preds]
    gts_c, res_c = np.array(rules_codes(gts)), np.array(rules_codes(res))
    conditions = [n.lower().replace(" ", "_") for n in CHEXBERT_HEAD_ORDER]
    top5 = [conditions.index(d) for d in ("atelectasis", "cardiomegaly", "edema",
                                          "consolidation", "pleural_effusion")]
    out = {}
    for prefix, g, r in (("negative", gts_c == 1, res_c == 1),
                         ("positive", (gts_c == 1) | (gts_c == 3), (res_c == 1) | (res_c == 3))):
        tp, fp, fn = (r * g).astype(float), (r * ~g).astype(float), (~r * g).astype(float)
        tp_c, fp_c, fn_c = tp.sum(0), fp.sum(0), fn.sum(0)
        eps = 1e-10
        f1_class = np.nan_to_num(tp_c / (tp_c + 0.5 * (fp_c + fn_c) + eps))
        out[f"micro_14_{prefix}"] = tp_c.sum() / (tp_c.sum() + 0.5 * (fp_c.sum() + fn_c.sum())
                                                  + eps)
        out[f"macro_14_{prefix}"] = f1_class.mean()
        t5, f5, n5 = tp_c[top5].sum(), fp_c[top5].sum(), fn_c[top5].sum()
        out[f"micro_5_{prefix}"] = t5 / (t5 + 0.5 * (f5 + n5) + eps)
        out[f"macro_5_{prefix}"] = f1_class[top5].mean()
    return out


def test_unix_protocol_labels_test_data_verbatim_cut_to_512_and_matches_unix_f1(
        tmp_path: Path) -> None:
    write_unix(tmp_path)
    task = task_with_rules("mimic_cxr_unix")
    assert task.protocol == "unix"
    loaded = load_unix_test_data(tmp_path / "mimic-cxr-jpg", labeler="chexpert_rules",
                                 keep_reference_text=True).items
    assert [s.id for s in loaded] == [f"test_data/{n}" for n in range(len(UNIX_ROWS))]
    assert loaded[0].question == "Review this X-ray and provide detailed FINDINGS."
    long_ref = UNIX_ROWS[1][1]
    assert len(long_ref) > 512 and long_ref.startswith("FINDINGS: ")
    assert loaded[1].target["findings"] == long_ref[:512]   # prefix kept, cut at 512 characters
    # the prefix moves the window: the pneumothorax sentence falls outside it, as in UniX ...
    assert loaded[1].target["labels"]["Pneumothorax"] == BLANK
    # ... while stripping the prefix first (healthbench before this protocol) would keep it
    stripped = long_ref[len("FINDINGS: "):][:512]
    assert get_labeler("chexpert_rules").label([stripped])[0]["Pneumothorax"] == POSITIVE

    responses = {f"test_data/{n}": gen for n, (_, _, gen) in enumerate(UNIX_ROWS)}
    block = run_replay(tmp_path, task, responses)
    expected = unix_restated([g for _, _, g in UNIX_ROWS], [r for _, r, _ in UNIX_ROWS])
    assert block["protocol"] == "unix" and block["n"] == len(UNIX_ROWS)
    for name, (avg, n, conv) in METRIC_KEYS.items():
        assert block["metrics"][name]["value"] == pytest.approx(expected[f"{avg}_{n}_{conv}"],
                                                                abs=1e-9), name
    assert "bootstrap_median" not in block["metrics"]["chexpert_micro_f1_14_uneg"]


def test_unix_generation_is_stripped_before_its_512_character_cut() -> None:
    sample = Sample(id="x")
    generation = UNIX_ROWS[2][2]          # leading blank lines, pneumothorax ends near 505
    unix = chexpert_labels(generation, sample, protocol="unix")
    assert unix["Pneumothorax"] == POSITIVE
    assert chexpert_labels(generation, sample, max_chars=512)["Pneumothorax"] == BLANK
    with pytest.raises(ValueError, match="512-character cut"):
        chexpert_labels(generation, sample, protocol="unix", max_chars=300)


# --------------------------------------------------------------------------- LLaVA-Rad

LONG_FINDINGS = FILLER * 22 + "Mild pulmonary edema."   # the finding lies past character 512
LLAVA_ROWS = [  # (id, view, method, reason, findings, generation)
    ("a", "PA", "rule-based", "___ with cough.", "Moderate cardiomegaly. Small left pleural "
     "effusion.", "Moderate cardiomegaly. No pleural effusion."),
    ("b", "AP", "rule-based", None, LONG_FINDINGS, "Mild pulmonary edema."),
    ("c", "AP", "rule-based", "Fever.\nEval pneumonia", "Possible right lower lobe pneumonia. "
     "Small right pleural effusion.", "Right lower lobe pneumonia."),
    ("d", "PA", "rule-based", None, "Heart size is normal. No pleural effusion.",
     "Heart size is normal. Lungs are clear."),
    ("e", "PA", "rule-based", None, "Possible left lower lobe atelectasis. Mild pulmonary "
     "edema.", "Left lower lobe atelectasis."),
    ("f", "AP", "rule-based", None, "Small right pneumothorax. Moderate cardiomegaly.",
     "Small right pneumothorax."),
    ("g", "PA", "rule-based", None, "Possible consolidation. Mild pulmonary edema.",
     "Mild pulmonary edema. Possible consolidation."),
    ("h", "AP", "rule-based", None, "Moderate cardiomegaly.", "Heart size is normal."),
    # rows LLaVA-Rad's test loader leaves out
    ("x1", "LATERAL", "rule-based", None, "Moderate cardiomegaly.", None),
    ("x2", "PA", "gpt4", None, "Moderate cardiomegaly.", None),
    ("x3", "PA", "rule-based", None, None, None),
]


def write_llava_rad(root: Path) -> Path:
    base = root / "mimic-cxr-jpg"
    rows = []
    for n, (rid, view, method, reason, findings, _) in enumerate(LLAVA_ROWS):
        image = f"files/p11/p1100000{n}/s5100000{n}/{rid}.jpg"
        write_png(base / image, seed=n)
        rows.append({"id": rid, "image": f"mimic/{image}", "view": view, "reason": reason,
                     "generate_method": method,
                     "conversations": [{"from": "human", "value": "<image>\nDescribe."},
                                       {"from": "gpt", "value": findings}]})
    (base / "chat_test_MIMIC_CXR_all_gpt4extract_rulebased_v1.json").write_text(json.dumps(rows))
    return base


def llava_rad_restated(preds: list[str], refs: list[str]) -> dict[str, dict[str, float]]:
    """rrg_eval chexbert.evaluate(..., bootstrap_ci=True): classification reports and the
    bootstrap median of 500 resamples, random_state=3, for 14/5 labels and both conventions."""
    from scipy.stats import bootstrap
    from sklearn.metrics import classification_report, precision_recall_fscore_support

    def map_to_binary(label: int, mode: str = "rrg") -> int:       # factuality_utils.py
        return {"rrg": {0: 0, 2: 0, 3: 0, 1: 1}, "rrg+": {0: 0, 2: 0, 3: 1, 1: 1}}[mode][label]

    codes = rules_codes(preds + refs)
    outputs = [[row[j] for row in codes] for j in range(len(CHEXBERT_HEAD_ORDER))]
    five = np.where(np.isin(CHEXBERT_HEAD_ORDER, ["Cardiomegaly", "Edema", "Consolidation",
                                                  "Atelectasis", "Pleural Effusion"]))[0]
    out: dict[str, dict[str, float]] = {}
    for mode, conv in (("rrg", "negative"), ("rrg+", "positive")):
        rets = [[map_to_binary(x, mode) for x in i] for i in outputs]
        for n, chosen in (("14", rets), ("5", [rets[i] for i in five])):
            binary = list(map(list, zip(*chosen)))
            p, r = binary[:len(preds)], binary[len(preds):]
            names = [f"c{i}" for i in range(len(chosen))]
            report = classification_report(r, p, target_names=names, output_dict=True,
                                           zero_division=0)
            for key in ("micro", "macro"):
                def statistic(indices, key=key, p=p, r=r):          # compute_statistic
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        return precision_recall_fscore_support(
                            y_pred=[p[i] for i in indices], y_true=[r[i] for i in indices],
                            average=key)[2]
                bs = bootstrap(data=(list(range(len(p))),), statistic=statistic,
                               method="percentile", paired=False, vectorized=False,
                               confidence_level=0.95, random_state=3, n_resamples=500)
                out[f"{key}_{n}_{conv}"] = {
                    "f1": report[f"{key} avg"]["f1-score"],
                    "median": float(np.median(bs.bootstrap_distribution)),
                    "ci_l": bs.confidence_interval.low, "ci_h": bs.confidence_interval.high}
    return out


def test_llava_rad_protocol_reads_its_findings_file_and_publishes_the_bootstrap_median(
        tmp_path: Path) -> None:
    write_llava_rad(tmp_path)
    task = task_with_rules("mimic_cxr_llava_rad")
    loaded = load_llava_rad_findings(tmp_path / "mimic-cxr-jpg", labeler="chexpert_rules",
                                     keep_reference_text=True).items
    kept = [row for row in LLAVA_ROWS if row[5] is not None]
    assert [s.id for s in loaded] == [row[0] for row in kept]       # LLaVA-Rad's selection
    assert loaded[0].question == ("Provide a description of the findings in the radiology "
                                  "image given the following indication: ___ with cough.")
    assert loaded[2].question.endswith("indication: Fever. Eval pneumonia")
    assert loaded[1].question == "Provide a description of the findings in the radiology image."
    assert loaded[1].target["findings"] == LONG_FINDINGS and len(LONG_FINDINGS) > 512
    assert loaded[1].target["labels"]["Edema"] == POSITIVE           # no character cut
    assert loaded[0].meta["view_position"] == "PA"

    block = run_replay(tmp_path, task, {row[0]: row[5] for row in kept})
    expected = llava_rad_restated([row[5] for row in kept], [row[4] for row in kept])
    assert block["protocol"] == "llava-rad"
    for name, (avg, n, conv) in METRIC_KEYS.items():
        entry, want = block["metrics"][name], expected[f"{avg}_{n}_{conv}"]
        assert entry["value"] == pytest.approx(want["f1"], abs=1e-12), name
        published = entry["bootstrap_median"]
        assert published["median"] == pytest.approx(want["median"], abs=1e-12), name
        assert published["ci"] == pytest.approx([want["ci_l"], want["ci_h"]], abs=1e-12), name
        assert (published["resamples"], published["random_state"]) == (500, 3)
        assert entry["ci"][0] is not None                  # healthbench's own interval too
    # the medians are not the point estimates (else the test could not tell them apart)
    assert any(block["metrics"][m]["bootstrap_median"]["median"] != block["metrics"][m]["value"]
               for m in METRIC_KEYS)


# --------------------------------------------------------------------------- f1chexbert


def test_f1chexbert_protocol_counts_uncertain_as_positive_and_matches_its_reports(
        tmp_path: Path) -> None:
    from sklearn.metrics import classification_report

    from test_mimic_cxr import RESPONSES, write_mimic

    write_mimic(tmp_path)
    task = task_with_rules("mimic_cxr_f1chexbert")
    block = run_replay(tmp_path, task, RESPONSES)
    loaded = [s for s in load_mimic_cxr(tmp_path / "mimic-cxr-jpg", labeler="chexpert_rules",
                                        keep_reference_text=True).items
              if isinstance(s, Sample)]
    refs = [s.target["findings"] for s in loaded]
    hyps = [RESPONSES[s.id] for s in loaded]

    def get_label(report: str) -> list[int]:          # F1CheXbert.get_label(mode="rrg")
        v: list[Any] = []
        for c in rules_codes([report])[0]:
            v.append({0: "", 3: 1, 2: 0, 1: 1}[c])
        return [1 if (isinstance(x, int) and x > 0) else 0 for x in v]

    refs_c = [get_label(r.strip()) for r in refs]
    hyps_c = [get_label(h.strip()) for h in hyps]
    index5 = np.where(np.isin(CHEXBERT_HEAD_ORDER, ["Cardiomegaly", "Edema", "Consolidation",
                                                    "Atelectasis", "Pleural Effusion"]))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cr = classification_report(refs_c, hyps_c, output_dict=True)
        cr5 = classification_report([np.array(r)[index5] for r in refs_c],
                                    [np.array(h)[index5] for h in hyps_c], output_dict=True)
    assert block["protocol"] == "f1chexbert"
    assert set(block["metrics"]) == {m for m in METRIC_KEYS if m.endswith("_upos")}
    for name, report in (("chexpert_micro_f1_14_upos", cr["micro avg"]),
                         ("chexpert_macro_f1_14_upos", cr["macro avg"]),
                         ("chexpert_micro_f1_5_upos", cr5["micro avg"]),
                         ("chexpert_macro_f1_5_upos", cr5["macro avg"])):
        assert block["metrics"][name]["value"] == pytest.approx(report["f1-score"]), name


def test_f1chexbert_protocol_refuses_uncertain_as_negative_metrics() -> None:
    raw = yaml.safe_load((TASKS / "mimic_cxr_f1chexbert.yaml").read_text())
    raw["metrics"] = [{"name": "chexpert_micro_f1_14_uneg"}]
    with pytest.raises(TaskConfigError, match="uncertain-as-positive only"):
        build_metrics(parse_task(raw, "f.yaml"))


# --------------------------------------------------------------------------- healthbench


def test_healthbench_protocol_cuts_no_characters_and_refuses_a_cut() -> None:
    sample = Sample(id="x")
    assert chexpert_labels(LONG_FINDINGS, sample, protocol="healthbench")["Edema"] == POSITIVE
    assert chexpert_labels(LONG_FINDINGS, sample, protocol="unix")["Edema"] == BLANK
    with pytest.raises(ValueError, match="no character cut"):
        chexpert_labels(LONG_FINDINGS, sample, protocol="healthbench", max_chars=512)
    with pytest.raises(ValueError, match="unknown MIMIC-CXR report protocol"):
        chexpert_labels("x", sample, protocol="rrg")


def test_every_shipped_mimic_task_names_its_protocol_and_builds() -> None:
    names = {"mimic_cxr": "healthbench", "mimic_cxr_llava_rad": "llava-rad",
             "mimic_cxr_unix": "unix", "mimic_cxr_f1chexbert": "f1chexbert"}
    for name, protocol in names.items():
        task = task_with_rules(name)
        assert task.protocol == protocol
        assert build_metrics(task)


def test_protocol_is_in_results_json_and_splits_the_leaderboard(tmp_path: Path) -> None:
    write_unix(tmp_path)
    unix = task_with_rules("mimic_cxr_unix")
    run_replay(tmp_path, unix, {f"test_data/{n}": g for n, (_, _, g) in enumerate(UNIX_ROWS)})
    other = parse_task({**yaml.safe_load((TASKS / "mimic_cxr_unix.yaml").read_text()),
                        "protocol": "healthbench",
                        "dataset": {"format": "unix_test_data", "path": "mimic-cxr-jpg",
                                    "options": {"labeler": "chexpert_rules"}},
                        "extract": {"name": "chexpert_labels",
                                    "args": {"labeler": "chexpert_rules"}}}, "h.yaml")
    run_replay(tmp_path, other, {f"test_data/{n}": g for n, (_, _, g) in enumerate(UNIX_ROWS)},
               run_id="r-other")
    saved = json.loads((tmp_path / "out" / "r-mimic_cxr_unix" / "results.json").read_text())
    assert saved["tasks"]["mimic_cxr_unix"]["protocol"] == "unix"
    tables = (tmp_path / "out" / "r-mimic_cxr_unix" / "tables.md").read_text()
    assert "protocol unix" in tables
    board = build_leaderboard(load_runs(tmp_path / "out"))
    titles = [t.title for t in board.tables if t.title.startswith("mimic_cxr_unix")]
    assert any("protocol unix" in t for t in titles)
    assert any("protocol healthbench" in t for t in titles)
    assert all(len(t.entries) == 1 for t in board.tables if t.title.startswith("mimic_cxr_unix"))
