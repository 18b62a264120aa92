"""docs/detector.md's per-kind table is what bench/eval_kinds.py prints (rerun it on a change)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys

from tests.conftest import REPO


def test_the_kinds_table_in_the_docs_is_the_scripts_output() -> None:
    spec = importlib.util.spec_from_file_location("eval_kinds", REPO / "bench" / "eval_kinds.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_kinds"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        module.main()
    doc = (REPO / "docs" / "detector.md").read_text(encoding="utf-8")
    shown = doc.split("<!-- eval_kinds begin -->\n")[1].split("<!-- eval_kinds end -->")[0]
    assert shown.strip() == out.getvalue().strip(), "run: .venv/bin/python bench/eval_kinds.py"
