"""Config layering: defaults < YAML file (--config) < command line, then validation.

The result is one immutable `Config`; nothing downstream reads flags again.
"""

import collections.abc
import difflib
import functools
import inspect
import os
import re
import reprlib
import tempfile

import yaml

from kerasrun import datasets, models
from kerasrun.callbacks.builder import families
from kerasrun.cli import core_options, flags as runner_flags, modes
from kerasrun.cli.backend import check_backend
from kerasrun.cli.class_weight_option import CLASS_WEIGHT, check_class_weight
from kerasrun.cli.cluster import check_distribution
from kerasrun.cli.optimizer_options import OPTIMIZER, check_optimizer
from kerasrun.core import files, losses_metrics
from kerasrun.core.errors import UsageError, shortened
from kerasrun.core.options import always
from kerasrun.core.plugins import is_plugin_spec, load_plugin, plugin_file
from kerasrun.cli import export_options as export

# Keys that only make sense on the command line.
_NOT_IN_FILES = ("config", "flagfile")


class Config(collections.abc.Mapping):
    """The resolved, read-only configuration: flag name -> value.

    Args:
        values: Flag name -> effective value.
        sources: Flag name -> the YAML file the value came from, for messages
            about checks that can only run once the data is loaded.
        warnings: Lines about what the command line says that will have no
            effect, for train.py to print once.
    """

    def __init__(self, values, sources=None, warnings=()):
        self._values = dict(values)
        self.sources = dict(sources or {})
        self.warnings = tuple(warnings)

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def hparams(self):
        """Returns the run's hyperparameters: every effective value (as saved) less the bookkeeping flags.

        The HParams tab shows this set, and a run is resumed when it matches (runner/run_paths.py).
        """
        return {name: value for name, value in saved_config(self).items() if name not in bookkeeping_flags()}

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


def flag_label(sources, name):
    """Returns how messages name option `name`, given {name: YAML file} of the values read from files."""
    return f"{sources[name]}: {name}" if name in sources else f"--{name}"


def all_groups():
    """Returns every option group: the core ones, then the callback families."""
    return core_options.GROUPS + (OPTIMIZER, CLASS_WEIGHT) + families()


def all_options():
    """Returns {flag name: Arg} for every flag, in documentation order."""
    return {name: arg for group in all_groups() for name, arg in group.options()}


def worker_overrides():
    """Returns {flag name: value}: what the workers other than the chief of a multi-worker run change."""
    return {name: value for group in all_groups() for name, value in group.worker_values().items()}


@functools.cache
def bookkeeping_flags():
    """Returns the names of the flags that say where a run is written or launched from, not what it trains."""
    return frozenset(name for name, arg in all_options().items() if arg.bookkeeping)


# The longest file or directory name ext4, XFS, btrfs and APFS take, in bytes.
_LONGEST_FILE_NAME = 255
# A path an option names: the option, the path as given, and its real path.
_Path = collections.namedtuple("_Path", "name given real")
# A placeholder of a path Keras fills in, such as ModelCheckpoint's {epoch:02d}.
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


