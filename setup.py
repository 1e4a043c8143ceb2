"""Build ipy_threadkill and its C core.

The kill primitives are C because they run where Python cannot: in a signal
handler on the victim thread, and against the interpreter's own thread states.
"""
import os

from setuptools import Extension, setup

# Warnings are errors for the project's own builds (make, CI); a user building from
# an sdist on a newer compiler should not fail on a warning that compiler invents.
strict = os.environ.get("IPY_THREADKILL_STRICT", "") == "1"

setup(
    ext_modules=[
        Extension(
            "ipy_threadkill._native",
            sources=[
                "ipy_threadkill/_native.c",
                "ipy_threadkill/_thread_state.c",
                "ipy_threadkill/_async_exception.c",
                "ipy_threadkill/_stopped_world.c",
                "ipy_threadkill/_line_raise.c",
                "ipy_threadkill/_shielded_call.c",
                "ipy_threadkill/_blocked_call.c",
                "ipy_threadkill/_syscall_interrupt.c",
                "ipy_threadkill/_syscall_table.c",
                "ipy_threadkill/_force.c",
            ],
            depends=[       # rebuilt on change, shipped in the sdist
                "ipy_threadkill/_platform.h",
                "ipy_threadkill/_native.h",
                "ipy_threadkill/_blocked_call.h",
            ],
            extra_compile_args=["-Wall", "-Wextra", "-std=gnu11"]
            + (["-Werror"] if strict else []),
        )
    ],
)
