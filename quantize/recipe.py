"""The recipe: one small TOML file that fully determines a bundle build.

Why a recipe and not command-line flags: every shipped bundle must be rebuildable by one
command, and a reviewer must be able to read *what* was built from a file kept in the repo.
Unknown keys are errors (a typo must not silently fall back to a default), and relative paths
resolve against ``root`` (itself relative to the recipe file), so ``recipes/x.toml`` with
``root = ".."`` can name data as ``../shared/data/...`` exactly as the project README does.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from edge_finer.features import KINDS as FEATURE_KINDS
from edge_finer.pretokenize import scheme as pretokenizer_scheme

from .errors import RecipeError

#: Student size presets: (layers, hidden, heads, intermediate).
STUDENT_SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 128, 2, 512),
    "small": (4, 256, 4, 1024),
    "medium": (6, 384, 6, 1536),
}
FAMILIES = ("bert", "xlm-roberta", "cnn")
#: The most worker processes a build may train members in (recipe key ``jobs``, ``--jobs``).
MAX_JOBS = 64


@dataclass
class Language:
    bcp47: str = ""
    iso639_3: str = ""
    name: str = ""
    scripts: list[str] = field(default_factory=list)


@dataclass
class Taxonomy:
    name: str = ""
    file: str = ""  # fine<TAB>coarse TSV; '#' comments
    types: list[str] = field(default_factory=list)  # inline alternative to `file`
    coarse: dict[str, str] = field(default_factory=dict)


@dataclass
class Data:
    train: list[str] = field(default_factory=list)
    eval: str = ""
    eval_split: str = "dev"
    dataset: str = ""  # human name of the eval dataset for the manifest
    format: str = "auto"  # auto | conll | jsonl
    scheme: str = "auto"  # auto | iob2 | iob1 | bilou | iobes | io
    max_train_sentences: int = 0  # 0 = all
    max_eval_sentences: int = 0
    unlabelled: list[str] = field(default_factory=list)  # .txt (a sentence per line), .conll, .jsonl
    max_unlabelled_sentences: int = 0
    # the unlabelled files' own annotation that teacher self-training trusts: their type → ours
    unlabelled_types: dict[str, str] = field(default_factory=dict)
    drop_types: list[str] = field(default_factory=list)  # stray annotation types turned into O
    # ISO 15924 code of a Brahmic script: train and unlabelled sentences written in another
    # Brahmic script are moved to it letter by letter (quantize.transliterate), so a neighbour's
    # annotated data in the same tag set trains the model.  Out of the repr (the data stage's
    # fingerprint): added to it only when set.
    transliterate: str = field(default="", repr=False)
    # Types set to O in the moved sentences only: where the neighbour annotates by another
    # convention (IL-NER Hindi tags most numbers NEN, IL-NER Odia hardly any).  Fingerprinted when set.
    transliterated_drop_types: list[str] = field(default_factory=list, repr=False)


@dataclass
class Source:
    name: str = ""
    licence: str = ""
    citation: str = ""
    url: str = ""
    source: str = ""


@dataclass
class Teacher:
    path: str = ""  # local HF folder of a fine-tuned token classifier; empty: train one here
    family: str = "bert"  # bert (WordPiece) | xlm-roberta (Unigram) | cnn (WordPiece, convolutions), when training
    vocab_size: int = 8000
    lowercase: bool = False
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int = 1024
    kernel: int = 3  # cnn: words of context each convolution sees (odd)
    dilations: list[int] = field(default_factory=list)  # cnn: each block's dilation (empty: all 1)
    dropout: float = 0.1
    word_dropout: float = 0.0  # share of subword ids replaced by the unknown token while training
    form_dropout: float = 0.0  # share of whole words hidden while training: ids and form/long-affix features
    mention_replacement: float = 0.0  # copies (per sentence with a mention) with mentions swapped by type
    epochs: float = 3.0
    max_steps: int = 0  # 0 = epochs decide
    batch_size: int = 16
    learning_rate: float = 5e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_minutes: float = 0.0  # 0 = no time cap (per ensemble member)
    select_on_dev: bool = False  # keep the weights with the best F1 on data.eval (quantize.selection)
    select_every: float = 1.0  # epochs between two of those scorings
    ensemble: int = 1  # teachers trained here (seeds seed, seed+1, ...); the student learns their mean
    self_training: bool = False  # members after the first also learn data.unlabelled as the first tags it
    # Word-level members (quantize.wordtagger) added to the ensemble's mean, and each one's time
    # cap (0 = max_minutes).  Out of the repr, which fingerprints the teacher stage: the build adds
    # them to the fingerprint only when set, so work folders of earlier builds stay valid.
    word_members: int = field(default=0, repr=False)
    word_max_minutes: float = field(default=0.0, repr=False)
    # Decay of a moving average of the weights, which dev selection scores and the member keeps
    # (quantize.train.weight_average; 0: off).  Out of the repr, fingerprinted only when set.
    average: float = field(default=0.0, repr=False)


@dataclass
class Trim:
    enabled: bool = True
    chars: str = "corpus"  # corpus: single characters seen in the corpus; all: every one in the vocab
    include_eval: bool = False  # also keep pieces only the eval text uses (not the default: honest)


@dataclass
class Student:
    size: str = "tiny"
    layers: int = 0  # 0 = from `size`
    hidden: int = 0
    heads: int = 0
    intermediate: int = 0
    init: str = "teacher"  # teacher | random
    layer_map: list[int] = field(default_factory=list)  # teacher layer per student layer
    temperature: float = 2.0
    alpha: float = 0.5  # weight of gold cross-entropy; 1 - alpha goes to the distillation loss
    dropout: float = 0.1
    word_dropout: float = 0.0  # as teacher.word_dropout, for the student's inputs
    form_dropout: float = 0.0  # as teacher.form_dropout, for the student's inputs
    epochs: float = 3.0
    max_steps: int = 0
    batch_size: int = 16
    learning_rate: float = 5e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_minutes: float = 0.0
    select_on_dev: bool = False  # as teacher.select_on_dev; the starting point (step 0) is scored too
    select_every: float = 1.0
    # Copies of the train split (per sentence with a mention) with mentions swapped by type, which
    # the student reads as unlabelled text: the teachers' labels only.  Out of the repr, which
    # fingerprints the student stage: added to the fingerprint only when set.
    mention_replacement: float = field(default=0.0, repr=False)
    average: float = field(default=0.0, repr=False)  # as teacher.average

    def shape(self) -> tuple[int, int, int, int]:
        if self.size not in STUDENT_SIZES:
            raise RecipeError(f"student.size must be one of {', '.join(STUDENT_SIZES)}, not {self.size!r}")
        base = STUDENT_SIZES[self.size]
        return (self.layers or base[0], self.hidden or base[1], self.heads or base[2],
                self.intermediate or base[3])


@dataclass
class Features:
    """Hashed word features added to the model's input (``edge_finer.features``)."""

    enabled: bool = False
    kinds: list[str] = field(default_factory=lambda: list(FEATURE_KINDS))
    buckets: int = 8192  # rows of the hashed table (id 0 is "no word")
    dim: int = 64  # width of each kind's vector before the projection to the hidden size


