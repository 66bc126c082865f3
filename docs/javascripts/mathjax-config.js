// MathJax 3 settings for pymdownx.arithmatex (generic mode), which wraps each formula in an
// element of class "arithmatex" with \( \) or \[ \] delimiters. Loaded before MathJax itself
// (javascripts/mathjax/tex-svg.js, which docs/_hooks/mathjax.py copies into the site at build
// time from an installed package).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};

// With mkdocs-material's instant navigation the page body is swapped without a reload:
// typeset again each time (document$ is material's observable of page loads).
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
