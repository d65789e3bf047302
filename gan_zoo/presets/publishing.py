"""Publishing a finished run as a preset folder (and its archive)."""

import dataclasses
import datetime
import json
import math
import os
import pathlib
import shutil
import tarfile
import uuid
import zipfile

from gan_zoo.presets.card import model_card
from gan_zoo.presets.layout import (
    CARD_FILE,
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    METADATA_FILE,
    SAMPLES_FILE,
    WEIGHTS_FILE,
    PresetError,
    model_id,
    sha256_of,
)
from gan_zoo.presets.loading import archive_metadata, load_preset, write_archive
from gan_zoo.presets.provenance import budget, measured_metrics, read_run, read_scores, training_data


def _same_run(metadata, run_folder):
    return (isinstance(metadata, dict) and metadata.get("format") == FORMAT
            and (metadata.get("source_run") or {}).get("folder") == str(run_folder))


def check_out(out, run_folder):
    """Whether `out` may receive a preset of `run_folder`; returns True when it holds one to replace.

    Args:
        out: the preset folder to write.
        run_folder: the resolved run folder.

    Raises:
        PresetError: `out` is a file, the run folder or inside it, or a
            non-empty folder that does not hold a preset of this run.
    """
    out = pathlib.Path(out).expanduser()
    if out.is_file():
        raise PresetError(f"{out} is a file; give a folder for the preset.")
    resolved = out.resolve()
    if resolved == run_folder or run_folder in resolved.parents:
        raise PresetError(f"{out} is inside the run folder {run_folder}; publish the preset elsewhere.")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    metadata_path = out / METADATA_FILE
    metadata = None
    if metadata_path.is_file():
        try:
            metadata = json.loads(metadata_path.read_text())
        except (OSError, ValueError):
            metadata = None
    if _same_run(metadata, run_folder):
        return True
    what = (f"a preset of another run ({metadata['source_run'].get('folder')})"
            if isinstance(metadata, dict) and metadata.get("format") == FORMAT else "other files")
    raise PresetError(f"{out} is not empty and holds {what}; choose an empty or new folder "
                      "(only a preset of the same run is replaced).")


def _archive_path(out):
    out = pathlib.Path(out).expanduser()
    return out.with_name(out.name + ".tar.gz")


def _check_archive_target(path, run_folder):
    if not path.exists():
        return
    try:
        metadata = archive_metadata(path)
    except (OSError, ValueError, tarfile.TarError, zipfile.BadZipFile):
        metadata = None
    if not _same_run(metadata, run_folder):
        raise PresetError(f"{path} exists and is not an archive of a preset of this run; move it away "
                          "or publish to another folder.")


@dataclasses.dataclass(frozen=True)
class Published:
    """What `publish` wrote.

    Args:
        folder: the preset folder.
        metadata: its `metadata.json`.
        archive: the `.tar.gz` archive of it, or None.
        archive_sha256: the archive's SHA-256, or None.
    """

    folder: pathlib.Path
    metadata: dict
    archive: pathlib.Path | None = None
    archive_sha256: str | None = None


def _jsonable(value):
    def default(item):
        try:
            return item.item()  # numpy scalars
        except AttributeError:
            return str(item)

    def clean(item):
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {str(k): clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        return item

    return clean(json.loads(json.dumps(value, default=default)))


def _write_json(path, data):
    path.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


def _signatures(model):
    """'name(input: dtype[shape], ...)' of each serving signature of `model`."""
    from gan_zoo.export_lib import serving_endpoints

    lines = []
    for name, (_, specs) in serving_endpoints(model).items():
        inputs = ", ".join(
            f"{spec.name}: {spec.dtype.name}[{', '.join('N' if d is None else str(d) for d in spec.shape)}]"
            for spec in specs)
        lines.append(f"{name}({inputs})")
    return lines


def _load_run_model(path):
    """The run's model (without its optimizers); an unreadable file is a PresetError."""
    import gan_zoo

    try:
        return gan_zoo.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError) as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise PresetError(f"Cannot load {path}: {lines[0] if lines else type(error).__name__}") from None


def _model_config(model, spec):
    """The registry options of `model` (from its `get_config`)."""
    from gan_zoo.weights import model_identity

    saved = model_identity(model)["config"]
    missing = sorted(set(spec.config) - set(saved))
    if missing:
        raise PresetError(f"The {type(model).__name__} in the run does not record the option(s) {missing} "
                          "in its config: it cannot be rebuilt from a preset.")
    return {key: saved[key] for key in spec.config}


def _spec_for(model, record):
    from gan_zoo.registry import spec_of_class

    spec = spec_of_class(type(model))
    if spec is None:
        raise PresetError(f"{record.model_file} holds a {type(model).__name__}, which is not a registered "
                          "zoo model (see `gan-zoo list`).")
    return spec


def _last_sample_grid(folder):
    grids = sorted((folder / "samples").glob("*.png")) if (folder / "samples").is_dir() else []
    return grids[-1] if grids else None


