"""Sphinx extension for wtlab's documentation: generated parts and strictness checks.

* ``{wtlab-metrics} FLOW_METRICS``: a table of :mod:`wtlab.trace.metrics`'s definitions
  (name, unit, meaning), read from the module at build time, never retyped.
* ``{wtlab-errors}``: the exception family, each error with where it is raised.
* In the reference, every function, method and class gets a "Raises" field listing the
  :class:`wtlab.WtlabError` subclasses its code raises, directly or through the wtlab
  functions it calls (found in the source by :func:`raised_errors`).
* Warnings (errors under ``-W``): a public name without a docstring; a wtlab module
  the reference leaves out.
* A cross-reference to a re-exported name (``wtlab.cc.RttStats``) resolves to where it
  is defined (``wtlab.cc.rtt.RttStats``).
* Notebook outputs of ipywidgets (they need a live kernel) become a note saying so.
* No page loads anything from the web (plotly's MathJax tag is dropped); plotly.js is
  kept once, in ``_static``, not once per notebook.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import textwrap
from functools import cache, lru_cache

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

# modules left out of the reference on purpose: entry points with nothing to call
NOT_IN_REFERENCE = {"wtlab.__main__"}
# the layers below the public API (aioquic plumbing, the virtual clock's event loop, the
# wire format): documented, but only their documented names are shown and required
INTERNAL = ("wtlab.transport.driver", "wtlab.transport.protocol", "wtlab.net.vtime",
            "wtlab.cc.aioquic", "wtlab.reliability.wire",
            "wtlab.net.network.VirtualDatagramTransport")


# --- generated tables ----------------------------------------------------------------------

def _table(headers: list[str], rows: list[list[nodes.Node | str]], widths: list[int]):
    table = nodes.table(classes=["wtlab-generated"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for w in widths:
        group += nodes.colspec(colwidth=w)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for h in headers:
        row += nodes.entry("", nodes.paragraph(text=h))
    head += row
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += cell if isinstance(cell, nodes.Node) else nodes.paragraph(text=cell)
            row += entry
        body += row
    return table


class MetricsTable(SphinxDirective):
    """``{wtlab-metrics} FLOW_METRICS``: one row per :class:`wtlab.trace.metrics.Metric`."""

    required_arguments = 1

    def run(self):
        from wtlab.trace import metrics

        name = self.arguments[0]
        specs = getattr(metrics, name, None)
        if not isinstance(specs, tuple) or not all(isinstance(m, metrics.Metric) for m in specs):
            raise self.error(f"wtlab.trace.metrics.{name} is not a tuple of Metric")
        rows = []
        for m in specs:
            code = nodes.paragraph()
            code += nodes.literal(text=m.name)
            rows.append([code, m.unit or "-", m.meaning])
        self.env.note_dependency(metrics.__file__)
        return [_table(["column", "unit", "meaning"], rows, [22, 8, 70])]


class ErrorsTable(SphinxDirective):
    """``{wtlab-errors}``: every error of the family, its meaning and where it is raised."""

    option_spec = {"limit": directives.positive_int}

    def run(self):
        from wtlab import errors

        where = _raisers()
        limit = self.options.get("limit", 12)
        rows = []
        for cls in _error_classes():
            name = nodes.paragraph()
            name += nodes.literal(text=cls.__name__)
            bases = ", ".join(b.__name__ for b in cls.__bases__)
            places = sorted(where.get(cls.__name__, ()))
            shown = ", ".join(places[:limit]) + (f" and {len(places) - limit} more"
                                                 if len(places) > limit else "")
            doc = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
            rows.append([name, bases, doc, shown or "-"])
        self.env.note_dependency(errors.__file__)
        return [_table(["error", "is a", "meaning", "raised by (directly or through a "
                        "helper)"], rows, [16, 14, 30, 40])]


class DocstringText(SphinxDirective):
    """``{wtlab-docstring} wtlab.trace.schema``: an object's docstring as page text, so a
    concept page says what the code says, in the code's own words (not retyped).
    ``:skip-first:`` leaves out the summary line (the page has its own title)."""

    required_arguments = 1
    option_spec = {"skip-first": directives.flag}

    def run(self):
        from docutils.parsers.rst import Parser
        from docutils.utils import new_document

        target = self.arguments[0]
        obj = _import_dotted(target)
        if obj is None:
            raise self.error(f"{target} cannot be imported")
        doc = inspect.getdoc(obj) or ""
        if not doc:
            raise self.error(f"{target} has no docstring")
        lines = doc.splitlines()
        if "skip-first" in self.options:
            lines = lines[1:]
        module = inspect.getmodule(obj)
        if module is not None and module.__file__:
            self.env.note_dependency(module.__file__)
        # a docstring is reStructuredText, whatever the page is written in; its
        # cross-references resolve from the object's module
        document = new_document(f"<docstring of {target}>", self.state.document.settings)
        saved = self.env.ref_context.get("py:module")
        self.env.ref_context["py:module"] = module.__name__ if module else None
        try:
            Parser().parse("\n".join(lines), document)
        finally:
            self.env.ref_context["py:module"] = saved
        return list(document.children)


class PathKeys(SphinxDirective):
    """``{wtlab-path-keys}``: the keys a path dict takes (``wtlab.net.path.PATH_KEYS``),
    with their defaults, read from ``Path.symmetric``'s signature."""

    def run(self):
        from wtlab.net.path import PATH_KEYS, Path

        sig = inspect.signature(Path.symmetric)
        rows = []
        for key in PATH_KEYS:
            default = sig.parameters[key].default
            code = nodes.paragraph()
            code += nodes.literal(text=key)
            shown = nodes.paragraph()
            shown += nodes.literal(text=repr(default))
            rows.append([code, shown])
        return [_table(["key", "default"], rows, [40, 60])]


