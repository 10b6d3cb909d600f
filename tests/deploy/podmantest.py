"""podmantest.py - what the deploy tests that run the image share (test_image.py,
test_kube_play.py): the skips (root, the tools, meson's environment), a private Podman storage
under the test's directory (never the machine's), the build installed into a temporary tree
and the image built from it with deploy/image/make_image.sh (nothing pulled), and removing
what the storage still mounts before its directory goes."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grid"))
from gridtest import check, skip  # noqa: E402

ROOT = os.environ.get("GG_SOURCE_ROOT", "")
BUILD = os.environ.get("GG_BUILD_ROOT", "")


def need(tools):
    """Skips (77) without root, one of tools, or meson's GG_SOURCE_ROOT and GG_BUILD_ROOT."""
    if os.geteuid() != 0:
        skip("needs root for podman's own storage")
    for tool in tools:
        if not shutil.which(tool):
            skip("needs %s (Debian: %s)" % (tool, " ".join(tools)))
    if not (ROOT and BUILD):
        skip("needs GG_SOURCE_ROOT and GG_BUILD_ROOT (run it from meson test)")


def podman_command(work):
    """podman with a storage of its own under work (runc, cgroupfs, no events)."""
    return ["podman", "--root", os.path.join(work, "root"), "--runroot",
            os.path.join(work, "runroot"), "--runtime", "runc", "--cgroup-manager", "cgroupfs",
            "--events-backend", "none"]


def build_image(work, podman, image, env=None):
    """Installs the build into work/tree and builds image from it into podman's storage;
    False (after a failed check) when either step failed."""
    tree = os.path.join(work, "tree")
    p = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet",
                        "--destdir", tree], capture_output=True, text=True, timeout=300)
    if not check(p.returncode == 0, "meson install into a temporary tree", p.stderr[-2000:]):
        return False
    prefix = next((os.path.dirname(d) for d, _, files in os.walk(tree)
                   if "gryphgen" in files and os.path.basename(d) == "bin"), None)
    if not check(prefix is not None, "the tree has bin/gryphgen"):
        return False
    p = subprocess.run(["sh", os.path.join(ROOT, "deploy", "image", "make_image.sh"), prefix,
                        image, "--"] + podman[1:], capture_output=True, text=True,
                       timeout=600, env=env)
    return check(p.returncode == 0 and p.stdout.strip() == image,
                 "make_image.sh builds the image from the tree", p.stderr[-2000:])


def unmount_under(work):
    """Detaches what the storage under work still mounts (it holds mounts while in use)."""
    with open("/proc/mounts") as f:
        mounts = [l.split()[1] for l in f if (" " + work + "/") in l]
    for m in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
