"""Reading mammograms as float32 grayscale in [0, 1], keeping bit depth.

Mammograms come as 8-bit PNG (the preprocessed CBIS-DDSM layout, mini-MIAS
PNG), 8- or 16-bit PGM (the original mini-MIAS), 16-bit PNG, and 12-to-16-bit
DICOM (CBIS-DDSM from TCIA, INbreast). Scaling to [0, 1] divides by the
largest value the file's *actual* bit depth allows, so no contrast is lost
to an 8-bit round trip and no image is stretched differently from another:

- 8-bit PNG/PGM: / 255; 16-bit PNG: / 65535, or / (2**bit_depth - 1) when
  the caller knows the detector depth (e.g. `bit_depth=12` for data stored
  in 16-bit containers);
- PGM: / maxval from the header (a 12-bit PGM has maxval 4095);
- DICOM, `window="bits"` (default): the modality LUT (RescaleSlope /
  Intercept) is applied, then values are divided by 2**BitsStored - 1;
  `window="dicom"` applies the file's VOI window (WindowCenter/Width or VOI
  LUT) and scales its output range; `window="minmax"` stretches each image
  to its own min..max. MONOCHROME1 images (bright = low values) are
  inverted so that dense tissue is bright in every output;
- integer TIFF: / (2**BitsPerSample - 1) for 8 to 16 bits per sample; a
  32-bit integer TIFF has no standard scale and needs `bit_depth`. The
  scale never depends on the pixel values (an image whose brightest pixel
  is 255 is not an 8-bit image when stored in 16 bits);
- 32-bit float TIFF (Pillow mode "F"): taken as [0, 1] values (clipped);
  a file with NaN or infinite pixels is refused, naming it.

Arrays stay float32 from here on (never uint8), so a 16-bit image keeps its
dynamic range through cropping, resizing and training.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

DICOM_WINDOWS = ("bits", "dicom", "minmax")
DICOM_SUFFIXES = (".dcm", ".dicom")


def is_dicom(path) -> bool:
    """True for a .dcm/.dicom name or a file with the DICM preamble."""
    path = str(path)
    if path.lower().endswith(DICOM_SUFFIXES):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def load_grayscale(path, *, bit_depth=None, window="bits") -> np.ndarray:
    """One image as a float32 (H, W) array in [0, 1] (see module docstring).

    Args:
        path: a PNG/JPEG/TIFF, PGM or DICOM file.
        bit_depth: for 16-bit non-DICOM files, the depth actually used
            (1..16); None means the container's (8 or 16).
        window: DICOM scaling, one of `DICOM_WINDOWS`.

    Raises:
        ValueError: naming the file when it cannot be read or holds more
            than one grayscale channel that differ.
    """
    if window not in DICOM_WINDOWS:
        raise ValueError(f"window must be one of {DICOM_WINDOWS}, got {window!r}.")
    if bit_depth is not None and not (isinstance(bit_depth, int) and 1 <= bit_depth <= 16):
        raise ValueError(f"bit_depth must be an integer in [1, 16] or None, got {bit_depth!r}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Image file not found: {path}")
    try:
        if is_dicom(path):
            return read_dicom(path, window=window)
        if path.lower().endswith(".pgm"):
            return _read_pgm(path, bit_depth)
        return _read_pillow(path, bit_depth)
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001 - any decoder failure, one line
        raise ValueError(f"Cannot read image {path}: {type(error).__name__}: {error}") from None


def _scale(values, maximum, path):
    if maximum <= 0:
        raise ValueError(f"{path}: maximum pixel value {maximum} is not positive.")
    return np.clip(values.astype(np.float32) / np.float32(maximum), 0.0, 1.0)


def _read_pillow(path, bit_depth):
    from PIL import Image

    with Image.open(path) as image:
        mode = image.mode
        stored_bits = _stored_bits(image)
        if mode in ("RGB", "RGBA", "LA", "P"):
            array = np.asarray(image.convert("RGB"))
            if not (np.array_equal(array[..., 0], array[..., 1])
                    and np.array_equal(array[..., 0], array[..., 2])):
                raise ValueError(f"{path} is a colour image; mammograms must be grayscale.")
            array = array[..., 0]
        else:
            array = np.asarray(image)
    if array.dtype == np.uint8 or mode in ("L", "1"):
        container = 8
    elif mode.startswith("I;16") or array.dtype == np.uint16:
        container = 16
    elif mode == "I":
        # Pillow opens 16-bit PNGs and integer TIFFs as mode "I" (int32): the
        # file's stored bits, not its values, give the scale.
        container = stored_bits
        if container is None or container > 16:
            if bit_depth is None:
                raise ValueError(
                    f"{path}: {container or 'unknown'}-bit integer pixels have no standard scale to "
                    "[0, 1]; pass bit_depth (the detector's bits, e.g. 12 or 16)."
                )
            container = bit_depth
    elif mode == "F":
        array = array.astype(np.float32)
        bad = np.count_nonzero(~np.isfinite(array))
        if bad:
            raise ValueError(
                f"{path}: float image with {bad} NaN or infinite pixel(s) of {array.size}; "
                "replace them (e.g. by 0) before loading."
            )
        return np.clip(array, 0.0, 1.0)
    else:
        raise ValueError(f"{path}: unsupported image mode {mode}.")
    depth = bit_depth if bit_depth is not None else container
    return _scale(array, 2**depth - 1, path)


def _stored_bits(image):
    """Bits per sample the file stores (PNG mode "I" is 16-bit), or None."""
    if image.format == "PNG" and image.mode.startswith("I"):
        return 16
    if image.format == "TIFF":
        bits = image.tag_v2.get(258)  # BitsPerSample
        if bits is not None:
            return int(bits[0] if isinstance(bits, tuple) else bits)
    return None


def _pgm_tokens(data):
    """Header tokens of a PGM (skipping # comments) and the data offset."""
    tokens, i = [], 0
    while len(tokens) < 4:
        while i < len(data) and data[i:i + 1].isspace():
            i += 1
        if data[i:i + 1] == b"#":
            while i < len(data) and data[i:i + 1] not in (b"\n", b"\r"):
                i += 1
            continue
        start = i
        while i < len(data) and not data[i:i + 1].isspace():
            i += 1
        if start == i:
            raise ValueError("truncated PGM header")
        tokens.append(data[start:i])
    return tokens, i + 1  # a single whitespace byte ends the header


def _read_pgm(path, bit_depth):
    """PGM (P5 binary or P2 text), scaled by the header's maxval."""
    data = pathlib.Path(path).read_bytes()
    tokens, offset = _pgm_tokens(data)
    magic, width, height, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic == b"P5":
        dtype = np.dtype(">u2") if maxval > 255 else np.uint8
        count = width * height
        array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    elif magic == b"P2":
        array = np.array(data[offset:].split()[: width * height], dtype=np.int64)
    else:
        raise ValueError(f"{path} is not a grayscale PGM (magic {magic!r}).")
    if array.size != width * height:
        raise ValueError(f"{path}: PGM data holds {array.size} of {width * height} pixels.")
    maximum = maxval if bit_depth is None else 2**bit_depth - 1
    return _scale(array.reshape(height, width), maximum, path)


def read_dicom(path, *, window="bits") -> np.ndarray:
    """A DICOM mammogram as float32 (H, W) in [0, 1] (see module docstring)."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    dataset = pydicom.dcmread(path)
    if "PixelData" not in dataset:
        raise ValueError(f"{path} holds no pixel data.")
    raw = dataset.pixel_array
    if raw.ndim != 2:
        raise ValueError(f"{path}: expected one grayscale frame, got shape {raw.shape}.")
    bits = int(getattr(dataset, "BitsStored", 0) or raw.dtype.itemsize * 8)
    values = apply_modality_lut(raw, dataset).astype(np.float64)
    if window == "minmax":
        low, high = float(values.min()), float(values.max())
    elif window == "dicom" and "VOILUTSequence" in dataset:
        values = apply_voi_lut(values, dataset).astype(np.float64)
        low, high = 0.0, float(2 ** int(dataset.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    elif window == "dicom" and "WindowCenter" in dataset:
        # DICOM PS3.3 C.11.2.1.2 linear window, written straight into [0, 1].
        centre = float(_first(dataset.WindowCenter))
        width = max(float(_first(dataset.WindowWidth)), 1.0)
        low, high = centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2
    else:
        slope = float(getattr(dataset, "RescaleSlope", 1) or 1)
        intercept = float(getattr(dataset, "RescaleIntercept", 0) or 0)
        # The stored range the bit depth allows (signed when
        # PixelRepresentation is 1), through the same modality LUT.
        signed = int(getattr(dataset, "PixelRepresentation", 0) or 0) == 1
        stored = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        low, high = sorted(intercept + slope * v for v in stored)
    scaled = np.clip((values - low) / max(high - low, 1e-12), 0.0, 1.0).astype(np.float32)
    if str(getattr(dataset, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        scaled = 1.0 - scaled
    return scaled


def _first(value):
    """The first of a multi-valued DICOM element (windows may list several)."""
    try:
        return value[0]
    except TypeError:
        return value


def bit_depth_of(path) -> int:
    """Bits per pixel of a file as stored: 8 for 8-bit PNG/PGM, else up to 16.

    DICOM: BitsStored; PGM: bits of maxval; other files: 8 for Pillow modes
    L/1/P/RGB, 16 for 16-bit modes.
    """
    path = os.fspath(path)
    if is_dicom(path):
        import pydicom

        header = pydicom.dcmread(path, stop_before_pixels=True)
        return int(getattr(header, "BitsStored", 16) or 16)
    if path.lower().endswith(".pgm"):
        tokens, _ = _pgm_tokens(pathlib.Path(path).read_bytes()[:512])
        return max(8, int(tokens[3]).bit_length())
    from PIL import Image

    with Image.open(path) as image:
        return 8 if image.mode in ("L", "1", "P", "RGB", "RGBA", "LA") else 16


def check_decodable(paths, *, window="bits"):
    """Decodes one file of each kind among `paths`, before any long work.

    A kind is a DICOM transfer syntax (e.g. JPEG 2000, which pydicom decodes
    only with an optional plugin) or a file suffix; files of one kind decode
    alike, so one each finds a folder the run could not read before its
    first training rather than after it.

    Raises:
        ValueError: one line naming the file, its kind, how many files share
            it, and the decoder's error.
    """
    kinds = {}
    for path in paths:
        kinds.setdefault(_file_kind(path), []).append(path)
    for kind, members in kinds.items():
        try:
            load_grayscale(members[0], window=window)
        except Exception as error:  # noqa: BLE001 - pydicom's missing decoders raise RuntimeError
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(
                f"{members[0]}: cannot decode its pixels ({kind}; {len(members)} file(s) of this kind): "
                f"{text}"
            ) from None


def _file_kind(path):
    if is_dicom(path):
        import pydicom

        header = pydicom.dcmread(path, stop_before_pixels=True)
        syntax = getattr(getattr(header, "file_meta", None), "TransferSyntaxUID", None)
        return f"DICOM {syntax.name if syntax is not None else 'without a transfer syntax'}"
    return f"{pathlib.Path(path).suffix.lower() or 'no suffix'} file"