def _import_dotted(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


# --- which errors does a function raise? ---------------------------------------------------

@lru_cache(maxsize=1)
def _error_classes() -> tuple[type, ...]:
    from wtlab import errors

    found = [v for v in vars(errors).values()
             if isinstance(v, type) and issubclass(v, errors.WtlabError)]
    return tuple(sorted(found, key=lambda c: (len(c.__mro__), c.__name__)))


def _source_tree(obj) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return None


def _resolve(expr: ast.expr, scope: dict, owner: type | None):
    """The object a call's callee names, when it is a wtlab function or class."""
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    parts.reverse()
    if parts[0] in ("self", "cls") and owner is not None:
        obj = owner
    elif parts[0] in scope:
        obj = scope[parts[0]]
    else:
        return None
    for part in parts[1:]:
        obj = inspect.getattr_static(obj, part, None) if isinstance(obj, type) else \
            getattr(obj, part, None)
        if isinstance(obj, staticmethod | classmethod):
            obj = obj.__func__
        if isinstance(obj, property):
            obj = obj.fget
    module = getattr(obj, "__module__", "") or ""
    return obj if module.startswith("wtlab") and callable(obj) else None


def raised_errors(obj, depth: int = 3) -> frozenset[str]:
    """Names of the wtlab errors ``obj``'s code raises, following wtlab calls ``depth`` deep."""
    return _raised(obj, depth, None)


@cache
def _raised_cached(obj, depth: int, owner) -> frozenset[str]:
    return _raised(obj, depth, owner)


def _raised(obj, depth: int, owner) -> frozenset[str]:
    if isinstance(obj, type):
        init = obj.__dict__.get("__init__") or obj.__dict__.get("__post_init__")
        post = obj.__dict__.get("__post_init__")
        found: set[str] = set()
        for fn in (init, post):
            if fn is not None:
                found |= _raised_cached(fn, depth, obj)
        return frozenset(found)
    func = inspect.unwrap(obj) if callable(obj) else None
    if func is None or not hasattr(func, "__code__"):
        return frozenset()
    if owner is None:
        qual = getattr(func, "__qualname__", "").split(".")
        if len(qual) > 1:
            owner = getattr(inspect.getmodule(func), qual[0], None)
    tree = _source_tree(func)
    if tree is None:
        return frozenset()
    names = {c.__name__ for c in _error_classes()}
    scope = dict(getattr(func, "__globals__", {}))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = exc.attr if isinstance(exc, ast.Attribute) else getattr(exc, "id", None)
            if name in names:
                found.add(name)
        elif depth > 0 and isinstance(node, ast.Call):
            callee = _resolve(node.func, scope, owner)
            if callee is not None and callee is not func:
                try:
                    found |= _raised_cached(callee, depth - 1, None)
                except TypeError:  # unhashable callable
                    pass
    return frozenset(found)


@lru_cache(maxsize=1)
def _raisers() -> dict[str, set[str]]:
    """Error name -> public functions and classes that raise it."""
    out: dict[str, set[str]] = {}
    for modname in _public_modules():
        module = importlib.import_module(modname)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != modname:
                continue
            targets = [(name, obj)]
            if isinstance(obj, type):
                targets += [(f"{name}.{m}", v) for m, v in vars(obj).items()
                            if not m.startswith("_") and inspect.isfunction(v)]
            for label, target in targets:
                for err in raised_errors(target):
                    out.setdefault(err, set()).add(f"{modname.removeprefix('wtlab.')}."
                                                   f"{label}")
    return out


def add_raises(app, what, name, obj, options, lines):
    if not name.startswith("wtlab") or what not in ("function", "method", "class",
                                                        "exception"):
        return
    if what == "exception":
        return
    try:
        errs = raised_errors(obj)
    except Exception:  # noqa: BLE001 (a reference page never fails on the analysis)
        return
    if errs:
        order = {c.__name__: i for i, c in enumerate(_error_classes())}
        lines.append("")
        for err in sorted(errs, key=order.get):
            lines.append(f":raises ~wtlab.errors.{err}:")


# --- strictness ----------------------------------------------------------------------------

def _defined_here(name: str) -> bool:
    """Whether ``name`` (module.Top.member) is defined where autodoc found it: imported
    names are not rendered, so they need no docstring there."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        modname = ".".join(parts[:cut])
        try:
            module = importlib.import_module(modname)
        except ImportError:
            continue
        if cut == len(parts):
            return True
        top = getattr(module, parts[cut], None)
        return getattr(top, "__module__", modname) == modname
    return False


def warn_missing_docstring(app, what, name, obj, options, lines):
    if what not in ("module", "class", "exception", "function", "method", "property"):
        return
    parts = name.split(".")
    if not name.startswith("wtlab") or any(p.startswith("_") for p in parts):
        return
    if name.startswith(INTERNAL) or not _defined_here(name):
        return
    if not any(line.strip() for line in lines):
        logger.warning(f"public name {name} ({what}) has no docstring; say what a user may "
                       "rely on", type="wtlab", subtype="docstring")


@lru_cache(maxsize=1)
def _public_modules() -> tuple[str, ...]:
    import wtlab

    mods = ["wtlab"]
    for info in pkgutil.walk_packages(wtlab.__path__, "wtlab."):
        if not any(p.startswith("_") for p in info.name.split(".")[1:]):
            mods.append(info.name)
    return tuple(m for m in mods if m not in NOT_IN_REFERENCE)


def check_reference_complete(app, env):
    documented = set(env.domains["py"].modules)
    for modname in _public_modules():
        if modname not in documented:
            logger.warning(f"module {modname} is not in the reference (docs/reference/); add "
                           "an automodule for it", type="wtlab", subtype="reference")


def resolve_reexport(app, env, node, contnode):
    """``wtlab.cc.RttStats`` -> ``wtlab.cc.rtt.RttStats``: the name where it is defined."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    candidates = [target]
    if not target.startswith("wtlab"):
        module = node.get("py:module") or ""
        if module:
            candidates.append(f"{module}.{target}")
    for full in candidates:
        real = _defined_name(full)
        if real and real != full:
            domain = env.domains["py"]
            node = node.deepcopy()
            node["reftarget"] = real
            found = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                        real, node, contnode)
            if found is None:
                found = domain.resolve_any_xref(env, node["refdoc"], app.builder, real, node,
                                                contnode)
                found = found[0][1] if found else None
            if found is not None:
                return found
    return None


