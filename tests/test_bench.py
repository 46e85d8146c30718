"""The benchmark's machinery (not its figures: no test asserts a timing target)."""

import os
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import bench  # noqa: E402

# Stands in for a training run timed by EpochTimer: three "epochs" of a
# fixed amount of CPU time each, and the same JSON record.
FAKE_RUN = textwrap.dedent("""
    import json, os, time
    begin, ends, cpu = time.perf_counter(), [], []
    for _ in range(3):
        started = time.process_time()
        while time.process_time() - started < 0.3:
            pass
        ends.append(time.perf_counter())
        cpu.append(time.process_time() - started)
    with open(os.environ["EPOCH_TIMER_FILE"], "w") as stream:
        json.dump({"epoch_seconds": [], "epoch_cpu_seconds": cpu, "train_begin_time": begin,
                   "epoch_end_times": ends}, stream)
""")


def test_running_seconds_counts_only_the_stretches_inside_the_interval():
    stretches = [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert bench.running_seconds(stretches, 0.5, 4.5) == pytest.approx(0.5 + 1.0 + 0.5)
    assert bench.running_seconds(stretches, 1.0, 2.0) == 0.0


def test_interleaved_runs_take_turns_and_each_epoch_counts_only_its_own_turns(tmp_path):
    runner = bench.Bench(str(tmp_path), dict(bench.QUICK, quiet_wait_budget_s=0))
    command = [sys.executable, "-c", FAKE_RUN]
    records = runner.interleaved_epochs([command, command])
    assert [len(record["wall"]) for record in records] == [3, 3]
    (_, together, _), = runner.others
    cpu = sum(sum(record["cpu"]) for record in records)
    # Running at once on two cores would take about half the CPU time; taking turns, all of it.
    assert together >= 0.9 * cpu
    for record in records:
        for wall, cpu in zip(record["wall"], record["cpu"]):
            # The other's turns are left out of the epoch (with them it would be about twice its CPU time).
            assert 0.9 * cpu <= wall < 1.6 * cpu


def test_a_failing_run_of_a_pair_is_reported_and_the_other_is_not_left_stopped(tmp_path):
    runner = bench.Bench(str(tmp_path), dict(bench.QUICK, quiet_wait_budget_s=0))
    with pytest.raises(bench.BenchError, match="exited 3"):
        runner.interleaved_epochs([[sys.executable, "-c", FAKE_RUN], [sys.executable, "-c", "raise SystemExit(3)"]])


def test_callback_time_adds_the_epoch_timer_to_the_plug_ins_once():
    import callback_time

    timer = callback_time.EPOCH_TIMER
    assert callback_time.with_epoch_timer(["--epochs=2"]) == ["--epochs=2", f"--callbacks={timer}"]
    assert callback_time.with_epoch_timer(["--callbacks=a.py:B"]) == [f"--callbacks=a.py:B,{timer}"]
    assert callback_time.with_epoch_timer([f"--callbacks={timer}"]) == [f"--callbacks={timer}"]
