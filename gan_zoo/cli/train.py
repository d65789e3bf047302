"""`gan-zoo train`: train a zoo GAN on an image folder, an IDC folder or the demo data."""

import argparse
import dataclasses
import pathlib
import sys
import textwrap
import time

import gan_zoo
from gan_zoo.arguments import HelpFormatter, parse_overrides, positive_int, seed
from gan_zoo.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    PROG,
    CommandFailed,
    UsageError,
    data_problem_line,
    describe_write_error,
    message,
    write_error,
)
from gan_zoo.cli.loading import build, get_spec, resolve_config
from gan_zoo.options import PRECISIONS, STRATEGIES
from gan_zoo.data.idc import idc_size_problem, scan_idc_for_command
from gan_zoo.experiments.run_folder import check_out_dir, start_run

LAYOUTS = ("folder", "idc")
IDC_TOP_FOLDER = "IDC_regular_ps50_idx5"  # the original release's top folder


def add_parser(commands):
    """Adds `train` to the `gan-zoo` sub-command parsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers` returned.
    """
    p = commands.add_parser(
        "train", help="train a zoo GAN on an image folder or the demo data",
        description=textwrap.dedent("""\
            Trains a zoo GAN (task "generator") on an image folder, or without
            --data-dir on the procedural demo histology data. The run folder
            (--out) receives config.json, metrics.jsonl, sample grids, a
            TensorBoard log, the resumable backup and finally <model>.keras.
            Rerunning the same command with the same --out resumes it."""),
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL",
                   help="registry name of the GAN (see `gan-zoo list --task generator`)")
    p.add_argument("--data-dir", type=pathlib.Path, default=None,
                   help="dataset folder (default: the procedural demo histology data, IDC layout)")
    p.add_argument("--layout", choices=LAYOUTS, default="folder",
                   help="how --data-dir is organised: 'folder' = <class>/<images> (any "
                   "size, resized); 'idc' = the Kaggle IDC layout <patient>/<0|1>/*.png "
                   "(or its zip), trained at the patch side 50, off-size edge patches "
                   "padded, not stretched; a folder in the IDC layout given as 'folder' "
                   "is refused (its patients would become classes)")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="unreadable images (corrupt, truncated, dangling links) and files "
                   "off the layout are found before training: 'raise' stops with one line "
                   "naming the first; 'skip' leaves them out (counted in metrics.json)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model config value; repeatable; values are Python "
                   "literals or strings, e.g. --set variant=v3 --set image_size=50")
    p.add_argument("--preset", default=None,
                   help="a named set of option values registered with the model (see "
                   "`gan-zoo list --verbose`); --set values win over it")
    p.add_argument("--conditional", action="store_true",
                   help="train a class-conditional GAN: sets num_classes to the number "
                   "of classes in the data (for models with a num_classes option)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="total training epochs (default: the model's paper default, "
                   "from default_training())")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="global batch size (default: the model's paper default)")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of the weights, data order and training noise (0..2**32-1)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="Keras dtype policy (bfloat16 is faster on GPUs and CPUs "
                   "with AVX512_BF16)")
    p.add_argument("--jit", action="store_true",
                   help="XLA-compile the train step (often faster on GPU, slower on CPU)")
    p.add_argument("--out", type=pathlib.Path, default=None,
                   help="run folder (default: runs/<model>-<date>-<time>); an existing "
                   "run folder is resumed; not inside --data-dir")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="tf.distribute strategy: 'auto' mirrors over several GPUs, "
                   "else one device")
    p.add_argument("--sample-every", type=positive_int, default=1,
                   help="epochs between sample grids (one is always saved at the end)")
    p.set_defaults(handler=run)
    return p


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """The images to train on and how they were found.

    Args:
        path: the data folder.
        layout: one of `LAYOUTS`.
        records: the `ImageRecord`s.
        class_names: names of the labels, in label order.
        size_policy: of `gan_zoo.data.pipeline.training_stream`.
        summary: a line (or a few) describing the data.
        skipped: `(path, reason)` of files left out (`--on-error skip`).
    """

    path: pathlib.Path
    layout: str
    records: list
    class_names: tuple
    size_policy: str
    summary: str
    skipped: tuple = ()

    def class_counts(self):
        """{label: images} for every class, zeros included."""
        counts = {label: 0 for label in range(len(self.class_names))}
        for record in self.records:
            counts[record.label] = counts.get(record.label, 0) + 1
        return counts


