"""An API key given through the environment reaches the server and nothing else: a complete,
successful run of the ``openai`` plugin (and an ``openai`` judge) against a loopback server, then
the leaderboard and its HTML site; the key is in no file written and in no output or log."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import plugin_fixtures
from plugin_fixtures import ChatServer, ServerBehaviour

from healthbench.cli import main
from tests.test_judge import VQA_TASK, write_vqa_rad

KEY = "sk-HBTEST-7f3a9c1e5b2d4a6f"


def files_under(*folders: Path) -> list[Path]:
    return [Path(root) / name for folder in folders for root, _, names in os.walk(folder)
            for name in names]


def test_a_keyed_run_with_judge_and_site_never_writes_or_prints_the_key(
        tmp_path: Path, monkeypatch, caplog, capfd) -> None:
    write_vqa_rad(tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "vqa_rad_judged.yaml").write_text(VQA_TASK)
    echo = plugin_fixtures.answer_for
    # the server grades as a judge when addressed as model "grader", and echoes otherwise
    monkeypatch.setattr(plugin_fixtures, "answer_for",
                        lambda body: "0.75" if body["model"] == "grader" else echo(body))
    monkeypatch.setenv("HB_TEST_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    results, site = tmp_path / "results", tmp_path / "site"
    with ChatServer(ServerBehaviour(expected_key=KEY)) as server:  # a wrong key gets 401
        transport = f"base_url={server.base_url},api_key_env=HB_TEST_KEY,timeout=5,max_retries=1"
        code = main(["run", "--model", "openai", "--model-args", f"model=tiny-vlm,{transport}",
                     "--judge", "openai", "--judge-args", f"model=grader,{transport}",
                     "--tasks", "vqa_rad_judged", "--include-path", str(tmp_path / "tasks"),
                     "--data-root", str(tmp_path), "--output-path", str(results),
                     "--run-id", "keyed", "--no-progress"])
        assert code == 0
    assert main(["leaderboard", str(results), "--out", str(tmp_path / "leaderboard.md"),
                 "--html", str(site)]) == 0

    # the key did its job: every request carried it, model and judge alike
    auth = [h.get("Authorization") for h in server.log.headers]
    models = [body["model"] for body in server.log.requests]
    assert models.count("tiny-vlm") == 3 and models.count("grader") == 2
    assert auth == [f"Bearer {KEY}"] * len(auth)

    # the run succeeded for real: answers and judge grades were recorded
    block = json.loads((results / "keyed" / "results.json").read_text())["tasks"]["vqa_rad_judged"]
    assert (block["n"], block["n_errors"]) == (3, 0)
    assert block["metrics"]["judge_accuracy"]["value"] == 0.75
    assert block["metrics"]["judge_accuracy"]["n"] == 2
    assert (site / "index.html").exists()

    written = files_under(results, site, tmp_path / "leaderboard.md")
    assert len(written) > 5
    for path in written + [tmp_path / "leaderboard.md"]:
        data = path.read_bytes()
        assert KEY.encode() not in data, f"the key was written to {path}"
    captured = capfd.readouterr()
    assert KEY not in captured.out + captured.err
    assert KEY not in caplog.text
    assert all(KEY not in str(record.args) for record in caplog.records)


PASSWORD = "pw-HBTEST-91c2e7"


def test_url_credentials_and_secret_arguments_are_redacted_in_the_recorded_command(
        tmp_path: Path, monkeypatch, caplog, capfd) -> None:
    """A password inside base_url and secret-named --model-args values: the run uses them, and
    results.json's ``command`` and ``model.args`` carry them redacted the same way."""
    import sys

    write_vqa_rad(tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "vqa_rad_judged.yaml").write_text(VQA_TASK)
    monkeypatch.setenv("HB_TEST_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    results = tmp_path / "results"
    with ChatServer(ServerBehaviour(expected_key=KEY)) as server:
        url = server.base_url.replace("://", f"://bob:{PASSWORD}@")
        argv = ["run", "--model", "openai", "--model-args",
                f"model=tiny-vlm,base_url={url}?auth_token={PASSWORD},api_key_env=HB_TEST_KEY",
                "--tasks", "vqa_rad_judged", "--include-path", str(tmp_path / "tasks"),
                "--data-root", str(tmp_path), "--output-path", str(results),
                "--run-id", "creds", "--no-progress"]
        monkeypatch.setattr(sys, "argv", ["healthbench", *argv])
        assert main(argv) == 0
    assert len(server.log.requests) == 3  # the run really ran
    payload = json.loads((results / "creds" / "results.json").read_text())
    assert "base_url=http://<redacted>@127.0.0.1" in payload["command"]
    assert "auth_token=<redacted>" in payload["command"]
    assert "api_key_env=<redacted>" in payload["command"]  # as model.args has it:
    assert payload["model"]["args"]["api_key_env"] == "<redacted>"
    assert payload["model"]["args"]["base_url"].startswith("http://<redacted>@127.0.0.1")
    for path in files_under(results):
        assert PASSWORD.encode() not in path.read_bytes(), f"the password was written to {path}"
    captured = capfd.readouterr()
    assert PASSWORD not in captured.out + captured.err + caplog.text


def test_redact_command_treats_every_spelling_of_a_secret_alike() -> None:
    from healthbench.models.base import public_args, redact_command, redact_urls

    argv = ["run_eval.py", "--model-args", "model=m,api_key=S1,hf_token=S2", "--judge-args=password=S3",
            "--api-key", "S4", "--auth-token=S5", "--model-args", "base_url=https://u:S6@h/v1",
            "--tasks", "a,b"]
    command = redact_command(argv)
    assert not any(f"S{i}" in command for i in range(1, 7)), command
    assert "model=m" in command and "--tasks a,b" in command
    assert public_args({"api_key": "S1", "model": "m"}) == {"api_key": "<redacted>", "model": "m"}
    assert redact_urls("see http://h/x?token=S7&page=2") == "see http://h/x?token=<redacted>&page=2"
    assert redact_urls("no url here: a=b") == "no url here: a=b"
