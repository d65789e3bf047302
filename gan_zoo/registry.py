"""Registry of zoo models: name -> builder, paper-default config, citation, metadata.

Every model module registers itself at import time with `register_model`.
`gan_zoo.load(name, **overrides)` looks the name up, checks the overrides
against the registered config, builds the model and optionally loads weights;
`gan_zoo.load(PRESET_DIR)` builds a published preset (`gan_zoo.presets`).

Two vocabularies describe what a model is for, and `list_models(task=...)`
and `gan-zoo list --task` accept both:

- the model's kind, `ModelSpec.task` (`TASKS`): "generator" (a GAN that
  `gan-zoo train` trains) or "classifier" (a classifier the recipes train);
  the commands and recipes check it;
- what the model does, `ModelSpec.capabilities` (`CAPABILITIES`):
  "generate" (images from a latent vector), "classify" (class
  probabilities of images), "translate" (images of one domain to another),
  "infill" (paint a masked region). A model may do several (semi_cgan
  generates and classifies); a CycleGAN is a generator that translates.

`ModelSpec.modality` (`MODALITIES`) names the images a model is built for,
and `inputs` / `outputs` describe its images and tensors for `gan-zoo list
--verbose`.
"""

import dataclasses
import difflib
import os
import pathlib
import types
from typing import Any, Callable, Mapping

TASKS = ("generator", "classifier")
CAPABILITIES = ("generate", "classify", "translate", "infill")
MODALITIES = ("histology", "mammography")
# The capabilities a model registered without any has, by its kind.
_DEFAULT_CAPABILITIES = {"generator": ("generate",), "classifier": ("classify",)}


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
        task: the model's kind, one of `TASKS`: `"generator"` (a GAN) or
            `"classifier"`.
        presets: named sets of option values measured to work better than
            the paper's for some data (e.g. chosen by cross-validation), each
            documented where it is registered; `load(name, preset=...)`.
        modality: the images the model is built for, one of `MODALITIES`,
            or None when not declared.
        capabilities: what the model does, a tuple of `CAPABILITIES`.
        inputs: what the model takes, for `gan-zoo list --verbose` (may
            hold `{option}` templates filled from a config).
        outputs: what it returns, likewise.
    """

    name: str
    builder: Callable[..., Any]
    config: Mapping[str, Any]
    citation: str
    description: str
    task: str = "generator"
    presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    modality: str | None = None
    capabilities: tuple = ()
    inputs: str = ""
    outputs: str = ""

    def interface(self, config=None):
        """(inputs, outputs) with their `{option}` templates filled from `config`.

        Args:
            config: the model's config (default: the paper defaults).
        """
        values = {**self.config, **(config or {})}
        return tuple(_fill(text, values) for text in (self.inputs, self.outputs))


def _fill(text, values):
    try:
        return text.format_map(values)
    except (KeyError, IndexError, ValueError, AttributeError):
        return text  # a template naming an option the config lacks stays as written


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name, builder, config, citation, description, task="generator", presets=None,
                   modality=None, capabilities=None, inputs=None, outputs=None):
    """Registers a model so `gan_zoo.load(name)` can build it.

    Args:
        name: registry name; registering another builder under it is an error.
        builder: callable taking the config as keyword arguments.
        config: paper-default configuration (every overridable key).
        citation: the paper the model follows.
        description: one line for `gan-zoo list`.
        task: its kind, "generator" or "classifier".
        presets: optional {preset name: {option: value}}; every option must
            be a key of `config`.
        modality: one of `MODALITIES` (None: not declared).
        capabilities: a sequence of `CAPABILITIES` (default: "generate" for
            a generator, "classify" for a classifier).
        inputs: what the model takes (`{option}` templates allowed).
        outputs: what it returns (`{option}` templates allowed).
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
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}.")
    if capabilities is None:
        capabilities = _DEFAULT_CAPABILITIES[task]
    capabilities = tuple(capabilities)
    unknown = [c for c in capabilities if c not in CAPABILITIES]
    if unknown or not capabilities:
        raise ValueError(f"capabilities must be a non-empty subset of {CAPABILITIES}, got {capabilities!r}.")
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
        modality=modality,
        capabilities=capabilities,
        inputs=inputs or "",
        outputs=outputs or "",
    )


def _ensure_models_imported():
    # Importing the models package runs every model module's registration.
    import gan_zoo.models  # noqa: F401