def _scan_error(error):
    """A scan's error as a one-line UsageError (bad files: the first, named)."""
    return UsageError(data_problem_line(error))


def training_data(data_dir, layout, on_error="raise"):
    """Scans `data_dir` (default: the demo data) in `layout`.

    Every image is decoded once by the pipeline's decoder while scanning,
    so an unreadable file is found now, not when its batch is reached.

    Args:
        data_dir: the data folder, or None for the procedural demo data.
        layout: one of `LAYOUTS` (ignored for the demo data, which is IDC).
        on_error: "raise" or "skip" for unreadable or misplaced files.
    """
    if data_dir is None:
        from gan_zoo.data.demo import demo_dir

        try:
            data_dir = demo_dir("histology")
        except (OSError, ValueError) as error:
            raise UsageError(f"Cannot prepare the demo data: {message(error)}") from None
        layout = "idc"
        print(f"No --data-dir: training on the procedural demo histology data in {data_dir}.")
    data_dir = pathlib.Path(data_dir)
    if layout == "idc":
        from gan_zoo.data import idc

        dataset = scan_idc_for_command(data_dir, on_error)
        return TrainingData(
            data_dir, layout, dataset.records(), idc.CLASS_NAMES, idc.IDC_SIZE_POLICY,
            dataset.summary(), tuple(dataset.skipped),
        )
    hint = idc_layout_hint(data_dir)
    if hint:
        raise UsageError(hint)
    from gan_zoo.data.image_folder import scan_image_folder

    try:
        folder = scan_image_folder(data_dir, verify=True, on_error=on_error)
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        raise _scan_error(error) from None
    counts = ", ".join(f"{name}: {n}" for name, n in folder.class_counts().items())
    summary = (
        f"Image folder {data_dir}: {len(folder)} images in "
        f"{len(folder.class_names)} classes ({counts})."
    )
    if folder.skipped:
        summary += f"\n  skipped files (--on-error skip): {len(folder.skipped)}"
    return TrainingData(
        data_dir, layout, list(folder.records), folder.class_names, "resize", summary,
        tuple(folder.skipped),
    )


def _visible(folder):
    return sorted(e for e in folder.iterdir() if not e.name.startswith("."))


def idc_layout_hint(data_dir):
    """The error for an IDC dataset given as `--layout folder`; None for other data.

    Read as a class-per-folder tree, the IDC layout <patient>/<0|1>/*.png
    gives one class per patient, and its 50x50 patches would be resized:
    refused, with the hint `--layout idc`, rather than switched silently,
    so that the layout recorded in config.json is the one the user typed.

    Args:
        data_dir: the --data-dir folder.
    """
    path = pathlib.Path(data_dir)
    hint = "pass --layout idc (read as --layout folder, its patients would be the classes)"
    if path.is_file() and path.suffix.lower() == ".zip":
        return f"{path} is a zip archive, not an image folder; for the IDC release's zip {hint}."
    if not path.is_dir():
        return None
    if (path / IDC_TOP_FOLDER).is_dir():
        return f"{path} holds the IDC release ({IDC_TOP_FOLDER}/): {hint}."
    patients = _visible(path)
    if not patients or not all(p.is_dir() for p in patients):
        return None
    for patient in patients:
        labels = _visible(patient)
        if not labels or not all(e.is_dir() and e.name in ("0", "1") for e in labels):
            return None
    return (
        f"{path} is in the IDC layout <patient>/<0|1>/*.png (e.g. {patients[0].name}/"
        f"{_visible(patients[0])[0].name}/): {hint}."
    )


