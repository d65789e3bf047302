"""What a finished run recorded: its model file, training data, budget and measured metrics.

Every value comes from the run's `config.json`, `metrics.json` and
`metrics.jsonl`, or from what the publisher states; what the run did not
record is marked so, never estimated.
"""

import dataclasses
import json
import pathlib

from gan_zoo.presets.layout import PresetError, finite_number, read_json

_DEMO_MARKER = ".gan_zoo_demo.json"  # written by gan_zoo.data.demo into every demo dataset

# metrics.json keys that describe the run rather than measure the model.
_PROVENANCE_KEYS = frozenset({
    "data", "options", "versions", "seconds", "wall_seconds", "model", "epochs", "variant",
    "samples", "command", "date", "what", "hardware", "feature_extractor",
})
FINAL_LOSSES_PROTOCOL = ("training losses of the last epoch: the mean over its training batches "
                         "(the model's Mean trackers, reset every epoch); not a quality measure")


@dataclasses.dataclass
class RunRecord:
    """What a finished run folder recorded.

    Args:
        folder: the run folder (resolved).
        config: its `config.json` (recipe, command, options, versions).
        metrics: its `metrics.json`.
        epochs: the lines of its `metrics.jsonl` (one per epoch).
        model_file: the `.keras` model to publish.
    """

    folder: pathlib.Path
    config: dict
    metrics: dict
    epochs: list
    model_file: pathlib.Path

    @property
    def options(self):
        return self.config.get("options") or {}




def _read_jsonl(path):
    lines = []
    if not path.is_file():
        return lines
    for text in path.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue  # a line cut by a kill: the epochs before it still count
    return lines


def read_run(run, model_file=None):
    """Reads a finished run folder and chooses its model file.

    Args:
        run: the run folder.
        model_file: the `.keras` file to publish (a name inside the run
            folder, or a path); default: `<model>.keras` of the model the
            run names, else the folder's only `.keras` file.

    Raises:
        PresetError: not a run folder, not finished (no `metrics.json`),
            in use (`run.lock`), or no single model file to choose.
    """
    folder = pathlib.Path(run).expanduser()
    if not folder.is_dir():
        raise PresetError(f"Run folder {folder} does not exist." if not folder.exists()
                          else f"{folder} is not a run folder (not a folder).")
    folder = folder.resolve()
    if not (folder / "config.json").is_file():
        raise PresetError(f"{folder} is not a run folder: it has no config.json.")
    config = read_json(folder / "config.json", "the run's options")
    if (folder / "run.lock").exists():
        raise PresetError(f"{folder} is in use by a run (run.lock): publish it once that run has ended "
                          f"(if it is gone, delete {folder / 'run.lock'}).")
    if not (folder / "metrics.json").is_file():
        raise PresetError(f"{folder} has no metrics.json: the run has not finished; finish it "
                          "(rerun its command) before publishing.")
    metrics = read_json(folder / "metrics.json", "the run's results")
    if not isinstance(metrics, dict) or not isinstance(config, dict):
        raise PresetError(f"{folder}: config.json and metrics.json must hold JSON objects.")
    chosen = _choose_model_file(folder, metrics, config.get("options") or {}, model_file)
    return RunRecord(folder, config, metrics, _read_jsonl(folder / "metrics.jsonl"), chosen)


def _choose_model_file(folder, metrics, options, model_file):
    found = sorted(p.name for p in folder.glob("*.keras"))
    if model_file is not None:
        path = pathlib.Path(model_file).expanduser()
        path = path if path.is_absolute() or path.exists() else folder / path
        if not path.is_file():
            listed = ", ".join(found) or "none"
            raise PresetError(f"Model file {model_file} not found (the run's .keras files: {listed}).")
        return path.resolve()
    for name in (metrics.get("model"), options.get("model")):
        if isinstance(name, str) and (folder / f"{name}.keras").is_file():
            return folder / f"{name}.keras"
    if len(found) == 1:
        return folder / found[0]
    if not found:
        raise PresetError(f"{folder} holds no .keras model file to publish.")
    raise PresetError(f"{folder} holds {len(found)} .keras files ({', '.join(found)}); "
                      "name the one to publish (--model-file).")


def _demo_kind(folder):
    """The demo dataset's kind when `folder` is one written by `gan_zoo.data.demo`, else None."""
    try:
        marker = pathlib.Path(folder) / _DEMO_MARKER
        return json.loads(marker.read_text()).get("kind", "demo") if marker.is_file() else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def training_data(record, data_licence=None):
    """The training data's provenance, as the run recorded it.

    Args:
        record: the `RunRecord`.
        data_licence: the dataset's licence as the publisher states it; a
            gan_zoo demo dataset is recognised by its marker file.
    """
    options, data = record.options, record.metrics.get("data")
    folders = {key: value for key, value in sorted(options.items())
               if key.endswith("_dir") and key != "out" and isinstance(value, str) and value}
    source = data.get("source") if isinstance(data, dict) else None
    if isinstance(source, str) and source not in folders.values():
        folders["source"] = source
    demo = next((kind for kind in map(_demo_kind, folders.values()) if kind), None)
    if data_licence:
        licence = {"licence": data_licence, "how_known": "stated by the publisher"}
    elif demo:
        licence = {"licence": f"no third-party data: procedural demo images ({demo}) drawn by "
                   "gan_zoo.data.demo, no patient's images", "how_known": "known from the demo dataset's marker file"}
    else:
        licence = {"licence": None, "how_known": "not recorded by the run (publish with --data-licence)"}
    section = {"folders": folders, "demo_data": demo, **licence}
    for key in ("layout", "classes", "split", "split_seed", "labelled_fraction", "validation_share"):
        if options.get(key) is not None:
            section[key] = options[key]
    section["recorded"] = data if isinstance(data, dict) else None
    return section




