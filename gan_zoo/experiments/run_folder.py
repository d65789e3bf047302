"""The run folder of an experiment: options, lock, resume checks, atomic writes.

`start_run` creates (or reopens, to resume) the folder a recipe writes into:

- `config.json`: every option plus library versions, enough to rerun;
- `metrics.json`: the final results; `metrics.jsonl`: one line per epoch;
- sample grids and plots (PNG); `tensorboard/`: a TensorBoard log;
- `backup*/`: resumable training states. Rerunning the same command with
  the same `--out` continues an interrupted run exactly where it stopped.

It refuses a folder inside the data, a folder another run is using
(`run.lock`), and other options in a folder whose run saved a checkpoint.
"""

import atexit
import datetime
import errno
import json
import os
import pathlib
import platform
import socket
import sys
import time

from gan_zoo.errors import UsageError

# Options that may change when a run folder is reopened: where it is, and how
# many epochs in all (so a finished run can be extended).
_RESUME_IGNORES = ("out", "epochs")
LOCK_NAME = "run.lock"
# The training states a run saves (`backup/` for the GAN, `backup-<model>/`
# for the semi_cgan recipe's baselines): a run that saved one has work to
# protect; one that failed before has none.
_CHECKPOINT_STATES = "backup*/state.json"  # at any depth: rglob
# Errors of a folder the user cannot write (read-only, no permission): the
# user chose it, so they are usage errors.
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


class RunFolderError(UsageError, ValueError):
    """The run folder cannot be used as asked: one line, exit status 2.

    Also a ValueError, so callers that catch ValueError from `start_run`
    catch it too.
    """


def _versions():
    import keras
    import numpy
    import tensorflow

    import gan_zoo

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "gan_zoo": gan_zoo.__version__,
        "platform": platform.platform(),
    }


_ABSENT = object()


def _jsonable(options):
    # A JSON round trip, so options compare equal to a reloaded config.json.
    return json.loads(json.dumps(options, default=str))


class Run:
    """The output folder of one recipe run.

    `start_run` creates it holding the folder's lock; `close()` (or the end
    of a `recipe_main`, or of the process) releases it. In a multi-worker
    run every worker opens the same folder and only the chief writes into
    it: JSON writes of the other workers do nothing, and their model saves
    (`save_model`, which every worker must call) go to a temporary file.

    Args:
        directory: the run folder.
        options: the recipe's options (written to `config.json`).
    """

    def __init__(self, directory, options):
        self.directory = pathlib.Path(directory)
        self.options = _jsonable(options)
        self.defaults = {}
        self._lock = None
        self.chief = _is_chief()

    def path(self, *parts):
        path = self.directory.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, name, data):
        """Writes `data` as JSON, atomically: a full disk leaves the old file.

        Args:
            name: file name inside the run folder.
            data: anything JSON takes (numpy scalars included).
        """
        path = self.path(name)
        if not self.chief:
            return path
        text = json.dumps(data, indent=2, sort_keys=True, default=_default) + "\n"
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(text)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return path

    def save_model(self, model, name):
        """Saves a Keras model as `name` (e.g. "dcgan.keras") in the run folder.

        Every worker of a multi-worker run must call it: reading
        synchronised variables is a collective operation. A non-chief
        worker saves into a temporary file of its own and deletes it.
        """
        path = self.path(name)
        if self.chief:
            model.save(path)
            return path
        temporary = path.with_name(f".{path.stem}-worker-{os.getpid()}{path.suffix}")
        try:
            model.save(temporary)
        finally:
            temporary.unlink(missing_ok=True)
        return path

    def write_metrics(self, metrics):
        return self.write_json("metrics.json", metrics)

    def close(self):
        """Releases the run folder's lock; calling it again does nothing."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        _OPEN_RUNS.discard(self)


def _default(value):
    try:
        return value.item()  # numpy scalars
    except AttributeError:
        return str(value)


# ----------------------------------------------------------------- run lock

_OPEN_RUNS = set()
atexit.register(lambda: [run.close() for run in list(_OPEN_RUNS)])


def _pid_alive(pid):
    """Whether process `pid` runs on this host (True when it cannot be told)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) is not a harmless probe elsewhere
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    return True


def _is_chief():
    """False for the non-chief workers of a multi-worker run (`TF_CONFIG`).

    All workers of one run share its --out: only the chief takes the lock.
    """
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task, cluster = config.get("task") or {}, config.get("cluster") or {}
    except (ValueError, AttributeError):
        return True
    chief = "chief" if "chief" in cluster else "worker"
    return task.get("type", chief) == chief and int(task.get("index", 0)) == 0