def _check_choice(option, value, choices):
    if value is not None and value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(choices)}; got {value!r}.")


def list_models(task=None, modality=None):
    """Names of the registered models, sorted, optionally filtered.

    Args:
        task: a kind of `TASKS` ("generator", "classifier": the registry's
            `task`) or a capability of `CAPABILITIES` ("generate",
            "classify", "translate", "infill": models that offer it).
        modality: one of `MODALITIES` ("histology", "mammography").

    Raises:
        ValueError: a filter value outside its vocabulary (the error lists
            the valid values).

    Example:

    >>> gan_zoo.list_models(modality="mammography", task="classify")
    ['diagram', 'resnet50_classifier']
    """
    _check_choice("task", task, TASKS + CAPABILITIES)
    _check_choice("modality", modality, MODALITIES)
    _ensure_models_imported()
    return sorted(name for name, spec in _REGISTRY.items() if _matches(spec, task, modality))


def _matches(spec, task, modality):
    if modality is not None and spec.modality != modality:
        return False
    if task is None:
        return True
    return spec.task == task if task in TASKS else task in spec.capabilities


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


def spec_of_class(cls):
    """The `ModelSpec` whose builder is the class `cls`, or None."""
    _ensure_models_imported()
    return next((spec for spec in _REGISTRY.values() if spec.builder is cls), None)


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


def _is_path(name):
    """Whether `load`'s first argument names a preset folder or archive, not a model."""
    if isinstance(name, os.PathLike):
        return True
    if not isinstance(name, str):
        return False
    _ensure_models_imported()
    if name in _REGISTRY:
        return False
    return "/" in name or os.sep in name or pathlib.Path(name).exists()


def load(name, weights=None, weights_sha256=None, preset=None, preset_dir=None, **overrides):
    """Builds a registered model, or a published preset, with `overrides`.

    Three ways in:

    - `load("dcgan", **overrides)`: the paper defaults with `overrides`;
      `weights=` loads a `.weights.h5` / `.keras` file or URL into it.
    - `load(PRESET_DIR)` or `load("dcgan", preset_dir=PRESET_DIR)`: a
      folder written by `gan_zoo.presets.publish` (or its `.tar.gz` /
      `.zip` archive): its config and weights, every file checked against
      the SHA-256 its `metadata.json` records first.
    - `load("dcgan", weights=URL_OR_FILE_OF_A_PRESET_ARCHIVE,
      weights_sha256=...)`: a published preset archive, downloaded once and
      checked against `weights_sha256`, then loaded as above.

    A registered name always means the model: write a folder that has a
    model's name as `./dcgan`.

    Args:
        name: registry name (see `list_models()`), or a preset folder or
            archive.
        weights: optional local `.weights.h5` or `.keras` file, a preset
            archive (`.tar.gz`, `.tgz`, `.tar`, `.zip`), or an
            `http(s)://` / `file://` URL of one (then `weights_sha256` is
            required and the download is checked against it).
        weights_sha256: expected SHA-256 hex digest of a downloaded file (or
            of a local preset archive).
        preset: optional name of a registered preset (`get_spec(name).presets`:
            named option values) applied over the paper defaults;
            `overrides` win over it.
        preset_dir: a published preset folder or archive holding a `name`.
        **overrides: config keys to change; unknown keys raise `TypeError`
            listing the valid ones. Over a published preset, options that
            shape the weights must keep the preset's values.

    Returns:
        The built (uncompiled) `keras.Model`.

    Example:

    >>> model = gan_zoo.load("dcgan", variant="v3", image_size=50)
    >>> model = gan_zoo.load("presets/dcgan-idc")
    """
    published = preset_dir if preset_dir is not None else (name if _is_path(name) else None)
    if published is None and weights is not None:
        from gan_zoo.presets import is_archive_name

        if is_archive_name(weights):
            published = weights
    if published is not None:
        if preset is not None:
            raise TypeError("preset= (a registered set of options) does not combine with a published preset.")
        if weights is not None and published is not weights:
            raise TypeError("weights= does not combine with a published preset: it brings its own.")
        from gan_zoo.presets import load_preset

        expected = None if published is name else name
        return load_preset(published, name=expected, sha256=weights_sha256, **overrides)
    config = resolve_config(name, preset=preset, **overrides)
    model = get_spec(name).builder(**config)
    if weights is not None:
        from gan_zoo.weights import load_weights_into

        load_weights_into(model, weights, sha256=weights_sha256)
    return model