def model_overrides(args, spec, data, overrides):
    """The `--set` overrides, plus what --conditional, the data and --seed imply.

    Args:
        args: the parsed `train` options.
        spec: the model's registry entry.
        data: the `TrainingData`.
        overrides: the parsed `--set` values.
    """
    overrides = dict(overrides)
    if args.conditional:
        if "num_classes" not in spec.config:
            raise UsageError(f"{spec.name!r} has no num_classes option: it cannot be conditional.")
        wanted = len(data.class_names)
        if overrides.get("num_classes", wanted) != wanted:
            raise UsageError(
                f"--conditional gives num_classes={wanted} (the data's classes) but "
                f"--set gives num_classes={overrides['num_classes']}."
            )
        overrides["num_classes"] = wanted
    if data.layout == "idc" and "image_size" in overrides:
        problem = idc_size_problem(overrides["image_size"])
        if problem:
            raise UsageError(f"--set image_size={overrides['image_size']!r}: {problem}")
    elif data.layout == "idc":
        from gan_zoo.data.idc import PATCH_SIZE

        if spec.config.get("image_size", PATCH_SIZE) != PATCH_SIZE:
            print(
                f"IDC patches are {PATCH_SIZE}x{PATCH_SIZE}: training at image_size={PATCH_SIZE} "
                f"(the model's default is {spec.config['image_size']}; the IDC size policy "
                "pads or crops, never stretches)."
            )
            overrides["image_size"] = PATCH_SIZE
    if "seed" in spec.config and "seed" not in overrides:
        overrides["seed"] = args.seed
    return overrides


def check_every_class_present(data, num_classes):
    """Refuses a conditional GAN for data with no images of a class.

    It would learn nothing for that class and sample noise for it.

    Args:
        data: the `TrainingData`.
        num_classes: the model's num_classes (0: unconditional, no check).
    """
    if not num_classes:
        return
    empty = [
        f"{data.class_names[label]!r} (label {label})"
        for label, count in data.class_counts().items() if count == 0
    ]
    if empty:
        raise UsageError(
            f"{data.path} has no images of class {', '.join(empty)}: a conditional GAN "
            "needs images of every class (train without --conditional, or add images)."
        )


def training_length(args, gan):
    """(epochs, batch_size): the flags, else the model's `default_training()`.

    Args:
        args: the parsed `train` options.
        gan: the built model.
    """
    defaults = gan.default_training() if hasattr(gan, "default_training") else {}
    epochs = args.epochs if args.epochs is not None else defaults.get("epochs")
    batch_size = args.batch_size if args.batch_size is not None else defaults.get("batch_size")
    missing = [
        flag for flag, value in (("--epochs", epochs), ("--batch-size", batch_size))
        if value is None
    ]
    if missing:
        raise UsageError(
            f"{args.model!r} has no default training length: pass {' and '.join(missing)}."
        )
    return int(epochs), int(batch_size)


def _plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def run(args):
    """Trains, saves `<model>.keras` and prints where everything went.

    Args:
        args: the parsed `train` options.
    """
    if args.strategy == "multiworker":  # before anything touches TensorFlow's context
        from gan_zoo.training.distribute import get_strategy

        get_strategy("multiworker")
    overrides = parse_overrides(args.set)  # before the registry imports TensorFlow
    spec = get_spec(args.model)
    if spec.task != "generator":
        raise UsageError(
            f"{args.model!r} is a {spec.task}; `gan-zoo train` trains generators "
            f"({', '.join(gan_zoo.list_models(task='generator'))})."
        )
    resolve_config(args.model, overrides, args.preset)  # unknown keys, before reading the data
    check_out_dir(args.out, args.data_dir)  # start_run checks again; this is before any work
    data = training_data(args.data_dir, args.layout, args.on_error)
    print(data.summary)
    config = resolve_config(args.model, model_overrides(args, spec, data, overrides), args.preset)
    num_classes = config.get("num_classes") or 0
    if num_classes and num_classes != len(data.class_names):
        raise UsageError(
            f"{args.model!r} is conditioned on num_classes={num_classes} but {data.path} "
            f"has {len(data.class_names)} classes; pass --conditional to match the data."
        )
    check_every_class_present(data, num_classes)

    import keras

    from gan_zoo.precision import set_precision
    from gan_zoo.training.distribute import get_strategy

    # Seed and precision before the model is built (start_run sets them
    # again); the model's default_training() gives the run's length.
    keras.utils.set_random_seed(args.seed)
    set_precision(args.precision)
    strategy = get_strategy(args.strategy)
    with strategy.scope():
        gan = build(args.model, config)
        gan.compile(jit_compile=args.jit)
    epochs, batch_size = training_length(args, gan)
    if len(data.records) < batch_size:
        raise UsageError(
            f"{data.path} has {len(data.records)} images, fewer than --batch-size "
            f"{batch_size}: not one full batch. Lower --batch-size or add images."
        )

    options = argparse.Namespace(
        model=args.model,
        model_config=config,
        data_dir=str(data.path),
        layout=data.layout,
        classes=list(data.class_names),
        conditional=args.conditional,
        epochs=epochs,
        batch_size=batch_size,
        seed=args.seed,
        precision=args.precision,
        jit=args.jit,
        strategy=args.strategy,
        sample_every=args.sample_every,
        on_error=args.on_error,
        out=args.out,
    )
    # A RunFolderError (a UsageError) when the folder is in use, holds a run
    # with other options, is inside the data or cannot be written.
    run_folder = start_run(args.model, options)
    try:
        return _train(args, spec, config, gan, data, run_folder, epochs, batch_size)
    finally:
        run_folder.close()  # releases the folder's lock


