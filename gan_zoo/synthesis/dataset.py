"""Writing a synthetic dataset: checks first, then batches, resumable, with a manifest.

`synthesize` checks everything it can before the first image (the
arguments, the model, the source folders, the output folder), then writes
the images batch by batch: a batch is generated, its files written, and
only then its entries appended to a hidden progress file
(`.manifest-images.jsonl`), flushed to disk. Memory holds one batch of
images. A rerun with the same arguments reads the progress file, cuts it
to whole batches and goes on from there (the same batches, so the same
files); other arguments are refused. At the end the layout's index files
and `manifest.json` (header and one entry per image) are written and the
progress file removed.

`manifest.json`:

- `format`, `format_version`, `gan_zoo_version`, `status` ("incomplete"
  while writing, then "complete"), `count`, `layout`;
- `model`: registry id, class, SHA-256 of its weight values
  (`weights_sha256`), the file it came from and that file's SHA-256, its
  config;
- `arguments`: what the images are a function of (n, labels, seed,
  batch size, layout, --masks / --translate folders, direction, patient);
- `seed_rule`, `regenerate`: how an image's seed is derived and how to
  make one image again;
- `images` (when complete): per image its index, file, seed, label and,
  for ciGAN, the context patch and the mask it was painted in (source
  file, patient, corner), for CycleGAN the source patch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib

from gan_zoo.synthesis.errors import SynthesisError
from gan_zoo.synthesis.layouts import LAYOUTS, make_layout
from gan_zoo.synthesis.plans import InfillPlan, LatentPlan, TranslatePlan, parse_label_counts
from gan_zoo.synthesis.sources import open_model

MANIFEST = "manifest.json"
PROGRESS = ".manifest-images.jsonl"
LOCK = ".synthesize.lock"
FORMAT = "gan_zoo synthetic dataset"
FORMAT_VERSION = 1
MAX_SEED = 2**32 - 1
SEED_RULE = "image i's seed is numpy.random.SeedSequence([seed, i]).generate_state(1)[0]"
REGENERATE = "gan_zoo.synthesis.regenerate(MODEL, OUT, index) makes image `index` again on its own"


@dataclasses.dataclass(frozen=True)
class SynthesisResult:
    """What a `synthesize` call did.

    Args:
        out: the output folder.
        layout: the layout written.
        count: images in the finished dataset.
        generated: images this call generated.
        resumed_from: images already there when it started.
        manifest: the `manifest.json` path.
    """

    out: pathlib.Path
    layout: str
    count: int
    generated: int
    resumed_from: int
    manifest: pathlib.Path


def make_plan(model, *, n=None, labels=None, seed=0, masks=None, translate=None, direction=None):
    """The plan of a synthesis: which images, from what (see `gan_zoo.synthesis.plans`).

    Args:
        model: the loaded zoo model.
        n: number of images (None: from `labels`, or all patches to translate).
        labels: "0:500,1:500", `{label: count}` or `(label, count)` pairs.
        seed: the synthesis seed.
        masks: ciGAN's CBIS-DDSM folder of masks and lesion-free context.
        translate: CycleGAN's IDC folder of patches to translate.
        direction: CycleGAN's direction, "a_to_b" or "b_to_a".

    Raises:
        SynthesisError: an option that does not fit the model.
    """
    pairs = parse_label_counts(labels)
    translator = hasattr(model, "translation_directions") and not hasattr(model, "infill")
    if translate is not None:
        if not translator:
            raise SynthesisError(f"--translate needs an image translator (CycleGAN); this is a {type(model).__name__}.")
        if pairs is not None:
            raise SynthesisError("--labels does not apply to --translate: the translation's class is the other class.")
        if masks is not None:
            raise SynthesisError("--masks applies only to ciGAN, not with --translate.")
        if direction is None:
            raise SynthesisError("--translate needs --direction a_to_b (class 0 to 1) or b_to_a (1 to 0).")
        return TranslatePlan(model, str(translate), direction, n, seed)
    if direction is not None:
        raise SynthesisError("--direction applies only with --translate FROM_DIR.")
    if hasattr(model, "infill"):
        if masks is None:
            raise SynthesisError(
                "ciGAN paints lesions into real patches: give --masks FROM_DIR, a CBIS-DDSM folder "
                "whose lesion masks and lesion-free tissue it uses."
            )
        return InfillPlan(model, str(masks), n, pairs, seed)
    if masks is not None:
        raise SynthesisError(f"--masks applies only to ciGAN; this is a {type(model).__name__}.")
    if translator:
        raise SynthesisError("This model translates images: give --translate FROM_DIR --direction a_to_b|b_to_a.")
    if not (hasattr(model, "generate") and hasattr(model, "latent")):
        raise SynthesisError(f"A {type(model).__name__} generates no images.")
    return LatentPlan(model, n, pairs, seed)


def default_layout(plan):
    """ciGAN: cbis_ddsm; CycleGAN and 50x50 RGB generators: idc; other generators: tiles."""
    from gan_zoo.data.idc import PATCH_SIZE

    if isinstance(plan, InfillPlan):
        return "cbis_ddsm"
    if isinstance(plan, TranslatePlan) or tuple(plan.image_shape) == (PATCH_SIZE, PATCH_SIZE, 3):
        return "idc"
    return "tiles"


def _resolved(path):
    return None if path is None else str(pathlib.Path(path).expanduser().resolve())


def read_manifest(out):
    """The `manifest.json` of a synthesis output folder, or None when `out` is new or empty.

    Raises:
        SynthesisError: `out` is a file, or a folder holding anything but a
            synthesis output (a data folder, say).
    """
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise SynthesisError(f"--out {out} is a file; give a folder.")
    if not out.is_dir() or not any(entry.name != LOCK for entry in out.iterdir()):
        return None
    path = out / MANIFEST
    refusal = (f"--out {out} holds files but is not a gan-zoo synthesize output ({{}}): refusing to "
               "write into what may be a data folder; choose a new or empty folder.")
    if not path.is_file():
        raise SynthesisError(refusal.format(f"no {MANIFEST}"))
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, OSError):
        raise SynthesisError(refusal.format(f"{MANIFEST} is not readable JSON")) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SynthesisError(refusal.format(f"its {MANIFEST} is not one synthesize wrote"))
    return manifest


def check_out_folder(out, sources):
    """Refuses an output folder inside (or holding) a source folder, or a data folder.

    Args:
        out: the output folder.
        sources: the folders images are read from (None entries skipped).

    Returns:
        The existing manifest, or None.
    """
    resolved = pathlib.Path(out).expanduser().resolve()
    for source in sources:
        if source is None:
            continue
        folder = pathlib.Path(source).expanduser().resolve()
        if resolved == folder or folder in resolved.parents:
            raise SynthesisError(f"--out {out} is inside {source}: the synthetic images would become part "
                                 "of that data; choose a folder outside it.")
        if resolved in folder.parents:
            raise SynthesisError(f"{source} is inside --out {out}; choose an --out outside the data.")
    return read_manifest(out)


def _differences(stored, wanted):
    keys = sorted(set(stored) | set(wanted))
    return [f"{k}: {stored.get(k)!r} there, {wanted.get(k)!r} now" for k in keys if stored.get(k) != wanted.get(k)]


@dataclasses.dataclass
class Synthesis:
    """A checked synthesis, ready to `run` (made by `prepare`).

    Args:
        out: the output folder.
        source: the `ModelSource`.
        plan: the plan.
        layout: the layout writer.
        arguments: the manifest's `arguments`.
        batch_size: images per batch.
        existing: the manifest already in `out`, or None.
    """

    out: pathlib.Path
    source: object
    plan: object
    layout: object
    arguments: dict
    batch_size: int
    existing: dict | None

    @property
    def count(self):
        return self.plan.count

    def header(self, status):
        """The manifest without its images."""
        import gan_zoo

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "gan_zoo_version": gan_zoo.__version__,
            "status": status,
            "count": self.count,
            "layout": self.layout.name,
            "model": self.source.describe(),
            "arguments": self.arguments,
            "seed_rule": SEED_RULE,
            "regenerate": REGENERATE,
        }

    def _committed(self):
        """Images already written, in whole batches; the progress file cut to them."""
        path = self.out / PROGRESS
        if not path.is_file():
            return 0
        lines = []
        with open(path) as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    break  # a line cut short by an interruption
                if entry.get("index") != len(lines):
                    break
                lines.append(line if line.endswith("\n") else line + "\n")
        done = min(len(lines), self.count) // self.batch_size * self.batch_size
        if done == self.count or len(lines) >= self.count:
            done = min(len(lines), self.count)
        _write_atomically(path, "".join(lines[:done]))
        return done

    def _entries(self):
        with open(self.out / PROGRESS) as handle:
            for line in handle:
                yield json.loads(line)

    def _write_manifest(self, status):
        """manifest.json: the header, and when complete every image (streamed, not held)."""
        header = self.header(status)
        temporary = self.out / f".{MANIFEST}.partial"
        with open(temporary, "w") as handle:
            handle.write("{\n")
            handle.write(",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in header.items()))
            if status == "complete":
                handle.write(',\n  "images": [')
                for i, entry in enumerate(self._entries()):
                    handle.write(("\n    " if i == 0 else ",\n    ") + json.dumps(entry))
                handle.write("\n  ]")
            handle.write("\n}\n")
        os.replace(temporary, self.out / MANIFEST)

    def run(self, progress=True):
        """Writes the images (continuing an interrupted run) and the manifest.

        Args:
            progress: show a progress bar.

        Returns:
            A `SynthesisResult`.
        """
        result = dict(out=self.out, layout=self.layout.name, count=self.count, manifest=self.out / MANIFEST)
        if self.existing is not None and self.existing.get("status") == "complete":
            (self.out / PROGRESS).unlink(missing_ok=True)  # left by an interruption after the manifest
            return SynthesisResult(generated=0, resumed_from=self.count, **result)
        self.out.mkdir(parents=True, exist_ok=True)
        with _folder_lock(self.out):
            done = self._write(progress)
        return SynthesisResult(generated=self.count - done, resumed_from=done, **result)

    def _write(self, progress):
        """Generates and writes what is missing; returns how many images were already there."""
        done = self._committed() if self.existing is not None else 0
        if self.existing is None:
            _write_atomically(self.out / PROGRESS, "")
            self._write_manifest("incomplete")
        bar = None
        if progress:
            import keras

            bar = keras.utils.Progbar(self.count, unit_name="image")
            if done:
                bar.update(done)
        try:
            self.layout.truncate(done)
            for start in range(done, self.count, self.batch_size):
                entries = [self.plan.entry(i) for i in range(start, min(start + self.batch_size, self.count))]
                images = self.plan.produce(entries)
                self.layout.write(entries, images, self.plan)
                with open(self.out / PROGRESS, "a") as handle:
                    for entry in entries:
                        public = {k: v for k, v in entry.items() if not k.startswith("_")}
                        handle.write(json.dumps(public) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                if bar is not None:
                    bar.update(start + len(entries))
            self.layout.finish(self._entries())
        finally:
            self.layout.close()
        self._write_manifest("complete")
        (self.out / PROGRESS).unlink()
        return done


@contextlib.contextmanager
def _folder_lock(out):
    """Holds an exclusive lock on `out` (released when the process ends, even killed).

    Raises:
        SynthesisError: another process is writing into `out`.
    """
    import fcntl

    path = pathlib.Path(out) / LOCK
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SynthesisError(f"Another process is writing into {out}; let it finish, or choose another --out.") from None
        yield
        path.unlink(missing_ok=True)


def _write_atomically(path, text):
    temporary = path.with_name(f"{path.name}.partial")
    temporary.write_text(text)
    os.replace(temporary, path)


def _check_number(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        limit = f"{low}..{high}" if high is not None else f">= {low}"
        raise SynthesisError(f"{name} must be an integer {limit}; got {value!r}.")
    return value


def prepare(model, *, out, n=None, labels=None, seed=0, batch_size=64, masks=None, translate=None,
            direction=None, layout=None, patient_id="synthetic"):
    """Checks a synthesis without generating anything (see `synthesize` for the arguments).

    Returns:
        A `Synthesis` to `run`.

    Raises:
        SynthesisError: the first problem found, in one line.
    """
    if n is not None:
        _check_number("n", n, 1)
    _check_number("seed", seed, 0, MAX_SEED)
    _check_number("batch_size", batch_size, 1)
    if layout is not None and layout not in LAYOUTS:
        raise SynthesisError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}.")
    for option, folder in (("--masks", masks), ("--translate", translate)):
        if folder is not None and not pathlib.Path(folder).expanduser().is_dir():
            raise SynthesisError(f"{option} {folder} is not a folder.")
    existing = check_out_folder(out, (masks, translate))
    source = open_model(model)
    plan = make_plan(source.model, n=n, labels=labels, seed=seed, masks=masks, translate=translate,
                     direction=direction)
    writer = make_layout(layout or default_layout(plan), out, patient_id)
    writer.check(plan)
    arguments = {
        "model_id": source.name,
        "weights_sha256": source.weights_sha256,
        "n": plan.count,
        "labels": [list(pair) for pair in plan.labels] if getattr(plan, "labels", None) else None,
        "seed": seed,
        "batch_size": batch_size,
        "layout": writer.name,
        "masks": _resolved(masks),
        "translate": _resolved(translate),
        "direction": direction,
        "patient_id": patient_id if writer.name == "idc" else None,
    }
    if existing is not None:
        differences = _differences(existing.get("arguments") or {}, arguments)
        if differences:
            raise SynthesisError(
                f"--out {out} holds a synthesis made with other arguments ({'; '.join(differences)}); "
                "rerun with the same arguments to continue it, or choose another --out."
            )
    return Synthesis(pathlib.Path(out).expanduser(), source, plan, writer, arguments, batch_size, existing)


def synthesize(model, *, out, n=None, labels=None, seed=0, batch_size=64, masks=None, translate=None,
               direction=None, layout=None, patient_id="synthetic", progress=True):
    """Writes a synthetic dataset in a layout the project's loaders read.

    Latent generators (DCGAN, the semi-supervised cGAN, PathologyGAN) write
    `n` generated images; ciGAN paints `n` lesions into lesion-free patches
    of `masks`; CycleGAN translates the patches of one class of
    `translate`. Layouts: see `gan_zoo.synthesis.layouts`. Calling it again
    with the same arguments and `out` continues an interrupted run and
    gives the files an uninterrupted one gives; other arguments are
    refused. A folder that holds anything but a synthesis output is
    refused. Image i's seed is `image_seed(seed, i)`, and
    `regenerate(model, out, i)` makes image i again on its own.

    Args:
        model: a zoo model, a run folder (one `.keras` file in it) or a
            `.keras` file.
        out: the output folder (new, empty, or an earlier synthesis).
        n: number of images; None when `labels` gives counts (or, with
            `translate`, every patch of the source class).
        labels: class counts, "0:500,1:500" or `{0: 500, 1: 500}`, written
            in blocks in that order. Conditional generators: default equal
            shares; an unconditional generator's one class (needed for the
            IDC layout); ciGAN: the class of the painted lesion (0
            non-malignant, 1 malignant), default equal shares.
        seed: the synthesis seed (0..2**32-1).
        batch_size: images generated and written per batch (memory holds one).
        masks: ciGAN: a CBIS-DDSM folder (masks, lesion-free tissue).
        translate: CycleGAN: an IDC-layout folder of patches to translate.
        direction: CycleGAN: "a_to_b" (class 0 to 1) or "b_to_a".
        layout: "idc", "cbis_ddsm", "tiles" or "hdf5"; default by model
            (`default_layout`).
        patient_id: the synthetic patient of generated IDC patches.
        progress: show a progress bar.

    Returns:
        A `SynthesisResult`.

    Raises:
        SynthesisError: a problem with the request, found before any image
            is generated.

    Example:

    >>> synthesize("runs/dcgan", n=1000, labels="0:500,1:500", out="synthetic/idc", seed=0)
    >>> scan_idc("synthetic/idc").class_counts
    {0: 500, 1: 500}
    """
    job = prepare(model, out=out, n=n, labels=labels, seed=seed, batch_size=batch_size, masks=masks,
                  translate=translate, direction=direction, layout=layout, patient_id=patient_id)
    return job.run(progress=progress)


def regenerate(model, out, index):
    """Image `index` of a synthesis in `out`, generated again on its own.

    Args:
        model: the model the synthesis used (object, run folder or `.keras`
            file; its weights must hash as the manifest says).
        out: the synthesis output folder.
        index: the image's index.

    Returns:
        float32 `[H, W, C]` in [0, 1] (the file holds it rounded to 8 bits).
    """
    manifest = read_manifest(out)
    if manifest is None:
        raise SynthesisError(f"{out} holds no synthesis.")
    arguments = manifest["arguments"]
    _check_number("index", index, 0, arguments["n"] - 1)
    source = open_model(model)
    if source.weights_sha256 != arguments["weights_sha256"]:
        raise SynthesisError(f"This model's weights are not the ones that wrote {out} (weights_sha256 differs).")
    plan = make_plan(source.model, n=arguments["n"], labels=arguments["labels"], seed=arguments["seed"],
                     masks=arguments["masks"], translate=arguments["translate"], direction=arguments["direction"])
    return plan.produce_alone(plan.entry(index))
