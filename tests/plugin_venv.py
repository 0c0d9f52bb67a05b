"""Helpers for tests that install plugin packages into a throwaway virtual environment."""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import site
import subprocess
import sys
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
    _add_site_dirs(python, outer_site_dirs())
    return _usable(python)


def make_bare_venv(path: Path, hide: tuple[str, ...]) -> Path:
    """Like :func:`make_venv`, but the distributions ``hide`` (and nothing else) are not
    installed in it: it sees a mirror of the running interpreter's site-packages (one
    symlink per entry) without their files. Returns its python."""
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(path)
    python = path / "bin" / "python"
    hidden = {entry for name in hide for entry in _top_level_files(name)}
    mirrors = []
    for index, folder in enumerate(outer_site_dirs()):
        mirror = path / f"outer-site-{index}"
        mirror.mkdir()
        for entry in os.scandir(folder):
            if (os.path.realpath(folder), entry.name) not in hidden:
                (mirror / entry.name).symlink_to(entry.path)
        mirrors.append(str(mirror))
    _add_site_dirs(python, mirrors)
    return _usable(python)


def outer_site_dirs() -> list[str]:
    """The running interpreter's site-packages folders (also inside a virtual environment)."""
    folders = dict.fromkeys([sysconfig.get_path("purelib"), *site.getsitepackages()])
    return [folder for folder in folders if os.path.isdir(folder)]


def _top_level_files(name: str) -> set[tuple[str, str]]:
    """(site folder, top-level entry) of every file the installed distribution ``name`` owns."""
    dist = md.distribution(name)
    root = os.path.realpath(str(dist.locate_file("")))
    return {(root, file.parts[0]) for file in dist.files or ()
            if file.parts[0] not in ("..", "__pycache__")}


def _add_site_dirs(python: Path, folders: list[str]) -> None:
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    lines = [f"import site; site.addsitedir({folder!r})" for folder in folders]
    (Path(own) / "_crmlink_outer.pth").write_text("\n".join(lines) + "\n")


def _usable(python: Path) -> Path:
    probe = subprocess.run([python, "-c", "import crmlink, pip, setuptools; import wheel"],
                           capture_output=True, text=True, cwd=ROOT)
    if "crmlink" in probe.stderr or "No module named 'pip'" in probe.stderr:
        pytest.skip(f"crmlink and pip must be importable from system site-packages: {probe.stderr}")
    if probe.returncode != 0:  # setuptools < 70.1 builds wheels only with the wheel package
        pip(python, "install", "-q", "wheel")
    return python


def wheel_of_installed(name: str, folder: Path) -> Path:
    """A wheel of the installed distribution ``name``, packed from its installed files
    (an installed distribution is an unpacked wheel), so that pip can install it into
    another environment offline."""
    dist = md.distribution(name)
    root = Path(dist.locate_file(""))
    info = next(f.parts[0] for f in dist.files or () if f.parts[0].endswith(".dist-info"))
    staging = folder / "staging" / info.removesuffix(".dist-info")
    skip = {f"{info}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    for file in dist.files or ():
        if file.parts[0] == ".." or "__pycache__" in file.parts or file.as_posix() in skip:
            continue
        (staging / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / file, staging / file)
    subprocess.run([sys.executable, "-m", "wheel", "pack", "--dest-dir", str(folder), str(staging)],
                   capture_output=True, text=True, check=True)
    shutil.rmtree(folder / "staging")
    return next(folder.glob(f"{info.split('-')[0]}-*.whl"))


def pip(python: Path, *args: str, cwd: Path | None = None) -> None:
    done = subprocess.run([python, "-m", "pip", *args], capture_output=True, text=True, cwd=cwd)
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
