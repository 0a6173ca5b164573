"""The compiled KPI core: kpi_core's hot modules built with mypyc, and their selection at process start.

    python -m kpi_monitor.compiled_core build     # scripts/bootstrap.sh and the Dockerfile run it
    python -m kpi_monitor.compiled_core status

`kpi_core` stays pure Python: it is the reference, what the unit tests import, and what runs
when nothing was built. `build` compiles the modules of `COMPILED` unchanged (mypyc, from a copy
of the sources, so no extension module ever lands beside a `.py` and shadows it) into
`<sys.prefix>/kpi-core-compiled/` with a manifest naming each file and the SHA-256 of the
sources it was built from (every file of kpi_core and kpi_rules).

`select` runs first in the `kpi-monitor` command (worker, report, every command), before anything
imports kpi_core: unless KPI_CORE=python, and when the build is there and matches the sources,
it puts an import finder first on `sys.meta_path` that loads exactly the compiled modules from
that directory; every other module (kpi_core's others included) is imported as usual. KPI_CORE:
`auto` (default: compiled when built and current, else pure Python, with a warning when a build
is there but stale), `compiled` (fail at start when it cannot be used), `python` (the reference).
`tests/unit/core/test_compiled_core.py` proves both cores give the same state parts and reports.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

#: The modules compiled (they compile unchanged; the rest of kpi_core is imported as Python).
COMPILED: tuple[str, ...] = (
    "kpi_core.aggregates",
    "kpi_core.clock",
    "kpi_core.codec",
    "kpi_core.coverage",
    "kpi_core.customers",
    "kpi_core.derived",
    "kpi_core.due",
    "kpi_core.engine",
    "kpi_core.owners",
    "kpi_core.periods",
    "kpi_core.report",
    "kpi_core.scopes",
    "kpi_core.state",
    "kpi_core.transitions",
    "kpi_core.windows",
)
#: Packages whose sources the build depends on (their digest is in the manifest).
SOURCES: tuple[str, ...] = ("kpi_core", "kpi_rules")
MODES: tuple[str, ...] = ("auto", "compiled", "python")
MANIFEST = "manifest.json"
FORMAT = 1


def build_dir() -> Path:
    """Where the compiled modules live: beside this interpreter's packages, per environment."""
    return Path(sys.prefix) / "kpi-core-compiled"


