"""Keeps TensorFlow's (and JAX's) start-up notices out of the terminal, and nothing else.

TensorFlow 2.21 logs through absl's C++ logging, and its messages written
before absl::InitializeLog() (which nothing calls) ignore TF_CPP_MIN_LOG_LEVEL
and go straight to file descriptor 2: the oneDNN notice (port.cc), "Could not
find cuda drivers" (cudart_stub.cc) and absl's own "All log messages before
absl::InitializeLog()" line, once from libtensorflow_framework.so and once more
from the XLA ops library it loads; then, at the first use of the devices,
"failed call to cuInit" (cuda_platform.cc) on every machine without a GPU. No
environment variable of TensorFlow or absl silences those (absl's thresholds
are command-line flags TensorFlow never parses).

So `hold_back()` catches the first import of `tensorflow` (and of `jax`): while
the package is imported (and, for TensorFlow, its devices listed, so that cuInit
happens then), file descriptor 2 points at a temporary file; afterwards it is
restored and every line that is not one of the known notices is written to it,
so a real warning (a Python warning, a plug-in's print, an error of TensorFlow's)
still shows, only later. KERASRUN_TF_LOGS=1 turns this off. TensorFlow is never
imported by this module: only when something else imports it.
"""

import contextlib
import importlib.abc
import os
import re
import sys
import tempfile

SHOW_ENV = "KERASRUN_TF_LOGS"
_PACKAGES = ("tensorflow", "jax")

_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# An absl/glog line: severity, date, time, thread id, file:line] message.
_LOG_LINE = re.compile(r"^(?P<severity>[IWEF])\d{4} [\d:. ]+ +\d+ (?P<file>[\w./-]+\.cc):\d+\] (?P<message>.*)")
# file name -> what its message starts with (None: any message of that file).
_NOTICES = {
    "port.cc": "oneDNN custom operations are on",
    "cudart_stub.cc": "Could not find cuda drivers on your machine",
    "cpu_feature_guard.cc": None,  # "This TensorFlow binary is optimized to use available CPU instructions..."
    "cuda_fft.cc": "Unable to register cuFFT factory",  # Registered twice by TensorFlow's own libraries.
    "cuda_dnn.cc": "Unable to register cuDNN factory",
    "cuda_blas.cc": "Unable to register cuBLAS factory",
}
_NO_DRIVER = "cudart_stub.cc"
_CUINIT = ("cuda_platform.cc", "failed call to cuInit")  # A notice only when there is no driver at all.
_CONTINUATION = "To enable the following instructions:"  # The second line of cpu_feature_guard.cc's notice.
_PYTHON_NOTICES = (re.compile(r"No GPU/TPU found, falling back to CPU"),)  # JAX's, on older versions.


def shown():
    """Whether the user asked, with KERASRUN_TF_LOGS=1, to see TensorFlow's start-up logs."""
    return os.environ.get(SHOW_ENV) == "1"


def notices(lines):
    """Returns, for each of `lines` (text), whether it is a start-up notice.

    cuInit's failure counts only after cudart_stub.cc said there is no CUDA
    driver: with a driver, it is a real problem with the GPU.
    """
    parsed = [_LOG_LINE.match(line) for line in lines]
    no_driver = any(match and os.path.basename(match["file"]) == _NO_DRIVER for match in parsed)
    flags, after_notice = [], False
    for line, match in zip(lines, parsed):
        text = line.rstrip("\r\n")
        if match:
            base, message = os.path.basename(match["file"]), match["message"]
            # A file's every message is a notice only at severities I and W: its errors and fatal lines stay.
            any_message = _NOTICES.get(base, "") is None and match["severity"] in "IW"
            notice = ((base in _NOTICES and (any_message or (_NOTICES[base] is not None
                                                             and message.startswith(_NOTICES[base]))))
                      or (no_driver and base == _CUINIT[0] and message.startswith(_CUINIT[1])))
        else:
            notice = (text == _ABSL_PREAMBLE or (after_notice and text.startswith(_CONTINUATION))
                      or any(pattern.search(text) for pattern in _PYTHON_NOTICES))
        flags.append(notice)
        after_notice = notice
    return flags


@contextlib.contextmanager
def held_back(fd=2):
    """Points `fd` at a temporary file for the block, then restores it and writes back what was not a notice.

    Restored however the block ends (an exception, Ctrl-C, a SIGTERM whose
    handler raises), so the error that ends it is seen.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = held = None
    try:
        saved = os.dup(fd)  # First: were `fd` closed, the file would take its number.
        held = tempfile.TemporaryFile()
    except OSError:  # No stderr to hold back (closed), or no room for the file: the notices are shown.
        if saved is not None:
            os.close(saved)
        yield
        return
    with held:
        os.dup2(held.fileno(), fd)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            held.seek(0)
            raw = held.read().splitlines(keepends=True)
            kept = b"".join(line for line, notice in zip(raw, notices([line.decode(errors="replace") for line in raw]))
                            if not notice)
            while kept:
                kept = kept[os.write(fd, kept):]


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the first import of each package of _PACKAGES in `held_back`."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _PACKAGES or fullname in _done:
            return None
        _done.add(fullname)
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.loader  # The package sees its own loader.
        with held_back():
            self.loader.exec_module(module)
            if module.__name__ == "tensorflow":  # Devices now, so that cuInit's complaint falls in the window.
                with contextlib.suppress(Exception):  # A real failure comes again at the run's first use of them.
                    module.config.list_physical_devices()


_done = set()


def hold_back():
    """From now on, the first import of TensorFlow (or JAX) keeps its start-up notices off the terminal.

    Does nothing when KERASRUN_TF_LOGS=1 or when the package is imported already.
    """
    if shown():
        return
    _done.update(name for name in _PACKAGES if name in sys.modules)
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
