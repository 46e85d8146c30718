"""The MLflow run a sweep nests its trials' runs under (scripts/sweep.py, when its runs have --mlflow True).

Every process of a sweep (one per machine, say) finds the same parent run:
the run of the sweep's experiment tagged with its study and storage, made
by whichever process came first. Like the trials' logging, it never stops
the sweep: a tracker that does not answer is one warning, and the trials
then log unnested.
"""

import logging
import sys

from kerasrun.callbacks.mlflow import bound_requests, experiment_id, open_client
from kerasrun.core.errors import first_line
from kerasrun.core.study import shown_url

STUDY_TAG = "kerasrun.study"
STORAGE_TAG = "kerasrun.storage"


class SweepParent:
    """The sweep's MLflow run, or nothing (`run_id` None) when it could not be had.

    Args:
        config: A trial's resolved config: its MLflow flags say where the runs go.
        study: The study's name.
        storage: The study's storage as it may be shown (no password).
    """

    def __init__(self, config, study, storage):
        self.run_id = None
        self.client = None
        try:
            self._open(config, study, storage)
        except Exception as error:  # MLflow's, requests' and SQLAlchemy's errors are many types.
            print(f"sweep.py: warning: MLflow: the sweep's parent run could not be had ({type(error).__name__}: "
                  f"{shown_url(first_line(error))[:300]}); each trial logs a run of its own, not nested",
                  file=sys.stderr)

    def _open(self, config, study, storage):
        import mlflow

        bound_requests(config.mlflow_timeout)
        logging.getLogger("mlflow").setLevel(logging.ERROR)  # A store's creation, its engine's retries: not news.
        uri = config.mlflow_tracking_uri or mlflow.get_tracking_uri()
        self.client = open_client(uri)
        experiment = experiment_id(self.client, config.mlflow_experiment)
        found = self.client.search_runs(
            [experiment], filter_string=f"tags.`{STUDY_TAG}` = '{_quoted(study)}' and "
                                           f"tags.`{STORAGE_TAG}` = '{_quoted(storage)}'",
            max_results=1, order_by=["attributes.start_time ASC"])
        if found:
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            verb = "continues"
        else:
            self.run_id = self.client.create_run(
                experiment, run_name=study,
                tags={STUDY_TAG: study, STORAGE_TAG: storage, "mlflow.source.name": "sweep.py"}).info.run_id
            verb = "logs to"
        print(f"sweep.py: MLflow: the sweep {verb} parent run {self.run_id} of experiment {experiment} at "
              f"{shown_url(uri)}; each trial's run is nested under it", flush=True)

    def flags(self):
        """Returns the train.py flags that nest a trial's run under this one."""
        return [f"--mlflow_parent_run_id={self.run_id}"] if self.run_id else []

    def end(self, status, best=None):
        """Ends the parent run with MLflow `status`; `best` is (metric name, value) of the best trial, or None."""
        if self.run_id is None:
            return
        try:
            if best is not None:
                self.client.log_metric(self.run_id, f"best_{best[0]}", best[1])
            self.client.set_terminated(self.run_id, status)
        except Exception as error:  # As above: a warning, never the sweep's outcome.
            print(f"sweep.py: warning: MLflow: the sweep's parent run was not ended ({type(error).__name__}: "
                  f"{shown_url(first_line(error))[:300]})", file=sys.stderr)


def _quoted(text):
    return text.replace("\\", "\\\\").replace("'", "\\'")