@cache
def _defined_name(dotted: str) -> str | None:
    if not dotted.startswith("wtlab"):
        return None
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        if inspect.ismodule(obj):
            return obj.__name__
        module = getattr(obj, "__module__", None)
        qual = getattr(obj, "__qualname__", None)
        if module and qual and module.startswith("wtlab"):
            return f"{module}.{qual}"
        return None
    return None


# --- notebook outputs ----------------------------------------------------------------------

WIDGET_REPR = re.compile(r"^(Explorer|LiveWidget|ReplayWidget|CompareWidget|VBox|HBox|"
                         r"FigureWidget)\(")


class WidgetOutputNote(SphinxPostTransform):
    """A widget's text stand-in (``Explorer(children=...)``) becomes a note: widgets need
    a live kernel, which a static page does not have."""

    default_priority = 400

    def run(self, **kwargs):
        for block in list(self.document.findall(nodes.literal_block)):
            if "output" not in block.get("classes", []) or not WIDGET_REPR.match(
                    block.astext()):
                continue
            note = nodes.note()
            note += nodes.paragraph(text=(
                f"Here the notebook shows an interactive {block.astext().split('(')[0]} "
                "(ipywidgets and plotly): it needs a live Python kernel. Open this notebook "
                "in JupyterLab (make lab) to use it."))
            block.replace_self(note)


