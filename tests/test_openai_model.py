"""The ``openai`` plugin against a real HTTP server on 127.0.0.1 (tests/plugin_fixtures.py)."""
from __future__ import annotations

import json
import time

import pytest
from plugin_fixtures import ChatServer, ServerBehaviour, noise_image

from healthbench.models.base import ModelArgsError, create_model, public_args
from healthbench.core.types import GenerationParams, Request

FAST = dict(timeout=2.0, max_retries=3, backoff=0.01, max_backoff=0.05)


def make(server: ChatServer, **args):
    return create_model("openai", {"model": "tiny-vlm", "base_url": server.base_url,
                                   **FAST, **args})


def requests_(n: int, **kw) -> list[Request]:
    return [Request(task="t", sample_id=f"s{i}", prompt=f"question {i}", **kw) for i in range(n)]


def test_answers_come_back_in_request_order():
    with ChatServer() as server:
        out = make(server, max_concurrency=4).generate(requests_(12))
    assert [r.text for r in out] == [f"echo:question {i}|images=0" for i in range(12)]
    assert all(r.error is None for r in out)


def test_images_travel_as_base64_data_urls_after_the_text():
    image_request = Request(task="t", sample_id="img", prompt="what organ?",
                            images=(noise_image(1), noise_image(2).convert("L")))
    with ChatServer() as server:
        out = make(server).generate([image_request])
        content = server.log.requests[0]["messages"][-1]["content"]
    assert out[0].text == "echo:what organ?|images=2"
    assert [part["type"] for part in content] == ["text", "image_url", "image_url"]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_generation_params_and_system_prompt_are_sent():
    params = GenerationParams(max_new_tokens=7, temperature=0.5, top_p=0.9,
                              stop=("\n", "a", "b", "c", "d"))
    with ChatServer() as server:
        make(server, system_prompt="You are a radiologist.", seed=3).generate(
            [Request(task="t", sample_id="x", prompt="q", generation=params)])
        body = server.log.requests[0]
    assert body["max_tokens"] == 7 and body["temperature"] == 0.5 and body["top_p"] == 0.9
    assert body["stop"] == ["\n", "a", "b", "c"]  # the API's limit; the rest is cut locally
    assert body["seed"] == 3
    assert body["messages"][0] == {"role": "system", "content": "You are a radiologist."}


def test_stop_strings_are_applied_to_the_answer():
    params = GenerationParams(stop=("|",))
    with ChatServer() as server:
        out = make(server).generate([Request(task="t", sample_id="x", prompt="q",
                                             generation=params)])
    assert out[0].text == "echo:q"


def test_api_key_comes_from_the_named_variable_and_is_not_a_public_arg(monkeypatch):
    monkeypatch.setenv("HB_TEST_KEY", "sk-secret-123")
    with ChatServer(ServerBehaviour(expected_key="sk-secret-123")) as server:
        model = make(server, api_key_env="HB_TEST_KEY")
        out = model.generate(requests_(1))
    assert out[0].error is None
    assert server.log.headers[0]["Authorization"] == "Bearer sk-secret-123"
    recorded = json.dumps([public_args({"api_key_env": "HB_TEST_KEY"}), model.describe()])
    assert "sk-secret-123" not in recorded


def test_a_key_as_model_argument_is_refused():
    with pytest.raises(ModelArgsError, match="api_key"):
        create_model("openai", {"model": "m", "api_key": "sk-secret"})


def test_wrong_key_is_a_per_sample_error_without_retries(monkeypatch):
    monkeypatch.setenv("HB_TEST_KEY", "wrong")
    with ChatServer(ServerBehaviour(expected_key="right")) as server:
        out = make(server, api_key_env="HB_TEST_KEY").generate(requests_(2))
        attempts = len(server.log.requests)
    assert all("HTTP 401" in r.error for r in out)
    assert attempts == 2


def test_rate_limits_are_retried():
    with ChatServer(ServerBehaviour(rate_limit_first=True)) as server:
        out = make(server).generate(requests_(3))
    assert [r.error for r in out] == [None] * 3
    assert [r.extra["attempts"] for r in out] == [2, 2, 2]


