"""`gan-zoo sample`: images from a trained `.keras` generator, as a grid or files."""

import math
import pathlib

from gan_zoo.arguments import HelpFormatter, positive_int, seed
from gan_zoo.errors import UsageError
from gan_zoo.cli.loading import load_checkpoint, require_generator

IMAGE_FORMATS = ("png", "jpg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def add_parser(commands):
    """Adds `sample` to the `gan-zoo` sub-command parsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers` returned.
    """
    p = commands.add_parser(
        "sample", help="generate images from a trained .keras checkpoint",
        description="Generates images with a saved zoo GAN and writes them as one\n"
        "grid (--out FILE.png) or as one file per image (--out FOLDER).",
        formatter_class=HelpFormatter,
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
    p.add_argument("--seed", type=seed, default=0,
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
    p.set_defaults(handler=run)
    return p


def sample_labels(text, n, model):
    """Labels for `generate`: parsed from --labels, else classes in equal blocks.

    Blocks (0,0,1,1), not `GAN.generate`'s cycle (0,1,0,1), because the grid
    is filled row by row: blocks give each class whole rows of the grid.

    Args:
        text: the --labels text, or None.
        n: the number of images.
        model: the generator.
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


def run(args):
    """Generates the images and writes the grid or the files.

    Args:
        args: the parsed `sample` options.
    """
    import numpy as np

    from gan_zoo.images import save_image, save_image_grid

    out = pathlib.Path(args.out)
    as_grid = out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir()
    if out.exists() and not out.is_dir() and not as_grid:
        raise UsageError(f"--out {out} is a file but not a .png/.jpg image.")
    model = load_checkpoint(args.checkpoint)
    require_generator(model, args.checkpoint)
    labels = sample_labels(args.labels, args.n, model)
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
