"""lm-eval tasks through healthbench models (healthbench/lmeval_bridge.py), fully offline.

The tasks live in a folder written by the test (lm-eval YAML over a local JSONL file), so nothing
comes from the hub. A fixed model makes the expected numbers easy to state; the CLI test runs
the built-in ``tiny`` transformers model end to end.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import pytest
from plugin_fixtures import one_torch_thread

from healthbench.run import lmeval as lmeval_bridge
from healthbench.run import lmeval_adapter, lmeval_safety
from healthbench.cli import main
from healthbench.run.evaluate import RunSpec, evaluate
from healthbench.run.runner import RunSettings
from healthbench.models.base import Model
from healthbench.core.types import Request, Response

CHOICES = ["yes", "no", "maybe"]
N_DOCS = 6


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


def write_tasks(folder: Path) -> Path:
    """medtoy_mc (multiple choice), medtoy_gen (generate_until) and group medtoy_all."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "medtoy.jsonl"
    rows = [{"question": f"Is finding {i} benign?", "label": i % 3, "answer": CHOICES[i % 3]}
            for i in range(N_DOCS)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    dataset = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
               "test_split: test\n")
    (folder / "medtoy_mc.yaml").write_text(
        "task: medtoy_mc\n" + dataset + "output_type: multiple_choice\n"
        "doc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
        f"doc_to_choice: {json.dumps(CHOICES)}\ndoc_to_target: label\n"
        "metric_list:\n  - {metric: acc, aggregation: mean, higher_is_better: true}\n"
        "metadata: {version: 1.0}\n", encoding="utf-8")
    (folder / "medtoy_gen.yaml").write_text(
        "task: medtoy_gen\n" + dataset + "output_type: generate_until\n"
        "doc_to_text: \"Question: {{question}}\\nAnswer:\"\ndoc_to_target: answer\n"
        "generation_kwargs: {until: [\"\\n\"], do_sample: false, max_gen_toks: 8}\n"
        "metric_list:\n  - {metric: exact_match, aggregation: mean, higher_is_better: true,"
        " ignore_case: true, ignore_punctuation: true}\n"
        "metadata: {version: 2.0}\n", encoding="utf-8")
    (folder / "medtoy_all.yaml").write_text(
        "group: medtoy_all\ntask: [medtoy_mc, medtoy_gen]\naggregate_metric_list:\n"
        "  - {metric: acc, aggregation: mean, weight_by_size: true}\n"
        "metadata: {version: 1.0}\n", encoding="utf-8")
    return folder


class FixedModel(Model):
    """Answers "yes" (then rambles past the stop string); prefers the shortest choice ("no").
    A prompt containing ``fail_on`` gets a per-sample error."""

    capabilities = frozenset({"text", "loglikelihood"})

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.seen: list[Request] = []

    def _fails(self, request: Request) -> bool:
        return self.fail_on is not None and self.fail_on in request.prompt

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        self.seen.extend(requests)
        return [Response(error="boom") if self._fails(r) else Response(text="Yes\nmore text")
                for r in requests]

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        self.seen.extend(requests)
        return [Response(error="boom") if self._fails(r) else
                Response(choice_scores=tuple(-float(len(c)) for c in r.choices))
                for r in requests]


class TextOnlyModel(FixedModel):
    capabilities = frozenset({"text"})


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tasks(tmp_path_factory.mktemp("lmeval_tasks"))


@pytest.fixture(autouse=True, scope="module")
def _datasets_cache(tmp_path_factory: pytest.TempPathFactory):
    """The datasets cache in a tmp folder (its path is read when `datasets` is imported)."""
    import datasets.config

    cache = tmp_path_factory.mktemp("hf_datasets")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_DATASETS_CACHE", str(cache))
    mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    yield
    mp.undo()


def spec_for(tmp_path: Path, task_dir: Path, names: list[str], **kw) -> RunSpec:
    return RunSpec(model="fixed", model_args={}, tasks=[], data_root=tmp_path,
                   output_path=tmp_path / "results", run_id="run", lmeval_tasks=names,
                   lmeval_include_paths=[task_dir], **kw)


