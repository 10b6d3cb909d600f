"""The package's own PEP 517 build backend (bindings/python/_build/gryphgen_build.py): the
wheel is a valid pure-Python wheel (every file listed in RECORD with its sha256 and size,
METADATA and WHEEL as the binary distribution format says), the libdir given at build time
is recorded for the loader, the sdist and the editable wheel hold what they should, and
building writes nothing into the source tree. Each build runs in a child interpreter, as
pip runs a backend. Skipped without the source tree (an installed copy has no backend)."""

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import SOURCE_ROOT

PKG_ROOT = os.path.join(SOURCE_ROOT, "bindings", "python")
BACKEND = os.path.join(PKG_ROOT, "_build")

pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(BACKEND, "gryphgen_build.py")),
                                reason="no source tree with the build backend")


def listing():
    out = []
    for d, dirs, files in os.walk(PKG_ROOT):
        dirs[:] = [x for x in dirs if x != "tests"]  # pytest's own caches live there
        out += [os.path.relpath(os.path.join(d, f), PKG_ROOT) for f in files]
    return sorted(out)


def hook(name, *args):
    """Calls a backend hook in a child interpreter (cwd: the package, as pip does)."""
    code = ("import json, sys; sys.path.insert(0, %r); import gryphgen_build as b; "
            "print(json.dumps(getattr(b, %r)(*json.loads(sys.argv[1]))))" % (BACKEND, name))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    p = subprocess.run([sys.executable, "-c", code, json.dumps(list(args))], cwd=PKG_ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_wheel_is_valid_and_records_the_libdir(tmp_path):
    before = listing()
    assert hook("get_requires_for_build_wheel") == []
    name = hook("build_wheel", str(tmp_path), {"libdir": "/opt/gg/lib/x86_64-linux-gnu"})
    assert listing() == before
    assert name == "gryphgen-1.3.0-py3-none-any.whl"
    with zipfile.ZipFile(tmp_path / name) as z:
        names = set(z.namelist())
        info = "gryphgen-1.3.0.dist-info/"
        assert {info + "METADATA", info + "WHEEL", info + "RECORD",
                "gryphgen/__init__.py", "gryphgen/_native.py", "gryphgen/_install.py",
                "gryphgen/py.typed"} <= names
        rows = list(csv.reader(io.StringIO(z.read(info + "RECORD").decode())))
        assert {r[0] for r in rows} == names
        for path, digest, size in rows:
            if path == info + "RECORD":
                assert digest == "" and size == ""
                continue
            data = z.read(path)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + want.decode() and int(size) == len(data), path
        meta = z.read(info + "METADATA").decode()
        assert "Metadata-Version: 2.1\n" in meta and "Name: gryphgen\n" in meta
        assert "Version: 1.3.0\n" in meta
        wheel = z.read(info + "WHEEL").decode()
        assert "Root-Is-Purelib: true\n" in wheel and "Tag: py3-none-any\n" in wheel
        scope = {}
        exec(z.read("gryphgen/_install.py").decode(), scope)
        assert scope["LIBDIR"] == "/opt/gg/lib/x86_64-linux-gnu"
    # The same source gives the same wheel.
    again = tmp_path / "again"
    again.mkdir()
    hook("build_wheel", str(again), {"libdir": "/opt/gg/lib/x86_64-linux-gnu"})
    assert (again / name).read_bytes() == (tmp_path / name).read_bytes()


def test_sdist_and_editable(tmp_path):
    before = listing()
    sdist = hook("build_sdist", str(tmp_path))
    editable = hook("build_editable", str(tmp_path))
    assert listing() == before
    with tarfile.open(tmp_path / sdist) as t:
        names = set(t.getnames())
    assert {"gryphgen-1.3.0/pyproject.toml", "gryphgen-1.3.0/PKG-INFO",
            "gryphgen-1.3.0/_build/gryphgen_build.py",
            "gryphgen-1.3.0/gryphgen/_native.py", "gryphgen-1.3.0/gryphgen/py.typed"} <= names
    with zipfile.ZipFile(tmp_path / editable) as z:
        pth = z.read("__editable__.gryphgen.pth").decode().strip()
    assert os.path.samefile(pth, PKG_ROOT)