def publish(run, out, *, model_file=None, data_licence=None, hardware=None, scores=(), archive=False):
    """Writes a finished run as a preset folder (and optionally its archive).

    Everything that can be refused is checked before the model is loaded:
    the run (finished, not in use, one model file), `out` (new, empty, or a
    preset of this same run, which is replaced), the archive path and the
    score files. The preset is written into a hidden sibling folder, loaded
    back and compared weight by weight with the run's model, and only then
    renamed to `out`.

    Args:
        run: the run folder.
        out: the preset folder to write.
        model_file: the run's `.keras` file to publish (see `read_run`).
        data_licence: the training data's licence, as the publisher states
            it (a gan_zoo demo dataset is recognised by itself).
        hardware: the training hardware, as the publisher states it, when
            the run did not record it.
        scores: `gan-zoo score --json` files that scored this model file.
        archive: also write `<out>.tar.gz` (reproducible: fixed order,
            times and owners) for `gan_zoo.load(name, weights=URL,
            weights_sha256=...)`.

    Returns:
        A `Published`.

    Raises:
        PresetError: the run or `out` cannot be used (one line).
    """
    record = read_run(run, model_file)
    out = pathlib.Path(out).expanduser()
    replace = check_out(out, record.folder)
    if archive:
        _check_archive_target(_archive_path(out), record.folder)
    score_documents = read_scores(scores, record.model_file)

    from gan_zoo.weights import save_weights

    model = _load_run_model(record.model_file)
    spec = _spec_for(model, record)
    config = _model_config(model, spec)
    steps = int(model.step_counter.numpy()) if hasattr(model, "step_counter") else None

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        _write_json(partial / CONFIG_FILE, {"format": FORMAT, "registry_name": spec.name,
                                            "class_name": type(model).__name__, "config": config})
        save_weights(model, partial / WEIGHTS_FILE)
        grid = _last_sample_grid(record.folder)
        if grid is not None:
            shutil.copyfile(grid, partial / SAMPLES_FILE)
        files = {path.name: {"sha256": sha256_of(path), "bytes": path.stat().st_size}
                 for path in sorted(partial.iterdir())}
        metadata = _jsonable(_metadata(record, spec, model, config, steps, files, data_licence, hardware,
                                       score_documents, grid))
        metadata["files"] = dict(files)  # the card lists them (all but itself)
        (partial / CARD_FILE).write_text(model_card(metadata))
        files[CARD_FILE] = {"sha256": sha256_of(partial / CARD_FILE),
                            "bytes": (partial / CARD_FILE).stat().st_size}
        metadata["files"] = dict(sorted(files.items()))
        _write_json(partial / METADATA_FILE, metadata)
        _check_rebuilds(partial, model)
        _move_into_place(partial, out, replace)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    metadata = json.loads((out / METADATA_FILE).read_text())
    if not archive:
        return Published(out, metadata)
    path, digest = write_archive(out, _archive_path(out))
    return Published(out, metadata, path, digest)


def _metadata(record, spec, model, config, steps, files, data_licence, hardware, scores, grid):
    inputs, outputs = spec.interface(config)
    import gan_zoo

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_id": model_id(spec.name, files[WEIGHTS_FILE]["sha256"]),
        "gan_zoo_version": gan_zoo.__version__,
        "published": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "registry_name": spec.name,
            "class_name": type(model).__name__,
            "description": spec.description,
            "citation": spec.citation,
            "modality": spec.modality,
            "task": spec.task,
            "capabilities": list(spec.capabilities),
            "inputs": inputs,
            "outputs": outputs,
            "signatures": _signatures(model),
            "config": config,
            "requested_config": _requested_config(record, spec),
            "paper_defaults": dict(spec.config),
        },
        "source_run": {
            "folder": str(record.folder),
            "recipe": record.config.get("recipe"),
            "command": record.config.get("command"),
            "model_file": record.model_file.name,
            "model_file_sha256": sha256_of(record.model_file),
            "sample_grid": grid.name if grid is not None else None,
        },
        "options": record.options,
        "training_data": training_data(record, data_licence),
        "budget": budget(record, steps, hardware),
        "metrics": measured_metrics(record, scores),
    }


def _requested_config(record, spec):
    """The model options the run asked for (`gan-zoo train` records them), or None.

    They can differ from the model's resolved config where an option's
    default means "from another option" (DCGAN's `real_label=None`: the
    variant's value).
    """
    requested = record.options.get("model_config")
    if not isinstance(requested, dict):
        return None
    return {key: requested[key] for key in spec.config if key in requested}


def _check_rebuilds(folder, model):
    """Refuses a preset that does not rebuild `model` exactly (every weight compared)."""
    import numpy as np

    rebuilt = load_preset(folder)
    mine, theirs = model.weights, rebuilt.weights
    if len(mine) != len(theirs):
        raise PresetError(f"The preset rebuilds a model with {len(theirs)} weights, the run's has {len(mine)}.")
    for a, b in zip(mine, theirs):
        if not np.array_equal(np.asarray(a), np.asarray(b)):
            raise PresetError(f"The preset does not rebuild the run's model: its weight {a.path} differs.")


def _move_into_place(partial, out, replace):
    if replace:
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
        os.rename(partial, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if out.is_dir():
            out.rmdir()  # empty (check_out)
        os.rename(partial, out)