def _read_holder(path):
    """The lock file's {"pid", "host", "started"}, or None when unreadable."""
    try:
        holder = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int):
        return None
    return holder


class _RunLock:
    """`run.lock` in a run folder, created atomically (O_CREAT | O_EXCL).

    It holds the pid, host and start time of the run using the folder. A
    lock whose process is gone from this host (killed, crashed) is taken
    over with a warning; any other lock refuses the second run. A lock left
    by a process on another host cannot be checked: its message says to
    delete it once that run is gone.

    Args:
        path: the lock file.
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.holder = None

    def acquire(self):
        # A few tries: each failed one lost a race to take over a stale lock.
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._take_over_stale():
                    continue
                raise RunFolderError(self._busy_message()) from None
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.datetime.now().isoformat(timespec="seconds"),
            }
            try:
                with os.fdopen(fd, "w") as file:
                    json.dump(holder, file)
            except BaseException:
                self.path.unlink(missing_ok=True)  # an empty lock would block for ever
                raise
            self.holder = holder
            return
        raise RunFolderError(self._busy_message())

    def _take_over_stale(self):
        holder = _read_holder(self.path)
        if holder is None or holder.get("host") != socket.gethostname():
            return False
        if _pid_alive(holder["pid"]):
            return False
        # Move the stale lock aside rather than delete it, and check that what
        # was moved is the stale lock: another process may have taken it over
        # (and created a live lock) since it was read.
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True  # someone removed it meanwhile: try to create ours
        if _read_holder(aside) != holder:
            os.rename(aside, self.path)  # a live lock: give it back
            return False
        aside.unlink(missing_ok=True)
        print(
            f"Warning: {self.path} was left by process {holder['pid']}, which no longer "
            "runs on this host; taking the run folder over.",
            file=sys.stderr,
        )
        return True

    def _busy_message(self):
        holder = _read_holder(self.path) or {}
        host = holder.get("host")
        who = (
            f"process {holder['pid']} on {'this host' if host == socket.gethostname() else host}"
            f", since {holder.get('started')}" if holder else "an unreadable lock"
        )
        return (
            f"{self.path.parent} is in use by another run ({who}); wait for it to end or "
            f"choose another --out (if that run is gone, delete {self.path})."
        )

    def release(self):
        if self.holder is not None and _read_holder(self.path) == self.holder:
            self.path.unlink(missing_ok=True)
        self.holder = None


# --------------------------------------------------------------- start_run


def check_out_dir(out, data_dir):
    """Refuses a run folder equal to or inside the data folder.

    Its config.json, sample grids and backups would become part of the
    dataset, and every later scan of it would fail on them.

    Args:
        out: the run folder (may not exist yet).
        data_dir: the dataset folder, or None (the demo data).
    """
    if out is None or data_dir is None:
        return
    out_path = pathlib.Path(out).expanduser().resolve()
    data_path = pathlib.Path(data_dir).expanduser().resolve()
    if out_path == data_path or data_path in out_path.parents:
        raise RunFolderError(
            f"--out {out} is inside --data-dir {data_dir}: the run's files would become "
            "part of the dataset; choose a folder outside it."
        )


def _checkpoint_epochs(directory):
    """{backup folder: completed epochs (None if unreadable)} of a run folder.

    Backups anywhere in the folder count (a fold's `fold0/backup`), named by
    their path inside it.
    """
    epochs = {}
    for state in sorted(directory.rglob(_CHECKPOINT_STATES)):
        name = state.parent.relative_to(directory).as_posix()
        try:
            epochs[name] = int(json.loads(state.read_text())["completed_epochs"])
        except (OSError, ValueError, KeyError, TypeError):
            epochs[name] = None
    return epochs


def _finished_units(directory):
    """Names of the units of work (`Units`) a run folder holds results of."""
    from gan_zoo.experiments.units import UNIT_FOLDER

    return sorted(path.stem for path in (directory / UNIT_FOLDER).glob("*.json"))


def _check_options(run, checkpoints):
    """Refuses other options in a folder whose run saved a checkpoint or finished a unit.

    `--epochs` may grow to extend a GAN's training, but not where units of
    work are finished: their results were computed for the recorded epochs.
    """
    config_path = run.directory / "config.json"
    if not config_path.exists():
        return
    try:
        previous = json.loads(config_path.read_text())["options"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise RunFolderError(
            f"{config_path} is not a readable run config ({error!r}); "
            "use another --out, or delete the folder to start over."
        ) from None
    defaults = run.defaults

    def recorded(key):
        value = previous.get(key, defaults.get(key, _ABSENT))
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            return {**defaults[key], **value}
        return value

    units = _finished_units(run.directory)
    ignored = _RESUME_IGNORES if not units else tuple(k for k in _RESUME_IGNORES if k != "epochs")
    changed = {
        k: (previous.get(k), v)
        for k, v in run.options.items()
        if k not in ignored and recorded(k) != v
    }
    if changed and units:
        raise RunFolderError(
            f"{run.directory} holds finished units of work ({', '.join(units[:3])}"
            f"{', ...' if len(units) > 3 else ''}) of a run with other options {changed} "
            "(old, new); use another --out to start a new run."
        )
    if changed and checkpoints:
        raise RunFolderError(
            f"{run.directory} holds a run with other options {changed} "
            "(old, new); use another --out to start a new run."
        )
    if changed:
        print(
            f"{run.directory} holds a run with other options that saved no checkpoint; "
            "starting a new run there."
        )


def _resume_line(directory, checkpoints, epochs):
    """The one line that says where a reopened run continues."""
    done = checkpoints.get("backup", "")
    if done is None:
        return f"Resuming the run in {directory} (its backup/state.json is unreadable)."
    if done == "":  # only the baselines' checkpoints (semi_cgan recipe)
        names = ", ".join(f"{name} ({n} epochs)" for name, n in checkpoints.items())
        return f"Resuming the run in {directory} from its checkpoints {names}."
    if epochs is not None and done >= epochs:
        epochs_done = f"{done} epoch{'' if done == 1 else 's'} done"
        return f"Reopening the finished run in {directory} ({epochs_done}): nothing to train."
    of = "" if epochs is None else f" of {epochs}"
    return f"Resuming the run in {directory} from epoch {done + 1}{of} ({done} done)."


def start_run(name, args, option_defaults=None, **extra_options):
    """Creates (or reopens, to resume) the run folder and applies seed and precision.

    Writes `config.json` with every option, the command line and library
    versions, and holds the folder's lock (`run.lock`) until `Run.close()`,
    the end of the `recipe_main`, or the end of the process. Reopening a
    folder whose run saved a checkpoint (`backup*/state.json`) prints the
    epoch it resumes from; other options there (other than `--epochs`, which
    may grow to extend a run) are refused, since the backup belongs to
    another configuration. A run that failed before its first checkpoint
    protects nothing: a new run replaces its config.

    Args:
        name: the recipe (or model) name, for the default folder.
        args: the parsed options (`argparse.Namespace`); `out` is the folder.
        option_defaults: defaults of `extra_options`, for folders recorded
            before an option existed; a dict default also fills the keys an
            older recorded dict lacks (a model option added since counts as
            its default, so the run still resumes).
        **extra_options: more options to record.

    Raises:
        RunFolderError: the folder is inside `data_dir`, cannot be written,
            is in use by another run, or holds a run with other options.
    """
    import keras

    from gan_zoo.precision import set_precision

    options = {**vars(args), **extra_options}
    defaults = {**options.pop("_defaults", {}), **(option_defaults or {})}
    if options.get("out") is None:
        options["out"] = pathlib.Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = Run(options["out"], options)
    # Options a folder's older config.json lacks count as their defaults.
    run.defaults = _jsonable(defaults)
    check_out_dir(run.directory, options.get("data_dir"))
    run._lock = _RunLock(run.directory / LOCK_NAME)
    _OPEN_RUNS.add(run)
    try:
        run.directory.mkdir(parents=True, exist_ok=True)
        if _is_chief():
            run._lock.acquire()
        checkpoints = _checkpoint_epochs(run.directory)
        _check_options(run, checkpoints)
        run.write_json("config.json", {
            "recipe": name,
            "command": [sys.executable, *sys.argv],
            "options": run.options,
            "versions": _versions(),
        })
    except BaseException as error:
        run.close()  # releases the lock only if this run holds it
        if isinstance(error, OSError) and error.errno in _NOT_WRITABLE:
            raise RunFolderError(
                f"Cannot write the run folder {run.directory}: {error.strerror or error} "
                "(choose a writable --out)."
            ) from None
        raise
    if checkpoints:
        print(_resume_line(run.directory, checkpoints, options.get("epochs")))
    keras.utils.set_random_seed(int(options.get("seed") or 0))
    set_precision(options.get("precision") or "float32")
    return run
