"""The PEP 517 build backend of the gryphgen Python package (PEP 660 for editable installs).

The package is pure Python, so a wheel is a zip of gryphgen/*.py with a .dist-info holding
METADATA, WHEEL and RECORD (the binary distribution format of the Python packaging
specifications). Writing that needs nothing beyond the standard library, so pyproject.toml's
build-system.requires is empty: `pip install ./bindings/python` works offline in a fresh
venv (no setuptools or wheel to fetch into the isolated build environment), and nothing is
written into the source tree: the wheel and sdist go only to the directories pip names.

Where the C library lives is recorded in the wheel (gryphgen/_install.py, LIBDIR) when it
is known at build time: from the config setting `libdir` (pip install --config-settings
libdir=DIR ...), else from `pkg-config --variable=libdir gryphgen` (so the prefix on
PKG_CONFIG_PATH when the package is built); the binding tries that directory when the
dynamic linker does not find the library by its soname."""

import base64
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile

# This module is imported from the source tree (backend-path); its own bytecode would land
# in a __pycache__ there. Nothing it imports later is cached, and its own cache file, which
# Python wrote before running this body, is removed below.
sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # bindings/python
PACKAGE = "gryphgen"
TAG = "py3-none-any"
# A fixed timestamp for the archives' entries (the zip format cannot go before 1980):
# the same source gives the same wheel.
EPOCH = (1980, 1, 1, 0, 0, 0)


def _forget_own_bytecode():
    cached = globals().get("__cached__")
    if not cached or not os.path.abspath(cached).startswith(HERE + os.sep):
        return
    try:
        os.remove(cached)
        os.rmdir(os.path.dirname(cached))  # only when empty
    except OSError:
        pass


_forget_own_bytecode()


def _project():
    """[project] of pyproject.toml: name, version, description, requires-python, license."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        raw = f.read()
    try:
        import tomllib  # Python 3.11+
        data = tomllib.loads(raw.decode("utf-8"))
        proj = data["project"]
        lic = proj.get("license", {})
        return {"name": proj["name"], "version": proj["version"],
                "description": proj.get("description", ""),
                "requires-python": proj.get("requires-python", ""),
                "license": lic.get("text", "") if isinstance(lic, dict) else str(lic),
                "readme": proj.get("readme", "")}
    except ImportError:
        pass
    # Older Pythons: the few `key = "value"` lines of [project] this file uses.
    proj, section = {}, None
    for line in raw.decode("utf-8").splitlines():
        m = re.match(r"\s*\[([^\]]+)\]\s*$", line)
        if m:
            section = m.group(1).strip()
            continue
        m = re.match(r'\s*([A-Za-z-]+)\s*=\s*(?:\{\s*text\s*=\s*)?"([^"]*)"', line)
        if section == "project" and m:
            proj[m.group(1)] = m.group(2)
    return {"name": proj["name"], "version": proj["version"],
            "description": proj.get("description", ""),
            "requires-python": proj.get("requires-python", ""),
            "license": proj.get("license", ""), "readme": proj.get("readme", "")}


def _dist_name(proj):
    # The escaped distribution name of wheel and sdist file names.
    return re.sub(r"[-_.]+", "_", proj["name"]).lower()


def _metadata(proj):
    lines = ["Metadata-Version: 2.1", "Name: " + proj["name"], "Version: " + proj["version"]]
    if proj["description"]:
        lines.append("Summary: " + proj["description"])
    if proj["license"]:
        lines.append("License: " + proj["license"])
    if proj["requires-python"]:
        lines.append("Requires-Python: " + proj["requires-python"])
    body = ""
    if proj["readme"]:
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, proj["readme"]), encoding="utf-8") as f:
            body = f.read()
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def _wheel_file():
    return ("Wheel-Version: 1.0\nGenerator: gryphgen_build\nRoot-Is-Purelib: true\n"
            "Tag: %s\n" % TAG).encode("ascii")


def _package_files():
    """(archive name, path) of every module of the package and its py.typed marker (PEP 561:
    the package's type hints are for type checkers), sorted."""
    out = []
    pkg = os.path.join(ROOT, PACKAGE)
    for name in sorted(os.listdir(pkg)):
        if (name.endswith(".py") and name != "_install.py") or name == "py.typed":
            out.append((PACKAGE + "/" + name, os.path.join(pkg, name)))
    return out


def _libdir(config_settings):
    """The library's directory known at build time, or None."""
    if config_settings and config_settings.get("libdir"):
        return os.path.abspath(config_settings["libdir"])
    try:
        r = subprocess.run(["pkg-config", "--variable=libdir", "gryphgen"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = r.stdout.decode("utf-8", "replace").strip()
    return libdir if r.returncode == 0 and libdir else None


def _install_module(libdir):
    return ('"""Written by the build backend: where libgryphgen was installed when this '
            'package was built\n(None: unknown)."""\n\nLIBDIR = %r\n' % (libdir,)).encode("utf-8")


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _write_wheel(wheel_directory, entries, proj):
    """Writes the wheel of entries [(archive name, bytes)] plus its dist-info; returns its
    file name."""
    dist = "%s-%s" % (_dist_name(proj), proj["version"])
    info = dist + ".dist-info"
    entries = list(entries) + [(info + "/METADATA", _metadata(proj)),
                               (info + "/WHEEL", _wheel_file())]
    record = io.StringIO()
    for name, data in entries:
        record.write("%s,%s,%d\n" % (name, _record_hash(data), len(data)))
    record.write("%s/RECORD,,\n" % info)
    entries.append((info + "/RECORD", record.getvalue().encode("utf-8")))
    filename = "%s-%s.whl" % (dist, TAG)
    path = os.path.join(wheel_directory, filename)
    tmp = path + ".part"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, EPOCH)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    os.replace(tmp, path)
    return filename


# --- PEP 517 hooks -------------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    proj = _project()
    entries = []
    for name, path in _package_files():
        with open(path, "rb") as f:
            entries.append((name, f.read()))
    entries.append((PACKAGE + "/_install.py", _install_module(_libdir(config_settings))))
    return _write_wheel(wheel_directory, entries, proj)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a wheel holding a .pth file that puts bindings/python on sys.path, so the
    source tree's package is the one imported (no _install.py: LIBDIR is unknown)."""
    proj = _project()
    pth = (ROOT + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [("__editable__.%s.pth" % _dist_name(proj), pth)], proj)


def build_sdist(sdist_directory, config_settings=None):
    proj = _project()
    base = "%s-%s" % (_dist_name(proj), proj["version"])
    files = ["pyproject.toml", "_build/gryphgen_build.py"]
    if proj["readme"]:
        files.append(proj["readme"])
    files += [name for name, _ in _package_files()]
    tests = os.path.join(ROOT, "tests")
    if os.path.isdir(tests):
        files += ["tests/" + n for n in sorted(os.listdir(tests)) if n.endswith(".py")]
    pkg_info = _metadata(proj)
    filename = base + ".tar.gz"
    path = os.path.join(sdist_directory, filename)
    tmp = path + ".part"
    mtime = int(time.mktime(EPOCH + (0, 0, -1)))
    with tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        def add(name, data):
            ti = tarfile.TarInfo(base + "/" + name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, mtime
            tar.addfile(ti, io.BytesIO(data))
        for name in files:
            with open(os.path.join(ROOT, name), "rb") as f:
                add(name, f.read())
        add("PKG-INFO", pkg_info)
    os.replace(tmp, path)
    return filename
