"""`gan-zoo`: list, train, sample from and export the zoo's models.

    gan-zoo list --verbose
    gan-zoo train dcgan --data-dir data/idc --layout idc --set variant=v3 --conditional
    gan-zoo sample runs/dcgan/dcgan.keras --n 16 --out samples.png
    gan-zoo export runs/dcgan/dcgan.keras exported/dcgan

User errors (a missing file, an unknown model or option, a malformed
`--set`, an empty data folder) print one line to stderr and exit with
status 2. TensorFlow is imported only by the subcommands that need it, so
`gan-zoo --help` answers at once.
"""

import argparse
import ast
import dataclasses
import math
import pathlib
import shutil
import sys
import textwrap
import time

import gan_zoo
from gan_zoo.options import PRECISIONS, STRATEGIES
from gan_zoo.registry import TASKS

PROG = "gan-zoo"
EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

LAYOUTS = ("folder", "idc")
IMAGE_FORMATS = ("png", "jpg")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_KEYWORD_VALUES = {"true": True, "false": False, "none": None}


class UsageError(Exception):
    """A problem with what the user asked for: one line on stderr, exit 2."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults, except the uninformative ones (None, False, empty)."""

    def _get_help_string(self, action):
        default = action.default
        if default is None or default is False or (isinstance(default, list) and not default):
            return action.help
        return super()._get_help_string(action)


# ------------------------------------------------------------------ helpers