_MATHJAX_TAG = re.compile(r'<script[^>]*src="https://[^"]*mathjax[^"]*"[^>]*></script>', re.I)
PLOTLY_JS = "wtlab/plotly.min.js"


class PlotlyOnce(SphinxPostTransform):
    """plotly's notebook renderer embeds its 4.8 MB library in the first output of each
    notebook; the site keeps one copy in ``_static`` instead (see :func:`trim_page`)."""

    default_priority = 401

    def run(self, **kwargs):
        for raw in list(self.document.findall(nodes.raw)):
            text = raw.astext()
            if len(text) > 1_000_000 and "plotly.js v" in text[:2000]:
                raw.parent.remove(raw)


def trim_page(app, pagename, templatename, context, doctree):
    """Keep pages light and offline: plotly's figure HTML asks for MathJax from a CDN (the
    figures have no formulas); the widgets' saved state (megabytes of JSON) is of no use
    without a kernel; pages with figures load the one local copy of plotly.js."""
    body = context.get("body", "")
    if body:
        context["body"] = body = _MATHJAX_TAG.sub("", body)
    if "Plotly.newPlot" in body:
        # before the figures' inline scripts (the theme loads script_files after the body)
        src = context["pathto"](f"_static/{PLOTLY_JS}", 1)
        context["body"] = f'<script src="{src}"></script>\n' + body
    scripts = context.get("script_files")
    if scripts:
        state = "application/vnd.jupyter.widget-state+json"
        scripts[:] = [js for js in scripts if getattr(js, "attributes", {}).get("type") != state]


def copy_plotly(app):
    """Put plotly.js (from the installed plotly package) into the site's ``_static``."""
    import shutil
    import tempfile
    from pathlib import Path

    try:
        from plotly.offline import get_plotlyjs
    except ImportError:  # plotly is in the lab extra, which the docs build has
        return
    folder = Path(tempfile.mkdtemp(prefix="wtlab-docs-static-"))
    (folder / "wtlab").mkdir()
    (folder / PLOTLY_JS).write_text(get_plotlyjs(), encoding="utf-8")
    app.config.html_static_path = [*app.config.html_static_path, str(folder)]
    app.connect("build-finished", lambda app, exc: shutil.rmtree(folder, ignore_errors=True))


class AioquicTransmit(SphinxDirective):
    """aioquic's own docstrings (inherited by the driver's overrides) carry this marker."""

    def run(self):
        return []


def setup(app):
    app.add_directive("aioquic_transmit", AioquicTransmit)
    app.add_directive("wtlab-metrics", MetricsTable)
    app.add_directive("wtlab-errors", ErrorsTable)
    app.add_directive("wtlab-docstring", DocstringText)
    app.add_directive("wtlab-path-keys", PathKeys)
    app.connect("autodoc-process-docstring", warn_missing_docstring)
    app.connect("autodoc-process-docstring", add_raises)
    app.connect("env-check-consistency", check_reference_complete)
    app.connect("missing-reference", resolve_reexport)
    app.connect("html-page-context", trim_page)
    app.connect("builder-inited", copy_plotly)
    app.add_post_transform(WidgetOutputNote)
    app.add_post_transform(PlotlyOnce)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
