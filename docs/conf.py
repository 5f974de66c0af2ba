"""Sphinx configuration of wtlab's documentation (``make docs``).

Sphinx with MyST (Markdown pages) and myst-nb (the notebooks, executed at build time
with a cache), autodoc for the reference. The build is strict (``-W -n`` in the
Makefile and in tests/test_docs.py); ``_ext/wtlab_docs.py`` adds the checks and the
generated parts (metric tables, raised errors, widget outputs, offline pages).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(ROOT))  # this checkout's wtlab, even beside an installed one

import wtlab  # noqa: E402

project = "wtlab"
author = "the wtlab authors"
copyright = "the wtlab authors"
version = release = wtlab.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "wtlab_docs",
]

# --- pages ---------------------------------------------------------------------------------
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3
nitpicky = True
smartquotes = False  # text generated from the code reads exactly as the code has it
# names from other libraries: no inventory of theirs is fetched (the build is offline)
nitpick_ignore_regex = [
    # private helpers named in maintainers' notes and private classes in signatures
    (r"py:.*", r"(.*\.)?_[A-Za-z].*"),
    # autodoc splits a dataclass field's ``list[dict[str, Any]]`` annotation at the comma
    (r"py:class", r"list\[dict\[str"),
    (r"py:.*", r"(pd|pandas|np|numpy|pa|pyarrow|asyncio|aioquic|cryptography|plotly|go|"
               r"ipywidgets|anywidget|concurrent|collections|typing|typing_extensions|os|"
               r"pathlib|datetime|enum|dataclasses|contextvars|socket|ssl|io|json|re|"
               r"selectors|argparse|types|abc|array|struct|random|dask|distributed|"
               r"duckdb|traitlets|nbformat|http|logging|heapq|functools|itertools|"
               r"importlib|tqdm|yaml|weakref|threading|queue|subprocess|builtins|"
               r"_thread|_io|_asyncio|numbers)\..*"),
    (r"py:.*", r"(int|float|str|bytes|bool|dict|list|tuple|set|frozenset|object|type|"
               r"None|Any|Callable|Iterable|Iterator|Sequence|Mapping|MutableMapping|"
               r"Awaitable|Coroutine|AsyncIterator|Literal|Optional|Union|Self|"
               r"Exception|BaseException|ValueError|KeyError|TimeoutError|RuntimeError|"
               r"TypeError|OSError|ConnectionError|EOFError|NotImplementedError|"
               r"ClassVar|Generator|AsyncGenerator|Protocol|TypeVar|Hashable|"
               r"memoryview|bytearray|complex|slice|range|property|classmethod|"
               r"staticmethod|Ellipsis|NotImplemented|PathLike|Path|DataFrame|Series|"
               r"ndarray|Table|Figure|FigureWidget|Executor|Future|Task|Event|Queue|"
               r"AbstractEventLoop|BaseEventLoop|DatagramTransport|DatagramProtocol|"
               r"BaseSelector|SelectorKey|Context|ContextVar|Timeout|NDArray|"
               r"dtype|CategoricalDtype|Index|Timestamp|ParquetDataset|Schema|"
               r"QuicConnection|QuicConfiguration|H3Connection|QuicEvent|H3Event|"
               r"QuicLoggerTrace|QuicPacketPacer|QuicRttMonitor|QuicCongestionControl|"
               r"QuicSentPacket|QuicPacketSpace|QuicRecoveryState|HttpConnection|"
               r"CertificateBuilder|Certificate|EllipticCurvePrivateKey|RSAPrivateKey|"
               r"PrivateKeyTypes|ThreadPoolExecutor|ProcessPoolExecutor|Client|"
               r"VBox|HBox|Widget|DOMWidget|AnyWidget|T|P|K|V)"),
]

# --- reference (autodoc) -------------------------------------------------------------------
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True,
                           "ignore-module-all": True,
                           "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
add_module_names = False
python_use_unqualified_type_names = True
toc_object_entries_show_parents = "hide"

# --- notebooks (myst-nb) -------------------------------------------------------------------
# The notebooks live in notebooks/ (where `make lab` opens them); they are copied here at
# each build, so the site always renders the current ones.
NOTEBOOK_COPY = HERE / "notebooks"
NOTEBOOK_COPY.mkdir(exist_ok=True)
for old in NOTEBOOK_COPY.glob("*.ipynb"):
    if not (ROOT / "notebooks" / old.name).exists():
        old.unlink()
for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
    target = NOTEBOOK_COPY / nb.name
    if not target.exists() or target.read_bytes() != nb.read_bytes():
        shutil.copy2(nb, target)

# Executed at build time; cached by cell source, so a rebuild with unchanged notebooks
# does not run them again. A failing cell fails the build.
nb_execution_mode = os.environ.get("WTLAB_DOCS_EXECUTE", "cache")
nb_execution_cache_path = str(HERE / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_in_temp = True
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# ipywidgets need a live kernel: no widget JavaScript from the web (the site is offline);
# wtlab_docs replaces a widget's output with a note saying how to run it
nb_ipywidgets_js: dict = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None),
                              ("html", "application/vnd.jupyter.widget-state+json", None)]
# plotly figures as HTML with plotly.js embedded once per page (offline)
os.environ["PLOTLY_RENDERER"] = "notebook"

# --- HTML ----------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"wtlab {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {"navigation_with_keys": True}