def read_samples(run_dir: Path, task: str) -> list[dict]:
    lines = (run_dir / task / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_lmeval_names_are_split_from_healthbench_names():
    assert lmeval_bridge.split_task_names(["samples", "lmeval:pubmedqa", "lmeval:medqa_4options"]) \
        == (["samples"], ["pubmedqa", "medqa_4options"])
    with pytest.raises(ValueError, match="lmeval:<task"):
        lmeval_bridge.split_task_names(["lmeval:"])


def test_tasks_run_and_land_in_the_results_schema(tmp_path, task_dir):
    model = FixedModel()
    payload = evaluate(spec_for(tmp_path, task_dir, ["medtoy_mc", "medtoy_gen"]), model=model)
    mc, gen = payload["tasks"]["lmeval:medtoy_mc"], payload["tasks"]["lmeval:medtoy_gen"]
    # "no" (shortest) is right for docs 1 and 4; "yes" (cut at the newline) for docs 0 and 3.
    assert mc["metrics"]["accuracy"]["value"] == pytest.approx(2 / 6)
    assert gen["metrics"]["exact_match"]["value"] == pytest.approx(2 / 6)
    for block, version in ((mc, "1.0"), (gen, "2.0")):
        assert block["version"] == version and block["n"] == N_DOCS and block["n_errors"] == 0
        assert set(block) >= {"version", "data_checksum", "n", "n_errors", "metrics", "groups"}
        for metric in block["metrics"].values():
            lo, hi = metric["ci"]
            assert lo <= metric["value"] <= hi
    run_dir = tmp_path / "results" / "run"
    assert json.loads((run_dir / "results.json").read_text())["tasks"].keys() == \
        {"lmeval:medtoy_mc", "lmeval:medtoy_gen"}
    tables = (run_dir / "tables.md").read_text()
    assert "## lmeval:medtoy_mc (v1.0)" in tables and "33.3" in tables
    rows = read_samples(run_dir, "lmeval:medtoy_gen")
    assert [r["id"] for r in rows] == [str(i) for i in range(N_DOCS)]
    assert rows[0]["response"] == "Yes" and rows[0]["scores"] == {"exact_match": 1.0}
    assert rows[0]["inputs"]["prompt"] == "Question: Is finding 0 benign?\nAnswer:"
    mc_rows = read_samples(run_dir, "lmeval:medtoy_mc")
    assert mc_rows[1]["parsed"] == 1 and mc_rows[1]["scores"] == {"accuracy": 1.0}
    # One scoring request per document, its continuations as choices.
    choice_requests = [r for r in model.seen if r.choices]
    assert len(choice_requests) == N_DOCS
    assert choice_requests[0].choices == (" yes", " no", " maybe")
    assert choice_requests[0].task == "lmeval:medtoy_mc"


def test_numbers_equal_lm_evals_own(tmp_path, task_dir):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    ours = evaluate(spec_for(tmp_path, task_dir, ["medtoy_mc", "medtoy_gen"]),
                    model=FixedModel())["tasks"]
    theirs = simple_evaluate(model=lmeval_adapter.make_lm(FixedModel(), 8),
                             tasks=["medtoy_mc", "medtoy_gen"], bootstrap_iters=0,
                             task_manager=TaskManager(include_path=str(task_dir),
                                                      include_defaults=False))["results"]
    assert ours["lmeval:medtoy_mc"]["metrics"]["accuracy"]["value"] == \
        pytest.approx(theirs["medtoy_mc"]["acc,none"])
    assert ours["lmeval:medtoy_gen"]["metrics"]["exact_match"]["value"] == \
        pytest.approx(theirs["medtoy_gen"]["exact_match,none"])
    # the direction lm-eval declares, and the scale of its built-in metric, travel into
    # results.json for the report tools
    assert ours["lmeval:medtoy_mc"]["metric_info"]["accuracy"] == {"percent": True,
                                                                   "higher_is_better": True}


class SentenceModel(FixedModel):
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(text="the lesion is benign and small") for _ in requests]


