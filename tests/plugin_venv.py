"""Helpers for tests that install plugin packages into a throwaway virtual environment."""

from __future__ import annotations

import os
import site
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CRMLINK = "import sys; from crmlink.cli import main; sys.argv[0] = 'crmlink'; main()"


def make_venv(path: Path) -> Path:
    """A virtual environment that sees this crmlink (and pip, setuptools) through the
    running interpreter's site-packages and can build plugins offline; returns its python.

    ``system_site_packages`` alone reaches only the base interpreter's packages, not those
    of the virtual environment the tests run in (as in CI), so a ``.pth`` file adds them
    with ``site.addsitedir`` (which also runs their own ``.pth`` files, such as the
    editable install's finder).
    """
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(path)
    python = path / "bin" / "python"
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    outer = dict.fromkeys([sysconfig.get_path("purelib"), *site.getsitepackages()])
    lines = [f"import site; site.addsitedir({folder!r})" for folder in outer]
    (Path(own) / "_crmlink_outer.pth").write_text("\n".join(lines) + "\n")
    probe = subprocess.run([python, "-c", "import crmlink, pip, setuptools; import wheel"],
                           capture_output=True, text=True, cwd=ROOT)
    if "crmlink" in probe.stderr or "No module named 'pip'" in probe.stderr:
        pytest.skip(f"crmlink and pip must be importable from system site-packages: {probe.stderr}")
    if probe.returncode != 0:  # setuptools < 70.1 builds wheels only with the wheel package
        pip(python, "install", "-q", "wheel")
    return python


def pip(python: Path, *args: str) -> None:
    done = subprocess.run([python, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        if "wheel" in args:
            pytest.skip(f"cannot install wheel into the test environment: {done.stderr[-500:]}")
        raise AssertionError(f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def install(python: Path, package: Path) -> None:
    pip(python, "install", "-q", "--no-build-isolation", "--no-deps", str(package))


def crmlink(python: Path, *args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRMLINK_")}
    environment.update(env or {})
    return subprocess.run([python, "-c", CRMLINK, *args], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=120)