@dataclass
class Runtime:
    max_length: int = 128
    stride: int = 32
    aggregation: str = "first"
    threshold: float = 0.0
    calibrate_threshold: bool = False  # pick the threshold with the best F1 on the eval split instead
    calibrate_per_type: bool = False  # and then one per entity type (2-fold cross-validated in the manifest)


@dataclass
class Export:
    opset: int = 18
    exporter: str = "optimum"  # optimum | torch (the fallback, forced)


@dataclass
class Quantization:
    preset: str = "avx2"  # avx2 | avx512_vnni | arm64
    weight_type: str = ""  # int8 | uint8; empty = the preset's
    per_channel: bool | None = None  # None = the preset's
    optimize: str = "basic"  # none | basic | transformer (ORT graph optimisation before quantizing)


@dataclass
class Evaluation:
    threads: int = 1
    speed_sentences: int = 200


@dataclass
class Recipe:
    """A parsed recipe; ``path`` is the file, ``root`` the folder relative paths start from."""

    name: str
    version: str
    path: Path
    root: Path
    seed: int = 13
    threads: int = 0  # torch/ORT threads for the build; 0 = auto (idle cores, at least 1)
    # processes training the teacher's members at once (each `threads` threads; 0 = the idle cores);
    # the student then trains with jobs x threads threads
    jobs: int = 1
    demo: bool = False
    licence: str = ""
    description: str = ""
    output: str = "bundles"  # parent folder of the bundle, relative to root
    work: str = ""  # work folder, relative to root; default .work/<name>
    pretokenizer: str = "words"  # word pre-tokenisation (edge_finer.pretokenize.SCHEMES): words | han-chars
    language: Language = field(default_factory=Language)
    taxonomy: Taxonomy = field(default_factory=Taxonomy)
    data: Data = field(default_factory=Data)
    training_data: list[Source] = field(default_factory=list)
    teacher: Teacher = field(default_factory=Teacher)
    trim: Trim = field(default_factory=Trim)
    student: Student = field(default_factory=Student)
    features: Features = field(default_factory=Features)
    runtime: Runtime = field(default_factory=Runtime)
    export: Export = field(default_factory=Export)
    quantization: Quantization = field(default_factory=Quantization)
    evaluation: Evaluation = field(default_factory=Evaluation)

    def feature_spec(self) -> Any:
        """The :class:`edge_finer.features.FeatureSpec` of this build (None when disabled)."""
        if not self.features.enabled:
            return None
        from edge_finer.features import FeatureSpec

        return FeatureSpec(tuple(self.features.kinds), self.features.buckets, self.seed % (1 << 32))

    def resolve(self, p: str) -> Path:
        """A recipe path as an absolute path (relative ones start at ``root``)."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.root / q).resolve()


_SECTIONS: dict[str, type] = {
    "language": Language, "taxonomy": Taxonomy, "data": Data, "teacher": Teacher, "trim": Trim,
    "student": Student, "features": Features, "runtime": Runtime, "export": Export, "quantization": Quantization,
    "evaluation": Evaluation,
}
_TOP = {"name": str, "version": str, "seed": int, "threads": int, "jobs": int, "demo": bool, "licence": str,
        "description": str, "output": str, "work": str, "root": str, "pretokenizer": str}
_CHOICES = {
    ("data", "format"): ("auto", "conll", "jsonl"),
    ("data", "scheme"): ("auto", "iob2", "iob1", "bilou", "iobes", "io"),
    ("teacher", "family"): FAMILIES,
    ("trim", "chars"): ("corpus", "all"),
    ("student", "init"): ("teacher", "random"),
    ("student", "size"): tuple(STUDENT_SIZES),
    ("runtime", "aggregation"): ("first", "average", "max"),
    ("export", "exporter"): ("optimum", "torch"),
    ("quantization", "preset"): ("avx2", "avx512_vnni", "arm64"),
    ("quantization", "weight_type"): ("", "int8", "uint8"),
    ("quantization", "optimize"): ("none", "basic", "transformer"),
}


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe file; every problem is a one-line :class:`RecipeError`."""
    rpath = Path(path).expanduser().resolve()
    if not rpath.is_file():
        raise RecipeError(f"{rpath}: recipe not found")
    try:
        raw = tomllib.loads(rpath.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{rpath}: not valid TOML ({exc})") from None
    return parse_recipe(raw, rpath)


def parse_recipe(raw: Mapping[str, Any], rpath: Path) -> Recipe:
    """Build a :class:`Recipe` from an already parsed TOML table (tests build recipes in code)."""
    where = str(rpath)
    top: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    sources: list[Source] = []
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise RecipeError(f"{where}: [{key}] must be a table")
            sections[key] = _section(where, key, _SECTIONS[key], value)
        elif key == "training_data":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise RecipeError(f"{where}: training_data must be an array of tables ([[training_data]])")
            sources = [_section(where, "training_data", Source, v) for v in value]
        elif key in _TOP:
            top[key] = _coerce(where, key, value, _TOP[key])
        else:
            raise RecipeError(f"{where}: unknown key {key!r}")
    for req in ("name", "version"):
        if not top.get(req):
            raise RecipeError(f"{where}: required key {req!r} is missing")
    name = top["name"]
    if "/" in name or "\\" in name or name.startswith(".") or not name.strip():
        raise RecipeError(f"{where}: name {name!r} must be a plain folder name")
    root = (rpath.parent / top.pop("root", ".")).resolve()
    recipe = Recipe(path=rpath, root=root, training_data=sources, **top, **sections)
    _check(recipe)
    return recipe


def _section(where: str, name: str, cls: type, table: Mapping[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in table.items():
        if key not in fields:
            raise RecipeError(f"{where}: unknown key {key!r} in [{name}] (known: {', '.join(fields)})")
        default = _default(fields[key])
        if name == "data" and key == "train" and isinstance(value, str):
            value = [value]
        kwargs[key] = _coerce(where, f"{name}.{key}", value, type(default) if default is not None else None)
        choices = _CHOICES.get((name, key))
        if choices and kwargs[key] not in choices:
            raise RecipeError(f"{where}: {name}.{key} must be one of {', '.join(map(repr, choices))}, "
                              f"not {kwargs[key]!r}")
    return cls(**kwargs)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _coerce(where: str, key: str, value: Any, kind: type | None) -> Any:
    if kind is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise RecipeError(f"{where}: {key} must be {kind.__name__}, not {type(value).__name__} ({value!r})")


def _check(r: Recipe) -> None:
    where = str(r.path)
    if not r.language.bcp47:
        raise RecipeError(f"{where}: language.bcp47 is required")
    try:
        pretokenizer_scheme(r.pretokenizer)
    except ValueError as exc:
        raise RecipeError(f"{where}: pretokenizer: {exc}") from None
    if not r.taxonomy.name:
        raise RecipeError(f"{where}: taxonomy.name is required")
    if not r.data.train:
        raise RecipeError(f"{where}: data.train must list at least one file")
    if not r.data.eval:
        raise RecipeError(f"{where}: data.eval (the evaluation split) is required")
    rt = r.runtime
    if rt.max_length < 8 or not 0 <= rt.stride < rt.max_length // 2:
        raise RecipeError(f"{where}: runtime.max_length must be ≥ 8 and 0 ≤ stride < max_length/2")
    r.student.shape()  # validates the size name
    layers, hidden, heads, _ = r.student.shape()
    if r.teacher.family != "cnn" and hidden % heads:
        raise RecipeError(f"{where}: student hidden size {hidden} is not divisible by heads {heads}")
    if r.teacher.family != "cnn" and r.teacher.hidden % r.teacher.heads:
        raise RecipeError(f"{where}: teacher hidden size is not divisible by its heads")
    if r.teacher.family == "cnn" and (r.teacher.kernel < 1 or r.teacher.kernel % 2 == 0):
        raise RecipeError(f"{where}: teacher.kernel must be an odd number ≥ 1")
    if r.teacher.dilations and (r.teacher.family != "cnn" or len(r.teacher.dilations) != r.teacher.layers
                                or any(not isinstance(d, int) or d < 1 for d in r.teacher.dilations)):
        raise RecipeError(f"{where}: teacher.dilations needs teacher.family 'cnn' and one integer ≥ 1 per "
                          f"layer ({r.teacher.layers})")
    if r.teacher.family == "cnn" and r.teacher.path:
        raise RecipeError(f"{where}: teacher.family 'cnn' is for teachers trained here; a teacher folder is a "
                          "transformers token classifier")
    if r.student.layer_map and len(r.student.layer_map) != layers:
        raise RecipeError(f"{where}: student.layer_map has {len(r.student.layer_map)} entries "
                          f"for {layers} student layers")
    f = r.features
    if f.enabled and (not f.kinds or len(set(f.kinds)) != len(f.kinds) or set(f.kinds) - set(FEATURE_KINDS)):
        raise RecipeError(f"{where}: features.kinds must be distinct names from {', '.join(FEATURE_KINDS)}")
    if f.enabled and not (2 <= f.buckets <= 1 << 22 and 1 <= f.dim <= 1024):
        raise RecipeError(f"{where}: features.buckets must be in 2..4194304 and features.dim in 1..1024")
    if not (0.0 <= r.teacher.word_dropout < 1.0 and 0.0 <= r.student.word_dropout < 1.0):
        raise RecipeError(f"{where}: word_dropout must be in [0, 1)")
    if not (0.0 <= r.teacher.form_dropout < 1.0 and 0.0 <= r.student.form_dropout < 1.0):
        raise RecipeError(f"{where}: form_dropout must be in [0, 1)")
    if not 0.0 <= r.teacher.mention_replacement <= 4.0:
        raise RecipeError(f"{where}: teacher.mention_replacement must be between 0 and 4 (copies per sentence "
                          "with a mention)")
    if not 1 <= r.teacher.ensemble <= 16:
        raise RecipeError(f"{where}: teacher.ensemble must be between 1 and 16")
    if r.teacher.ensemble > 1 and r.teacher.path:
        raise RecipeError(f"{where}: teacher.ensemble trains several teachers here; it cannot be used with "
                          "teacher.path")
    if not 0 <= r.teacher.word_members <= 8:
        raise RecipeError(f"{where}: teacher.word_members must be between 0 and 8")
    if r.teacher.word_max_minutes < 0:
        raise RecipeError(f"{where}: teacher.word_max_minutes must be 0 (max_minutes) or more")
    if not 0.0 <= r.student.mention_replacement <= 4.0:
        raise RecipeError(f"{where}: student.mention_replacement must be between 0 and 4 (copies per sentence "
                          "with a mention)")
    if not (0.0 <= r.teacher.average < 1.0 and 0.0 <= r.student.average < 1.0):
        raise RecipeError(f"{where}: average must be in [0, 1) (the moving average's decay per step; "
                          "0 turns it off, 0.99-0.999 are usual)")
    if not 0 <= r.jobs <= MAX_JOBS:
        raise RecipeError(f"{where}: jobs must be between 0 (the idle cores) and {MAX_JOBS}")
    if r.teacher.word_members and r.teacher.path:
        raise RecipeError(f"{where}: teacher.word_members trains word-level members here; it cannot be used "
                          "with teacher.path (a fine-tuned teacher is used as it is)")
    if r.teacher.self_training and (r.teacher.ensemble < 2 or not r.data.unlabelled):
        raise RecipeError(f"{where}: teacher.self_training needs teacher.ensemble ≥ 2 (the first member tags "
                          "the text the others learn from) and data.unlabelled")
    if r.data.transliterated_drop_types and not r.data.transliterate:
        raise RecipeError(f"{where}: data.transliterated_drop_types applies to sentences data.transliterate "
                          "moved; set data.transliterate too")
    if r.data.transliterate:
        from .transliterate import BLOCKS

        if r.data.transliterate not in BLOCKS:
            raise RecipeError(f"{where}: data.transliterate must be one of the Brahmic scripts "
                              f"{', '.join(BLOCKS)}, not {r.data.transliterate!r}")
        if r.data.transliterate not in r.language.scripts:
            raise RecipeError(f"{where}: data.transliterate moves training text to {r.data.transliterate}, which "
                              f"the bundle does not write (language.scripts: {', '.join(r.language.scripts)})")
    if r.data.unlabelled_types and not r.teacher.self_training:
        raise RecipeError(f"{where}: data.unlabelled_types is read by teacher self-training only; set "
                          "teacher.self_training = true")
    if any(not isinstance(v, str) or not v for v in r.data.unlabelled_types.values()):
        raise RecipeError(f"{where}: data.unlabelled_types maps a source type to one of the taxonomy's types "
                          "(a non-empty string)")
    if not (r.teacher.select_every > 0 and r.student.select_every > 0):
        raise RecipeError(f"{where}: select_every must be > 0 (epochs between two dev scorings)")
    if not 0.0 <= r.student.alpha <= 1.0 or r.student.temperature <= 0:
        raise RecipeError(f"{where}: student.alpha must be in [0, 1] and temperature > 0")
