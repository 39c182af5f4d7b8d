"""The code package's dependencies: minibase's requirements decided for FC's runtime
(x86_64 Linux, CPython X.Y, not the machine running ``minibase deploy``), installed as
wheels for it, and its bytecode compiled by an interpreter of the same version."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "PLATFORM",
    "compile_bytecode",
    "install_dependencies",
    "marker_environment",
    "missing_requirements",
    "pip_command",
    "requirements",
    "target_python",
]

PLATFORM = "manylinux2014_x86_64"  # FC's built-in runtimes: x86_64 Linux, glibc
# Not needed on FC: uvicorn only runs `minibase serve`.
SKIP_DEPENDENCIES = frozenset({"uvicorn"})


def _packaging() -> Any:
    """PEP 508 requirements and markers: ``packaging``, else the copy pip vendors (pip is
    what installs the dependencies, so it is there whenever they are installed)."""
    try:
        import packaging.requirements

        return packaging.requirements
    except ImportError:
        pass
    try:
        from pip._vendor.packaging import requirements as vendored

        return vendored
    except ImportError:
        raise ConfigError("dependencies", "installing them needs pip (python -m pip)") from None


def marker_environment(python: str) -> dict[str, str]:
    """PEP 508 marker values of FC's runtime for Python ``python`` (x86_64 Linux, CPython).

    pip's ``--python-version`` picks wheels for the target but evaluates markers against the
    interpreter running pip, so a dependency such as ``tomli; python_version < "3.11"`` must
    be decided here for the target.
    """
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "platform_release": "",
        "platform_version": "",
        "os_name": "posix",
    }


def _for_target(requires: Sequence[str], python: str, extras: Sequence[str]) -> list[tuple[str, str]]:
    """(normalized name, requirement without its marker) of ``requires`` that apply on FC's
    ``python`` runtime with ``extras`` requested."""
    reqs = _packaging()
    env = marker_environment(python)
    out = []
    for line in requires:
        req = reqs.Requirement(line)
        if req.marker is not None and not any(
            req.marker.evaluate({**env, "extra": e}) for e in ("", *extras)
        ):
            continue
        extra = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        out.append((_normalize(req.name), f"{req.name}{extra}{req.specifier}"))
    return out


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(extras: Sequence[str], python: str = "3.12") -> list[str]:
    """minibase's dependencies on FC's ``python`` runtime: the core ones plus ``extras``,
    those whose markers hold there, without uvicorn."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        declared = requires("minibase") or []
    except PackageNotFoundError:
        raise ConfigError(
            "minibase", "is not installed (pip install minibase), so its dependencies are unknown"
        ) from None
    return [spec for name, spec in _for_target(declared, python, extras) if name not in SKIP_DEPENDENCIES]


def missing_requirements(code: Path, python: str) -> list[str]:
    """What the distributions installed in ``code`` require on FC's ``python`` runtime but pip
    left out (it decided their markers for the Python running it)."""
    from importlib.metadata import distributions

    installed: dict[str, list[str]] = {}
    for dist in distributions(path=[str(code)]):
        name = dist.metadata["Name"]
        if name:
            installed[_normalize(name)] = dist.requires or []
    missing: dict[str, str] = {}
    for requires in installed.values():
        for name, spec in _for_target(requires, python, ()):
            if name not in installed and name not in SKIP_DEPENDENCIES:
                missing.setdefault(name, spec)
    return list(missing.values())


def pip_command(code: Path, python: str, reqs: Sequence[str], *, upgrade: bool = True) -> list[str]:
    """pip, installing wheels built for FC's runtime (not this machine) into ``code``;
    ``upgrade=False``: what is in ``code`` already stays (pip only adds)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        str(code),
        "--platform",
        PLATFORM,
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        *(["--upgrade"] if upgrade else []),
        "--no-compile",
        "--disable-pip-version-check",
        *reqs,
    ]


def install_dependencies(code: Path, python: str, extras: Sequence[str]) -> None:
    """Install minibase's dependencies for FC's ``python`` runtime into ``code``.

    What pip leaves out because it judged a marker for this interpreter (exceptiongroup for
    anyio on 3.10, say) is added by a second run of pip for those alone (what is installed
    stays: a second run of the whole set took as long as the first), until nothing is missing.
    """
    reqs = requirements(extras, python)
    upgrade = True
    for _ in range(5):
        done = subprocess.run(  # noqa: S603
            pip_command(code, python, reqs, upgrade=upgrade), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ConfigError("dependencies", f"pip failed:\n{(done.stdout + done.stderr)[-3000:]}")
        missing = missing_requirements(code, python)
        if not missing:
            return
        reqs, upgrade = missing, False
    raise ConfigError("dependencies", f"still missing after installing them: {', '.join(missing)}")


def target_python(version: str) -> str | None:
    """An interpreter of the runtime's Python version here: this one, pythonX.Y on PATH,
    or one installed by pyenv (~/.pyenv/versions/X.Y.*) though not selected."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    on_path = shutil.which(f"python{version}")
    pyenv = sorted(
        (Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python{version}"),
        key=lambda p: [int(x) if x.isdigit() else -1 for x in p.parts[-3].split(".")],
        reverse=True,  # the newest patch release first
    )
    for exe in ([on_path] if on_path else []) + [str(p) for p in pyenv]:
        # A shim (pyenv) may be on PATH without that version being usable: ask it.
        ask = [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        try:
            done = subprocess.run(ask, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return exe
    return None


def compile_bytecode(code: Path, version: str) -> bool:
    """Compile every .py in ``code`` for Python ``version``; False if no such interpreter here.

    FC mounts the code read-only, so a package without bytecode is compiled from source
    on every cold start (a large share of it); bytecode only counts if it was compiled
    by the same X.Y as the runtime's.
    """
    exe = target_python(version)
    if exe is None:
        return False
    # -j0: all cores; -q: errors only; --invalidation-mode unchecked-hash: the files'
    # mtimes change when FC unpacks the package, which would invalidate timestamp pycs.
    cmd = [exe, "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash", str(code)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise ConfigError("code", f"compiling the package failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return True