def _message(error):
    """The text of an exception; KeyError's str() would add quotes."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


def positive_int(text):
    """argparse type of a positive integer (also used by benchmarks/throughput.py)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def parse_value(text):
    """A `--set` value: a Python literal when it parses as one, else the string.

    `true`, `false` and `none` (any case) are accepted for True, False, None,
    so that `--set synchronized_batch_norm=false` does not become the
    (truthy) string "false".
    """
    text = text.strip()
    if text.lower() in _KEYWORD_VALUES:
        return _KEYWORD_VALUES[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_overrides(pairs):
    """{key: value} from `--set KEY=VALUE` strings; the last of a key wins."""
    overrides = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(
                f"--set {pair!r} is not KEY=VALUE (for example --set image_size=50)."
            )
        overrides[key] = parse_value(text)
    return overrides


def _spec(name):
    try:
        return gan_zoo.get_spec(name)
    except KeyError as error:
        raise UsageError(_message(error)) from None


def _resolve_config(name, overrides):
    from gan_zoo.registry import resolve_config

    try:
        return resolve_config(name, **overrides)
    except (KeyError, TypeError) as error:
        raise UsageError(_message(error)) from None


def _raised_by(error, modules):
    """Whether `error` was raised by code of `modules` (names or packages).

    Looks at the innermost frame of its traceback: the code that raised it.
    """
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    raiser = tb.tb_frame.f_globals.get("__name__", "")
    return any(raiser == m or raiser.startswith(m + ".") for m in modules)


def _build(name, config):
    """Builds a registered model from a config `_resolve_config` has checked.

    The registry has already rejected unknown names and keys (as user errors).
    What is left for the builder to reject are invalid values, which the
    zoo's constructors check themselves with `raise ValueError(...)`
    (`variant must be one of ...`). Only such a ValueError, one whose
    innermost frame is in gan_zoo or in the builder's own module, becomes a
    one-line user error. A ValueError from inside Keras, TensorFlow or NumPy,
    and any other exception type, is a bug or an unchecked combination of
    options: it propagates with its traceback.
    """
    spec = _spec(name)
    try:
        return gan_zoo.load(name, **config)
    except ValueError as error:
        if not _raised_by(error, ("gan_zoo", spec.builder.__module__)):
            raise
        raise UsageError(f"Cannot build {name!r} with this config: {_message(error)}") from None


def _load_checkpoint(path):
    """A zoo model from a `.keras` file (without its optimizers)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise UsageError(f"Checkpoint {path} does not exist.")
    if not path.is_file() or path.suffix != ".keras":
        raise UsageError(
            f"{path} is not a .keras file (a model saved by `gan-zoo train` or model.save)."
        )
    from gan_zoo import load_model

    try:
        return load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise UsageError(f"Cannot load {path}: {_message(error)}") from None


def _require_generator(model, where):
    if not hasattr(model, "generate"):
        raise UsageError(
            f"{where} is a {type(model).__name__}, not a zoo generator (it has no generate())."
        )


def _plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _signature_lines(model):
    """'name(input: dtype[shape], ...)' for each serving signature of `model`."""
    from gan_zoo.export_lib import serving_endpoints

    lines = []
    for name, (_, specs) in serving_endpoints(model).items():
        inputs = ", ".join(
            f"{spec.name}: {spec.dtype.name}"
            f"[{', '.join('None' if d is None else str(d) for d in spec.shape)}]"
            for spec in specs
        )
        lines.append(f"{name}({inputs})")
    return lines


# ---------------------------------------------------------------------- list


def _cmd_list(args):
    names = gan_zoo.list_models(task=args.task)
    if not names:
        print(f"No registered models with task {args.task!r}.")
        return 0
    specs = [gan_zoo.get_spec(name) for name in names]
    if not args.verbose:
        width = max(len("NAME"), *(len(s.name) for s in specs))
        print(f"{'NAME':<{width}}  {'TASK':<10}  DESCRIPTION")
        for spec in specs:
            print(f"{spec.name:<{width}}  {spec.task:<10}  {spec.description}")
        return 0
    for i, spec in enumerate(specs):
        if i:
            print()
        print(f"{spec.name} ({spec.task})")
        print(textwrap.fill(spec.description, 88, initial_indent="  ", subsequent_indent="  "))
        print(textwrap.fill(
            spec.citation, 88, initial_indent="  citation: ", subsequent_indent="    "
        ))
        print("  paper-default config (change with --set KEY=VALUE):")
        for key, value in spec.config.items():
            print(f"    {key}={value!r}")
    return 0


# --------------------------------------------------------------------- train


@dataclasses.dataclass(frozen=True)
class _TrainingData:
    """The images to train on and how they were found."""

    path: pathlib.Path
    layout: str
    records: list
    class_names: tuple
    size_policy: str  # of gan_zoo.data.pipeline.training_stream
    summary: str


def _training_data(data_dir, layout):
    if data_dir is None:
        from gan_zoo.data.demo import demo_dir

        try:
            data_dir = demo_dir("histology")
        except (OSError, ValueError) as error:
            raise UsageError(f"Cannot prepare the demo data: {_message(error)}") from None
        layout = "idc"
        print(f"No --data-dir: training on the procedural demo histology data in {data_dir}.")
    data_dir = pathlib.Path(data_dir)
    if layout == "idc":
        from gan_zoo.data import idc

        try:
            dataset = idc.scan_idc(data_dir)
        except (FileNotFoundError, NotADirectoryError, ValueError) as error:
            raise UsageError(_message(error)) from None
        return _TrainingData(
            data_dir, layout, dataset.records(), idc.CLASS_NAMES, idc.IDC_SIZE_POLICY,
            dataset.summary(),
        )
    from gan_zoo.data.image_folder import scan_image_folder

    try:
        folder = scan_image_folder(data_dir)
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        raise UsageError(_message(error)) from None
    counts = ", ".join(f"{name}: {n}" for name, n in folder.class_counts().items())
    summary = (
        f"Image folder {data_dir}: {len(folder)} images in "
        f"{len(folder.class_names)} classes ({counts})."
    )
    return _TrainingData(
        data_dir, layout, list(folder.records), folder.class_names, "resize", summary
    )


def _model_overrides(args, spec, data, overrides):
    """The `--set` overrides, plus what --conditional, the data and --seed imply."""
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
    if data.layout == "idc" and "image_size" not in overrides:
        from gan_zoo.data.idc import PATCH_SIZE

        if spec.config.get("image_size", PATCH_SIZE) != PATCH_SIZE:
            print(
                f"IDC patches are {PATCH_SIZE}x{PATCH_SIZE}: training at image_size={PATCH_SIZE} "
                f"(the model's default is {spec.config['image_size']}; --set image_size=... "
                "to choose; the IDC size policy pads or crops, never stretches)."
            )
            overrides["image_size"] = PATCH_SIZE
    if "seed" in spec.config and "seed" not in overrides:
        overrides["seed"] = args.seed
    return overrides


def _training_length(args, gan):
    """(epochs, batch_size): the flags, else the model's `default_training()`."""
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


def _cmd_train(args):
    overrides = parse_overrides(args.set)  # before the registry imports TensorFlow
    spec = _spec(args.model)
    if spec.task != "generator":
        raise UsageError(
            f"{args.model!r} is a {spec.task}; `gan-zoo train` trains generators "
            f"({', '.join(gan_zoo.list_models(task='generator'))})."
        )
    _resolve_config(args.model, overrides)  # unknown keys, before reading the data
    data = _training_data(args.data_dir, args.layout)
    print(data.summary)
    config = _resolve_config(args.model, _model_overrides(args, spec, data, overrides))
    num_classes = config.get("num_classes") or 0
    if num_classes and num_classes != len(data.class_names):
        raise UsageError(
            f"{args.model!r} is conditioned on num_classes={num_classes} but {data.path} "
            f"has {len(data.class_names)} classes; pass --conditional to match the data."
        )

    import keras

    from gan_zoo.models.gan import set_precision
    from gan_zoo.training.checkpoint import NonFiniteLossError
    from gan_zoo.training.distribute import get_strategy
    from gan_zoo.training.loop import train_gan
    from gan_zoo.training.recipe import start_run

    # Seed and precision before the model is built (start_run sets them
    # again); the model's default_training() gives the run's length.
    keras.utils.set_random_seed(args.seed)
    set_precision(args.precision)
    strategy = get_strategy(args.strategy)
    with strategy.scope():
        gan = _build(args.model, config)
        gan.compile(jit_compile=args.jit)
    epochs, batch_size = _training_length(args, gan)
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
        out=args.out,
    )
    try:
        run = start_run(args.model, options)
    except ValueError as error:  # the folder holds a run with other options
        raise UsageError(_message(error)) from None

    changed = ", ".join(f"{k}={v!r}" for k, v in config.items() if spec.config[k] != v)
    print(
        f"Training {args.model} ({changed or 'paper defaults'}) for {_plural(epochs, 'epoch')}, "
        f"batch size {batch_size}, into {run.directory}."
    )
    started = time.perf_counter()
    try:
        logs = train_gan(
            gan, data.records, run,
            epochs=epochs, batch_size=batch_size, seed=args.seed,
            size_policy=data.size_policy, sample_every=args.sample_every, verbose="auto",
        )
    except NonFiniteLossError as error:
        print(
            f"{PROG}: training failed: {_message(error)} The last good epoch is backed "
            f"up in {run.path('backup')}.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            f"\n{PROG}: interrupted. Resume from the last finished epoch with the same "
            f"command and --out {run.directory}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    model_path = run.path(f"{args.model}.keras")
    gan.save(model_path)

    samples = sorted(run.path("samples").glob("*.png"))
    final = logs[-1] if logs else {}
    losses = ", ".join(f"{k}={final[k]:.4f}" for k in sorted(final) if k.endswith("loss"))
    print(
        f"\nDone in {time.perf_counter() - started:.1f} s "
        f"({_plural(len(logs), 'epoch')} logged). {losses}"
    )
    print(f"  run folder:   {run.directory}")
    print(f"  model:        {model_path}")
    print(f"  config:       {run.directory / 'config.json'}")
    print(f"  metrics:      {run.directory / 'metrics.jsonl'}")
    if samples:
        print(f"  samples:      {samples[-1]}")
    print(f"  tensorboard:  {run.directory / 'tensorboard'}")
    print(f"  backup:       {run.directory / 'backup'} (the same command resumes)")
    print(f"Next: {PROG} sample {model_path} --n 16 --out samples.png")
    print(f"      {PROG} export {model_path} exported/{args.model}")
    return 0


# -------------------------------------------------------------------- sample


def _sample_labels(text, n, model):
    """Labels for `generate`: parsed from --labels, else classes in equal blocks.

    Blocks (0,0,1,1), not `GAN.generate`'s cycle (0,1,0,1), because the grid
    is filled row by row: blocks give each class whole rows of the grid.
    """
    import numpy as np

    if text is None:
        if not model.conditional:
            return None
        return np.arange(n) * model.num_classes // n
    if not model.conditional:
        raise UsageError("--labels given, but this generator is unconditional.")
    try:
        labels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--labels {text!r} is not a comma-separated list of integers.") from None
    if len(labels) == 1:
        labels = labels * n
    if len(labels) != n:
        raise UsageError(f"--labels gives {len(labels)} labels for --n {n} images (give 1 or {n}).")
    bad = [label for label in labels if not 0 <= label < model.num_classes]
    if bad:
        raise UsageError(f"--labels {bad} are outside 0..{model.num_classes - 1}.")
    return np.asarray(labels, np.int32)


def _cmd_sample(args):
    import numpy as np

    from gan_zoo.training.callbacks import save_image, save_image_grid

    out = pathlib.Path(args.out)
    as_grid = out.suffix.lower() in _IMAGE_SUFFIXES and not out.is_dir()
    if out.exists() and not out.is_dir() and not as_grid:
        raise UsageError(f"--out {out} is a file but not a .png/.jpg image.")
    model = _load_checkpoint(args.checkpoint)
    _require_generator(model, args.checkpoint)
    labels = _sample_labels(args.labels, args.n, model)
    images = model.generate(args.n, labels=labels, seed=args.seed)

    written = []
    if as_grid:
        rows = args.rows or max(1, math.isqrt(args.n))
        written.append(save_image_grid(out, images, rows))
        npy = out.with_suffix(".npy")
    else:
        out.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            tag = "" if labels is None else f"-class{int(labels[i])}"
            path = out / f"sample-{i:04d}{tag}.{args.format}"
            save_image(path, image)
            written.append(path)
        npy = out / "images.npy"
    if args.npy:
        np.save(npy, images)
        written.append(npy)
        if labels is not None:
            np.save(npy.with_name(npy.stem + "-labels.npy"), np.asarray(labels, np.int32))
            written.append(npy.with_name(npy.stem + "-labels.npy"))
    shape = "x".join(str(d) for d in images.shape[1:])
    where = written[0] if as_grid else f"{out}/ ({len(images)} files)"
    print(f"Wrote {len(images)} images of {shape} (seed {args.seed}) to {where}.")
    for path in written[1 if as_grid else len(images):]:
        print(f"  also {path}")
    return 0


# -------------------------------------------------------------------- export


def _export_target(out_dir, overwrite):
    out_dir = pathlib.Path(out_dir)
    if out_dir.is_file():
        raise UsageError(f"OUT_DIR {out_dir} is a file; give a folder.")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise UsageError(
                f"OUT_DIR {out_dir} exists and is not empty; pass --overwrite to replace "
                "a SavedModel there, or choose another folder."
            )
        if not (out_dir / "saved_model.pb").is_file():
            raise UsageError(f"--overwrite refused: {out_dir} does not hold a SavedModel.")
        shutil.rmtree(out_dir)
    return out_dir


def _cmd_export(args):
    if (args.checkpoint is None) == (args.model is None):
        raise UsageError(
            "export needs either CHECKPOINT.keras OUT_DIR, or --model NAME OUT_DIR "
            "(not both)."
        )
    if args.checkpoint is not None and (args.set or args.weights):
        raise UsageError("--set and --weights apply only with --model NAME.")
    out_dir = _export_target(args.out_dir, args.overwrite)
    if args.model is not None:
        spec = _spec(args.model)
        model = _build(args.model, _resolve_config(spec.name, parse_overrides(args.set)))
        if args.weights is not None:
            from gan_zoo.weights import load_weights_into

            try:
                load_weights_into(model, args.weights)
            except (OSError, ValueError) as error:
                raise UsageError(_message(error)) from None
        source = args.model
    else:
        model = _load_checkpoint(args.checkpoint)
        source = args.checkpoint
    names = gan_zoo.export(model, out_dir)
    print(f"Exported {source} to the SavedModel {out_dir} with signatures:")
    for line in _signature_lines(model):
        print(f"  {line}")
    print(f"Load it with tf.saved_model.load({str(out_dir)!r}).signatures[{names[0]!r}].")
    return 0


# -------------------------------------------------------------------- parser


def build_parser():
    """The `gan-zoo` argument parser (every option has a help text)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="List, train, sample from and export the GANs of gan_zoo "
        "(breast-cancer imaging, Keras 3 / TensorFlow).",
        epilog=textwrap.dedent("""\
            examples:
              gan-zoo list --verbose
              gan-zoo train dcgan --epochs 5                  # on the demo data
              gan-zoo train dcgan --data-dir data/idc --layout idc --set variant=v3 --conditional
              gan-zoo sample runs/dcgan/dcgan.keras --n 16 --out samples.png
              gan-zoo export runs/dcgan/dcgan.keras exported/dcgan
            user errors exit with status 2 and one line on stderr."""),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {gan_zoo.__version__}",
        help="print the gan_zoo version and exit",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True,
        title="commands", help="run `gan-zoo COMMAND --help` for its options",
    )

    # list
    p = commands.add_parser(
        "list", help="show the registered models",
        description="A table of the registered models: name, task and description.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--task", choices=TASKS, default=None,
                   help="only models of this task (default: all)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also print each model's citation and paper-default config")
    p.set_defaults(handler=_cmd_list)

    # train
    p = commands.add_parser(
        "train", help="train a zoo GAN on an image folder or the demo data",
        description=textwrap.dedent("""\
            Trains a zoo GAN (task "generator") on an image folder, or without
            --data-dir on the procedural demo histology data. The run folder
            (--out) receives config.json, metrics.jsonl, sample grids, a
            TensorBoard log, the resumable backup and finally <model>.keras.
            Rerunning the same command with the same --out resumes it."""),
        formatter_class=_HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL",
                   help="registry name of the GAN (see `gan-zoo list --task generator`)")
    p.add_argument("--data-dir", type=pathlib.Path, default=None,
                   help="dataset folder (default: the procedural demo histology data, IDC layout)")
    p.add_argument("--layout", choices=LAYOUTS, default="folder",
                   help="how --data-dir is organised: 'folder' = <class>/<images> (any "
                   "size, resized); 'idc' = the Kaggle IDC layout <patient>/<0|1>/*.png "
                   "(or its zip), off-size edge patches padded, not stretched")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model config value; repeatable; values are Python "
                   "literals or strings, e.g. --set variant=v3 --set image_size=50")
    p.add_argument("--conditional", action="store_true",
                   help="train a class-conditional GAN: sets num_classes to the number "
                   "of classes in the data (for models with a num_classes option)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="total training epochs (default: the model's paper default, "
                   "from default_training())")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="global batch size (default: the model's paper default)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, data order and training noise")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="Keras dtype policy (bfloat16 is faster on GPUs and CPUs "
                   "with AVX512_BF16)")
    p.add_argument("--jit", action="store_true",
                   help="XLA-compile the train step (often faster on GPU, slower on CPU)")
    p.add_argument("--out", type=pathlib.Path, default=None,
                   help="run folder (default: runs/<model>-<date>-<time>); an existing "
                   "run folder is resumed")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="tf.distribute strategy: 'auto' mirrors over several GPUs, "
                   "else one device")
    p.add_argument("--sample-every", type=positive_int, default=1,
                   help="epochs between sample grids (one is always saved at the end)")
    p.set_defaults(handler=_cmd_train)

    # sample
    p = commands.add_parser(
        "sample", help="generate images from a trained .keras checkpoint",
        description="Generates images with a saved zoo GAN and writes them as one\n"
        "grid (--out FILE.png) or as one file per image (--out FOLDER).",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT.keras",
                   help="a model saved by `gan-zoo train` (or model.save)")
    p.add_argument("--n", type=positive_int, default=16, help="number of images")
    p.add_argument("--labels", default=None, metavar="L1,L2,...",
                   help="class of each image for a conditional GAN: one label for "
                   "all images, or N comma-separated labels (default: the classes in "
                   "equal consecutive blocks, e.g. 0,0,1,1 for --n 4, so that a grid "
                   "whose --rows is a multiple of the number of classes and divides --n "
                   "shows each class in whole rows)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the latent vectors (the same seed gives the same images)")
    p.add_argument("--out", required=True, metavar="FILE.png|DIR",
                   help="a .png (or .jpg) file for one grid, or a folder for one file per image")
    p.add_argument("--rows", type=positive_int, default=None,
                   help="rows of the grid (default: about the square root of N)")
    p.add_argument("--format", choices=IMAGE_FORMATS, default="png",
                   help="file format of the individual images when --out is a folder")
    p.add_argument("--npy", action="store_true",
                   help="also save the float32 images [N, H, W, C] in [0, 1] as .npy "
                   "(FILE.npy beside the grid, or DIR/images.npy), with the labels of a "
                   "conditional GAN in *-labels.npy")
    p.set_defaults(handler=_cmd_sample)

    # export
    p = commands.add_parser(
        "export", help="write a SavedModel with named serving signatures",
        description=textwrap.dedent("""\
            Writes a SavedModel with float32 serving signatures (generators:
            generate(z[, labels]) -> images in [0, 1]; classifiers:
            classify(images) -> probabilities), from a .keras checkpoint:

                gan-zoo export CHECKPOINT.keras OUT_DIR

            or built from the registry (paper defaults, --set overrides and
            optional --weights):

                gan-zoo export --model NAME [--set KEY=VALUE ...] [--weights FILE] OUT_DIR"""),
        formatter_class=_HelpFormatter,
    )
    p.add_argument("checkpoint", nargs="?", default=None, metavar="CHECKPOINT.keras",
                   help="a saved zoo model; leave out when using --model")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the SavedModel into")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="build this registered model instead of loading a checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with --model: override a config value (repeatable)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="with --model: a .weights.h5 or .keras file to load into it")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing SavedModel in OUT_DIR")
    p.set_defaults(handler=_cmd_export)
    return parser


def _parse_args(parser, argv):
    args, extras = parser.parse_known_args(argv)
    if (
        extras and args.command == "export" and args.checkpoint is None
        and len(extras) == 1 and not extras[0].startswith("-")
    ):
        # `export CKPT --overwrite OUT`: argparse fills the optional CHECKPOINT
        # and OUT_DIR from the first group of positionals only, so CKPT lands
        # in OUT_DIR and OUT is left over.
        args.checkpoint, args.out_dir = args.out_dir, extras[0]
        extras = []
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv=None) -> int:
    """Runs `gan-zoo` with `argv` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    try:
        args = _parse_args(parser, argv)
    except SystemExit as exit_:  # --help, --version, or an argparse usage error
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
