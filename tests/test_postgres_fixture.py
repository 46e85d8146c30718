"""The postgres_server fixture: a real PostgreSQL server that processes share an Optuna study through."""

import os
import subprocess
import sys

import optuna
import psycopg
import pytest

from conftest import postgres

# Each process adds three trials to the study the test created, at the same time as the other.
_WORKER = """
import sys
import optuna
study = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])
study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=3)
"""


def test_two_processes_share_a_study(postgres_server):
    assert postgres_server.startswith("postgresql://postgres@127.0.0.1:")
    optuna.create_study(study_name="shared", storage=postgres_server)
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, postgres_server, "shared"],
                                stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    for worker in workers:
        _, errors = worker.communicate(timeout=120)
        assert worker.returncode == 0, errors
    trials = optuna.load_study(study_name="shared", storage=postgres_server).trials
    assert sorted(trial.number for trial in trials) == list(range(6))
    assert {trial.state for trial in trials} == {optuna.trial.TrialState.COMPLETE}


def test_the_server_is_stopped_and_its_directory_removed():
    with postgres(database="other") as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        connection = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="other")
        with connection, connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            data = cursor.fetchone()[0]
        connection.close()
        assert os.path.isdir(data)
    assert not os.path.exists(os.path.dirname(data))
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="other", connect_timeout=2)
