"""The static leaderboard page in a real headless Chromium (Debian's ``chromium`` package, driven
by Playwright with ``executable_path``; no browser is ever downloaded).

Two real runs of the bundled OmniMedVQA sample (``random`` model, two seeds) feed the site, so the
thumbnails are the real medical images. The page is opened from disk (file://): tables sort, the
sample browser filters, thumbnails load, and every request the page makes is recorded and must
stay on the local disk. A screenshot is written to the test's folder.

Identity and random runs of the bundled reconstruction sample (an image-output task) feed a second
site: each card shows the sample's input | output | reference strip, copied into ``strips/``.
Both sites get one bar chart with interval whiskers per per-group table. A third site (a random
run of the likelihood-scored sample, every option rotation) shows the reliability diagram.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("HEALTHBENCH_CHROMIUM") or shutil.which("chromium") or \
    "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install -y "
                "chromium chromium-driver) or set HEALTHBENCH_CHROMIUM", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright's python package is not installed "
    "(pip install playwright; the browser comes from Debian, never from playwright install)")

from healthbench.run.evaluate import RunSpec, evaluate  # noqa: E402
from healthbench.report.publish import write_leaderboard  # noqa: E402
from healthbench.results.samples import read_samples  # noqa: E402
from healthbench.taskconfig.index import TaskIndex  # noqa: E402

TASK = "omnimedvqa_sample"
GEN_TASK = "reconstruction_sample"  # output: image; each sample gets an input|output|ref strip
# The closed-network flags from the machine notes: without them Chromium phones home at start.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--disable-extensions"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sample_data_root: Path) -> Path:
    results = tmp_path_factory.mktemp("browser") / "results"
    task = TaskIndex.build().resolve([TASK])
    for run_id, seed in (("random_a", 0), ("random_b", 1)):
        evaluate(RunSpec(model="random", model_args={"seed": seed}, tasks=task,
                         data_root=sample_data_root, output_path=results, run_id=run_id))
    refs = results.parent / "refs.yaml"
    refs.write_text("references:\n  - {model: PaperModel, task: omnimedvqa_sample, metric: "
                    "accuracy, value: 61.0, source: Example 2025, protocol: authors' prompt, "
                    "url: 'https://example.org/p'}\n", encoding="utf-8")
    out = results.parent / "site"
    write_leaderboard(results, results.parent / "leaderboard.md", html=out, references=refs)
    return out


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API allows one at a time)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def _open_page(browser, site: Path):
    """The site's index.html in its own browser context; yields (page, every URL requested)."""
    requests: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def guard(route) -> None:  # anything not on the local disk is recorded and refused
        requests.append(route.request.url)
        if route.request.url.startswith(("file://", "data:")):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((site / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert not errors, errors
    yield page, requests
    context.close()


@pytest.fixture(scope="module")
def page_and_requests(browser, site: Path):
    with _open_page(browser, site) as opened:
        yield opened


@pytest.fixture(scope="module")
def gen_site(tmp_path_factory: pytest.TempPathFactory, sample_data_root: Path) -> Path:
    """Identity and random runs of the bundled reconstruction sample (image output)."""
    results = tmp_path_factory.mktemp("browser_gen") / "results"
    task = TaskIndex.build().resolve([GEN_TASK])
    for run_id, model in (("identity_gen", "identity"), ("random_gen", "random")):
        evaluate(RunSpec(model=model, model_args={}, tasks=task, data_root=sample_data_root,
                         output_path=results, run_id=run_id))
    out = results.parent / "site"
    write_leaderboard(results, results.parent / "leaderboard.md", html=out,
                      shipped_references=False)  # only these two runs' charts on the page
    return out


@pytest.fixture(scope="module")
def gen_page_and_requests(browser, gen_site: Path):
    with _open_page(browser, gen_site) as opened:
        yield opened


def _column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(
        f"{table} tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent.trim())")


def test_leaderboard_table_sorts_by_clicked_column(page_and_requests) -> None:
    page, _ = page_and_requests
    table = "table.leaderboard"
    header = page.locator(f"{table} thead th", has_text="run")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert _column(page, table, 10) == ["random_a", "random_b"]
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert _column(page, table, 10) == ["random_b", "random_a"]
    micro = page.locator(f"{table} thead th", has_text="micro")
    micro.click()  # numbers sort high to low first, by value not by text
    values = [float(v.split()[0]) for v in _column(page, table, 4)]
    assert values == sorted(values, reverse=True)
    micro.click()
    values = [float(v.split()[0]) for v in _column(page, table, 4)]
    assert values == sorted(values)


def test_sample_browser_filters_by_correctness_group_and_text(page_and_requests, site) -> None:
    page, _ = page_and_requests
    records = [r for run in ("random_a", "random_b") for r in read_samples(
        site.parent / "results" / run / TASK / "samples.jsonl").values()]
    wrong = [r for r in records if r.scores.get("accuracy") == 0.0]
    page.select_option("#f-correct", "wrong")
    assert page.locator("#sb-list .card").count() == len(wrong)
    assert set(page.eval_on_selector_all("#sb-list .card",
                                         "cs => cs.map(c => c.dataset.correct)")) == {"wrong"}
    page.select_option("#f-group", "modality=CT")
    ct_wrong = [r for r in wrong if r.meta.get("modality") == "CT"]
    assert page.locator("#sb-list .card").count() == len(ct_wrong)
    assert f"{len(ct_wrong)} of {len(records)} samples match" in page.text_content("#sb-count")
    page.select_option("#f-group", "")
    page.select_option("#f-correct", "")
    page.fill("#f-text", "part of the body")
    body = [r for r in records if "part of the body" in (r.inputs.get("question") or "")]
    assert page.locator("#sb-list .card").count() == len(body) > 0
    page.fill("#f-text", "")
    assert page.locator("#sb-list .card").count() == len(records)


def test_thumbnails_load_from_the_site_folder(page_and_requests, site) -> None:
    page, _ = page_and_requests
    images = page.eval_on_selector_all(
        "#sb-list .card img", "imgs => imgs.map(i => [i.getAttribute('src'), i.complete, "
        "i.naturalWidth])")
    assert len(images) > 0
    assert all(src.startswith("thumbs/") and complete and width > 0
               for src, complete, width in images)
    assert all((site / src).is_file() for src, _, _ in images)


def test_page_makes_no_request_off_the_machine(page_and_requests) -> None:
    page, requests = page_and_requests
    page.select_option("#f-correct", "correct")  # re-renders cards: more image loads
    page.select_option("#f-correct", "")
    assert requests, "the request recorder saw nothing"
    off_disk = [url for url in requests if not url.startswith(("file://", "data:"))]
    assert off_disk == []


def test_screenshot_of_the_page(page_and_requests, tmp_path) -> None:
    page, _ = page_and_requests
    page.evaluate("window.scrollTo(0, 0)")
    shot = tmp_path / "leaderboard.png"
    page.screenshot(path=str(shot))
    page.evaluate("document.getElementById('samples').scrollIntoView()")
    page.screenshot(path=str(tmp_path / "sample_browser.png"))
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("HEALTHBENCH_SCREENSHOTS")
    if keep:  # CI can collect them as artifacts
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name in ("leaderboard.png", "sample_browser.png"):
            shutil.copy(tmp_path / name, Path(keep) / name)


def _check_charts(page) -> None:
    """One inline SVG chart per per-group table, inside its section; a whisker per bar."""
    n_groups = page.locator("table.groups").count()
    assert n_groups > 0
    assert page.locator("svg.plot").count() == n_groups
    assert page.locator("details:has(table.groups) > figure.plot-box > svg.plot").count() == \
        n_groups
    # run bars carry an interval; paper bars (the shipped references, "† paper") have none
    plots = page.eval_on_selector_all("svg.plot", """svgs => svgs.map(svg => {
        const titled = Array.from(svg.querySelectorAll("rect")).filter(r => r.querySelector("title"));
        const runs = titled.filter(r => !r.querySelector("title").textContent.includes("†"));
        return {bars: titled.length, run_bars: runs.length,
        whiskers: Array.from(svg.querySelectorAll("path.whisker")).map(p => {
          const box = p.getBBox(); return [box.x, box.width, box.height]; }),
        bars_x: runs.map(r => [r.x.baseVal.value, r.width.baseVal.value]),
        width: svg.getBoundingClientRect().width}; })""")
    assert any(plot["run_bars"] for plot in plots)
    for plot in plots:
        assert plot["bars"] > 0 and plot["width"] > 0
        assert len(plot["whiskers"]) == plot["run_bars"]  # every run bar has its interval
        for (wx, ww, _), (bx, bw) in zip(plot["whiskers"], plot["bars_x"]):
            assert bx <= wx + ww / 2 <= bx + bw  # each whisker is centred on its bar


def test_each_group_table_has_its_chart_with_interval_whiskers(page_and_requests) -> None:
    page, _ = page_and_requests
    _check_charts(page)


def test_generation_strips_load_from_the_site_folder(gen_page_and_requests, gen_site) -> None:
    page, requests = gen_page_and_requests
    records = [r for run in ("identity_gen", "random_gen") for r in read_samples(
        gen_site.parent / "results" / run / GEN_TASK / "samples.jsonl").values()]
    assert records and all(r.response and r.response.get("strip") for r in records)
    assert page.locator("#sb-list .card").count() == len(records)
    strips = page.eval_on_selector_all(
        "#sb-list .card figure.strip img", "imgs => imgs.map(i => [i.getAttribute('src'), "
        "i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(strips) == len(records)  # one strip on every card
    for src, complete, width, height in strips:
        assert src.startswith("strips/") and (gen_site / src).is_file()
        assert complete and width > 0 and width == 3 * height  # input | output | reference
    assert page.locator("#sb-list .card .strip.muted").count() == 0  # none missing
    _check_charts(page)  # modality and format: two charts
    assert page.locator("svg.plot").count() == 2
    sizes = page.eval_on_selector_all(
        "table.leaderboard tbody tr", "rows => rows.map(r => r.cells[3].textContent.trim())")
    assert sizes == ["–", "–"]  # the identity baseline's 256 px is not a parameter count
    page.select_option("#f-run", "1")
    page.select_option("#f-run", "")
    off_disk = [url for url in requests if not url.startswith(("file://", "data:"))]
    assert requests and off_disk == []
    assert any("/strips/" in url for url in requests)
    page.locator("#sb-list .card figure.strip").first.scroll_into_view_if_needed()
    shot = gen_site.parent / "strips.png"
    page.screenshot(path=str(shot))
    keep = os.environ.get("HEALTHBENCH_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "strips.png")


@pytest.fixture(scope="module")
def calib_site(tmp_path_factory: pytest.TempPathFactory, sample_data_root: Path) -> Path:
    """A random run of the likelihood-scored OmniMedVQA sample, asked in every rotation of its
    options: a calibration block (reliability diagram) and a robustness block per run."""
    results = tmp_path_factory.mktemp("browser_calib") / "results"
    task = TaskIndex.build().resolve(["omnimedvqa_sample_likelihood"])
    evaluate(RunSpec(model="random", model_args={}, tasks=task, data_root=sample_data_root,
                     output_path=results, run_id="random_ll", permute_options="cyclic"))
    out = results.parent / "site"
    write_leaderboard(results, results.parent / "leaderboard.md", html=out)
    return out


def test_reliability_diagram_renders(browser, calib_site: Path) -> None:
    import json

    block = json.loads((calib_site.parent / "results" / "random_ll" / "results.json")
                       .read_text())["tasks"]["omnimedvqa_sample_likelihood"]
    bins = block["calibration"]["bins"]
    with _open_page(browser, calib_site) as (page, requests):
        assert page.locator("svg.reliability").count() == 1
        drawn = page.eval_on_selector("svg.reliability", """svg => ({
            width: svg.getBoundingClientRect().width,
            bins: Array.from(svg.querySelectorAll("rect.bin")).map(r => {
              const b = r.getBBox(); return [b.width, b.height, r.textContent]; }),
            dots: svg.querySelectorAll("circle.mean").length,
            diagonal: svg.querySelector("line.diagonal").getBBox().width})""")
        assert drawn["width"] > 0 and drawn["diagonal"] > 0
        assert len(drawn["bins"]) == drawn["dots"] == len(bins) > 1
        for (width, height, tip), b in zip(drawn["bins"], bins):
            assert width > 0 and f"n={b['n']}" in tip
            assert (height > 0) == (b["accuracy"] > 0)
        caption = page.locator("figure.reliability-box figcaption").text_content()
        assert f"ECE {block['calibration']['ece']['value']:.3f}" in caption
        cells = page.eval_on_selector_all("table.robustness tbody td",
                                          "tds => tds.map(td => td.textContent)")
        assert cells[:4] == ["random", "random_ll", "cyclic", "22"]
        assert all(u.startswith(("file://", "data:")) for u in requests)
