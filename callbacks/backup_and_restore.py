"""BackupAndRestore: keep a backup of the training state to resume an interrupted run."""

from kerasrun.callbacks.family import CallbackFamily, default_in_run_dir, saves_every
from kerasrun.core.options import Arg, Bool, IntOrChoice, Str
from kerasrun.keras_fixes import idle_batch_end_when_saving_each_epoch


def _check(family, values, checker):
    if values["backup_dir"] is not None:
        checker.check_creatable_dir(family.flag_name("backup_dir"), values["backup_dir"])


# The backup's folder inside the run directory, unless --backup_and_restore_backup_dir says elsewhere.
BACKUP_DIR = "backup"

FAMILY = CallbackFamily(
    name="backup_and_restore",
    title="BackupAndRestore",
    summary="Back up the model and optimizer state during training, to resume after an interruption.",
    keras_class="BackupAndRestore",
    # Keras writes the backup in place: a stop while it writes would leave one no resume can load.
    subclass="kerasrun.callbacks.subclasses.backup_and_restore:BackupAndRestore",
    args=(
        Arg("backup_dir", Str(optional=True), None,
            "Where the backup is kept (default: backup/ in the run's directory)."),
        Arg("save_freq", IntOrChoice("epoch", minimum=1), "epoch",
            "'epoch' backs up after every epoch; an integer N every N batches and after every epoch (a resume "
            "continues inside the epoch). A signal's stop backs up at its step either way."),
        Arg("double_checkpoint", Bool(), False,
            "Keep the previous backup too, in case the newest one is damaged."),
        Arg("delete_checkpoint", Bool(), True, "Delete the backup when training finishes."),
    ),
    check=_check,
    in_run_dir=default_in_run_dir("backup_dir", BACKUP_DIR),
    worker_overrides={"backup_dir": None},
    # The batches counted towards the next backup every save_freq batches, so that a resumed run backs up at the same.
    resume_state=("_batches_seen_since_last_saving",),
    idle_hooks=idle_batch_end_when_saving_each_epoch,
    batch_needs=saves_every("--backup_and_restore_save_freq"),
)
