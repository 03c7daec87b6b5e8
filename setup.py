"""Build of the C extension subinterpreters._core.

All project metadata lives in pyproject.toml; this file only declares the
extension.  Environment switches (any value but "", 0, no, false, off turns
one on):

    SBI_DEBUG=1      -O0 -g -UNDEBUG and -DSBI_DEBUG=1 (C asserts enabled)
    SBI_SANITIZE=1   AddressSanitizer + UBSan (compile and link); run the
                     tests with libasan preloaded, see "make asan"
    SBI_COVERAGE=1   gcov instrumentation (--coverage)
    SBI_WERROR=1     treat compiler warnings as errors
"""

import os
from glob import glob

from setuptools import Extension, setup

SRC_DIR = "src/_subinterpreters"


def _switch(name):
    value = os.environ.get(name, "").strip().lower()
    return value not in ("", "0", "no", "false", "off")


sources = sorted(glob(f"{SRC_DIR}/*.c"))
if not sources:
    raise SystemExit(f"setup.py: no C sources found in {SRC_DIR}/")

compile_args = [
    "-std=c11",
    "-D_GNU_SOURCE",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
    "-fvisibility=hidden",
]
link_args = ["-lpthread"]
define_macros = []

if _switch("SBI_DEBUG"):
    # Appended after CPython's own CFLAGS, so these win over -O3 -DNDEBUG.
    compile_args += ["-O0", "-g", "-UNDEBUG"]
    define_macros.append(("SBI_DEBUG", "1"))

if _switch("SBI_SANITIZE"):
    sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    compile_args += sanitize
    link_args += sanitize

if _switch("SBI_COVERAGE"):
    compile_args.append("--coverage")
    link_args.append("--coverage")

if _switch("SBI_WERROR"):
    compile_args.append("-Werror")

ext = Extension(
    "subinterpreters._core",
    sources=sources,
    include_dirs=[SRC_DIR],
    depends=sorted(glob(f"{SRC_DIR}/*.h")),
    define_macros=define_macros,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(
    ext_modules=[ext],
    # Compile the translation units in parallel.
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
)
