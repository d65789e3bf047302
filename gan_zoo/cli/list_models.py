"""`gan-zoo list`: the registered models, optionally with citations and defaults."""

import textwrap

import gan_zoo
from gan_zoo.arguments import HelpFormatter
from gan_zoo.registry import TASKS


def add_parser(commands):
    """Adds `list` to the `gan-zoo` sub-command parsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers` returned.
    """
    p = commands.add_parser(
        "list", help="show the registered models",
        description="A table of the registered models: name, task and description.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--task", choices=TASKS, default=None,
                   help="only models of this task (default: all)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also print each model's citation and paper-default config")
    p.set_defaults(handler=run)
    return p


def run(args):
    """Prints the table (or, with --verbose, one block per model).

    Args:
        args: the parsed `list` options.
    """
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
        for preset, values in spec.presets.items():
            settings = " ".join(f"{key}={value!r}" for key, value in values.items())
            print(f"  preset {preset} (--preset {preset}): {settings}")
    return 0