def test_sacrebleu_scores_keep_lm_evals_0_to_100_scale_in_every_report(tmp_path):
    """lm-eval's ``bleu``/``ter`` are sacreBLEU scores (0-100; ter lower is better) and it
    declares no scale: the block says so from lm-eval's own metadata, and tables.md, the
    leaderboard and compare all show the number lm-eval printed (35.2 was 3520.0 on the
    leaderboard when the scale was guessed from the name)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from healthbench.report.leaderboard import build_leaderboard, render_markdown
    from healthbench.report.runs import load_runs

    folder = write_tasks(tmp_path / "tasks")
    dataset = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: "
               f"{folder / 'medtoy.jsonl'}\ntest_split: test\n")
    (folder / "medtoy_bleu.yaml").write_text(
        "task: medtoy_bleu\n" + dataset + "output_type: generate_until\n"
        "doc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
        "doc_to_target: \"the lesion is benign and stable\"\n"
        "generation_kwargs: {until: [\"\\n\"], do_sample: false, max_gen_toks: 16}\n"
        "metric_list:\n  - {metric: bleu, aggregation: bleu, higher_is_better: true}\n"
        "  - {metric: ter, aggregation: ter, higher_is_better: false}\n"
        "metadata: {version: 1.0}\n", encoding="utf-8")
    blocks = evaluate(spec_for(tmp_path, folder, ["medtoy_bleu", "medtoy_gen"]),
                      model=SentenceModel())["tasks"]
    block = blocks["lmeval:medtoy_bleu"]
    assert block["metric_info"] == {"bleu": {"percent": False, "higher_is_better": True},
                                    "ter": {"percent": False, "higher_is_better": False}}
    assert blocks["lmeval:medtoy_gen"]["metric_info"] == {
        "exact_match": {"percent": True, "higher_is_better": True}}
    theirs = simple_evaluate(model=lmeval_bridge.make_lm(SentenceModel(), 8),
                             tasks=["medtoy_bleu"], bootstrap_iters=0,
                             task_manager=TaskManager(include_path=str(folder),
                                                      include_defaults=False))["results"]
    bleu = block["metrics"]["bleu"]["value"]
    assert bleu == pytest.approx(theirs["medtoy_bleu"]["bleu,none"]) and 10 < bleu < 100
    tables = (tmp_path / "results" / "run" / "tables.md").read_text(encoding="utf-8")
    assert f"| {bleu:.4g}" in tables
    board = render_markdown(build_leaderboard(load_runs(tmp_path / "results")))
    assert f"| {bleu:.2f}" in board and f"{bleu * 100:.1f}" not in board


def test_replay_rescores_an_earlier_lmeval_run_identically(tmp_path, task_dir):
    from healthbench.models.base import create_model

    names = ["medtoy_mc", "medtoy_gen"]
    first = evaluate(spec_for(tmp_path, task_dir, names), model=FixedModel())["tasks"]
    replay = create_model("replay", {"path": str(tmp_path / "results" / "run")})
    again = evaluate(RunSpec(model="replay", model_args={}, tasks=[], data_root=tmp_path,
                             output_path=tmp_path / "results", run_id="again",
                             lmeval_tasks=names, lmeval_include_paths=[task_dir]),
                     model=replay)["tasks"]
    for name in ("lmeval:medtoy_mc", "lmeval:medtoy_gen"):
        assert again[name]["metrics"] == first[name]["metrics"]


def test_a_failing_document_is_an_error_record_left_out_of_metrics(tmp_path, task_dir):
    payload = evaluate(spec_for(tmp_path, task_dir, ["medtoy_mc"]),
                       model=FixedModel(fail_on="finding 4"))
    block = payload["tasks"]["lmeval:medtoy_mc"]
    assert (block["n"], block["n_errors"]) == (5, 1)
    assert block["metrics"]["accuracy"]["value"] == pytest.approx(1 / 5)  # doc 1 only
    rows = read_samples(tmp_path / "results" / "run", "lmeval:medtoy_mc")
    assert len(rows) == N_DOCS
    assert rows[4]["error"] == "model error: boom" and rows[4]["scores"] == {}


def test_a_group_becomes_a_block_with_its_tasks_as_groups(tmp_path, task_dir):
    payload = evaluate(spec_for(tmp_path, task_dir, ["medtoy_all"]), model=FixedModel())
    tasks = payload["tasks"]
    assert {"lmeval:medtoy_mc", "lmeval:medtoy_gen", "lmeval:medtoy_all"} <= set(tasks)
    group = tasks["lmeval:medtoy_all"]
    assert group["metrics"]["accuracy"]["value"] == pytest.approx(2 / 6)
    assert list(group["groups"]["subtask"]) == ["medtoy_mc", "medtoy_gen"]
    assert group["n"] == 2 * N_DOCS


def test_a_model_without_loglikelihood_is_refused_before_running(tmp_path, task_dir):
    model = TextOnlyModel()
    with pytest.raises(lmeval_bridge.LmevalTaskError, match="needs loglikelihood"):
        evaluate(spec_for(tmp_path, task_dir, ["medtoy_gen", "medtoy_mc"]), model=model)
    assert model.seen == []


def test_subsample_and_limit_pick_documents_like_healthbench(tmp_path, task_dir):
    payload = evaluate(spec_for(tmp_path, task_dir, ["medtoy_gen"], subsample=4, limit=3,
                                seed=7), model=FixedModel())
    rows = read_samples(tmp_path / "results" / "run", "lmeval:medtoy_gen")
    expected = sorted(random.Random(7).sample(range(N_DOCS), 4))[:3]
    assert [int(r["id"]) for r in rows] == expected
    assert payload["tasks"]["lmeval:medtoy_gen"]["n"] == 3


def test_generation_kwargs_map_to_generation_params():
    inst = SimpleNamespace(task_name="t", doc_id=3, args=(
        "Q: <image>x", {"until": "\n\n", "do_sample": True, "temperature": 0.7,
                        "max_gen_toks": 5}, {"visual": ["img"]}))
    request = lmeval_adapter.generation_request(inst)
    assert (request.task, request.sample_id, request.prompt) == ("lmeval:t", "3", "Q: x")
    assert request.images == ("img",)
    assert request.generation.stop == ("\n\n",)
    assert (request.generation.max_new_tokens, request.generation.temperature) == (5, 0.7)


def test_cli_runs_an_lmeval_task_on_the_tiny_model(tmp_path, task_dir, capsys):
    code = main(["run", "--model", "tiny", "--tasks", "lmeval:medtoy_mc,lmeval:medtoy_gen",
                 "--lmeval-include-path", str(task_dir), "--output-path", str(tmp_path),
                 "--run-id", "cli", "--no-progress"])
    assert code == 0
    results = json.loads((tmp_path / "cli" / "results.json").read_text())
    for name in ("lmeval:medtoy_mc", "lmeval:medtoy_gen"):
        block = results["tasks"][name]
        assert block["n"] + block["n_errors"] == N_DOCS
    assert "lmeval:medtoy_mc" in capsys.readouterr().out


def test_cli_refuses_a_missing_include_path(tmp_path, capsys):
    code = main(["run", "--model", "random", "--tasks", "lmeval:medtoy_mc",
                 "--lmeval-include-path", str(tmp_path / "nope"), "--output-path",
                 str(tmp_path)])
    assert code == 2
    assert "not a folder" in capsys.readouterr().err


# --- safety: task code, downloads, one-line errors ------------------------------------------------

def write_code_task(folder: Path, marker: Path) -> Path:
    """medtoy_code: medtoy_gen whose doc_to_text is ``!function evil.f`` (evil.py touches
    ``marker`` when imported)."""
    write_tasks(folder)
    (folder / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "def f(doc):\n    return 'Question: ' + doc['question'] + '\\nAnswer:'\n",
        encoding="utf-8")
    gen = (folder / "medtoy_gen.yaml").read_text(encoding="utf-8")
    gen = gen.replace("task: medtoy_gen", "task: medtoy_code").replace(
        'doc_to_text: "Question: {{question}}\\nAnswer:"', "doc_to_text: !function evil.f")
    (folder / "medtoy_code.yaml").write_text(gen, encoding="utf-8")
    return folder


def test_task_code_is_refused_before_it_can_run(tmp_path):
    marker = tmp_path / "ran.txt"
    folder = write_code_task(tmp_path / "tasks", marker)
    for names in (["medtoy_code"], ["medtoy_mc"]):  # any YAML of the include path counts
        with pytest.raises(lmeval_bridge.LmevalTaskError,
                           match=r"!function.*medtoy_code\.yaml:\d+.*--allow-task-code"):
            evaluate(spec_for(tmp_path, folder, names), model=FixedModel())
    assert not marker.exists()
    payload = evaluate(spec_for(tmp_path, folder, ["medtoy_code"], lmeval_allow_task_code=True),
                       model=FixedModel())
    assert marker.read_text() == "ran"
    assert payload["tasks"]["lmeval:medtoy_code"]["metrics"]["exact_match"]["value"] == \
        pytest.approx(2 / 6)


def test_task_code_reached_through_include_is_refused(tmp_path):
    marker = tmp_path / "ran.txt"
    elsewhere = write_code_task(tmp_path / "elsewhere", marker)
    folder = write_tasks(tmp_path / "tasks")
    (folder / "medtoy_inc.yaml").write_text(
        f"include: {elsewhere / 'medtoy_code.yaml'}\ntask: medtoy_inc\n", encoding="utf-8")
    with pytest.raises(lmeval_bridge.LmevalTaskError, match=r"elsewhere.*medtoy_code\.yaml"):
        evaluate(spec_for(tmp_path, folder, ["medtoy_inc"]), model=FixedModel())
    assert not marker.exists()


def test_cli_refuses_task_code_in_one_line(tmp_path, capsys):
    folder = write_code_task(tmp_path / "tasks", tmp_path / "ran.txt")
    code = main(["run", "--model", "random", "--tasks", "lmeval:medtoy_code",
                 "--lmeval-include-path", str(folder), "--output-path", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--allow-task-code" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def write_hub_task(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "medtoy_hub.yaml").write_text(
        "task: medtoy_hub\ndataset_path: healthbench-tests/no-such-dataset\n"
        "test_split: test\noutput_type: generate_until\n"
        "doc_to_text: \"{{question}}\"\ndoc_to_target: answer\n"
        "metric_list:\n  - {metric: exact_match, aggregation: mean, higher_is_better: true}\n"
        "metadata: {version: 1.0}\n", encoding="utf-8")
    return folder


@pytest.fixture
def hub_online(monkeypatch):
    """As if the hub were reachable by default (conftest makes the whole suite offline), with a
    spy on what lm-eval's dataset loading sees."""
    import datasets
    import datasets.config
    import huggingface_hub.constants

    for key in lmeval_safety.OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    seen: list[tuple] = []
    real = datasets.load_dataset

    def spy(*args, **kwargs):
        seen.append((os.environ.get("HF_DATASETS_OFFLINE"), os.environ.get("HF_HUB_OFFLINE"),
                     datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE))
        if not datasets.config.HF_HUB_OFFLINE and "healthbench-tests" in str(args[:1]):
            raise AssertionError("the test tried to reach the hub")
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    return seen


