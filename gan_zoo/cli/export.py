"""`gan-zoo export`: a SavedModel with named float32 serving signatures."""

import pathlib
import shutil
import textwrap

import gan_zoo
from gan_zoo.arguments import HelpFormatter, parse_overrides
from gan_zoo.errors import UsageError, message
from gan_zoo.cli.loading import build, get_spec, load_checkpoint, resolve_config


def add_parser(commands):
    """Adds `export` to the `gan-zoo` sub-command parsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers` returned.
    """
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
        formatter_class=HelpFormatter,
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
    p.set_defaults(handler=run)
    return p


def fix_positionals(args, extras):
    """Repairs `export CKPT --overwrite OUT`; returns the arguments left over.

    argparse fills the optional CHECKPOINT and OUT_DIR from the first group
    of positionals only, so CKPT lands in OUT_DIR and OUT is left over.

    Args:
        args: the namespace `parse_known_args` returned.
        extras: the arguments it did not recognise.
    """
    if (
        extras and args.checkpoint is None
        and len(extras) == 1 and not extras[0].startswith("-")
    ):
        args.checkpoint, args.out_dir = args.out_dir, extras[0]
        return []
    return extras


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


def run(args):
    """Builds or loads the model and writes the SavedModel.

    Args:
        args: the parsed `export` options.
    """
    if (args.checkpoint is None) == (args.model is None):
        raise UsageError(
            "export needs either CHECKPOINT.keras OUT_DIR, or --model NAME OUT_DIR "
            "(not both)."
        )
    if args.checkpoint is not None and (args.set or args.weights):
        raise UsageError("--set and --weights apply only with --model NAME.")
    out_dir = _export_target(args.out_dir, args.overwrite)
    if args.model is not None:
        spec = get_spec(args.model)
        model = build(args.model, resolve_config(spec.name, parse_overrides(args.set)))
        if args.weights is not None:
            from gan_zoo.weights import load_weights_into

            try:
                load_weights_into(model, args.weights)
            except (OSError, ValueError) as error:
                raise UsageError(message(error)) from None
        source = args.model
    else:
        model = load_checkpoint(args.checkpoint)
        source = args.checkpoint
    names = gan_zoo.export(model, out_dir)
    print(f"Exported {source} to the SavedModel {out_dir} with signatures:")
    for line in _signature_lines(model):
        print(f"  {line}")
    print(f"Load it with tf.saved_model.load({str(out_dir)!r}).signatures[{names[0]!r}].")
    return 0