def test_a_sample_that_always_fails_gets_a_clear_error_after_the_last_retry():
    reqs = requests_(3)
    reqs[1] = Request(task="t", sample_id="bad", prompt="ALWAYS_FAIL please")
    with ChatServer() as server:
        out = make(server, max_retries=2).generate(reqs)
        attempts = server.log.attempts
    assert out[0].error is None and out[2].error is None
    assert "HTTP 500" in out[1].error and "scripted failure" in out[1].error
    assert "gave up after 3 attempt(s)" in out[1].error
    assert max(attempts.values()) == 3


def test_malformed_answers_are_errors_not_crashes():
    with ChatServer(ServerBehaviour(malformed=True)) as server:
        out = make(server).generate(requests_(2))
    assert all(r.text is None and "malformed chat completion" in r.error for r in out)


def test_unreachable_server_is_a_per_sample_error():
    with ChatServer() as server:
        url = server.base_url
    model = create_model("openai", {"model": "m", "base_url": url, **FAST, "max_retries": 1})
    out = model.generate(requests_(2))
    assert all("connection" in r.error and "gave up after 2" in r.error for r in out)


def test_concurrency_is_bounded():
    with ChatServer(ServerBehaviour(delay=0.05)) as server:
        make(server, max_concurrency=3).generate(requests_(12))
        peak = server.log.max_in_flight
    assert 1 < peak <= 3


def test_flaky_server_failing_30_percent_loses_no_sample():
    # Which (prompt, attempt) pairs fail is a hash, not chance (plugin_fixtures.ServerBehaviour):
    # the same prompts fail on the same attempts on every run.
    with ChatServer(ServerBehaviour(fail_rate=0.3)) as server:
        out = make(server, max_concurrency=8, max_retries=5).generate(requests_(60))
        attempts = dict(server.log.attempts)
        failures = len(server.log.requests) - 60
    expected = {prompt: _attempts_until_success(prompt, 0.3, 6) for prompt in attempts}
    assert attempts == expected  # every failed attempt was retried, and only those
    assert failures == sum(expected.values()) - 60 > 5  # the server really did fail
    assert len(out) == 60 and all(r.error is None for r in out)
    assert [r.text for r in out] == [f"echo:question {i}|images=0" for i in range(60)]


def _attempts_until_success(prompt: str, fail_rate: float, most: int) -> int:
    """Attempts the fake server needs for ``prompt`` (its rule: a hash of prompt and attempt)."""
    import hashlib

    for attempt in range(1, most + 1):
        draw = int(hashlib.sha256(f"{prompt}\0{attempt}".encode()).hexdigest()[:8], 16)
        if draw / 0xFFFFFFFF >= fail_rate:
            return attempt
    return most


def test_hanging_server_ends_every_sample_with_an_error_in_bounded_time():
    timeout = 0.5
    # The server would hang for a minute; only the client's timeout can end this early.
    with ChatServer(ServerBehaviour(hang=True, hang_limit=60.0)) as server:
        model = make(server, timeout=timeout, max_retries=1, max_concurrency=8)
        t0 = time.monotonic()
        out = model.generate(requests_(8))
        elapsed = time.monotonic() - t0
        attempts = sorted(server.log.attempts.values())
    assert len(out) == 8
    assert all(r.text is None and f"timeout={timeout}s" in r.error for r in out)
    assert attempts == [2] * 8
    # One wave of 2 attempts x 0.5 s (+ a tiny backoff) ~ 1 s; the bound only has to tell a
    # timed-out client from the minute-long hang, so it is generous for loaded machines.
    assert elapsed < 10 * timeout


def test_image_output_requests_are_refused_per_sample():
    with ChatServer() as server:
        out = make(server).generate([Request(task="t", sample_id="x", prompt="q",
                                             output="image")] + requests_(1))
    assert "text only" in out[0].error and out[1].error is None


@pytest.mark.parametrize("bad", [{"base_url": "ftp://x"}, {"timeout": 0},
                                 {"image_format": "gif"}, {"max_retries": -1}])
def test_bad_arguments_are_named(bad):
    with pytest.raises(ModelArgsError, match="openai"):
        create_model("openai", {"model": "m", **bad})