def test_hub_datasets_are_not_downloaded_and_the_error_names_the_task(tmp_path, task_dir,
                                                                       hub_online):
    import datasets.config

    folder = write_hub_task(tmp_path / "tasks")
    with pytest.raises(lmeval_bridge.LmevalTaskError) as caught:
        evaluate(spec_for(tmp_path, folder, ["medtoy_hub"]), model=FixedModel())
    assert str(caught.value) == (
        "lm-eval task medtoy_hub needs its dataset from the Hugging Face hub; pass "
        "--allow-download or point the task at local files")
    assert hub_online and all(flags == ("1", "1", True, True) for flags in hub_online)
    # restored afterwards; local files still load offline
    assert "HF_HUB_OFFLINE" not in os.environ and datasets.config.HF_HUB_OFFLINE is False
    evaluate(spec_for(tmp_path, task_dir, ["medtoy_mc"]), model=FixedModel())
    assert hub_online[-1] == ("1", "1", True, True)


def test_allow_download_leaves_the_hub_reachable(tmp_path, task_dir, hub_online):
    evaluate(spec_for(tmp_path, task_dir, ["medtoy_mc"], lmeval_allow_download=True),
             model=FixedModel())
    assert hub_online and hub_online[-1] == (None, None, False, False)


def test_cli_hub_error_is_one_line(tmp_path, capsys, hub_online):
    folder = write_hub_task(tmp_path / "tasks")
    code = main(["run", "--model", "random", "--tasks", "lmeval:medtoy_hub",
                 "--lmeval-include-path", str(folder), "--output-path", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "lm-eval task medtoy_hub needs its dataset from the Hugging Face hub" in err


def test_other_lmeval_failures_are_one_line_errors_naming_the_task(tmp_path, task_dir,
                                                                    monkeypatch, capsys):
    import lm_eval.evaluator

    def broken(**kwargs):
        raise KeyError("doc field 'question'\nmissing")

    monkeypatch.setattr(lm_eval.evaluator, "evaluate", broken)
    with pytest.raises(lmeval_bridge.LmevalTaskError,
                       match=r"^lm-eval task medtoy_gen failed: KeyError: .*missing"):
        evaluate(spec_for(tmp_path, task_dir, ["medtoy_gen"]), model=FixedModel())
    code = main(["run", "--model", "tiny", "--tasks", "lmeval:medtoy_gen",
                 "--lmeval-include-path", str(task_dir), "--output-path", str(tmp_path),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and "medtoy_gen" in err


# ---- the bridge rides the runner: resume, the batch caller, no global seeding -----------------

def test_a_resumed_run_asks_the_model_only_for_what_was_not_answered(tmp_path, task_dir):
    names = ["medtoy_mc", "medtoy_gen"]
    first_model = FixedModel(fail_on="finding 4")
    first = evaluate(spec_for(tmp_path, task_dir, names), model=first_model)["tasks"]
    assert first["lmeval:medtoy_mc"]["n_errors"] == 1
    log_path = tmp_path / "results" / "run" / lmeval_bridge.REQUEST_LOG
    assert log_path.exists()
    again_model = FixedModel()  # the failure is gone on the rerun
    again = evaluate(spec_for(tmp_path, task_dir, names), model=again_model)["tasks"]
    # only the two requests of doc 4 (one per task) that failed are asked again
    assert sorted(r.sample_id for r in again_model.seen) == ["4", "4"]
    fresh = evaluate(spec_for(tmp_path / "fresh", task_dir, names), model=FixedModel())["tasks"]
    for name in ("lmeval:medtoy_mc", "lmeval:medtoy_gen"):
        assert again[name]["n_errors"] == 0
        assert again[name]["metrics"] == fresh[name]["metrics"]


def test_a_torn_request_log_line_is_asked_again(tmp_path, task_dir):
    names = ["medtoy_gen"]
    evaluate(spec_for(tmp_path, task_dir, names), model=FixedModel())
    log_path = tmp_path / "results" / "run" / lmeval_bridge.REQUEST_LOG
    lines = log_path.read_text(encoding="utf-8").splitlines(keepends=True)
    log_path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2], encoding="utf-8")
    model = FixedModel()
    evaluate(spec_for(tmp_path, task_dir, names), model=model)
    assert len(model.seen) == 1


class OutOfMemoryAboveTwo(FixedModel):
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if len(requests) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
        return super().generate(requests)


def test_out_of_memory_halves_lmeval_batches_like_the_runner(tmp_path, task_dir):
    model = OutOfMemoryAboveTwo()
    payload = evaluate(spec_for(tmp_path, task_dir, ["medtoy_gen"],
                                settings=RunSettings(batch_size=8)), model=model)
    block = payload["tasks"]["lmeval:medtoy_gen"]
    assert (block["n"], block["n_errors"]) == (N_DOCS, 0)
    assert len(model.seen) == N_DOCS  # every doc answered once, in batches of at most two


def test_running_lmeval_tasks_leaves_the_global_random_state_alone(tmp_path, task_dir):
    import numpy as np

    random.seed(12345)
    np.random.seed(12345)
    before = (random.getstate(), np.random.get_state()[1].copy())
    evaluate(spec_for(tmp_path, task_dir, ["medtoy_mc"], seed=3), model=FixedModel())
    assert random.getstate() == before[0]
    assert (np.random.get_state()[1] == before[1]).all()
