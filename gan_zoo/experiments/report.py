"""A run's metrics.json: its results and where they came from.

Every recipe reports the same provenance beside its results, so that a
number in a table can be traced to the data, the options and the software
that made it:

- `data`: the data folder(s), the split (`Split.summary()`: how it was
  made, patients and records per part) and what the loader skipped;
- `options`: the recipe's options as recorded in the run's config.json;
- `versions`: Python, TensorFlow, Keras, numpy, gan_zoo, platform;
- `seconds`: wall time per stage (`with report.stage("baselines"):`) and
  per unit of work (`Units.seconds()`), and `wall_seconds` in all.

    report = Report(run)
    with report.stage("training"):
        ...
    report.write({"test_metrics": results}, data={"source": str(folder)})
"""

import contextlib
import time


class Report:
    """Collects stage times of one run and writes its metrics.json.

    Args:
        run: the `Run`.
        units: optional `Units` whose per-unit seconds are reported too.
    """

    def __init__(self, run, units=None):
        self.run = run
        self.units = units
        self.started = time.perf_counter()
        self.stage_seconds = {}

    @contextlib.contextmanager
    def stage(self, name):
        """Times the block as stage `name` (added up when entered again)."""
        tic = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + time.perf_counter() - tic

    def seconds(self):
        """`{stage or unit: seconds}` so far."""
        return {**self.stage_seconds, **(self.units.seconds() if self.units is not None else {})}

    def write(self, metrics, *, data):
        """Writes metrics.json: `metrics` plus data, options, versions and times.

        Args:
            metrics: the recipe's results (JSON values).
            data: provenance of the data (folders, split summary, counts).

        Returns:
            The dict written.
        """
        from gan_zoo.experiments.run_folder import _versions

        document = {
            **metrics,
            "data": data,
            "options": self.run.options,
            "versions": _versions(),
            "seconds": self.seconds(),
            "wall_seconds": time.perf_counter() - self.started,
        }
        self.run.write_metrics(document)
        return document