class Checker:
    """Raises UsageErrors that say where a value came from.

    Args:
        values: Flag name -> effective value.
        sources: Flag name -> the YAML file it came from (absent: command line or default).
        options: Flag name -> Arg.
        has_validation: Whether there will be validation data; None to work
            it out from the dataset flags (unknown for plug-ins).
        task: The task the data decided; None to take --task (auto: unknown, and with it the metrics
            --metrics auto compiles).
    """

    def __init__(self, values, sources, options, has_validation=None, task=None):
        self.values = values
        self.sources = sources
        self.options = options
        if has_validation is None:
            has_validation = datasets.provides_validation(values["dataset"], values["validation_split"],
                                                          values["dataset_validation"])
        task = task or (values["task"] if values["task"] != "auto" else None)
        if task is None and values["dataset"] in datasets.names():  # mnist, digits, ...: classes, always.
            task = "classification"
        metrics = losses_metrics.logged_metric_names(values["metrics"], task)
        # The names the loss and metrics are logged under; while they depend on the task (--metrics auto,
        # the task not yet known), those of any task: a name none logs is refused at once, the rest
        # once the data has decided the task.
        self.task_pending = metrics is None
        if metrics is None:
            metrics = {name for each in losses_metrics.AUTO_METRICS
                       for name in losses_metrics.logged_metric_names(values["metrics"], each) or ()}
        self.metric_names = {"loss", *metrics}
        self.log_keys = _expected_log_keys(values, has_validation, self.metric_names)
        # The _Paths of the files a run writes, and of those it only reads (`writes`, `reads`).
        self.outputs, self.inputs = [], []

    def label(self, name):
        """Returns `--name=value`, or `file.yaml: name=value` for values from a file."""
        option = self.options[name]
        shown = "<secret>" if option.secret else option.kind.format(self.values[name])
        if not shown.isprintable():  # A line break in a value would split the one-line error.
            shown = repr(shown)
        shown = shortened(shown)
        if name in self.sources:
            return f"{self.sources[name]}: {name}={shown}"
        return f"--{name}={shown}"

    def fail(self, name, message):
        """Raises a UsageError about the option `name`."""
        raise UsageError(f"{self.label(name)}: {message}")

    def flag_label(self, name):
        """Returns how messages name option `name`: `--name`, or `file.yaml: name`."""
        return flag_label(self.sources, name)

    def load_function(self, name, spec):
        """Imports the callable a plug-in spec names, so a typo is refused before any work.

        Args:
            name: The option the spec came from.
            spec: `module:attribute` or `path/file.py:attribute`.

        Raises:
            UsageError: if the module, file or attribute is missing, or not callable.
        """
        target = load_plugin(self.flag_label(name), spec)
        if not callable(target):
            raise UsageError(f"{self.flag_label(name)}={spec!r}: names a {type(target).__name__}, not a function or class")
        return target

    def check_called_as(self, name, spec, *calls):
        """Refuses a plug-in function that cannot take the arguments it will be called with.

        Args:
            name: The option the spec came from.
            spec: `module:attribute` or `path/file.py:attribute`.
            *calls: How it will be called, such as "(epoch, logs)"; any one
                of them will do.
        """
        function = self.load_function(name, spec)
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # Some builtins have no signature.
            return
        for call in calls:
            arguments = [word for word in call.strip("()").split(", ") if word]
            try:
                signature.bind(*arguments)
                return
            except TypeError:
                pass
        raise UsageError(f"{self.flag_label(name)}={spec!r}: is called as f{' or f'.join(calls)}, "
                         f"but its signature is {signature}")

    def check_name_lengths(self, name, path):
        """Refuses a path with a file or directory name longer than the file system allows (255 bytes)."""
        longest = max(path.split(os.sep), key=lambda part: len(part.encode()))
        if len(longest.encode()) > _LONGEST_FILE_NAME:
            self.fail(name, f"holds a name of {len(longest.encode())} bytes; file systems allow "
                            f"{_LONGEST_FILE_NAME}")

    def check_writable_file(self, name, path):
        """Refuses a file path whose directory does not exist, cannot be written, or that names a directory."""
        self.check_name_lengths(name, path)
        # The folder resolved as the kernel resolves it (`link/../x`), the file itself not (/dev/stdout).
        directory = os.path.realpath(os.path.dirname(path) or ".")
        if os.path.isdir(path):
            self.fail(name, "is a directory, not a file")
        if not os.path.isdir(directory):
            self.fail(name, f"{directory} is a file, not a directory" if os.path.exists(directory)
                      else f"directory {directory} does not exist")
        if not _can_create_in(directory):
            self.fail(name, f"cannot be written: directory {directory} is not writable")
        self.writes(name, path)

    def writes(self, name, path):
        """Notes that option `name` makes the run write the file `path`, which nothing else may use."""
        self.outputs.append(_Path(name, path, os.path.realpath(path)))

    def reads(self, name, path):
        """Notes that option `name` makes the run read `path`, which no output may overwrite."""
        self.inputs.append(_Path(name, path, os.path.realpath(path)))

    def check_creatable_dir(self, name, path, label=None):
        """Refuses a directory that is a file, or that could not be made: under a file, or nowhere writable.

        Args:
            name: The flag the path comes from.
            path: The directory (it may not exist yet).
            label: How to call the path in messages. Defaults to none: the
                message is about the flag's value itself.
        """
        prefix = f"{label} " if label else ""
        self.check_name_lengths(name, path)
        if os.path.exists(path) and not os.path.isdir(path):
            self.fail(name, f"{prefix}is a file, not a directory")
        existing = os.path.abspath(path)
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            self.fail(name, f"{prefix}cannot be made: {existing} is a file")
        if not _can_create_in(existing):
            self.fail(name, f"{prefix}cannot be written: no directory can be created in {existing}")

    def check_log_key(self, name, key, also=()):
        """Refuses `key` (the value of option `name`) unless training will log it."""
        if self.log_keys is None or key in self.log_keys:
            return
        if key.startswith("test_"):
            self.fail(name, f"{key!r}: the test split is evaluated once, after training, and never guides it; "
                            f"watch a validation quantity ({key.replace('test_', 'val_', 1)!r}) instead")
        known = ", ".join(sorted(self.log_keys | set(also)))
        why = " (there is no validation data)" if key.startswith("val_") and "val_loss" not in self.log_keys else ""
        logged = "logged, depending on the task (--metrics auto)" if self.task_pending else "logged"
        metric = key.removeprefix("val_")
        current = [item for item in self.values["metrics"] if item]
        hint = (f" (add it: --metrics {','.join([*current, metric])})" if not why and metric in losses_metrics.METRICS
                and metric not in self.log_keys else "")
        self.fail(name, f"{key!r} will never be logged{why}; {logged}: {known}{hint}")


