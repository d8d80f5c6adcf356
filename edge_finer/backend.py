"""onnxruntime inference for a bundle's model.

The annotator talks to a *backend*: anything with ``run(input_ids, attention_mask) -> logits``.
This module is the production one (onnxruntime on CPU); the build pipeline plugs in its
PyTorch teacher the same way so that every model is scored through the same decoding code.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .errors import BundleError
from .features import INPUT_NAME as FEATURES_INPUT

if TYPE_CHECKING:
    import onnxruntime as ort


class Backend(Protocol):
    """Computes logits ``(batch, tokens, labels)`` for padded int64 ids and mask (and, for a
    bundle with word features, their ids ``(batch, tokens, kinds)``)."""

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray,
            word_features: np.ndarray | None = None) -> np.ndarray: ...


def available_cores() -> int:
    """Cores this process may run on (respects taskset / cgroup affinity, unlike cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Intra-op threads when the user does not say: one.

    Measured (benchmarks/results/perf.md, 2 cores): a second thread made one-sentence calls
    40 % slower (9.2k vs 16.0k words/s) and whole batches only 10-18 % faster; a model this
    small splits badly.  ``--threads N`` / ``threads=N`` is there for long batch runs.
    """
    return 1


#: Graph fusions that make our models slower.  SkipLayerNormalization (residual add + LayerNorm
#: in one kernel) took 2-3x the time of the LayerNormalization and Add it replaces, and the
#: English bundle's batches ran 13-20 % faster without it (0.521 vs 0.653 s a pass, onnxruntime
#: 1.31, benchmarks/results/perf.md "Session settings").  Dev F1 of the shipped bundles moved by
#: at most 0.3 points (dynamic int8 activation scales follow any change of graph or batching).
DISABLED_FUSIONS = ("SkipLayerNormFusion",)


def session_options(threads: int | None = None, arena: bool = True) -> "ort.SessionOptions":
    """The runtime's onnxruntime settings (benchmarks build raw sessions with the same ones)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_cpu_mem_arena = arena
    # Memory patterns are planned and kept per input shape; our batches vary in length, so
    # they only accumulated (a +45 MB step some thousands of documents into a stream) and
    # bought no speed (measured: 3.93 s vs 3.94 s on the English dev set).  Off.
    opts.enable_mem_pattern = False
    # Spinning workers burn the core they wait on; when another process holds a core that
    # makes a 2-thread pool several times slower than one thread.  Off by default.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 4  # fatal only: failures reach the user as one line (quiet_onnxruntime)
    if arena and _capped_arena():
        # the process-wide arena below, capped at MAX_SESSION_MB, instead of one unbounded per session
        opts.add_session_config_entry("session.use_env_allocators", "1")
    return opts


#: Memory (MB) all onnxruntime sessions of a process may hold in their arena together; a model
#: that asks for more fails that run with one line instead of swapping the machine to a halt
#: (a legal graph can Expand a scalar to gigabytes).  Our models peak near 100 MB (perf.md);
#: ``EDGE_FINER_MAX_SESSION_MB`` raises the cap for very long batch runs with many threads.
MAX_SESSION_MB = 1024
_arena_lock = threading.Lock()
_arena_state: list[bool] = []


def _capped_arena() -> bool:
    """Register the capped CPU arena once per process; False if this onnxruntime cannot."""
    with _arena_lock:
        if not _arena_state:
            import onnxruntime as ort

            quiet_onnxruntime()
            try:
                cap = int(float(os.environ.get("EDGE_FINER_MAX_SESSION_MB", MAX_SESSION_MB)) * 2**20)
            except ValueError:
                cap = MAX_SESSION_MB * 2**20
            try:
                info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
                ort.create_and_register_allocator(info, ort.OrtArenaCfg({"max_mem": max(cap, 2**24)}))
                _arena_state.append(True)
            except Exception:  # an onnxruntime without environment allocators: per-session arenas
                _arena_state.append(False)
        return _arena_state[0]


def quiet_onnxruntime() -> None:
    """Keep onnxruntime's own log lines (colour codes, C++ source paths) off the user's terminal:
    every failure reaches the user as the exception it raises, turned into one clear line."""
    import onnxruntime as ort

    ort.set_default_logger_severity(4)


class OnnxBackend:
    """One onnxruntime session per bundle; ``run`` is safe to call from many threads."""

    def __init__(self, model_path: Path, threads: int | None = None, arena: bool = True,
                 labels: int | None = None, feature_kinds: int | None = None) -> None:
        """``labels`` / ``feature_kinds``: what the manifest says the model's output width and
        word-feature columns are (checked against the graph's declared shapes when given)."""
        import onnxruntime as ort

        opts = session_options(threads, arena)
        quiet_onnxruntime()
        from .onnxcheck import MAX_MODEL_BYTES, HostileModel, MalformedModel, check_model, references_external_data

        try:
            if Path(model_path).stat().st_size > MAX_MODEL_BYTES:
                raise BundleError(f"{model_path}: larger than {MAX_MODEL_BYTES // 2**20} MB; not a bundle model")
            model = Path(model_path).read_bytes()
        except OSError as exc:
            raise BundleError(f"{model_path}: cannot read the model ({exc.strerror or exc})") from None
        try:
            external = references_external_data(model)
            if not external:
                check_model(model, labels, feature_kinds)
        except MalformedModel as exc:
            raise BundleError(f"{model_path}: not a valid ONNX model ({exc})") from None
        except HostileModel as exc:
            raise BundleError(f"{model_path}: refused: {exc}") from None
        if external:
            raise BundleError(f"{model_path}: the model refers to external data files; a bundle model must be "
                              "self-contained (nothing outside the checksummed files is ever loaded)")
        try:
            # from the bytes just checked, so the file cannot be swapped between check and load
            self.session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"],
                                                disabled_optimizers=list(DISABLED_FUSIONS))
            del model
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"{model_path}: onnxruntime cannot load this model ({exc})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        unknown = set(self.input_names) - {"input_ids", "attention_mask", "token_type_ids", FEATURES_INPUT}
        if "input_ids" not in self.input_names or unknown:
            raise BundleError(
                f"{model_path}: unexpected model inputs {self.input_names}; a bundle model takes "
                f"input_ids, attention_mask and optionally token_type_ids and {FEATURES_INPUT}"
            )
        self.takes_features = FEATURES_INPUT in self.input_names
        out = self.session.get_outputs()[0]
        self.output_name = out.name
        self.output_width = out.shape[-1] if out.shape else None
        self.threads = opts.intra_op_num_threads
        self.model_path = model_path

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray,
            word_features: np.ndarray | None = None) -> np.ndarray:
        feed = {"input_ids": input_ids}
        if self.takes_features:
            feed[FEATURES_INPUT] = word_features
        if "attention_mask" in self.input_names:
            feed["attention_mask"] = attention_mask
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        try:
            return self.session.run([self.output_name], feed)[0]
        except Exception as exc:  # onnxruntime's own types: the arena cap, a kernel refusing its input
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BundleError(f"{self.model_path}: the model failed on this input ({first[:300]})") from None
