"""core/startup_logs.py: TensorFlow's start-up notices are kept off fd 2, everything else written back.

Without TensorFlow: a fake writer to file descriptor 2 stands for it. The
end-to-end checks (no notices from train.py; KERASRUN_TF_LOGS=1 brings them
back) ride on training runs of tests/test_train.py.
"""

import os
import signal
import sys

import pytest

from kerasrun.core import startup_logs

# What TensorFlow 2.21 wrote on this machine (no GPU), twice over, then at the first use of the devices.
NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796544246.580600   28315 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796544246.580927   28315 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "I0000 00:00:1796544267.787413   28878 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "E0000 00:00:1796544249.577114   28315 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
]
REAL = [
    "W0000 00:00:1796544249.577114   28315 op_kernel.cc:1840] OP_REQUIRES failed: something real",
    "/home/user/models.py:3: UserWarning: a warning of the user's own",
    "To enable the following instructions: (not after a notice, so kept)",
]


def write_lines(lines):
    os.write(2, "".join(line + "\n" for line in lines).encode())


def test_notices_are_held_back_and_real_lines_written_back_in_order(capfd):
    with startup_logs.held_back():
        write_lines(NOTICES[:1] + REAL[:1] + NOTICES[1:] + REAL[1:])
    assert capfd.readouterr().err.splitlines() == REAL


def test_cuinit_failure_is_kept_when_there_is_a_driver():
    assert startup_logs.notices([NOTICES[5]]) == [False]
    assert startup_logs.notices([NOTICES[2], NOTICES[5]]) == [True, True]


def test_an_error_or_fatal_line_of_a_notice_file_is_kept():
    fatal = ("F0000 00:00:1796544154.812936   26889 cpu_feature_guard.cc:101] The TensorFlow library was compiled "
             "to use AVX instructions, but these aren't available on your machine.")
    info = fatal.replace("F0000", "I0000", 1)
    assert startup_logs.notices([fatal, info]) == [False, True]


@pytest.mark.parametrize("ending", ["exception", "ctrl_c", "sigterm"])
def test_fd_2_is_restored_however_the_window_ends(capfd, ending):
    class Stopped(KeyboardInterrupt):
        pass

    def raise_stopped(signum, frame):
        raise Stopped

    previous = signal.signal(signal.SIGTERM, raise_stopped)
    try:
        with pytest.raises((RuntimeError, KeyboardInterrupt)):
            with startup_logs.held_back():
                write_lines([NOTICES[0], "the error TensorFlow printed before it failed"])
                if ending == "exception":
                    raise RuntimeError("import failed")
                if ending == "ctrl_c":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):  # The handler runs between bytecodes.
                    pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    write_lines(["after the window"])
    assert capfd.readouterr().err.splitlines() == ["the error TensorFlow printed before it failed",
                                                   "after the window"]


def test_the_first_import_of_the_package_is_held_back(capfd, tmp_path, monkeypatch):
    package = tmp_path / "noisy_engine"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import os\n"
        f"os.write(2, {(chr(10).join(NOTICES[:3] + REAL[:1]) + chr(10)).encode()!r})\n"
        "VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(startup_logs, "_PACKAGES", ("noisy_engine",))
    monkeypatch.setattr(startup_logs, "_done", set())
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delenv(startup_logs.SHOW_ENV, raising=False)
    startup_logs.hold_back()
    import noisy_engine

    try:
        assert noisy_engine.VALUE == 42 and noisy_engine.__spec__.loader.__class__.__name__ != "_Loader"
        assert capfd.readouterr().err.splitlines() == REAL[:1]
    finally:
        del sys.modules["noisy_engine"]


def test_kerasrun_tf_logs_1_turns_it_off(monkeypatch):
    monkeypatch.setenv(startup_logs.SHOW_ENV, "1")
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    startup_logs.hold_back()
    assert not any(isinstance(finder, startup_logs._Finder) for finder in sys.meta_path)


def test_a_closed_stderr_is_left_alone():
    spare = os.dup(2)
    os.close(2)
    try:
        with startup_logs.held_back():
            imported = True
    finally:
        os.dup2(spare, 2)
        os.close(spare)
    assert imported
