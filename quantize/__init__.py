"""The build pipeline: recipe → teacher → trimmed vocabulary → distilled student → int8 bundle.

``python -m quantize build RECIPE.toml`` (or :func:`quantize.build.run_recipe`) rebuilds a
shipped bundle from its recipe alone.  Nothing here downloads: the hub is switched off before
``transformers`` is imported, and every model is read from a local folder.  The runtime
(``edge_finer``) never imports this package; the pipeline imports the runtime to write bundles
(``edge_finer.bundle.write_bundle``) and to score models through the same decoding users get.
"""
from __future__ import annotations

import os

# Set before transformers / huggingface_hub are imported anywhere: they read these at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .errors import BuildError, DataError, RecipeError, TeacherError  # noqa: E402

#: Import names the pipeline needs beyond the runtime, and the distribution providing each.
BUILD_DEPENDENCIES = {"torch": "torch==2.13.0", "transformers": "transformers", "optimum": "optimum-onnx",
                      "onnx": "onnx", "seqeval": "seqeval"}


def require_build_dependencies() -> None:
    """Fail with one line naming what to install when the ``build`` extra is missing.

    Checked up front (without importing the heavy modules) so that a runtime-only install gets
    an instruction, not a traceback from deep inside a stage.
    """
    import importlib.util

    missing = [dist for mod, dist in BUILD_DEPENDENCIES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise BuildError(
            f"the build pipeline needs the 'build' extra (missing: {', '.join(missing)}); install it "
            "with: pip install torch==2.13.0 && pip install 'edge-finer[build]'"
        )


__all__ = ["BuildError", "DataError", "RecipeError", "TeacherError", "require_build_dependencies"]
