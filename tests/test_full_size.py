"""Full-size suites at the speed of the disk (issue 18): the fast paths give the old answers.

Each fast path is checked against the straightforward computation it replaces: cached path
checks against ``Path.resolve`` per row, the header-only image check against a full decode.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from healthbench.data import paths
from healthbench.data.paths import UnsafePathError, resolve_inside


def _old_resolve_inside(root: Path, relative: str) -> Path:
    """resolve_inside before issue 18: the whole path resolved on every row."""
    root_real = root.resolve()
    full = (root / relative).resolve()
    if full != root_real and root_real not in full.parents:
        raise UnsafePathError("outside")
    return full


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "Images" / "a").mkdir(parents=True)
    (root / "Images" / "a" / "x.png").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "s.png").write_bytes(b"s")
    (root / "Images" / "in_link").symlink_to(root / "Images" / "a")
    (root / "Images" / "out_link").symlink_to(tmp_path / "outside")
    (root / "Images" / "a" / "file_in.png").symlink_to(root / "Images" / "a" / "x.png")
    (root / "Images" / "a" / "file_out.png").symlink_to(tmp_path / "outside" / "s.png")
    (root / "Images" / "a" / "chain.png").symlink_to("file_out.png")
    return root


RELATIVES = ["Images/a/x.png", "Images/in_link/x.png", "Images/out_link/s.png",
             "Images/a/file_in.png", "Images/a/file_out.png", "Images/a/chain.png",
             "Images/a/missing.png", "Images/nofolder/y.png", "top.png", ".", "Images/./a/x.png"]


@pytest.mark.parametrize("relative", RELATIVES)
def test_cached_path_checks_give_the_old_answers(tmp_path: Path, relative: str) -> None:
    root = _tree(tmp_path)
    for _ in range(2):  # the second call is served from the cache
        try:
            expected: Path | str = _old_resolve_inside(root, relative)
        except UnsafePathError:
            expected = "refused"
        try:
            got: Path | str = resolve_inside(root, relative, "f.json item 0")
        except UnsafePathError as exc:
            assert "resolves outside the data root" in str(exc)
            got = "refused"
        assert got == expected


def test_a_folder_swapped_for_an_outside_link_is_refused_after_caching(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert resolve_inside(root, "Images/a/x.png", "w") == (root / "Images/a/x.png").resolve()
    os.rename(root / "Images" / "a", tmp_path / "moved")
    (root / "Images" / "a").symlink_to(tmp_path / "outside")
    with pytest.raises(UnsafePathError, match="outside the data root"):
        resolve_inside(root, "Images/a/s.png", "w")


def test_each_folder_is_resolved_once(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "root"
    for folder in ("a", "b", "c"):
        (root / folder).mkdir(parents=True)
    paths._REAL_DIRS.clear()
    calls = []
    real_resolve = Path.resolve
    monkeypatch.setattr(Path, "resolve", lambda self, *a, **k: calls.append(self) or
                        real_resolve(self, *a, **k))
    for i in range(300):
        resolve_inside(root, f"{'abc'[i % 3]}/{i}.png", "w")
    assert len(calls) == 4  # the root and three folders