def budget(record, steps=None, hardware=None):
    """Epochs, steps, batch size, hardware and wall time, as the run recorded them.

    Args:
        record: the `RunRecord`.
        steps: training steps the model counted (`step_counter`), or None.
        hardware: the training hardware as the publisher states it.
    """
    options, metrics = record.options, record.metrics
    versions = metrics.get("versions") or record.config.get("versions") or {}
    section = {
        "epochs": metrics.get("epochs", options.get("epochs")),
        "steps": steps,
        "batch_size": options.get("batch_size"),
    }
    for key in ("precision", "strategy", "jit", "seed"):
        if key in options:
            section[key] = options[key]
    if metrics.get("hardware"):
        section["hardware"] = {"what": metrics["hardware"], "how_known": "recorded by the run"}
    elif hardware:
        section["hardware"] = {"what": hardware, "how_known": "stated by the publisher"}
    else:
        section["hardware"] = {"what": None, "how_known": "not recorded by the run"}
    section["platform"] = versions.get("platform")
    epoch_seconds = [line["seconds"] for line in record.epochs if finite_number(line.get("seconds"))]
    if finite_number(metrics.get("wall_seconds")):
        section["wall_seconds"] = {"seconds": metrics["wall_seconds"], "what": "the whole run (metrics.json)"}
    elif epoch_seconds:
        count = len(epoch_seconds)
        section["wall_seconds"] = {"seconds": sum(epoch_seconds), "what": f"the {count} training "
                                   f"epoch{'' if count == 1 else 's'} (metrics.jsonl)"}
    else:
        section["wall_seconds"] = {"seconds": None, "what": "not recorded by the run"}
    if isinstance(metrics.get("seconds"), dict):
        section["stage_seconds"] = metrics["seconds"]
    section["trained_with"] = versions
    return section


def _numbers(value, prefix="", depth=0):
    """{dotted key: number or None (non-finite)} of the numeric leaves of a dict (depth <= 3)."""
    if finite_number(value):
        return {prefix: value}
    if isinstance(value, float):
        return {prefix: None}  # NaN / inf: not computed
    if not isinstance(value, dict) or depth > 3:
        return {}
    found = {}
    for key, item in value.items():
        if key == "provenance":
            continue
        found.update(_numbers(item, f"{prefix}.{key}" if prefix else str(key), depth + 1))
    return found


def _protocol_of(metrics, key):
    for candidate in (f"{key}_protocol", f"{key}_method", f"{key.split('_')[0]}_protocol"):
        if isinstance(metrics.get(candidate), str):
            return metrics[candidate]
    return None


def _generative_protocol(provenance, extractor=None):
    keep = ("extractor_id", "weights_sha256", "mode", "input_size", "n_real", "n_fake",
            "reference_source", "reference_split", "fake_source", "seeds", "notes")
    protocol = {key: provenance[key] for key in keep if provenance.get(key) not in (None, [], ())}
    if isinstance(extractor, dict) and extractor.get("what"):
        protocol["extractor"] = extractor["what"]
    return protocol


def measured_metrics(record, scores=()):
    """The model's measured metrics with their protocol: only what was recorded.

    From `metrics.json`: every result holding a score provenance (FID, KID,
    precision/recall... with the feature extractor's id and weights hash,
    sizes, seeds, reference split), every other numeric result with the
    `<name>_protocol` / `<name>_method` text the run wrote beside it (e.g.
    `downstream_test` and `downstream_protocol`: AUROC and its split), and
    the final training losses; then each `gan-zoo score --json` result of
    `scores`.

    Args:
        record: the `RunRecord`.
        scores: `(path, document)` of score files (see `read_scores`).

    Returns:
        A list of `{"name", "source", "values", "protocol"}`; a value that
        was not computed (NaN) is None.
    """
    metrics, found = record.metrics, []
    for key, value in metrics.items():
        if key in _PROVENANCE_KEYS or key.endswith(("_protocol", "_method")):
            continue
        values = _numbers(value)
        if not values:
            continue
        provenance = value.get("provenance") if isinstance(value, dict) else None
        if key == "final":
            protocol = FINAL_LOSSES_PROTOCOL
        elif isinstance(provenance, dict) and provenance.get("extractor_id"):
            protocol = _generative_protocol(provenance, metrics.get("feature_extractor"))
        else:
            protocol = _protocol_of(metrics, key) or "no protocol recorded beside it in metrics.json"
        found.append({"name": key, "source": "metrics.json", "values": values, "protocol": protocol})
    for path, document in scores:
        found.append({"name": f"scores ({pathlib.Path(path).name})", "source": str(path),
                      "values": _numbers(document),
                      "protocol": _generative_protocol(document["provenance"])})
    return found


def read_scores(paths, model_file):
    """Reads `gan-zoo score --json` files that scored `model_file`.

    Args:
        paths: the score files.
        model_file: the model being published.

    Raises:
        PresetError: a file missing or unreadable, without provenance, or
            scoring another model file.
    """
    documents = []
    for path in paths:
        document = read_json(path, "a `gan-zoo score --json` file")
        provenance = document.get("provenance") if isinstance(document, dict) else None
        if not isinstance(provenance, dict) or not provenance.get("extractor_id"):
            raise PresetError(f"{path} is not a `gan-zoo score --json` file (it has no provenance).")
        scored = pathlib.Path(str(provenance.get("fake_source", "")))
        same = scored.name == model_file.name and (not scored.exists() or scored.resolve() == model_file)
        if not same:
            raise PresetError(f"{path} scored {provenance.get('fake_source')}, not the published model "
                              f"{model_file}.")
        documents.append((pathlib.Path(path), document))
    return documents
