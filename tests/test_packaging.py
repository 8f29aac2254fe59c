"""The wheel ships both packages, their py.typed markers and the native module; imports need no Paddle."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _maturin():
    # The maturin of this interpreter's environment: it finds the ziglang installed there,
    # which a maturin earlier on PATH (another Python's) would not.
    own = Path(sys.executable).parent / "maturin"
    return str(own) if own.exists() else shutil.which("maturin") or "maturin"


# Release wheels are built the same way (see the README, "Packaging"):
#   maturin build --release --zig --compatibility manylinux2014 --strip
# Here LTO is off so the build takes about a minute; tag, contents and symbol versions do not
# depend on it. PPWDS_WHEEL=/path/to.whl inspects an already built wheel instead.
@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    prebuilt = os.environ.get("PPWDS_WHEEL")
    if prebuilt:
        return Path(prebuilt)
    pytest.importorskip("ziglang", reason="the manylinux2014 build needs ziglang (a dev dependency)")
    out = tmp_path_factory.mktemp("wheel")
    maturin = _maturin()
    env = dict(
        os.environ,
        CARGO_TARGET_DIR=str(ROOT / "target" / "wheel-test"),
        CARGO_PROFILE_RELEASE_LTO="false",
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS="16",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    cmd = [maturin, "build", "--release", "--zig", "--compatibility", "manylinux2014", "--strip", "-q", "-o", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    wheels = list(out.glob("ppwebdataset-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _dist_info(names: list[str]) -> str:
    (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
    return info


@pytest.mark.timeout(900)
def test_wheel_contents(wheel):
    zf = zipfile.ZipFile(wheel)
    names = zf.namelist()
    for required in (
        "ppwebdataset/__init__.py",
        "ppwebdataset/__main__.py",
        "ppwebdataset/cli.py",
        "ppwebdataset/py.typed",
        "ppwebdataset/_core.pyi",
        "ppwebdataset/tariterators.py",
        "ppwids/__init__.py",
        "ppwids/py.typed",
    ):
        assert required in names, required
    assert any(n.startswith("ppwebdataset/_core") and n.endswith((".so", ".pyd")) for n in names), names
    assert not any(n.startswith(("tests/", "benches/", "rust/")) for n in names)
    info = _dist_info(names)
    assert zf.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    meta = zf.read(f"{info}/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in meta and "License-File: LICENSE" in meta
    assert "Classifier: Typing :: Typed" in meta and "Requires-Python: >=3.11" in meta
    assert "Author: ppwebdataset developers" in meta and "Project-URL:" in meta
    entry = zf.read(f"{info}/entry_points.txt").decode()
    assert "ppwebdataset=ppwebdataset.cli:main" in entry.replace(" ", "")
    assert "widsindex=ppwids.wids_index:main" in entry.replace(" ", "")


@pytest.mark.timeout(900)
def test_wheel_is_manylinux2014_abi3_and_stripped(wheel):
    assert "-cp311-abi3-" in wheel.name and "manylinux2014_x86_64" in wheel.name, wheel.name
    zf = zipfile.ZipFile(wheel)
    tags = [
        line.split(": ", 1)[1]
        for line in zf.read(f"{_dist_info(zf.namelist())}/WHEEL").decode().splitlines()
        if line.startswith("Tag: ")
    ]
    assert "cp311-abi3-manylinux2014_x86_64" in tags and "cp311-abi3-manylinux_2_17_x86_64" in tags
    (so,) = [n for n in zf.namelist() if n.startswith("ppwebdataset/_core") and n.endswith(".so")]
    data = zf.read(so)
    # manylinux2014 = glibc 2.17: no symbol may need a newer version.
    versions = {tuple(int(x) for x in v.split(b".")) for v in re.findall(rb"GLIBC_(2\.[0-9]+(?:\.[0-9]+)?)", data)}
    assert versions and max(versions) <= (2, 17), sorted(versions)
    assert b".symtab" not in data, "the extension is not stripped"


def test_sdist_has_license_and_sources(tmp_path):
    maturin = _maturin()
    subprocess.run([maturin, "sdist", "-o", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    (sdist,) = tmp_path.glob("ppwebdataset-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for required in ("LICENSE", "pyproject.toml", "python/ppwebdataset/_core.pyi", "python/ppwids/py.typed"):
        assert required in names, required
    assert any(n.endswith("rust/ppwds-python/src/lint.rs") for n in names)


def test_dev_requirements_are_derived_from_pyproject():
    # One list of dev dependencies: pyproject's `test` extra; the requirements file is generated.
    with open(ROOT / "pyproject.toml", "rb") as f:
        test_extra = tomllib.load(f)["project"]["optional-dependencies"]["test"]
    lines = [
        line.strip()
        for line in (ROOT / "scripts" / "requirements-dev.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == test_extra, (
        "scripts/requirements-dev.txt and pyproject's `test` extra differ: add the package to the extra "
        "and run python scripts/sync_dev_requirements.py"
    )
    assert not any(line.startswith("-") for line in lines)
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_dev_requirements.py"), "--check"])
    assert r.returncode == 0


def test_imports_without_paddle():
    code = (
        "import sys; sys.modules['paddle'] = None\n"
        "import ppwids, ppwebdataset\n"
        "ds = ppwebdataset.WebDataset\n"
        "from ppwebdataset.paddle import HAVE_PADDLE\n"
        "assert not HAVE_PADDLE\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_import_is_cheap():
    # `import ppwids` / `import ppwebdataset` must not import Paddle (slow) until a pipeline class is used.
    code = "import sys, ppwids, ppwebdataset; print('paddle' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
