"""Every gg_ function the library exports (lib/libgryphgen.map, and the built library itself
when objdump is there) is either bound by the binding, with argtypes and restype declared, or
listed in gryphgen._native.UNBOUND with a reason."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import SOURCE_ROOT


def map_symbols():
    path = os.path.join(SOURCE_ROOT, "lib", "libgryphgen.map")
    if not os.path.exists(path):
        pytest.skip("no lib/libgryphgen.map at %s (set GG_SOURCE_ROOT)" % path)
    text = re.sub(r"/\*.*?\*/", "", open(path).read(), flags=re.S)
    syms = set()
    for node in re.finditer(r"global:(.*?)(?:local:|\})", text, flags=re.S):
        syms.update(s.strip() for s in node.group(1).split(";") if s.strip())
    assert syms, "no symbols parsed from the map"
    return syms


def test_every_mapped_symbol_is_bound_or_listed(gg):
    N = gg._native
    syms = map_symbols()
    bound, unbound = set(N.PROTOTYPES), set(N.UNBOUND)
    assert not bound & unbound, "both bound and listed unbound: %s" % sorted(bound & unbound)
    missing = syms - bound - unbound
    assert not missing, "exported but neither bound nor in UNBOUND: %s" % sorted(missing)
    stale = (bound | unbound) - syms
    assert not stale, "bound or listed but not exported: %s" % sorted(stale)
    for name, reason in N.UNBOUND.items():
        assert isinstance(reason, str) and len(reason) > 10, name


def test_bound_functions_have_prototypes(gg):
    N = gg._native
    for name, (res, args) in N.PROTOTYPES.items():
        f = getattr(N.lib, name)
        assert f.argtypes == args, name
        assert f.restype is res, name
        # char ** outputs are read as raw pointers so that they can be given to gg_free()
        assert f.restype is not __import__("ctypes").c_char_p or name in (
            "gg_strerror", "gg_error_last", "gg_version_string", "gg_log_level_name",
            "gg_executor_backend", "gg_generator_name", "gg_retriever_name"), name
    with pytest.raises(AttributeError):
        N.fn("gg_malloc")


def test_library_exports_match_the_binding(gg):
    objdump = shutil.which("objdump")
    lib = gg.library_path()
    if not objdump or not os.path.isfile(lib):
        pytest.skip("objdump or a library path is needed")
    out = subprocess.run([objdump, "-T", lib], capture_output=True, text=True, check=True).stdout
    exported = {ln.split()[-1] for ln in out.splitlines()
                if re.match(r"^[0-9a-f]+ ", ln) and "*UND*" not in ln and "*ABS*" not in ln}
    exported = {s for s in exported if s.startswith("gg_")}
    N = gg._native
    assert exported - set(N.PROTOTYPES) - set(N.UNBOUND) == set()