def resolve(argv, environ=None):
    """Parses the command line and any --config file into a validated Config.

    Args:
        argv: The command line, program name first.
        environ: The environment to set KERAS_BACKEND in, to the --backend value, before
            validation imports any plug-in module (which may import Keras): train.py passes
            os.environ. None (a sweep checking its trials' flags, tests) leaves the environment alone.

    Raises:
        UsageError: for any mistake, naming the flag or key and the value.
    """
    options = all_options()
    flag_values = runner_flags.define_flags(options)
    runner_flags.parse(flag_values, runner_flags.normalize_booleans(argv, options))
    values = {name: flag_values[name].value for name in options}
    sources = {}
    if values["config"]:
        for name, value in read_config_file(values["config"], options).items():
            if not flag_values[name].present:
                values[name] = value
                sources[name] = values["config"]
    typed = {name for name in options if flag_values[name].present}
    backend_warnings = [] if environ is None else use_backend(values["backend"], environ,
                                                               flag_label(sources, "backend"),
                                                               "backend" in typed or "backend" in sources)
    _validate(values, sources, options, runner_flags.flag_files(argv))
    models.check_hparams_apply(values, typed, lambda name: flag_label(sources, name))
    return Config(values, sources, [*backend_warnings, *ignored_options(values, typed)])


def use_backend(backend, environ, label="--backend", typed=True):
    """Sets KERAS_BACKEND in `environ` to `backend` (--backend wins over the environment); returns warnings.

    Keras reads KERAS_BACKEND once, when it is first imported, so this runs
    before anything can import it. A KERAS_BACKEND of the user's that says
    otherwise is overridden with a warning, so the backend recorded (config.yaml,
    results.json, HParams) is always the one used.

    Raises:
        UsageError: when JAX is not installed, or Keras was imported already on another backend.
    """
    import importlib.util
    import sys

    if backend == "jax" and importlib.util.find_spec("jax") is None:
        raise UsageError(f"{label}=jax: JAX is not installed; pip install 'jax[cpu]==0.10.2' "
                         "(see requirements.txt), or use --backend tensorflow")
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend") and keras.backend.backend() != backend:
        raise UsageError(f"{label}={backend}: Keras was imported already, on {keras.backend.backend()}, "
                         f"before the flags were read (a sitecustomize or PYTHONSTARTUP module?); "
                         f"Keras cannot change its backend once imported")
    warnings = []
    theirs = environ.get("KERAS_BACKEND")
    if theirs is not None and theirs != backend:
        how = "" if typed else " (the default)"
        hint = f" (--backend {theirs} trains on it)" if not typed and theirs in ("tensorflow", "jax") else (
            "" if typed or theirs in ("tensorflow", "jax") else " (--backend takes tensorflow or jax)")
        warnings.append(f"KERAS_BACKEND={theirs} in the environment is overridden by {label}={backend}{how}; "
                        f"the run trains on {backend}{hint}")
    environ["KERAS_BACKEND"] = backend
    return warnings


