"""docs/api.md's examples run as written (doctest), and the public API keeps its promises:
lazy attributes on the package, one argument order (reference first)."""
from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_api_doc_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # nothing the examples write lands in the repository
    failures, tried = doctest.testfile(str(DOC), module_relative=False,
                                       optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried > 10
    assert failures == 0


def test_import_healthbench_loads_neither_api_nor_torch() -> None:
    code = ("import sys, healthbench; "
            "print(any(m.startswith(('torch', 'healthbench.api', 'healthbench.run')) "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_reference_comes_first_where_order_matters() -> None:
    from healthbench import metrics

    reference = np.array([[0.0, 1.0], [1.0, 1.0]])
    generated = np.array([[0.0, 2.0], [1.0, 1.0]])
    # range checks name the side: the generated image spans more than the range given
    with pytest.raises(ValueError, match="prediction values span"):
        metrics.psnr(reference, generated, data_range=1.0)
    # label precision and recall swap when the arguments swap
    y_true, y_pred = np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])
    assert metrics.label_precision(y_true, y_pred) == 1.0
    assert metrics.label_recall(y_true, y_pred) == 0.5
