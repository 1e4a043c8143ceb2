"""Small native libraries built at test time (tests/core/native/): C++ code a
forced unwind must not cross, a plain C library it may, a C library with a lock
of its own that it must not cross either, and a shim that makes a blocked call
complete right when a forced kill strikes.

The compilers come from Debian's archive: installed with apt-get when missing
and running as root, else the tests that need them are skipped, saying why.
"""
import os
import shutil
import subprocess

import pytest

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native")
SOURCES = {"cxx": ("cxx_victims.cpp", "g++", "libtk_cxx_victims.so"),
           "c": ("c_victim.c", "gcc", "libtk_c_victim.so"),
           "c_locking": ("c_locking_victim.c", "gcc", "libtk_c_locking_victim.so"),
           "race_shim": ("cancel_race_shim.c", "gcc", "libtk_cancel_race_shim.so")}


def _compiler(name):
    if shutil.which(name):
        return name
    if os.geteuid() != 0:
        pytest.skip(f"{name} is not installed and installing it needs root")
    for args in (["apt-get", "update"], ["apt-get", "install", "-y", name]):
        done = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip(f"{' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    if not shutil.which(name):
        pytest.skip(f"{name} still missing after apt-get install")
    return name


def build(kind, directory):
    """Build library `kind` ("cxx" or "c") into `directory`; return its path."""
    source, compiler, name = SOURCES[kind]
    out = os.path.join(str(directory), name)
    done = subprocess.run([_compiler(compiler), "-shared", "-fPIC", "-O2", "-o", out,
                           os.path.join(HERE, source), "-ldl"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{compiler} failed:\n{done.stderr}"
    return out