def check_further(config):
    """Checks what validation leaves to the run: imports the plug-ins, indexes an image folder.

    For --dry_run and a sweep's check before its first run. A run itself
    imports the plug-ins later, after seeding (a module may draw random
    numbers when imported), and indexes the folder as it loads it; neither
    needs doing twice there.

    Raises:
        UsageError: naming the flag (or YAML key) of a dataset or model
            plug-in that is missing or names the wrong kind of thing, or of an
            image folder the run would refuse (an empty class, a file that is
            not an image).
    """
    dataset_flag = flag_label(config.sources, "dataset")
    datasets.check_plugin(config.dataset, flag=dataset_flag)
    datasets.check_folder(config.dataset, flag=dataset_flag, test=config.dataset_test,
                          validation_split=config.validation_split)
    models.check_plugin(config.model, flag=flag_label(config.sources, "model"), model_args=config.model_args)
    for name in ("loss", "metrics"):
        for spec in losses_metrics.plugins(config[name]):
            target = load_plugin(flag_label(config.sources, name), spec)
            if not callable(target):
                raise UsageError(f"{flag_label(config.sources, name)}={spec!r}: names a {type(target).__name__}, "
                                 "not a function or class")


def check_external(config):
    """Runs the enabled families' checks of a service outside the process (the optuna family's database).

    For train.py, before a training run or --dry_run, once every other check
    has passed; `resolve` does not, so that a sweep checks its flags before
    its study holds the trials they will name.

    Raises:
        UsageError: naming the flag, and what the service said.
    """
    if config.mode != "train":
        return
    checker = Checker(dict(config), config.sources, all_options(), has_validation=False)
    for family in families():
        if config[family.name] and family.external_check is not None:
            family.external_check(family, family.values(config), checker)


def ignored_options(values, typed):
    """Says which options typed on the command line have no effect: their group is off (naming its
    switch), or they apply to another kind of dataset or model (their Arg's `applies`).

    Only the command line is looked at: a YAML file may hold the settings of
    groups that another file or the command line switches on, and a run's
    saved config.yaml lists every option.
    """
    # --mode evaluate and predict read few options: the others (training's) are noted first, and only once.
    by_mode = modes.mode_notes(values, typed)
    off = {name: f"--{name} has no effect: {group.title} is off (enable it with --{group.name} True)"
           for group in all_groups() if group.switchable and not values[group.name]
           for name, arg in group.options()
           if name in typed and name not in by_mode and name != group.name and arg.applies is not always}
    elsewhere = [f"--{name} has no effect: {why}" for name, arg in all_options().items()
                 if name in typed and name not in off and name not in by_mode and arg.applies
                 and (why := arg.applies(values))]
    return [*by_mode.values(), *off.values(), *elsewhere]


def saved_config(config):
    """Returns every effective value as plain YAML/JSON data, for config.yaml and the results.

    Flags that only make sense on the command line (--config, --dry_run) are left out,
    so that `--config` on the saved file reruns the same experiment, and so are
    secrets (RemoteMonitor's headers), which a rerun must be given again.
    """
    options = all_options()
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in config.items()
        if name not in _NOT_IN_FILES and name != "dry_run" and not options[name].secret
    }


def changed_flags(config):
    """Returns {flag: value as typed} for the flags whose value differs from the default."""
    options = all_options()
    return {name: options[name].kind.format(value) for name, value in config.items()
            if value != options[name].default and not options[name].secret}


def check_against_data(config, has_validation, task=None):
    """Checks again, now that the data is loaded, what depends on validation data and on the task.

    A plug-in dataset tells whether it has validation data only once it runs,
    and --metrics auto compiles the metrics of the task the labels decide.

    Raises:
        UsageError: for a monitor or placeholder that needs validation data there is none of,
            or a metric that is not compiled.
    """
    values = dict(config)
    _check_families(Checker(values, config.sources, all_options(), has_validation=has_validation, task=task))


