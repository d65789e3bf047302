"""Registry of zoo models: name -> builder, paper-default config, citation.

Every model module registers itself at import time with `register_model`.
`gan_zoo.load(name, **overrides)` looks the name up, checks the overrides
against the registered config, builds the model and optionally loads weights.
"""

import dataclasses
import difflib
import types
from typing import Any, Callable, Mapping


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model.

    Args:
        name: registry name, e.g. `"dcgan"`.
        builder: callable taking the config as keyword arguments and returning
            a `keras.Model`.
        config: paper-default configuration; every key may be overridden.
        citation: the paper the model follows.
        description: one line for `gan-zoo list`.
        task: `"generator"` (a GAN: exports `generate`) or `"classifier"`
            (exports `classify`).
        presets: named sets of option values measured to work better than
            the paper's for some data (e.g. chosen by cross-validation), each
            documented where it is registered; `load(name, preset=...)`.
    """

    name: str
    builder: Callable[..., Any]
    config: Mapping[str, Any]
    citation: str
    description: str
    task: str = "generator"
    presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}
TASKS = ("generator", "classifier")


def register_model(name, builder, config, citation, description, task="generator", presets=None):
    """Registers a model so `gan_zoo.load(name)` can build it.

    Args:
        name: registry name; registering another builder under it is an error.
        builder: callable taking the config as keyword arguments.
        config: paper-default configuration (every overridable key).
        citation: the paper the model follows.
        description: one line for `gan-zoo list`.
        task: "generator" or "classifier".
        presets: optional {preset name: {option: value}}; every option must
            be a key of `config`.
    """
    if name in _REGISTRY and _REGISTRY[name].builder is not builder:
        raise ValueError(f"A model named {name!r} is already registered.")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    presets = dict(presets or {})
    for preset, values in presets.items():
        unknown = sorted(set(values) - set(config))
        if unknown:
            raise ValueError(f"Preset {preset!r} of {name!r} sets unknown options {unknown}.")
    _REGISTRY[name] = ModelSpec(
        name=name,
        builder=builder,
        config=types.MappingProxyType(dict(config)),
        citation=citation,
        description=description,
        task=task,
        presets=types.MappingProxyType(
            {preset: types.MappingProxyType(dict(values)) for preset, values in presets.items()}
        ),
    )


def _ensure_models_imported():
    # Importing the models package runs every model module's registration.
    import gan_zoo.models  # noqa: F401


def list_models(task=None):
    """Names of the registered models, sorted; optionally only one task."""
    _ensure_models_imported()
    return sorted(n for n, s in _REGISTRY.items() if task in (None, s.task))


def get_spec(name):
    """The `ModelSpec` registered under `name`; a clear error if unknown."""
    _ensure_models_imported()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise KeyError(
            f"Unknown model {name!r}.{hint} "
            f"Registered models: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[name]


def resolve_config(name, preset=None, **overrides):
    """The paper-default config of `name`, then `preset`'s values, then `overrides`."""
    spec = get_spec(name)
    if preset is not None and preset not in spec.presets:
        known = ", ".join(sorted(spec.presets)) or "none"
        raise KeyError(f"Unknown preset {preset!r} for model {name!r}; its presets: {known}.")
    unknown = sorted(set(overrides) - set(spec.config))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in spec.config.items())
        raise TypeError(
            f"Unknown option(s) {unknown} for model {name!r}. "
            f"Valid options (paper defaults): {valid}."
        )
    return {**spec.config, **(spec.presets[preset] if preset else {}), **overrides}


def load(name, weights=None, weights_sha256=None, preset=None, **overrides):
    """Builds a registered model with its paper defaults and `overrides`.

    Args:
        name: registry name (see `list_models()`).
        weights: optional local `.weights.h5` or `.keras` file, or an
            `http(s)://` URL of one (then `weights_sha256` is required and
            the download is checked against it).
        weights_sha256: expected SHA-256 hex digest of a downloaded file.
        preset: optional name of a registered preset (`get_spec(name).presets`)
            applied over the paper defaults; `overrides` win over it.
        **overrides: config keys to change; unknown keys raise `TypeError`
            listing the valid ones.

    Returns:
        The built (uncompiled) `keras.Model`.

    Example:

    >>> model = gan_zoo.load("dcgan", variant="v3", image_size=50)
    """
    config = resolve_config(name, preset=preset, **overrides)
    model = get_spec(name).builder(**config)
    if weights is not None:
        from gan_zoo.weights import load_weights_into

        load_weights_into(model, weights, sha256=weights_sha256)
    return model
