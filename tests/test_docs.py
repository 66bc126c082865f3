"""Every ```python block of the docs runs, page by page, as a reader would paste it.

Each page runs in a fresh Python process (so `jax_enable_x64` and other global configuration
do not leak from one page to the next, nor from this test session into the docs), its blocks
executed in order in one namespace, with the working directory a scratch directory in which
`examples/` is the repository's (as in a clone). A block meant to fail is preceded by an HTML
comment, invisible in the rendered page:

    <!-- fails: TypeError -->
    <!-- fails: jaxtyping.TypeCheckError: parameter 'x' -->

It must raise that exception type (a builtin name or a dotted path; subclasses count), with
the message containing the fragment after the second colon if one is given, and it must be
raised by the block's last statement (so nothing after the documented failure is skipped).
Its earlier statements count as setup for the blocks that follow. Put marked blocks at the top
level of a page: Markdown ends a list at an HTML comment.
"""

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest


ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
X64 = 'jax.config.update("jax_enable_x64", True)'

# A fenced block opened with ```python at any indentation (list items indent theirs), with an
# optional marker comment on the line before it (blank lines in between allowed).
FENCE = re.compile(
    r"(?:^[ \t]*<!--\s*fails:\s*(?P<fails>.*?)\s*-->[ \t]*\n(?:[ \t]*\n)*)?"
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
MARKER = re.compile(r"<!--\s*fails")


@dataclasses.dataclass(frozen=True)
class Block:
    number: int  # 1-based, in page order
    line: int  # 1-based line of the first code line in the .md file
    code: str
    fails: str | None  # "Type" or "Type: message fragment"


def blocks_of(page: str) -> list[Block]:
    return blocks_of_file(DOCS / page)


def blocks_of_file(path: pathlib.Path) -> list[Block]:
    text = path.read_text()
    page = path.name
    blocks = []
    for number, m in enumerate(FENCE.finditer(text), start=1):
        line = text.count("\n", 0, m.start("code")) + 1
        blocks.append(Block(number, line, textwrap.dedent(m.group("code")), m.group("fails")))
    n_markers = len(MARKER.findall(text))
    n_marked = sum(b.fails is not None for b in blocks)
    assert n_markers == n_marked, (
        f"{page}: {n_markers} `<!-- fails: ... -->` markers but {n_marked} of them sit right "
        "before a ```python block"
    )
    return blocks


PAGES_WITH_CODE = [page for page in PAGES if blocks_of(page)]


# Runs in the child process: argv[1] is the page's path (for tracebacks), stdin the blocks as
# JSON, argv[2] the file the results go to (stdout and stderr are the blocks' own).
RUNNER = r"""
import ast, builtins, importlib, json, sys, time, traceback

path, out = sys.argv[1], sys.argv[2]
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
results = []


def resolve(name):
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module) if module else builtins, attr)


for block in blocks:
    # Pad with newlines so that tracebacks give the line numbers of the .md file.
    source = "\n" * (block["line"] - 1) + block["code"]
    result = {"number": block["number"], "line": block["line"]}
    start = time.perf_counter()
    try:
        exec(compile(source, path, "exec"), namespace)
    except Exception as error:
        result["traceback"] = traceback.format_exc()
        if block["fails"] is None:
            result["status"] = "error"
        else:
            name, _, fragment = (s.strip() for s in block["fails"].partition(":"))
            last = ast.parse(source).body[-1].lineno
            lines = [
                f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == path
            ]
            if not isinstance(error, resolve(name)):
                result["status"] = f"raised {type(error).__name__}, not {name}"
            elif fragment not in str(error):
                result["status"] = f"message does not contain {fragment!r}"
            elif lines[0] < last:
                result["status"] = f"raised at line {lines[0]}, before the last statement"
            else:
                result["status"] = "ok"
    else:
        result["status"] = "ok" if block["fails"] is None else f"ran; expected {block['fails']}"
    result["seconds"] = round(time.perf_counter() - start, 2)
    results.append(result)
    if result["status"] != "ok":
        break

with open(out, "w") as f:
    json.dump(results, f)
"""


def test_pages_found():
    assert {"index.md", "training.md", "api/interop.md"} <= set(PAGES_WITH_CODE), PAGES


def test_readme_code_is_tested():
    """The README's python blocks are blocks of docs/index.md, which run below."""
    readme = [m.group("code") for m in FENCE.finditer((ROOT / "README.md").read_text())]
    index = [b.code for b in blocks_of("index.md")]
    assert readme, "no python block in README.md"
    for number, code in enumerate(readme, start=1):
        assert code in index, f"README.md block {number} is not a block of docs/index.md"


@pytest.mark.parametrize("page", PAGES_WITH_CODE)
def test_page_sets_x64_first(page):
    """The first block of a page turns on x64 before anything else runs (right after the
    imports), so every page runs with the same precision whether pasted or tested."""
    blocks = blocks_of(page)
    statements = [
        s
        for s in blocks[0].code.splitlines()
        if s.strip() and not s.lstrip().startswith(("#", "import ", "from "))
    ]
    assert statements and statements[0].strip().startswith(X64), (
        f"{page} block 1 (line {blocks[0].line}) should start, after its imports, with {X64}"
    )


def run_blocks(path: pathlib.Path, blocks: list[Block], cwd: pathlib.Path) -> list[dict]:
    """Runs `blocks` in order in a fresh process in `cwd`; one result per block run (the
    run stops at the first block whose status is not "ok")."""
    results_file = cwd / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    process = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path), str(results_file)],
        input=json.dumps([dataclasses.asdict(b) for b in blocks]),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0 and results_file.exists(), (
        f"{path}: the process died (exit {process.returncode}):\n{process.stderr[-3000:]}"
    )
    return json.loads(results_file.read_text())


@pytest.mark.parametrize("page", PAGES_WITH_CODE)
def test_page_runs(page, tmp_path):
    blocks = blocks_of(page)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    results = run_blocks(DOCS / page, blocks, tmp_path)
    for result in results:
        assert result["status"] == "ok", (
            f"{page} block {result['number']} (line {result['line']}): {result['status']}\n"
            + result.get("traceback", "")
        )
    assert len(results) == len(blocks)


@pytest.mark.parametrize(
    "code, fails, status",
    [
        ("x = 1\n", None, "ok"),
        ("undefined_name\n", None, "error"),
        ("int('a')\n", "ValueError: invalid literal", "ok"),
        ("int('a')\n", "TypeError", "raised ValueError, not TypeError"),
        ("int('a')\n", "ValueError: base 16", "message does not contain 'base 16'"),
        ("x = 1\n", "ValueError", "ran; expected ValueError"),
        ("int('a')\nx = 1\n", "ValueError", "raised at line 4, before the last statement"),
        ("import json\njson.loads('{')\n", "json.JSONDecodeError", "ok"),
    ],
)
def test_runner_checks_blocks(code, fails, status, tmp_path):
    """The runner reports a block's outcome: errors, and documented failures checked for type,
    message and place (no JAX here: these run in milliseconds)."""
    page = tmp_path / "page.md"
    marker = f"<!-- fails: {fails} -->\n" if fails else ""
    page.write_text(f"Text.\n{marker}```python\n{code}```\n")
    block = Block(1, 4 if fails else 3, code, fails)
    assert blocks_of_file(page) == [block]
    (result,) = run_blocks(page, [block], tmp_path)
    assert result["status"] == status, result