def read_config_file(path, options):
    """Reads a flat YAML mapping of flag names to values.

    Args:
        path: The YAML file.
        options: Flag name -> Arg, to check keys and types.

    Raises:
        UsageError: naming the file (and key) for a missing or malformed file,
            a document that is not a mapping, an unknown key or a wrong type.
    """
    document = load_yaml(path, "config")
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise UsageError(
            f"{path}: must be a mapping of flag names to values, not a {type(document).__name__}"
        )
    values = {}
    for key, raw in document.items():
        arg = options.get(key) if isinstance(key, str) else None
        if arg is None or key in _NOT_IN_FILES:
            raise UsageError(f"{path}: {_unknown_key_message(key, options)}")
        try:
            values[key] = arg.kind.from_yaml(raw)
        except (ValueError, OverflowError) as error:
            shown = "<secret>" if arg.secret else _YAML_VALUE.repr(raw)
            reason = "is too large" if isinstance(error, OverflowError) else error
            raise UsageError(f"{path}: {key}={shown}: {reason}") from None
    return values


# Shows a refused YAML value in a message: a few items, a short text (aliases can nest a list a billion deep).
_YAML_VALUE = reprlib.Repr()
_YAML_VALUE.maxlevel, _YAML_VALUE.maxlist, _YAML_VALUE.maxdict, _YAML_VALUE.maxstring = 2, 4, 4, 80


