"""The code in the sampling docs pages runs (every ```python block, in order, one namespace)."""

import pathlib
import re

import pytest


DOCS = pathlib.Path(__file__).parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", ["custom_arnn.md", "sampling.md"])
def test_docs_code_runs(page):
    text = (DOCS / page).read_text()
    blocks = BLOCK.findall(text)
    assert blocks, f"no python code in {page}"
    namespace = {"__name__": f"docs_{page.removesuffix('.md')}"}
    for block in blocks:
        exec(compile(block, str(DOCS / page), "exec"), namespace)
