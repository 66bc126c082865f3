"""Serve MathJax from the built site, so formulas render without a network connection.

MathJax 3 comes from the `django-static-mathjax` package on PyPI (installed by the `docs`
extra; despite the name it has no dependencies, it is MathJax's own `es5/` build). This hook
adds to the site, under `javascripts/mathjax/`, the one component the pages load
(`tex-svg.js`: TeX input, SVG output, which draws the glyphs itself and needs no web fonts)
and the TeX extensions its `autoload` package fetches on demand (`boldsymbol`, `cancel`, ...).
"""

import importlib.util
import pathlib

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File


DEST = "javascripts/mathjax"
PATTERNS = ("tex-svg.js", "input/tex/extensions/*.js")


def mathjax_root() -> pathlib.Path:
    spec = importlib.util.find_spec("mathjax")
    root = None if spec is None else pathlib.Path(spec.origin).parent / "static/mathjax/es5"
    if root is None or not (root / PATTERNS[0]).is_file():
        raise PluginError(
            "MathJax not found: the docs need the `django-static-mathjax` package "
            '(install the docs extra: pip install -e ".[docs]")'
        )
    return root


def on_files(files, config):
    root = mathjax_root()
    for pattern in PATTERNS:
        for path in sorted(root.glob(pattern)):
            uri = f"{DEST}/{path.relative_to(root).as_posix()}"
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