def load_yaml(path, option):
    """Returns the YAML document in `path` (named by --`option`), refusing a key given twice.

    Raises:
        UsageError: The file cannot be read, or is not YAML (with the line and column of the problem).
    """
    try:
        with open(path, encoding="utf-8") as stream:
            return yaml.load(stream, Loader=_UniqueKeyLoader)
    except OSError as error:
        raise UsageError(f"--{option}={path}: cannot read the file ({error.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"--{option}={path}: not a text file (it is not UTF-8)") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UsageError(f"{path}: not valid YAML{at}: {problem}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice (YAML would silently keep the last) or one that is no name."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a flag name, not a {type(key).__name__}", key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _unknown_key_message(key, options):
    if key in _NOT_IN_FILES:
        return f"{key}: only allowed on the command line"
    close = difflib.get_close_matches(str(key), [name for name in options if name not in _NOT_IN_FILES], n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown key {key!r}{hint}"


def _validate(values, sources, options, flag_files=()):
    checker = Checker(values, sources, options)
    for path in flag_files:
        checker.reads("flagfile", path)
    for name, arg in options.items():
        if arg.check is not None:
            message = arg.check(values[name])
            if message:
                checker.fail(name, message)
    training = values["mode"] == "train"
    if training:
        datasets.check_source(values["dataset"], flag=checker.flag_label("dataset"),
                              label_columns=values["dataset_label_column"])
        problem = export.check_formats(values["export"])  # Only a training run exports: elsewhere it is noted.
        if problem:
            checker.fail("export", problem)
        export.check_dataset(values["export"], values["dataset"], checker.flag_label("export"))
        models.check_source(values["model"], flag=checker.flag_label("model"))
        models.check_model_args(values["model"], values["model_args"], checker.flag_label("model_args"),
                                checker.flag_label("model"))
        _check_model_weights(checker)
    else:  # A saved model on a dataset: what it takes, and where the predictions go.
        modes.check_mode(checker)
    if values["mode"] == "predict" and values["dataset_test"] is not None and not os.path.exists(values["dataset_test"]):
        checker.fail("dataset_test", "no such file or folder")
    if values["mode"] != "predict":  # Predictions need no labels in the other files either.
        datasets.check_splits(values["dataset"], test=values["dataset_test"], validation=values["dataset_validation"],
                              validation_split=values["validation_split"], label_columns=values["dataset_label_column"],
                              label=checker.flag_label)
    if values["jit_compile"] == "true" and values["deterministic"]:
        checker.fail("jit_compile", "Keras turns XLA off under --deterministic True (not every XLA op is "
                                    "deterministic); use --jit_compile auto or false, or leave out --deterministic")
    smoothing = losses_metrics.label_smoothing_problem(values["loss"], values["label_smoothing"])
    if smoothing:
        checker.fail("label_smoothing", smoothing)
    _check_logs_root(checker)
    if values["results_file"] is not None:
        checker.check_writable_file("results_file", values["results_file"])
        _check_not_a_runs_own_file(checker, "results_file")
    check_backend(checker)  # First: a strategy JAX refuses needs no cluster explained.
    check_distribution(checker)
    check_optimizer(checker)
    check_class_weight(checker)
    if training:  # Evaluating or predicting runs no callbacks: their settings are only noted (ignored_options).
        _check_families(checker)
        _check_evaluate_weights(checker)
        for spec in values["callbacks"]:
            _check_callback_class(checker, spec)
    _check_paths_apart(checker)


# The files of a run directory that the runner writes whole and reads back (resume, --mode evaluate, --config);
# best.keras and a checkpoint end in .keras, NAME.evaluation.json in the evaluation file's name.
_RUN_OWN_FILES = (modes.RUN_CONFIG, modes.RUN_RESULTS, modes.EVALUATION_FILE)


def _check_not_a_runs_own_file(checker, name):
    """Refuses appending lines to a file of a run directory, which would leave it unreadable."""
    path = checker.values[name]
    directory = os.path.dirname(path) or "."
    own = os.path.basename(path) in _RUN_OWN_FILES or path.endswith((f".{modes.EVALUATION_FILE}", ".keras"))
    if own and os.path.isfile(os.path.join(directory, modes.RUN_CONFIG)) and any(
            os.path.exists(os.path.join(directory, other))
            for other in (modes.RUN_RESULTS, modes.MODEL_FILE, files.LOCK_FILE)):
        checker.fail(name, f"is a file of the run directory {directory}, which lines appended to it would leave "
                           "unreadable; name a file of your own, such as runs.jsonl")


def _check_evaluate_weights(checker):
    """Refuses --evaluate_weights best when nothing keeps the best weights, or not on every worker."""
    values = checker.values
    if (values["evaluate_weights"] == "best" and values["distribution_strategy"] == "multi_worker_mirrored"
            and not (values["early_stopping"] and values["early_stopping_restore_best_weights"])):
        # best.keras is the chief's; a resumed worker has none, and the evaluation is one step of all workers.
        checker.fail("evaluate_weights", "best under multi_worker_mirrored takes the weights early stopping "
                                         "restores (on every worker): add --early_stopping True with "
                                         "--early_stopping_restore_best_weights True")
    if values["evaluate_weights"] == "best" and not (
            values["model_checkpoint"] or values["early_stopping"] and values["early_stopping_restore_best_weights"]):
        checker.fail("evaluate_weights", "best needs the best weights kept: add --model_checkpoint True (which keeps "
                                         "best.keras), or --early_stopping True with "
                                         "--early_stopping_restore_best_weights True")
    if (values["evaluate_weights"] == "best" and values["swap_ema_weights"]
            and not values["swap_ema_weights_swap_on_epoch"]):
        # The epochs are ranked on the averaged weights, but the raw ones are kept: "best" would score others.
        checker.fail("evaluate_weights", "best with --swap_ema_weights True keeps the raw weights of the epoch whose "
                                         "averaged weights scored best; add --swap_ema_weights_swap_on_epoch True, "
                                         "so that the kept weights are the averaged ones")


def _check_paths_apart(checker):
    """Refuses an output that would overwrite an input or another output, and a backup directory that is not its own.

    Keras empties the backup directory when training ends (and writes into it
    as it goes), so it may hold nothing else of the run's, nor the run
    directories.
    """
    values = checker.values
    read_files = {"config": values["config"], "dataset": datasets.file_of(values["dataset"]),
                  "dataset_test": values["dataset_test"], "dataset_validation": values["dataset_validation"],
                  "model": values["model"] if values["model"].endswith(".keras") else None,
                  "model_weights": values["model_weights"] if values["model_weights"] != "imagenet" else None}
    for name, path in read_files.items():
        if path:
            checker.reads(name, path)
    for name, value in values.items():  # The user's own code: --dataset, --model, --callbacks, hooks, ...
        for spec in (value if isinstance(value, tuple) else (value,)):
            if isinstance(spec, str) and is_plugin_spec(spec) and plugin_file(spec):
                checker.reads(name, plugin_file(spec))
    paths = checker.inputs + checker.outputs
    for index, path in enumerate(paths):
        for other in paths[:index]:
            if path in checker.outputs and _same_file(path.real, other.real):
                clash = "reads; it would be overwritten" if other in checker.inputs else "writes too; choose another"
                checker.fail(path.name, f"is the file {checker.flag_label(other.name)} {clash}")
    backup = values["backup_and_restore_backup_dir"]
    if values["backup_and_restore"] and backup is not None:
        _check_backup_dir_apart(checker, os.path.realpath(backup), paths)


def _same_file(one, other):
    """Whether two real paths are, or (one holding placeholders Keras fills in) may become, one file."""
    for template, path in ((one, other), (other, one)):
        if _PLACEHOLDER.search(template):
            pattern = ".*".join(re.escape(part) for part in _PLACEHOLDER.split(template))
            return re.fullmatch(pattern, path) is not None
    if one == other:
        return True
    try:
        return os.path.samefile(one, other)  # Hard links too.
    except OSError:  # One of them does not exist yet.
        return False


def _check_backup_dir_apart(checker, backup, others):
    name = "backup_and_restore_backup_dir"
    logs = checker.values["tensorboard_log_dir"]
    root = os.path.realpath(logs)
    why = "Keras empties the backup directory when training ends: choose a directory of its own"
    if _inside(root, backup):
        checker.fail(name, f"holds the run directories ({logs}); {why}")
    if _inside(backup, root):  # A run's own files (its default checkpoints, say) might be in it.
        checker.fail(name, f"is inside {logs}, where runs write; leave it out (the backup then goes into "
                           "the run's own directory) or choose a directory elsewhere")
    for path in others:
        if _inside(path.real, backup):
            checker.fail(name, f"holds {path.given} ({checker.flag_label(path.name)}); {why}")


def _inside(path, directory):
    """Whether `path` is `directory` or lies under it (both real paths)."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _check_families(checker):
    for family in families():
        if checker.values[family.name] and family.check is not None:
            family.check(family, family.values(checker.values), checker)


def _check_callback_class(checker, spec):
    target = checker.load_function("callbacks", spec)
    if not isinstance(target, type):
        checker.fail("callbacks", f"{spec!r} is not a class (a keras.callbacks.Callback subclass)")
    import keras  # Only with --callbacks; the user's module has most likely loaded it already.

    if not issubclass(target, keras.callbacks.Callback):
        checker.fail("callbacks", f"{spec!r} is not a keras.callbacks.Callback subclass")
    try:
        inspect.signature(target).bind()
    except TypeError:
        checker.fail("callbacks", f"{spec!r} needs arguments; it is constructed with none")


def _check_model_weights(checker):
    weights = checker.values["model_weights"]
    if weights is None:
        return
    if checker.values["model"] not in models.application_names():
        checker.fail("model_weights", f"only keras.applications models take pretrained weights, "
                                      f"not --model={checker.values['model']}")
    if weights != "imagenet" and not os.path.isfile(weights):
        checker.fail("model_weights", "must be imagenet or an existing weights file")


def _check_logs_root(checker):
    root = checker.values["tensorboard_log_dir"]
    if not root:
        checker.fail("tensorboard_log_dir", "must name a directory (every run writes into it)")
    checker.check_creatable_dir("tensorboard_log_dir", root)


def _can_create_in(directory):
    # os.access says yes to root everywhere, even on read-only file systems;
    # creating (and at once removing) a directory is the only sure test.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=directory))
        return True
    except OSError:
        return False


def _expected_log_keys(values, has_validation, metric_names):
    """Returns the keys Keras will log, or None when that cannot be known before loading data."""
    if has_validation is None:
        return None
    names = set(metric_names)
    if has_validation:
        names |= {f"val_{name}" for name in names}
    for family in families():
        if values[family.name]:
            names |= set(family.logged_keys)
    return names
