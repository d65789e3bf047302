"""Units of work a rerun skips when done: a fold, a model, a fine-tuning.

An experiment is a list of units whose results are small JSON documents. A
finished unit's result is written atomically into the run folder
(`units/<name>.json`) with the seconds it took; a rerun of the same command
in the same folder returns it without computing it again. A unit that was
interrupted has no file and is computed again from its start; GAN training
inside a unit resumes from its own checkpoints (`train_gan`), so nothing
finished is lost either way.

    units = Units(run)
    result = units.get("source/fold0/diagram", lambda: train_and_score(...))
    units.seconds()   # {"source/fold0/diagram": 812.4, ...} for metrics.json
"""

import json
import time

UNIT_FOLDER = "units"


class Units:
    """Finished units of one run folder.

    Args:
        run: the `Run` whose folder holds the results.
        report: optional `(name, result) -> None`, called once when a unit
            finishes (e.g. to print its score); not called for a unit found
            done.
    """

    def __init__(self, run, report=None):
        self.run = run
        self.report = report
        self._seconds = {}

    def path(self, name):
        """The result file of unit `name` ('/' in names become '__')."""
        if not name or name.strip("/") != name:
            raise ValueError(f"A unit needs a name without leading or trailing '/'; got {name!r}.")
        return self.run.path(UNIT_FOLDER, f"{name.replace('/', '__')}.json")

    def done(self, name):
        """Whether unit `name` finished in an earlier or this invocation."""
        return self.path(name).exists()

    def get(self, name, compute):
        """The result of unit `name`: read when done, else `compute()` and stored.

        Args:
            name: the unit's name, unique in the run (e.g. "fold0/cgan").
            compute: `() -> dict` of JSON-serialisable values.
        """
        path = self.path(name)
        if path.exists():
            result = json.loads(path.read_text())
        else:
            tic = time.perf_counter()
            result = compute()
            if not isinstance(result, dict):
                raise TypeError(f"Unit {name!r} must return a dict, got {type(result).__name__}.")
            result = {**result, "seconds": time.perf_counter() - tic}
            self.run.write_json(path.relative_to(self.run.directory), result)
            if self.report is not None:
                self.report(name, result)
        self._seconds[name] = float(result.get("seconds", 0.0))
        return result

    def seconds(self):
        """`{unit: seconds it took}` of the units asked for so far (when first computed)."""
        return dict(self._seconds)
