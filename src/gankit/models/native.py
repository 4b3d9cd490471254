"""The fused LeakyReLU+dropout CPU kernels (leaky_dropout.c), built on first use with the system's C compiler.

The build takes well under a second and goes into a temporary folder, so the library always matches
the CPU it runs on (`-march=native`) and nothing stale is ever loaded. Where there is no compiler,
or GANKIT_NATIVE=0, `kernels()` is None and gankit computes the same values with torch and numpy.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import subprocess
import sysconfig
import tempfile
from importlib import resources

log = logging.getLogger(__name__)

SOURCE = "leaky_dropout.c"
# tried in order: OpenMP spreads a call over torch's threads (the library binds to the libgomp torch
# has loaded); -ffp-contract=off keeps each product rounded on its own, as torch's kernels round it
FLAG_SETS = (
    ["-O3", "-march=native", "-fopenmp"],
    ["-O3", "-march=native"],
    ["-O3"],
)
_POINTER, _SIZE, _FLOAT, _WORD, _KEY = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_uint32, ctypes.c_uint64
SIGNATURES = {
    "leaky_dropout_forward_f32": [_POINTER] * 2,
    "leaky_dropout_backward_f32": [_POINTER] * 3,
    "leaky_dropout_forward_bf16": [_POINTER] * 2,
    "leaky_dropout_backward_bf16": [_POINTER] * 3,
}


@functools.cache
def kernels() -> ctypes.CDLL | None:
    """The compiled kernels, built once per process; None where they cannot be built or are turned off."""
    if os.environ.get("GANKIT_NATIVE", "1") == "0":
        return None
    compiler = shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) or shutil.which("cc")
    if compiler is None:
        log.warning("no C compiler found: LeakyReLU+dropout runs unfused (same values, slower)")
        return None
    try:
        library = _build(compiler)
    except (OSError, subprocess.CalledProcessError) as error:
        reason = (getattr(error, "stderr", "") or str(error)).strip().splitlines()[-1:]
        log.warning("could not build the fused LeakyReLU+dropout kernel (%s): it runs unfused (same values, slower)",
                    reason[0] if reason else error)
        return None
    return _bind(library)


def _build(compiler: str) -> ctypes.CDLL:
    with tempfile.TemporaryDirectory(prefix="gankit-native-") as folder:
        source = os.path.join(folder, SOURCE)
        with open(source, "w") as out:
            out.write(resources.files("gankit.models").joinpath(SOURCE).read_text())
        library = os.path.join(folder, "leaky_dropout.so")
        for i, flags in enumerate(FLAG_SETS, 1):
            command = [compiler, *flags, "-ffp-contract=off", "-fPIC", "-shared", source, "-o", library]
            built = subprocess.run(command, capture_output=True, text=True, check=i == len(FLAG_SETS))
            if built.returncode == 0:
                break
        return ctypes.CDLL(library)  # the loaded library outlives its file


def _bind(library: ctypes.CDLL) -> ctypes.CDLL:
    for name, pointers in SIGNATURES.items():
        function = getattr(library, name)
        function.argtypes = [*pointers, _SIZE, _FLOAT, _FLOAT, _WORD, _KEY]
        function.restype = None
    return library
