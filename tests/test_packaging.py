"""The wheel ships both packages, their py.typed markers and the native module; imports need no Paddle."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(900)
def test_wheel_contents(tmp_path):
    maturin = shutil.which("maturin") or str(Path(sys.executable).parent / "maturin")
    subprocess.run([maturin, "build", "-q", "-o", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    wheels = list(tmp_path.glob("ppwebdataset-*.whl"))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    for required in (
        "ppwebdataset/__init__.py",
        "ppwebdataset/py.typed",
        "ppwebdataset/tariterators.py",
        "ppwids/__init__.py",
        "ppwids/py.typed",
    ):
        assert required in names, required
    assert any(n.startswith("ppwebdataset/_core") and n.endswith((".so", ".pyd")) for n in names), names
    assert not any(n.startswith("tests/") for n in names)


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
