"""`make bench`: run every benchmarks/<name>.py module that defines main().

    python -m benchmarks                 # all of them
    python -m benchmarks transport cc    # only these
    python -m benchmarks --quick         # options go to each module's argv
    python -m benchmarks transport --runs 7

Each module runs in its own process (a crash or a leaked task in one does not
affect the next) as ``main()`` with ``sys.argv = ["benchmarks.<name>", *extra]``.
Modules whose name starts with "_" are helpers and are skipped.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def has_main(path: Path) -> bool:
    """Whether the module defines a top-level main() (read, not imported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError:
        return True  # let it run and fail loudly
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main"
               for node in tree.body)


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py")
                  if not p.stem.startswith("_") and has_main(p))


RUNNER = (
    "import asyncio, importlib, inspect, sys\n"
    "name, extra = sys.argv[1], sys.argv[2:]\n"
    "sys.argv = ['benchmarks.' + name, *extra]\n"
    "result = importlib.import_module('benchmarks.' + name).main()\n"
    "if inspect.isawaitable(result):\n"
    "    result = asyncio.run(result)\n"
    "sys.exit(result if isinstance(result, int) else 0)\n"
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    available = discover()
    # names first, then options for the modules: `transport --runs 7 --quick`
    first_opt = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, extra = argv[:first_opt], argv[first_opt:]
    if "-h" in extra or "--help" in extra:
        print(__doc__)
        print("available:", " ".join(available))
        return 0
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {' '.join(available)}",
              file=sys.stderr)
        return 2
    failed = []
    for name in names or available:
        print(f"\n===== benchmarks.{name} {' '.join(extra)}".rstrip() + " =====", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-c", RUNNER, name, *extra], cwd=HERE.parent)
        print(f"===== benchmarks.{name}: exit {rc} after {time.perf_counter() - t0:.1f} s =====",
              flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