def _package_dir(name: str) -> Path:
    """The source directory of a top-level package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} not found")
    return Path(next(iter(spec.submodule_search_locations)))


def source_digest() -> str:
    """SHA-256 over every source file of SOURCES (relative path and content)."""
    digest = hashlib.sha256()
    for package in SOURCES:
        root = _package_dir(package)
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{package}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _identity() -> dict[str, str]:
    """What a build is only valid for besides the sources: this Python and this platform."""
    return {"python": sys.version, "platform": sysconfig.get_platform()}


# --------------------------------------------------------------------------- build


def build(target: Path | None = None, force: bool = False) -> Path:
    """Compile COMPILED into `target` (default `build_dir()`); nothing to do when current."""
    target = target or build_dir()
    digest = source_digest()
    if not force and _problem(target, digest) is None:
        print(f"[compiled-core] up to date in {target}", file=sys.stderr)
        return target
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kpi-core-build-") as tmp:
        work = Path(tmp)
        for package in SOURCES:  # a copy: mypyc writes the extensions beside the sources it builds
            shutil.copytree(
                _package_dir(package), work / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        files = [name.replace(".", "/") + ".py" for name in COMPILED]
        result = subprocess.run(
            [sys.executable, "-m", "mypyc", *files],
            cwd=work,
            capture_output=True,
            text=True,
            env=_build_env(work),
        )
        if result.returncode != 0:
            raise RuntimeError(
                "mypyc failed (it needs mypy, setuptools, a C compiler and the Python headers):\n"
                + (result.stdout + result.stderr)[-4000:]
            )
        staging = target.with_name(target.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        modules: dict[str, str] = {}
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        for name in COMPILED:
            relative = name.replace(".", "/") + suffix
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(work / relative, staging / relative)
            modules[name] = relative
        # The group's shared library (one per build, named by mypyc) sits at the top of the copy.
        for shared in work.glob(f"*__mypyc{suffix}"):
            shutil.copy2(shared, staging / shared.name)
            modules[shared.name[: -len(suffix)]] = shared.name
        manifest = {
            "format": FORMAT,
            "sources": digest,
            **_identity(),
            "modules": modules,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    print(
        f"[compiled-core] built {len(COMPILED)} modules into {target} "
        f"in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return target


def _build_env(work: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    env["MYPY_CACHE_DIR"] = str(work / ".mypy_cache")
    return env


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """The core this process runs: `compiled` or `python`, and why."""

    core: str
    reason: str


class _CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds exactly the compiled modules (and their shared library) in the build directory."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.files = dict(files)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def _manifest(target: Path) -> dict[str, object] | None:
    try:
        data = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _problem(target: Path, digest: str | None = None) -> str | None:
    """Why the build in `target` cannot be used (None: it can)."""
    manifest = _manifest(target)
    if manifest is None:
        return f"not built (no {target / MANIFEST}; run scripts/bootstrap.sh)"
    modules = manifest.get("modules")
    if manifest.get("format") != FORMAT or not isinstance(modules, dict) or set(COMPILED) - set(modules):
        return f"built by another version of this tool or module list ({target}); rebuild it"
    for key, value in _identity().items():
        if manifest.get(key) != value:
            return f"built for another {key} ({manifest.get(key)!r}); rebuild it"
    if manifest.get("sources") != (digest or source_digest()):
        return "stale: kpi_core or kpi_rules changed since it was built; rebuild it"
    for relative in modules.values():
        if not (target / str(relative)).is_file():
            return f"incomplete: {relative} is missing; rebuild it"
    return None


def select(environ: Mapping[str, str], target: Path | None = None) -> Selection:
    """Choose the core of this process from KPI_CORE (see the module docstring); call it before
    anything imports kpi_core. ValueError for a bad KPI_CORE, RuntimeError when KPI_CORE=compiled
    cannot be honoured."""
    mode = (environ.get("KPI_CORE") or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"KPI_CORE: {mode!r} is not allowed; use one of {', '.join(MODES)}")
    if mode == "python":
        return Selection("python", "KPI_CORE=python")
    target = target or build_dir()
    problem = _problem(target)
    if problem is None:
        early = sorted(name for name in COMPILED if name in sys.modules)
        if early:
            problem = f"{', '.join(early)} already imported as Python in this process"
    if problem is not None:
        if mode == "compiled":
            raise RuntimeError(f"KPI_CORE=compiled, but the compiled core is {problem}")
        return Selection("python", f"compiled core {problem}")
    manifest = _manifest(target) or {}
    modules = manifest.get("modules")
    assert isinstance(modules, dict)  # checked by _problem
    files = {str(name): target / str(rel) for name, rel in modules.items()}
    if not any(isinstance(f, _CompiledFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _CompiledFinder(files))
    return Selection("compiled", str(target))


def running() -> str:
    """The core the imported kpi_core runs: `compiled` when its hot modules are extensions."""
    module = sys.modules.get("kpi_core.transitions")
    if module is None:
        return "not loaded"
    return "python" if str(getattr(module, "__file__", "")).endswith(".py") else "compiled"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kpi_monitor.compiled_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build_cmd = sub.add_parser("build", help="compile the core (nothing to do when current)")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even when current")
    build_cmd.add_argument("--target", type=Path, default=None, help=f"default {build_dir()}")
    sub.add_parser("status", help="is the compiled core built and current?")
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            build(args.target, force=args.force)
        except RuntimeError as exc:
            print(f"[compiled-core] {exc}", file=sys.stderr)
            return 1
        return 0
    problem = _problem(build_dir())
    print(f"compiled core in {build_dir()}: {problem or 'built and current'}")
    return 0 if problem is None else 1


if __name__ == "__main__":
    sys.exit(main())
