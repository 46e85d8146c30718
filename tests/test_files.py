"""No torn files: a kill at any moment leaves the old content or the new, and appends never mix."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import IMPORT_KERASRUN

WRITER = f"""
import sys
{IMPORT_KERASRUN}
from kerasrun.core.files import write_atomically
size = 2_000_000
while True:
    for letter in "ab":
        write_atomically(sys.argv[1], letter * size)
"""

APPENDER = f"""
import json, sys
{IMPORT_KERASRUN}
from kerasrun.core.files import append_line
for number in range(150):
    append_line(sys.argv[1], json.dumps({{"writer": sys.argv[2], "number": number, "pad": "x" * 20000}}))
"""


def test_a_file_killed_mid_write_holds_old_or_new_content_whole(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("a" * 2_000_000)
    rng = random.Random(0)
    for _ in range(8):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
        time.sleep(0.3 + rng.random() * 0.3)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        content = target.read_text()
        assert content in ("a" * 2_000_000, "b" * 2_000_000)
    assert not [p for p in tmp_path.iterdir() if p.name != "results.json" and not p.name.startswith(".tmp-")]


def test_many_processes_appending_at_once_never_interleave_lines(tmp_path):
    target = tmp_path / "sweep.jsonl"
    writers = [subprocess.Popen([sys.executable, "-c", APPENDER, str(target), str(index)]) for index in range(4)]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(records) == 600
    for index in range(4):
        assert [r["number"] for r in records if r["writer"] == str(index)] == list(range(150))


def test_a_file_replaced_in_one_step_is_the_old_one_or_the_new_one_never_half(tmp_path):
    from kerasrun.core.files import replace_atomically

    target = tmp_path / "model.keras"
    target.write_text("old")

    def dies_half_way(temporary):
        assert temporary.endswith("-model.keras")  # Keras picks the format by the ending.
        with open(temporary, "w") as stream:
            stream.write("ne")
        raise KeyboardInterrupt  # A second Ctrl-C while the model is saved.

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(str(target), dies_half_way)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["model.keras"]

    replace_atomically(str(target), lambda temporary: open(temporary, "w").write("new"))
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["model.keras"]
