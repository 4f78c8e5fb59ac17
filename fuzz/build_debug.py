"""Build the Cython kernels with bounds checks on into a separate directory.

``KL_FAST_CYTHON_DEBUG=1`` makes setup.py compile with ``boundscheck=True``,
``initializedcheck=True`` and ``-O0 -g``.  The build runs on a *copy* of
``setup.py`` and ``src/`` in a scratch directory, because cythonize writes the
generated C next to the .pyx and would otherwise leave debug C in the tree
for the next normal build to pick up.  The result is a directory holding
``kl_fast/_*.so`` only; the fuzz harness puts it in front of the package path
(see ``fuzz_kl_fast.use_debug_build``).

Usage: python fuzz/build_debug.py [--asan] [OUTDIR]   (default: build/debug-ext)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "build", "debug-ext")


def build(out_dir=DEFAULT_OUT, quiet=True, asan=False):
    """Build the debug extensions into ``out_dir``; return the seconds it took.

    ``asan=True`` also compiles with AddressSanitizer: run Python with
    ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)`` and
    ``ASAN_OPTIONS=detect_leaks=0`` then, and every read or write of the
    kernels' raw pointers outside a numpy buffer aborts with a report.
    """
    start = time.perf_counter()
    out_dir = os.path.abspath(out_dir)
    with tempfile.TemporaryDirectory(prefix="kl_fast_debug_") as tmp:
        shutil.copy(os.path.join(ROOT, "setup.py"), tmp)
        shutil.copytree(os.path.join(ROOT, "src"), os.path.join(tmp, "src"),
                        ignore=shutil.ignore_patterns("*.c", "*.so"))
        env = dict(os.environ, KL_FAST_CYTHON_DEBUG="1")
        if asan:
            flags = "-fsanitize=address -fno-omit-frame-pointer"
            env["CFLAGS"] = f"{env.get('CFLAGS', '')} {flags}".strip()
            env["LDFLAGS"] = f"{env.get('LDFLAGS', '')} -fsanitize=address".strip()
        cmd = [sys.executable, "setup.py", "build_ext", "--build-lib", out_dir,
               "--build-temp", os.path.join(tmp, "temp"), "--parallel", str(os.cpu_count() or 1)]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=quiet, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"debug build failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - start


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--asan"]
    out = args[0] if args else DEFAULT_OUT
    asan = "--asan" in sys.argv[1:]
    print(f"debug build into {out}: {build(out, quiet=False, asan=asan):.1f} s")
