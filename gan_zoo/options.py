"""Option values shared by the recipes, the CLI and the library.

Kept free of TensorFlow imports so that `--help` answers at once.
"""

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
