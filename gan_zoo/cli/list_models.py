"""`gan-zoo list`: the registered models, filtered by task and modality, optionally in full."""

import textwrap

import gan_zoo
from gan_zoo.arguments import HelpFormatter
from gan_zoo.registry import CAPABILITIES, MODALITIES, TASKS


def add_parser(commands):
    """Adds `list` to the `gan-zoo` sub-command parsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers` returned.
    """
    p = commands.add_parser(
        "list", help="show the registered models",
        description="A table of the registered models: name, task, modality, what each does "
        "and a description.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--task", choices=TASKS + CAPABILITIES, default=None, metavar="TASK",
                   help="only models that do this: generate, classify, translate or infill; "
                   "or of this kind: generator (a GAN `gan-zoo train` trains) or classifier "
                   "(default: all)")
    p.add_argument("--modality", choices=MODALITIES, default=None,
                   help="only models built for these images (default: all)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also print each model's paper, inputs, outputs and paper-default config")
    p.set_defaults(handler=run)
    return p


def _filters(args):
    given = [f"--{name} {value}" for name, value in (("task", args.task), ("modality", args.modality))
             if value is not None]
    return " ".join(given)


def _wrapped(label, text):
    return textwrap.fill(text, 88, initial_indent=f"  {label}: ", subsequent_indent="    ",
                         break_on_hyphens=False, break_long_words=False)


def run(args):
    """Prints the table (or, with --verbose, one block per model).

    Args:
        args: the parsed `list` options.
    """
    names = gan_zoo.list_models(task=args.task, modality=args.modality)
    if not names:
        print(f"No registered models match {_filters(args)}.")
        return 0
    specs = [gan_zoo.get_spec(name) for name in names]
    if not args.verbose:
        width = max(len("NAME"), *(len(s.name) for s in specs))
        does = {s.name: ", ".join(s.capabilities) for s in specs}
        does_width = max(len("DOES"), *(len(text) for text in does.values()))
        print(f"{'NAME':<{width}}  {'TASK':<10}  {'MODALITY':<11}  {'DOES':<{does_width}}  DESCRIPTION")
        for spec in specs:
            print(f"{spec.name:<{width}}  {spec.task:<10}  {spec.modality or '-':<11}  "
                  f"{does[spec.name]:<{does_width}}  {spec.description}")
        return 0
    for i, spec in enumerate(specs):
        if i:
            print()
        print(f"{spec.name} ({spec.task}; {spec.modality or 'modality not declared'}; "
              f"does {', '.join(spec.capabilities)})")
        print(textwrap.fill(spec.description, 88, initial_indent="  ", subsequent_indent="  "))
        print(_wrapped("paper", spec.citation))
        inputs, outputs = spec.interface()
        print(_wrapped("inputs", inputs or "not declared"))
        print(_wrapped("outputs", outputs or "not declared"))
        print("  paper-default config (change with --set KEY=VALUE):")
        for key, value in spec.config.items():
            print(f"    {key}={value!r}")
        for preset, values in spec.presets.items():
            settings = " ".join(f"{key}={value!r}" for key, value in values.items())
            print(f"  preset {preset} (--preset {preset}): {settings}")
    return 0