def _train(args, spec, config, gan, data, run_folder, epochs, batch_size):
    """Trains into the prepared run folder and saves the model; returns the exit status."""
    from gan_zoo.training.checkpoint import NonFiniteLossError
    from gan_zoo.training.loop import train_gan

    changed = ", ".join(f"{k}={v!r}" for k, v in config.items() if spec.config[k] != v)
    print(
        f"Training {args.model} ({changed or 'paper defaults'}) for {_plural(epochs, 'epoch')}, "
        f"batch size {batch_size}, into {run_folder.directory}."
    )
    started = time.perf_counter()
    try:
        logs = train_gan(
            gan, data.records, run_folder,
            epochs=epochs, batch_size=batch_size, seed=args.seed,
            size_policy=data.size_policy, sample_every=args.sample_every, verbose="auto",
        )
        model_path = run_folder.path(f"{args.model}.keras")
        gan.save(model_path)
        run_folder.write_metrics({
            "model": args.model,
            "epochs": len(logs),
            "final": {k: v for k, v in (logs[-1] if logs else {}).items() if k.endswith("loss")},
            "data": {
                "source": str(data.path),
                "images": len(data.records),
                "class_counts": {data.class_names[k]: n for k, n in data.class_counts().items()},
                "skipped_files": len(data.skipped),
                "skipped_examples": [f"{p}: {r}" for p, r in data.skipped[:20]],
            },
        })
    except NonFiniteLossError as error:
        print(
            f"{PROG}: training failed: {message(error)} The last good epoch is backed "
            f"up in {run_folder.path('backup')}.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            f"\n{PROG}: interrupted. Resume from the last finished epoch with the same "
            f"command and --out {run_folder.directory}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as error:
        _raise_if_write_error(error, run_folder)
        raise
    _print_summary(args.model, run_folder, model_path, logs, time.perf_counter() - started)
    return 0


def _raise_if_write_error(error, run_folder):
    """A full disk or an unwritable file becomes one line, not a traceback."""
    cause = write_error(error)
    if cause is not None:
        raise CommandFailed(
            f"{describe_write_error(cause)}. The last finished epoch is backed up in "
            f"{run_folder.directory / 'backup'}; free space and rerun the same command "
            "to resume."
        ) from error


def _print_summary(model, run_folder, model_path, logs, seconds):
    directory = run_folder.directory
    samples = sorted(run_folder.path("samples").glob("*.png"))
    final = logs[-1] if logs else {}
    losses = ", ".join(f"{k}={final[k]:.4f}" for k in sorted(final) if k.endswith("loss"))
    print(f"\nDone in {seconds:.1f} s ({_plural(len(logs), 'epoch')} logged). {losses}")
    print(f"  run folder:   {directory}")
    print(f"  model:        {model_path}")
    print(f"  config:       {directory / 'config.json'}")
    print(f"  metrics:      {directory / 'metrics.jsonl'}")
    if samples:
        print(f"  samples:      {samples[-1]}")
    print(f"  tensorboard:  {directory / 'tensorboard'}")
    print(f"  backup:       {directory / 'backup'} (the same command resumes)")
    print(f"Next: {PROG} sample {model_path} --n 16 --out samples.png")
    print(f"      {PROG} export {model_path} exported/{model}")
