"""The build: run a recipe's stages in order, resumably, and write the bundle.

Stages (each a folder in the work folder, skipped on resume when its fingerprint matches):
``data`` → ``teacher`` → ``trim`` → ``student`` → ``export`` → ``quantize`` → ``evaluate`` →
``profile`` (the router's language profile) → ``bundle``.  Each stage reads only what earlier stages wrote, so any of them can be rerun
alone.  :func:`run_recipe` is what ``python -m quantize build`` and ``edge-finer build`` call.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import random
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape

from edge_finer.bundle import write_bundle
from edge_finer.langprofile import ORDERS, PROFILE_FILE, PROFILE_VERSION, TOP_NGRAMS
from edge_finer.catalogue import is_non_commercial
from edge_finer.pretokenize import scheme as pretokenizer_scheme
from edge_finer.version import __version__ as EDGE_FINER_VERSION

from .data import (Sentence, check_types, drop_types, read_annotated, read_unlabelled_tagged, to_model_words,
                   types_in)
from .errors import BuildError, DataError, RecipeError, TeacherError
from .members import MemberJob, run_in_workers, worker_count, worker_output
from .progress import Reporter
from .recipe import MAX_JOBS, Recipe, load_recipe
from .workdir import (WorkDir, file_stamp, fingerprint, folder_size, folder_stamp, read_json, read_jsonl,
                      write_json, write_jsonl)

STAGES = ("data", "teacher", "trim", "student", "export", "quantize", "evaluate", "profile", "bundle")
#: Bumped when a stage's code changes what it writes, so old work folders are not reused.
PIPELINE_VERSION = 1


def run_recipe(recipe_path: Path, work_dir: Path | None = None, out_dir: Path | None = None,
               resume: bool = True, console: Console | None = None, jobs: int | None = None) -> Path:
    """Build the bundle a recipe describes; returns the bundle folder (``out_dir/<name>``).

    ``work_dir`` defaults to the recipe's ``work`` (else ``<root>/.work/<name>``) and ``out_dir``
    to its ``output`` (else ``<root>/bundles``).  With ``resume`` finished stages whose inputs
    did not change are reused; without it the work folder is wiped first.  ``jobs`` overrides the
    recipe's: worker processes for the teacher's members, and the student's threads; like the
    machine's speed it decides only how far a time cap lets training go, so no fingerprint has it.
    """
    recipe = load_recipe(recipe_path)
    if jobs is not None:
        if not 0 <= jobs <= MAX_JOBS:
            raise RecipeError(f"--jobs must be between 0 (the idle cores) and {MAX_JOBS}, not {jobs}")
        recipe = dataclasses.replace(recipe, jobs=jobs)
    work = Path(work_dir) if work_dir else recipe.resolve(recipe.work or f".work/{recipe.name}")
    out = Path(out_dir) if out_dir else recipe.resolve(recipe.output or "bundles")
    return Build(recipe, WorkDir(work.resolve(), resume), out.resolve(), Reporter(console, len(STAGES))).run()


def refresh_profile(recipe_path: Path, bundle_dir: Path | None = None, console: Console | None = None) -> Path:
    """Recompute a built bundle's language profile from its recipe's training data, in place.

    Why: routing arrived after the first bundles were trained; this adds (or updates) their
    ``profile.json`` through the same data and profile stages a full build runs, without
    retraining, and leaves every other file of the bundle byte-identical.
    """
    import tempfile

    from edge_finer.bundle import MODEL_CARD

    recipe, target, bundle = _recipe_bundle(recipe_path, bundle_dir)
    with tempfile.TemporaryDirectory(prefix="edge-finer-profile.") as tmp:
        build = Build(recipe, WorkDir(Path(tmp) / "work", resume=False), target.parent,
                      Reporter(console, 2))
        build._data_stamps()
        for stage, fn in (("data", build.stage_data), ("profile", build.stage_profile)):
            build.rep.stage(stage)
            fn(build.work.begin(stage))
        manifest = {k: v for k, v in bundle.manifest.items() if k not in ("files", "format_version")}
        card = (target / MODEL_CARD).read_text(encoding="utf-8")
        return _rewrite_bundle(target, bundle, manifest, card,
                               {PROFILE_FILE: build.work.path("profile") / PROFILE_FILE})


def refresh_calibration(recipe_path: Path, bundle_dir: Path | None = None, per_type: bool = True,
                        console: Console | None = None) -> Path:
    """Recalibrate a built bundle's entity-score threshold(s) on its recipe's evaluation split,
    in place, without retraining: the int8 model is run through the runtime at threshold 0 on
    the sentences a build evaluates (the same data stage), then :func:`calibrate_threshold`
    picks the global threshold and, with ``per_type``, one per type (with its 2-fold
    cross-validated estimate).  The manifest's decoding and calibration and the model card
    change; the model, tokenizer and profile stay byte-identical."""
    import tempfile

    from edge_finer.annotator import Annotator

    from .card import render_card
    from .data import gold_text
    from .evaluate import calibrate_threshold, calibrated_decoding, calibration_line

    recipe, target, bundle = _recipe_bundle(recipe_path, bundle_dir)
    with tempfile.TemporaryDirectory(prefix="edge-finer-calibrate.") as tmp:
        build = Build(recipe, WorkDir(Path(tmp) / "work", resume=False), target.parent, Reporter(console, 2))
        build._data_stamps()
        build.rep.stage("data")
        build.stage_data(build.work.begin("data"))
        rows = read_jsonl(build.work.path("data") / "eval.jsonl")
    sentences = [Sentence(row["tokens"], row["tags"]) for row in rows]
    build.rep.stage("calibrate")
    annotator = Annotator(bundle, threads=build.threads, threshold=0.0)
    found = annotator.annotate_batch([gold_text(s.tokens, recipe.pretokenizer)[0] for s in sentences])
    cal = {"split": recipe.data.eval_split, **calibrate_threshold(found, sentences, recipe.pretokenizer, per_type)}
    build.rep.note(calibration_line(cal))
    manifest = {k: v for k, v in bundle.manifest.items() if k not in ("files", "format_version")}
    manifest["evaluation"] = {**manifest.get("evaluation", {}), "threshold_calibration": cal}
    decoding = {k: v for k, v in manifest.get("decoding", {}).items() if k != "type_thresholds"}
    manifest["decoding"] = {**decoding, **calibrated_decoding(cal)}
    return _rewrite_bundle(target, bundle, manifest, render_card(manifest), {})


def _recipe_bundle(recipe_path: Path, bundle_dir: Path | None) -> tuple[Recipe, Path, Any]:
    """The recipe, and the built bundle it names (``bundle_dir``, else the recipe's output/NAME),
    refused when the folder holds another bundle."""
    from edge_finer.bundle import open_bundle

    recipe = load_recipe(recipe_path)
    target = Path(bundle_dir) if bundle_dir else recipe.resolve(recipe.output or "bundles") / recipe.name
    bundle = open_bundle(target)
    if bundle.name != recipe.name:
        raise BuildError(f"{target}: holds bundle {bundle.name!r}, not {recipe.name!r} of {recipe_path}")
    return recipe, target, bundle


def _rewrite_bundle(target: Path, bundle: Any, manifest: dict[str, Any], card: str,
                    replaced: dict[str, Path]) -> Path:
    """Write ``target`` again with ``manifest``, ``card`` and the ``replaced`` files, every
    other file of ``bundle`` unchanged (staged first: write_bundle replaces the folder it reads)."""
    import tempfile

    from edge_finer.bundle import MODEL_CARD

    files: dict[str, Any] = {name: target / name for name in bundle.manifest["files"]
                             if name != MODEL_CARD and name not in replaced}
    files.update(replaced)
    with tempfile.TemporaryDirectory(prefix="edge-finer-copy.") as copy:
        staged = {}
        for name, src in files.items():
            staged[name] = Path(copy) / name
            shutil.copyfile(src, staged[name])
        return write_bundle(target, manifest, staged, card).path


def _member_in_worker(recipe: Recipe, work_root: Path, threads: int, inputs: Path, d: Path,
                      job: MemberJob) -> dict[str, Any]:
    """One teacher member in a worker process (:meth:`Build._train_members`): the build's
    inputs from ``inputs``; its notes, prefixed with the member's name, on the parent's console."""
    import pickle

    from .train import seed_everything

    seed_everything(recipe.seed, threads)
    console = Console(file=worker_output(), force_terminal=False, soft_wrap=True, width=120)  # type: ignore[arg-type]
    build = Build(recipe, WorkDir(work_root, resume=True), work_root,
                  Reporter(console, prefix=escape(f"[{job.kind} member {job.index + 1}] ")))
    build.threads = threads
    return build._train_member(d, job, pickle.loads(inputs.read_bytes()))


class Build:
    def __init__(self, recipe: Recipe, work: WorkDir, out: Path, reporter: Reporter) -> None:
        self.r, self.work, self.out, self.rep = recipe, work, out, reporter
        self.fp: dict[str, str] = {}
        from .train import build_threads

        self.threads = build_threads(recipe.threads)
        # A stage that trains or runs one model alone (student, evaluation) uses the cores of all
        # the member workers the build owns: two threads train the student ~1.8x faster when no
        # other process holds the second core (measured on 2 cores), so more steps fit its cap.
        self.jobs = worker_count(recipe.jobs, self.threads, MAX_JOBS)  # idle cores read once, for all stages
        self.solo_threads = self.threads * self.jobs

    # -- driver ---------------------------------------------------------------------------

    def run(self) -> Path:
        started = time.monotonic()
        r = self.r
        teacher_input = self._teacher_stamp()  # refuse a hub id / missing folder before any output
        data_input = self._data_stamps()
        self.rep.console.print(f"[bold]building[/] {self.r.name} {self.r.version} from {self.r.path}"
                               f"\n    work folder {self.work.root}; {self.threads} thread(s)"
                               + (f"; {self.jobs} member jobs, {self.solo_threads} "
                                  "threads for the student" if self.solo_threads > self.threads else ""))
        plan: list[tuple[str, list[Any], Callable[[Path], None]]] = [
            # the scheme only when not the default, so that work folders of earlier builds stay valid
            ("data", [r.data, r.taxonomy, teacher_input, r.seed, data_input]
             + ([r.pretokenizer] if r.pretokenizer != "words" else [])
             + ([["transliterate", r.data.transliterate, r.data.transliterated_drop_types]]
                if r.data.transliterate else []), self.stage_data),
            ("teacher", [r.teacher, r.runtime.max_length, r.runtime.stride, r.seed, teacher_input]
             + ([r.features] if r.features.enabled else [])
             + ([["word_members", r.teacher.word_members, r.teacher.word_max_minutes]]
                if r.teacher.word_members else [])
             + ([["average", r.teacher.average]] if r.teacher.average else []), self.stage_teacher),
            ("trim", [r.trim], self.stage_trim),
            ("student", [r.student, r.runtime.max_length, r.runtime.stride, r.seed]
             + ([r.features] if r.features.enabled else [])
             + ([["mention_replacement", r.student.mention_replacement]] if r.student.mention_replacement else [])
             + ([["average", r.student.average]] if r.student.average else []),
             self.stage_student),
            ("export", [r.export], self.stage_export),
            ("quantize", [r.quantization], self.stage_quantize),
            ("evaluate", [r.evaluation, r.runtime, r.data.max_eval_sentences], self.stage_evaluate),
            # last, so that adding it did not invalidate the trained stages of existing work folders
            ("profile", [PROFILE_VERSION, ORDERS, TOP_NGRAMS, r.language]
             # Han text counted as written (no spaces between characters); other work folders stay valid
             + (["han-text-as-written"] if r.pretokenizer == "han-chars" else []), self.stage_profile),
        ]
        prev = str(PIPELINE_VERSION)
        for name, inputs, fn in plan:
            fp = fingerprint(prev, name, inputs)
            self.fp[name] = prev = fp
            if self.work.is_done(name, fp):
                self.rep.stage(name, "[dim](done earlier, reused)[/]")
                continue
            self.rep.stage(name)
            t0 = time.monotonic()
            fn(self.work.begin(name))
            self.work.finish(name, fp, time.monotonic() - t0)
            self.rep.note(f"[green]done[/] in {time.monotonic() - t0:.1f} s")
        self.rep.stage("bundle")
        stage_seconds = {name: self.work.seconds(name) for name, _, _ in plan}
        bundle_dir = self.stage_bundle(stage_seconds)
        self.rep.console.print(f"[bold green]built[/] {bundle_dir} in {time.monotonic() - started:.0f} s")
        return bundle_dir

    def _data_stamps(self) -> list[Any]:
        d = self.r.data
        paths = [*d.train, d.eval, *d.unlabelled] + ([self.r.taxonomy.file] if self.r.taxonomy.file else [])
        out = []
        for p in paths:
            rp = self.r.resolve(p)
            if not rp.is_file():
                raise DataError(f"{rp}: data file not found (named in {self.r.path})")
            out.append(file_stamp(rp))
        return out

    def _teacher_stamp(self) -> list[Any] | None:
        if not self.r.teacher.path:
            return None
        from .teacher import resolve_teacher

        folder = resolve_teacher(self.r.teacher.path, self.r.root)
        return folder_stamp(folder)

    # -- 1. data --------------------------------------------------------------------------

    def _transliterated(self, train: list[Sentence], unlabelled: list[tuple[list[str], list[str] | None]],
                        ) -> tuple[list[Sentence], list[tuple[list[str], list[str] | None]], list[str | None],
                                   dict[str, dict[str, int]]]:
        """``data.transliterate``: train and unlabelled sentences of another Brahmic script, moved to
        the bundle's; the script each train sentence came from (None: already the bundle's), and
        how many sentences of each kind ("train", "unlabelled") came from each script."""
        from .transliterate import digit_style, foreign_script, transliterate_sentences

        target = self.r.data.transliterate
        origin = [foreign_script(s.tokens, target) for s in train]
        digits = digit_style([s.tokens for s, o in zip(train, origin) if o is None], target)
        words, moved = transliterate_sentences([s.tokens for s in train], target, digits)
        train = [dataclasses.replace(s, tokens=w) for s, w in zip(train, words)]
        u_words, u_moved = transliterate_sentences([ws for ws, _ in unlabelled], target, digits)
        unlabelled = [(w, trusted) for w, (_, trusted) in zip(u_words, unlabelled)]
        parts = ([f"{n} train sentences from {s}" for s, n in sorted(moved.items())]
                 + [f"{n} unlabelled from {s}" for s, n in sorted(u_moved.items())])
        self.rep.note(f"transliterated to {target} (digits: {digits}): " + (", ".join(parts) or "nothing"))
        if self.r.data.transliterated_drop_types:
            dropped = drop_types([s for s, o in zip(train, origin) if o], self.r.data.transliterated_drop_types)
            self.rep.note(f"{dropped} tags of types {sorted(self.r.data.transliterated_drop_types)} set to O in "
                          "the transliterated sentences (data.transliterated_drop_types)")
        return train, unlabelled, origin, {"train": dict(moved), "unlabelled": dict(u_moved)}

    def stage_data(self, d: Path) -> None:
        r = self.r
        fine, coarse = self._taxonomy()
        teacher_labels = None
        if r.teacher.path:
            from .teacher import inspect_teacher, resolve_teacher

            teacher_labels = inspect_teacher(resolve_teacher(r.teacher.path, r.root)).labels
        teacher_types = {lab[2:] for lab in teacher_labels if lab != "O"} if teacher_labels else None
        if fine and teacher_types and teacher_types - set(fine):
            raise DataError(f"the teacher's types {sorted(teacher_types - set(fine))} are not in taxonomy "
                            f"{r.taxonomy.name!r}")
        train: list[Sentence] = []
        for p in r.data.train:
            train += read_annotated(r.resolve(p), r.data.format, r.data.scheme, r.pretokenizer)
        evals = read_annotated(r.resolve(r.data.eval), r.data.format, r.data.scheme, r.pretokenizer)
        if r.data.drop_types:
            dropped = drop_types(train, r.data.drop_types) + drop_types(evals, r.data.drop_types)
            self.rep.note(f"{dropped} tags of types {sorted(r.data.drop_types)} set to O (recipe drop_types)")
        for what, allowed in ((f"the taxonomy {r.taxonomy.name!r}", set(fine) if fine else None),
                              ("the teacher's labels", teacher_types)):
            check_types(train, allowed, what)
            check_types(evals, allowed, what)
        rng = random.Random(r.seed)
        train = _sample(train, r.data.max_train_sentences, rng)
        evals = _sample(evals, r.data.max_eval_sentences, rng)
        if not train:
            raise DataError(f"{r.resolve(r.data.train[0])}: no training sentences")
        if not evals:
            raise DataError(f"{r.resolve(r.data.eval)}: no evaluation sentences")
        unlabelled: list[tuple[list[str], list[str] | None]] = []
        mapping = r.data.unlabelled_types
        for p in r.data.unlabelled:  # words, and the file's own tags where the recipe maps them
            unlabelled += read_unlabelled_tagged(r.resolve(p), mapping, r.data.format, r.pretokenizer)
        unlabelled = [row for row in _sample(unlabelled, r.data.max_unlabelled_sentences, rng) if row[0]]
        moved_from: list[str | None] = [None] * len(train)
        moved: dict[str, dict[str, int]] = {}
        if r.data.transliterate:
            train, unlabelled, moved_from, moved = self._transliterated(train, unlabelled)
        if teacher_labels:
            labels = list(teacher_labels)
        else:
            seen = types_in(train) | types_in(evals)
            order = [t for t in fine if t in seen] if fine else sorted(seen)
            labels = ["O"] + [f"{p}-{t}" for t in order for p in ("B", "I")]
        types = [lab[2:] for lab in labels if lab.startswith("B-")]
        types += [lab[2:] for lab in labels if lab.startswith("I-") and lab[2:] not in types]
        if set(mapping.values()) - set(types):
            raise DataError(f"{r.path}: data.unlabelled_types maps to {sorted(set(mapping.values()) - set(types))}, "
                            f"not types the model learns ({', '.join(types)})")
        model_train = [to_model_words(s, r.pretokenizer) for s in train]
        # "moved_from": the script a sentence was transliterated from (the profile leaves it out)
        write_jsonl(d / "train.jsonl", [{"words": s.tokens, "tags": s.tags, **({"moved_from": m} if m else {})}
                                        for s, m in zip(model_train, moved_from) if s.tokens])
        write_jsonl(d / "eval.jsonl", [{"tokens": s.tokens, "tags": s.tags, "where": s.where()} for s in evals])
        # "trusted": the file's own tags that self-training keeps (data.unlabelled_types), where given
        write_jsonl(d / "unlabelled.jsonl", [{"words": ws} if trusted is None else {"words": ws, "trusted": trusted}
                                             for ws, trusted in unlabelled])
        write_json(d / "labels.json", {"labels": labels, "types": types,
                                       "coarse": {t: coarse.get(t, t) for t in types}})
        stats = {"train_sentences": len(train), "eval_sentences": len(evals), "unlabelled_sentences": len(unlabelled),
                 "train_words": sum(len(s.tokens) for s in model_train),
                 "train_entities": sum(t.startswith("B-") for s in train for t in s.tags)}
        for what, counts in moved.items():  # "train", "unlabelled"
            stats[f"transliterated_{what}_sentences"] = counts
        write_json(d / "stats.json", stats)
        self.rep.note(f"{stats['train_sentences']} train / {stats['eval_sentences']} eval sentences, "
                      f"{len(types)} types, {len(labels)} labels, {len(unlabelled)} unlabelled")

    def _taxonomy(self) -> tuple[list[str], dict[str, str]]:
        t = self.r.taxonomy
        fine: list[str] = list(t.types)
        coarse: dict[str, str] = dict(t.coarse)
        if t.file:
            path = self.r.resolve(t.file)
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise DataError(f"{path}: cannot read the taxonomy ({exc.strerror or exc})") from None
            for n, line in enumerate(lines, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                cols = line.split("\t")
                if len(cols) < 1 or not cols[0].strip():
                    raise DataError(f"{path}:{n}: expected 'fine_type<TAB>coarse_type'")
                name = cols[0].strip()
                if name not in fine:
                    fine.append(name)
                if len(cols) > 1 and cols[1].strip():
                    coarse.setdefault(name, cols[1].strip())
        return fine, coarse

    # -- 2. teacher -----------------------------------------------------------------------

    def stage_teacher(self, d: Path) -> None:
        from .teacher import inspect_teacher, resolve_teacher
        from .tokenizer_train import load_backend_tokenizer, special_ids, special_roles

        r = self.r
        labels = read_json(self.work.path("data") / "labels.json")["labels"]
        if r.teacher.path:
            from .teacher import count_parameters, load_model

            info = inspect_teacher(resolve_teacher(r.teacher.path, r.root))
            tok = load_backend_tokenizer(info.folder)
            roles = special_roles(info.folder)
            ids = special_ids(tok, info.family, roles or None)
            model = load_model(info.folder)  # proves it loads, before hours of work
            params = count_parameters(model)
            offset = ids["pad_id"] + 1 if info.family == "xlm-roberta" else 0
            if model.config.max_position_embeddings - offset < r.runtime.max_length:
                raise TeacherError(f"{info.folder}: the teacher handles at most "
                                   f"{model.config.max_position_embeddings - offset} tokens but runtime.max_length "
                                   f"is {r.runtime.max_length}; lower it in the recipe")
            del model
            write_json(d / "teacher.json", {"folder": str(info.folder), "family": info.family, "labels": info.labels,
                                            "origin": f"user-supplied folder {info.folder.name}", "special": ids,
                                            "roles": roles, "parameters": params, "facts": {}})
            self.rep.note(f"using {info.family} teacher {info.folder} ({len(info.labels)} labels)")
            return
        self._train_teacher(d, labels)

    def _train_teacher(self, d: Path, labels: list[str]) -> None:
        from .encode import encode
        from .teacher import count_parameters, make_config, new_model
        from .tokenizer_train import SPECIALS, special_ids, train_tokenizer
        from .train import seed_everything

        r, t = self.r, self.r.teacher
        seed_everything(r.seed, self.threads)
        train = read_jsonl(self.work.path("data") / "train.jsonl")
        extra = [row["words"] for row in read_jsonl(self.work.path("data") / "unlabelled.jsonl")]
        tok_family = "bert" if t.family == "cnn" else t.family  # a cnn reads WordPiece pieces
        tok = train_tokenizer([row["words"] for row in train] + extra, tok_family, t.vocab_size, t.lowercase)
        ids = special_ids(tok, tok_family)
        label2id = {lab: i for i, lab in enumerate(labels)}
        spec = r.feature_spec()
        sentences = [(row["words"], row["tags"]) for row in train]
        if t.mention_replacement > 0:  # training copies only; the dev split that selects is never touched
            from .augment import replace_mentions

            sentences += replace_mentions(sentences, t.mention_replacement, r.seed)
        windows = encode(tok, [w for w, _ in sentences], [tags for _, tags in sentences], label2id,
                         r.runtime.max_length, r.runtime.stride, ids["bos_id"], ids["eos_id"], features=spec)
        cfg = make_config(t.family, tok.get_vocab_size(), t.layers, t.hidden, t.heads, t.intermediate, labels,
                          r.runtime.max_length, ids, t.dropout, t.kernel, t.dilations or None)
        self.rep.note(f"{t.family} tokenizer: {tok.get_vocab_size()} pieces; {len(windows)} training windows"
                      + (f" ({len(sentences) - len(train)} sentences with swapped mentions)"
                         if len(sentences) > len(train) else ""))
        scorer = self._dev_scorer(t, tok, ids, labels, spec)  # one encoding of the dev split for all members
        jobs = [MemberJob("subword", k, r.seed + k, t.max_minutes) for k in range(t.ensemble)]
        jobs += [MemberJob("word", k, r.seed + t.ensemble + k, t.word_max_minutes or t.max_minutes)
                 for k in range(t.word_members)]
        ctx: dict[str, Any] = {"cfg": cfg, "windows": windows, "tok": tok, "ids": ids, "labels": labels, "spec": spec,
                               "train": [(row["words"], row["tags"]) for row in train],
                               "dev": self._word_member_dev(labels) if t.word_members else None}
        self_trained: dict[str, Any] = {}
        results: dict[MemberJob, dict[str, Any]] = {}
        if t.self_training:  # the first member tags the text the others learn from: it goes first, alone
            model, results[jobs[0]] = self._train_subword_member(d, jobs[0], {**ctx, "scorer": scorer})
            extra_windows, self_trained = self._self_training_windows(model, tok, ids, labels, spec)
            ctx["windows"] = windows + extra_windows
        results.update(self._train_members(d, [job for job in jobs if job not in results], ctx, scorer))
        member_facts = [results[job] for job in jobs if job.kind == "subword"]
        word_facts = [results[job] for job in jobs if job.kind == "word"]
        folders = [str(self._member_folder(d, job)) for job in jobs if job.kind == "subword"]
        word_folders = [str(self._member_folder(d, job)) for job in jobs if job.kind == "word"]
        facts = member_facts[0] if t.ensemble == 1 else {**member_facts[0], "ensemble": member_facts}
        if word_facts:
            facts = {**facts, "word_members": word_facts}
        if len(sentences) > len(train):
            facts = {**facts, "swapped_mention_sentences": len(sentences) - len(train)}
        if self_trained:
            facts = {**facts, "self_training": self_trained}
        features = (spec, r.features.dim) if spec else None
        write_json(d / "teacher.json", {"folder": folders[0], "members": folders, "word_members": word_folders,
                                        "family": t.family, "labels": labels,
                                        "origin": "trained from scratch by this build"
                                                  + (f" (an ensemble of {t.ensemble}, different seeds)"
                                                     if t.ensemble > 1 else "")
                                                  + (f" and {len(word_folders)} word-level member(s)"
                                                     if word_folders else ""),
                                        "special": ids, "roles": SPECIALS[tok_family]["roles"],
                                        "parameters": count_parameters(new_model(cfg, features)), "facts": facts})

    def _train_members(self, d: Path, jobs: list[MemberJob], ctx: dict[str, Any], scorer: Any,
                       ) -> dict[MemberJob, dict[str, Any]]:
        """Every member in ``jobs``: in this process one after another, or with ``jobs`` > 1 in
        that many worker processes at once (:mod:`quantize.members`); their facts by job."""
        import pickle

        ctx = {**ctx, "scorer": scorer}
        workers = min(self.jobs, len(jobs))
        if workers <= 1:
            return {job: self._train_member(d, job, ctx) for job in jobs}
        threads = self.threads if self.r.threads > 0 else max(1, self.threads // workers)
        self.rep.note(f"training {len(jobs)} members in {workers} worker processes of {threads} thread(s) each")
        inputs = d / "members-input.pickle"  # written once (the dev scorer's encoding too), read by each worker
        inputs.write_bytes(pickle.dumps(ctx, protocol=pickle.HIGHEST_PROTOCOL))
        try:
            return run_in_workers(_member_in_worker, lambda job: (self.r, self.work.root, threads, inputs, d, job),
                                  jobs, workers, lambda line: self.rep.console.print(line, markup=False,
                                                                                     highlight=False))
        finally:
            inputs.unlink(missing_ok=True)

    def _train_member(self, d: Path, job: MemberJob, ctx: dict[str, Any]) -> dict[str, Any]:
        if job.kind == "word":
            return self._train_word_member(d, job, ctx)
        return self._train_subword_member(d, job, ctx)[1]

    @staticmethod
    def _member_folder(d: Path, job: MemberJob) -> Path:
        if job.kind == "word":
            return d / f"word_{job.index}"
        return d / ("model" if job.index == 0 else f"model_{job.index}")

    def _train_subword_member(self, d: Path, job: MemberJob, ctx: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """One subword member (members differ only by seed: initialisation and batch order),
        saved with the tokenizer; dev-selected when the recipe asks."""
        from .teacher import train_teacher
        from .tokenizer_train import SPECIALS, save_hf_tokenizer

        r, t = self.r, self.r.teacher
        tok, ids, spec, windows = ctx["tok"], ctx["ids"], ctx["spec"], ctx["windows"]
        if t.ensemble > 1:
            self.rep.note(f"ensemble member {job.index + 1} of {t.ensemble} (seed {job.seed})")
        select = self._selector(t, ctx["scorer"], len(windows), start_at_zero=False)
        model, facts = train_teacher(ctx["cfg"], windows, _schedule(t), ids["pad_id"], job.seed, self.rep,
                                     features=(spec, r.features.dim) if spec else None,
                                     word_dropout=t.word_dropout, unk_id=unk_id(tok), select=select,
                                     form_dropout=t.form_dropout)
        folder = self._member_folder(d, job)
        model.save_pretrained(str(folder), safe_serialization=True)
        tok_family = "bert" if t.family == "cnn" else t.family
        save_hf_tokenizer(tok, folder, SPECIALS[tok_family]["roles"], r.runtime.max_length)
        return model, {"seed": job.seed, "windows": len(windows), **facts}

    def _word_member_dev(self, labels: list[str]) -> list[Any] | None:
        """The dev sentences a word-level member is chosen on (``select_on_dev``), else None."""
        if not self.r.teacher.select_on_dev:
            return None
        known = {lab[2:] for lab in labels if lab != "O"}
        return [(e.tokens, e.tags) for e in self._eval_sentences(known) if e.tokens]

    def _train_word_member(self, d: Path, job: MemberJob, ctx: dict[str, Any]) -> dict[str, Any]:
        """One ``teacher.word_members`` word-level member (:mod:`quantize.wordtagger`), seeds after
        the subword members'; chosen on the dev split like them when ``select_on_dev``."""
        from .wordtagger import train_word_tagger

        t = self.r.teacher
        self.rep.note(f"word-level member {job.index + 1} of {t.word_members} (seed {job.seed})")
        model, fact = train_word_tagger(ctx["train"], ctx["dev"], ctx["labels"], job.seed, t.epochs, job.minutes,
                                        t.batch_size, t.dropout, t.word_dropout, self.rep)
        model.save(self._member_folder(d, job))
        return {"seed": job.seed, **fact}

    def _eval_sentences(self, known: set[str]) -> list[Any]:
        """The evaluation split on the model's word grid, tags of types the bundle lacks as O."""
        from .data import Sentence, to_model_words

        return [to_model_words(Sentence(row["tokens"], [tag if tag == "O" or tag[2:] in known else "O"
                                                        for tag in row["tags"]]), self.r.pretokenizer)
                for row in read_jsonl(self.work.path("data") / "eval.jsonl")]

    def _self_training_windows(self, first: Any, tok: Any, ids: dict[str, int], labels: list[str],
                               spec: Any) -> tuple[list[Any], dict[str, Any]]:
        """The unlabelled text as training windows for the members after the first: tagged by the
        first member, its own annotation trusted where the recipe maps it (:mod:`quantize.pseudo`)."""
        from .encode import encode
        from .featured import logits
        from .augment import mentions_of
        from .pseudo import merge
        from .selection import predict_tags

        r = self.r
        rows = read_jsonl(self.work.path("data") / "unlabelled.jsonl")
        words = [row["words"] for row in rows]
        label2id = {lab: i for i, lab in enumerate(labels)}
        enc = lambda tags: encode(tok, words, tags, label2id if tags is not None else None,  # noqa: E731
                                  r.runtime.max_length, r.runtime.stride, ids["bos_id"], ids["eos_id"], features=spec)
        predicted = predict_tags(first, enc(None), [len(ws) for ws in words], labels, ids["pad_id"], logits)
        trusted_types = set(r.data.unlabelled_types.values())
        tags = [merge(p, row.get("trusted"), trusted_types) for p, row in zip(predicted, rows)]
        entities = Counter(kind for ts in tags for _, _, kind in mentions_of(ts))
        kept_from_source = sum(1 for row in rows if row.get("trusted")
                               for _, _, kind in mentions_of(row["trusted"]))
        facts = {"sentences": len(words), "entities": dict(sorted(entities.items())),
                 "entities_from_the_source": kept_from_source,
                 "entities_tagged_by_the_first_member": sum(entities.values()) - kept_from_source}
        self.rep.note(f"self-training: {len(words)} unlabelled sentences, {sum(entities.values())} entities "
                      f"({kept_from_source} from their own annotation, the rest tagged by member 1)")
        return enc(tags), facts

    def _teacher(self) -> dict[str, Any]:
        return read_json(self.work.path("teacher") / "teacher.json")

    def _dev_scorer(self, section: Any, tok: Any, ids: dict[str, int], labels: list[str], spec: Any) -> Any:
        """A :class:`~quantize.selection.DevScorer` on the evaluation split, encoded with ``tok``,
        when the recipe section asks for dev selection (``select_on_dev``); else None."""
        if not section.select_on_dev:
            return None
        from .encode import encode
        from .featured import logits
        from .selection import DevScorer

        evals = [e for e in self._eval_sentences({lab[2:] for lab in labels if lab != "O"}) if e.tokens]
        windows = encode(tok, [e.tokens for e in evals], None, None, self.r.runtime.max_length,
                         self.r.runtime.stride, ids["bos_id"], ids["eos_id"], features=spec)
        return DevScorer(windows, [e.tags for e in evals], labels, ids["pad_id"], logits)

    @staticmethod
    def _selector(section: Any, scorer: Any, n_windows: int, start_at_zero: bool) -> Any:
        """A :class:`~quantize.selection.BestCheckpoint` using ``scorer`` every ``select_every``
        epochs; None without a scorer."""
        if scorer is None:
            return None
        from .selection import BestCheckpoint

        every = max(1, round(section.select_every * math.ceil(n_windows / section.batch_size)))
        return BestCheckpoint(scorer, every, start=0 if start_at_zero else every)

    # -- 3. trim --------------------------------------------------------------------------

    def stage_trim(self, d: Path) -> None:
        from .teacher import load_model
        from .tokenizer_train import load_backend_tokenizer, save_hf_tokenizer
        from .trim import first_mismatch, plan_keep, rewrite_tokenizer, trim_embeddings

        r, info = self.r, self._teacher()
        folder = Path(info["folder"])
        if not r.trim.enabled:
            write_json(d / "trim.json", {"folder": str(folder), "special": info["special"], "enabled": False})
            self.rep.note("trimming disabled by the recipe")
            return
        tok = load_backend_tokenizer(folder)
        corpus = [row["words"] for row in read_jsonl(self.work.path("data") / "train.jsonl")]
        corpus += [row["words"] for row in read_jsonl(self.work.path("data") / "unlabelled.jsonl")]
        if r.trim.include_eval:
            corpus += [to_model_words(Sentence(row["tokens"], row["tags"]), r.pretokenizer).tokens
                       for row in read_jsonl(self.work.path("data") / "eval.jsonl")]
        keep = plan_keep(tok, corpus, r.trim.chars, info["special"]["pad_id"])
        new_tok = rewrite_tokenizer(tok, keep)
        bad = first_mismatch(tok, new_tok, corpus)
        if bad is not None:
            raise BuildError(f"vocabulary trimming changed the tokenisation of {' '.join(bad[0])[:80]!r}: "
                             f"{bad[1][:12]} → {bad[2][:12]}")
        model = load_model(folder)
        special = trim_embeddings(model, keep, info["special"])
        out = d / "model"
        model.save_pretrained(str(out), safe_serialization=True)
        save_hf_tokenizer(new_tok, out, info.get("roles") or {}, r.runtime.max_length)
        write_json(d / "trim.json", {"folder": str(out), "special": special, "enabled": True,
                                     "vocab_before": tok.get_vocab_size(), "vocab_after": len(keep),
                                     "checked_sentences": len(corpus)})
        self.rep.note(f"vocabulary {tok.get_vocab_size()} → {len(keep)} pieces; tokenisation of "
                      f"{len(corpus)} sentences unchanged")

    def _trimmed(self) -> dict[str, Any]:
        return read_json(self.work.path("trim") / "trim.json")

    # -- 4. student: init + distillation --------------------------------------------------

    def stage_student(self, d: Path) -> None:
        from .distill import distill, teacher_logits
        from .encode import encode, form_columns
        from .student import init_student, student_config, with_features
        from .teacher import count_parameters, load_model
        from .tokenizer_train import load_backend_tokenizer, save_hf_tokenizer
        from .train import seed_everything

        r, s = self.r, self.r.student
        seed_everything(r.seed, self.solo_threads)
        trimmed, info = self._trimmed(), self._teacher()
        folder, ids = Path(trimmed["folder"]), trimmed["special"]
        teacher = load_model(folder)
        tok = load_backend_tokenizer(folder)
        labels = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
        label2id = {lab: i for i, lab in enumerate(labels)}
        train = read_jsonl(self.work.path("data") / "train.jsonl")
        extra = [row["words"] for row in read_jsonl(self.work.path("data") / "unlabelled.jsonl")]
        swapped = self._swapped_sentences(train)
        extra += swapped
        spec = r.feature_spec() or getattr(teacher, "spec", None)
        enc = lambda ws, tags: encode(tok, ws, tags, label2id if tags is not None else None,  # noqa: E731
                                      r.runtime.max_length, r.runtime.stride, ids["bos_id"], ids["eos_id"],
                                      features=spec)
        windows = enc([row["words"] for row in train], [row["tags"] for row in train]) + enc(extra, None)
        layers, hidden, heads, inter = s.shape()
        t_base = getattr(teacher, "base", teacher)
        from .convnet import MODEL_TYPE as CONV

        conv = teacher.config.model_type == CONV
        if conv:
            from .convnet import init_conv_student

            student, init_facts = init_conv_student(t_base, layers, hidden, r.seed, s.init == "teacher",
                                                         s.dropout)
        else:
            cfg = student_config(teacher.config, layers, hidden, heads, inter, r.runtime.max_length, s.dropout)
            student, init_facts = init_student(t_base, cfg, s.layer_map or None, r.seed, s.init == "teacher")
        if spec is not None:
            student, init_facts["features"] = with_features(student, teacher, spec, r.features.dim,
                                                            s.init == "teacher")
        shape = (f"window {teacher.config.kernel_size}, dilations {student.config.block_dilations()}" if conv
                 else f"{heads} heads, ffn {inter}")
        self.rep.note(f"student {layers}×{hidden} ({shape}), {count_parameters(student):,} "
                      f"parameters, init {init_facts['init']}; teacher {count_parameters(teacher):,}")
        soft = teacher_logits(teacher, windows, ids["pad_id"], self.rep)
        if len(info.get("members", [])) > 1 or info.get("word_members"):
            soft = self._ensemble_targets(soft, info, [row["words"] for row in train] + extra)
        select = self._selector(s, self._dev_scorer(s, tok, ids, labels, spec), len(windows), start_at_zero=True)
        facts = distill(student, windows, soft, _schedule(s), ids["pad_id"], r.seed, s.temperature, s.alpha, self.rep,
                        word_dropout=s.word_dropout, unk_id=unk_id(tok), select=select,
                        form_dropout=s.form_dropout,
                        form_columns=form_columns(spec.kinds) if spec is not None else ())
        out = d / "model"
        student.save_pretrained(str(out), safe_serialization=True)
        save_hf_tokenizer(tok, out, info.get("roles") or {}, r.runtime.max_length)
        write_json(d / "student.json", {"folder": str(out), "special": ids, "init": init_facts,
                                        "distillation": {**facts, "temperature": s.temperature, "alpha": s.alpha,
                                                         "windows": len(windows),
                                                         "unlabelled_sentences": len(extra) - len(swapped),
                                                         **({"swapped_mention_sentences": len(swapped)}
                                                            if swapped else {}),
                                                         "teachers": max(1, len(info.get("members", [])))
                                                                     + len(info.get("word_members") or [])},
                                        "parameters": count_parameters(student),
                                        "teacher_parameters": count_parameters(teacher)})

    def _swapped_sentences(self, train: list[dict[str, Any]]) -> list[list[str]]:
        """``student.mention_replacement`` copies of the train split with mentions swapped by type:
        text the teachers never read (a seed apart from the teacher's own copies), so their labels
        on it carry what they learned beyond the gold tags, for languages with no unlabelled text."""
        share = self.r.student.mention_replacement
        if not share:
            return []
        from .augment import replace_mentions

        copies = replace_mentions([(row["words"], row["tags"]) for row in train], share, self.r.seed + 1)
        self.rep.note(f"{len(copies)} train sentences with swapped mentions, read as unlabelled text")
        return [words for words, _ in copies]

    def _ensemble_targets(self, soft: list[Any], info: dict[str, Any], sentences: list[list[str]]) -> list[Any]:
        """The members' mean log-probabilities, window by window: the student learns the ensemble.

        The other members keep the untrimmed vocabulary; trimming proved that it tokenises these
        sentences exactly as the trimmed one does, so their windows line up with ``soft``'s."""
        import torch

        from .distill import teacher_logits
        from .encode import encode
        from .teacher import load_model
        from .tokenizer_train import load_backend_tokenizer

        r, ids = self.r, info["special"]
        logp = [torch.log_softmax(t, -1) for t in soft]
        # One encoding of all sentences for every member: they were trained with one tokenizer and
        # one feature spec (sentence indices run over the train split and the unlabelled text
        # together, and each window names its words, which the word-level members need).
        windows = encode(load_backend_tokenizer(Path(info["folder"])), sentences, None, None, r.runtime.max_length,
                         r.runtime.stride, ids["bos_id"], ids["eos_id"], features=r.feature_spec())
        for folder in info["members"][1:]:
            other = teacher_logits(load_model(Path(folder)), windows, ids["pad_id"], self.rep)
            if len(other) != len(logp) or any(a.shape != b.shape for a, b in zip(other, logp)):
                raise BuildError(f"ensemble member {folder} does not line up with the trimmed teacher's windows")
            logp = [a + torch.log_softmax(b, -1) for a, b in zip(logp, other)]
        if info.get("word_members"):
            from .wordtagger import load_word_tagger, window_targets, word_log_probs

            for folder in info["word_members"]:
                member = load_word_tagger(Path(folder))
                if member.labels != info["labels"]:
                    raise BuildError(f"word-level member {folder} has labels {member.labels}, not the teacher's")
                self.rep.note(f"word-level member {Path(folder).name}: labels of {len(sentences)} sentences")
                other = window_targets(word_log_probs(member, sentences), windows)
                if len(other) != len(logp) or any(a.shape != b.shape for a, b in zip(other, logp)):
                    raise BuildError(f"word-level member {folder} does not line up with the teacher's windows")
                logp = [a + b for a, b in zip(logp, other)]
        n = len(info["members"]) + len(info.get("word_members") or [])
        return [a / n for a in logp]

    def _student(self) -> dict[str, Any]:
        return read_json(self.work.path("student") / "student.json")

    # -- 5. export ------------------------------------------------------------------------

    def stage_export(self, d: Path) -> None:
        from .encode import encode
        from .export import check_against_torch, export_onnx
        from .teacher import load_model
        from .tokenizer_train import load_backend_tokenizer

        r, st = self.r, self._student()
        folder, ids = Path(st["folder"]), st["special"]
        from .featured import feature_spec_of

        featured = feature_spec_of(folder)
        facts = export_onnx(folder, d / "model.onnx", r.export.opset, r.export.exporter)
        tok = load_backend_tokenizer(folder)
        rows = read_jsonl(self.work.path("data") / "train.jsonl")[:16]
        windows = encode(tok, [row["words"] for row in rows], None, None, r.runtime.max_length, r.runtime.stride,
                         ids["bos_id"], ids["eos_id"], features=featured[0] if featured else None)
        facts["max_abs_logit_diff"] = check_against_torch(load_model(folder), d / "model.onnx", windows, ids["pad_id"])
        write_json(d / "export.json", facts)
        self.rep.note(f"{facts['tool']}, opset {facts['opset']}, max |Δlogit| vs PyTorch "
                      f"{facts['max_abs_logit_diff']:.2e}" + (f" — fallback: {facts['fallback_reason']}"
                                                              if facts.get("fallback_reason") else ""))

    # -- 6. quantize ----------------------------------------------------------------------

    def stage_quantize(self, d: Path) -> None:
        from .quantization import quantize

        q = self.r.quantization
        cfg = read_json(Path(self._student()["folder"]) / "config.json")
        facts = quantize(self.work.path("export") / "model.onnx", d / "model.onnx", q.preset, q.weight_type,
                         q.per_channel, q.optimize, cfg["num_attention_heads"], cfg["hidden_size"])
        facts["size_bytes"] = (d / "model.onnx").stat().st_size
        write_json(d / "quantize.json", facts)
        fp32 = (self.work.path("export") / "model.onnx").stat().st_size
        self.rep.note(f"{facts['weight_type']} ({facts['preset']}): {fp32 / 2**20:.2f} MiB → "
                      f"{facts['size_bytes'] / 2**20:.2f} MiB")

    # -- 7. evaluate ----------------------------------------------------------------------

    def stage_evaluate(self, d: Path) -> None:
        from edge_finer.annotator import Annotator

        from .evaluate import (TorchBackend, calibrate_threshold, calibration_line, run_system, staged_bundle,
                               token_agreement)
        from .export import input_names
        from .teacher import load_model
        from .tokenizer_train import load_backend_tokenizer

        r, ev = self.r, self.r.evaluation
        rows = read_jsonl(self.work.path("data") / "eval.jsonl")
        sentences = [Sentence(row["tokens"], row["tags"]) for row in rows]
        info, st = self._teacher(), self._student()
        results: dict[str, Any] = {}
        preds: dict[str, list[list[str]]] = {}
        cores = self.solo_threads
        import torch

        torch.set_num_threads(cores)

        # teacher: PyTorch behind the runtime, with its own (untrimmed) tokenizer
        tdir = d / "teacher"
        tdir.mkdir()
        (tdir / "tokenizer.json").write_text(load_backend_tokenizer(Path(info["folder"])).to_str(), encoding="utf-8")
        teacher = load_model(Path(info["folder"]))
        systems: list[tuple[str, Path, dict[str, int], Any]] = [
            ("teacher_fp32", tdir, info["special"], TorchBackend(teacher)),
            ("student_fp32", self.work.path("export") / "model.onnx", st["special"], None),
            ("student_int8", self.work.path("quantize") / "model.onnx", st["special"], None),
        ]
        student_tok = Path(st["folder"]) / "tokenizer.json"
        for name, model_path, ids, backend in systems:
            if backend is None:
                sdir = d / name
                sdir.mkdir()
                shutil.copyfile(model_path, sdir / "model.onnx")
                shutil.copyfile(student_tok, sdir / "tokenizer.json")
            else:
                sdir = model_path
            spec_folder = Path(info["folder"]) if backend is not None else Path(st["folder"])
            bundle = staged_bundle(sdir, self._runtime_manifest(ids, input_names(sdir / "model.onnx")
                                                                if backend is None else [], spec_folder))
            make = lambda threads, b=bundle, be=backend: Annotator(b, backend=be, threads=threads)  # noqa: E731
            self.rep.note(f"{name}: annotating {len(sentences)} sentences")
            res = run_system(make(cores), make(ev.threads), sentences, ev.speed_sentences, ev.threads)
            results[name], preds[name] = res.scores, res.tags
            self.rep.note(f"{name}: F1 {res.scores['f1']:.4f} (P {res.scores['precision']:.4f}, "
                          f"R {res.scores['recall']:.4f}), {res.scores['words_per_second']:,.0f} words/s")
            if name == "student_int8" and r.runtime.calibrate_threshold:
                results["threshold_calibration"] = {
                    "split": r.data.eval_split, **calibrate_threshold(res.entities, sentences, r.pretokenizer,
                                                                      r.runtime.calibrate_per_type)}
                cal = results["threshold_calibration"]
                self.rep.note(calibration_line(cal))
        for name, _, _, _ in systems[1:]:
            shutil.rmtree(d / name)
        agreement = token_agreement(preds["student_fp32"], preds["student_int8"])
        payload = (self.work.path("quantize") / "model.onnx").stat().st_size + student_tok.stat().st_size
        evaluation = {"split": r.data.eval_split, "dataset": r.data.dataset or Path(r.data.eval).parent.name,
                      "sentences": len(sentences), **results, "size_bytes": payload,
                      "teacher_size_bytes": folder_size(Path(info["folder"])),
                      "words_per_second": results["student_int8"]["words_per_second"], "threads": ev.threads,
                      "int8_fp32_token_agreement": round(agreement, 5)}
        write_json(d / "evaluation.json", evaluation)
        write_jsonl(d / "predictions.jsonl", [{"tokens": s.tokens, "gold": s.tags, **{k: v[i] for k, v in preds.items()}}
                                              for i, s in enumerate(sentences)])
        self.rep.note(f"int8/fp32 token agreement {100 * agreement:.2f} %")

    # -- 8. profile -----------------------------------------------------------------------

    def stage_profile(self, d: Path) -> None:
        """The language profile the router matches text against, from the training text."""
        from .data import gold_text
        from .profile import build_profile

        r = self.r
        # the text as written, as users give it: Chinese without spaces between its characters
        sentences = [gold_text(row["words"], "han-chars")[0]
                     for row in read_jsonl(self.work.path("data") / "train.jsonl")
                     if not row.get("moved_from")]  # another language's text, transliterated
        language = {"bcp47": r.language.bcp47, "iso639_3": r.language.iso639_3,
                    "scripts": list(r.language.scripts)}
        try:
            doc = build_profile(sentences, language)
        except ValueError as exc:
            raise DataError(f"{r.resolve(r.data.train[0])}: {exc}") from None
        # compact: a profile is ~4,000 entries and travels in every bundle
        (d / PROFILE_FILE).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n",
                                      encoding="utf-8")
        cal = doc["calibration"].get("long", {})
        self.rep.note(f"{len(doc['ngrams'])} n-grams from {doc['sentences']} sentences; held-out p1 "
                      f"{cal.get('p1', 'n/a')} (long sentences)")

    def _runtime_manifest(self, ids: dict[str, int], names: list[str], model_folder: Path) -> dict[str, Any]:
        """The manifest fields the runtime reads (shared by staged and final bundles)."""
        from .featured import feature_spec_of

        r = self.r
        lab = read_json(self.work.path("data") / "labels.json")
        featured = feature_spec_of(model_folder)
        extra = {"features": featured[0].to_manifest()} if featured else {}
        return {
            "name": r.name, "version": r.version,
            "language": {"bcp47": r.language.bcp47, "iso639_3": r.language.iso639_3,
                         "name": r.language.name, "scripts": list(r.language.scripts)},
            "taxonomy": {"name": r.taxonomy.name, "types": lab["types"], "coarse": lab["coarse"]},
            "labels": lab["labels"], "pretokenizer": pretokenizer_scheme(r.pretokenizer).manifest(),
            "max_length": r.runtime.max_length, "stride": r.runtime.stride,
            "input": {"bos_id": ids["bos_id"], "eos_id": ids["eos_id"], "pad_id": ids["pad_id"], "names": names},
            "decoding": {"aggregation": r.runtime.aggregation, "threshold": r.runtime.threshold},
            **extra,
        }

    # -- 9. bundle ------------------------------------------------------------------------

    def stage_bundle(self, stage_seconds: dict[str, float | None]) -> Path:
        from .card import render_card
        from .evaluate import calibrated_decoding
        from .export import input_names

        r = self.r
        st, info = self._student(), self._teacher()
        cfg = read_json(Path(st["folder"]) / "config.json")
        export = read_json(self.work.path("export") / "export.json")
        quant = read_json(self.work.path("quantize") / "quantize.json")
        evaluation = read_json(self.work.path("evaluate") / "evaluation.json")
        stats = read_json(self.work.path("data") / "stats.json")
        trim = self._trimmed()
        int8 = self.work.path("quantize") / "model.onnx"
        manifest = self._runtime_manifest(st["special"], input_names(int8), Path(st["folder"]))
        calibrated = evaluation.get("threshold_calibration")
        if calibrated:
            manifest["decoding"].update(calibrated_decoding(calibrated))
        manifest.update({
            "model": {
                "architecture": cfg["model_type"], "layers": cfg["num_hidden_layers"], "hidden_size": cfg["hidden_size"],
                "heads": cfg["num_attention_heads"], "intermediate_size": cfg["intermediate_size"],
                "vocab_size": cfg["vocab_size"], "parameters": st["parameters"], "opset": export["opset"],
                **({"kernel": cfg["kernel_size"]} if "kernel_size" in cfg else {}),
                **({"dilations": cfg["dilations"]} if any(d != 1 for d in cfg.get("dilations") or []) else {}),
                "exporter": export["tool"], "export_fallback_reason": export.get("fallback_reason", ""),
                "init": st["init"], "distillation": st["distillation"],
                "vocabulary": {"trimmed": trim.get("enabled", False), "before": trim.get("vocab_before"),
                               "after": trim.get("vocab_after")},
                "teacher": {"architecture": info["family"], "parameters": info["parameters"],
                            "parameters_after_trim": st["teacher_parameters"],
                            "origin": info["origin"], "training": info.get("facts", {})},
            },
            "quantization": {k: v for k, v in quant.items() if k != "size_bytes"},
            "evaluation": evaluation,
            "training_data": self._sources(stats["train_sentences"]),
            "licence": self._licence(),
            # said outright, not left to a reader's parsing of the licence name (issue 20)
            "non_commercial": is_non_commercial(self._licence()),
            "built_with": _toolchain(),
            "demo": bool(r.demo),
            "recipe": {"file": _display_path(r.path, r.root), "seed": r.seed},
            "build": {"seed": r.seed, "stage_seconds": stage_seconds,
                      "seconds": round(sum(v for v in stage_seconds.values() if v), 1),
                      "machine": platform.machine(),
                      "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()},
        })
        moved = {f"{what}_sentences_from": stats[f"transliterated_{what}_sentences"]
                 for what in ("train", "unlabelled") if stats.get(f"transliterated_{what}_sentences")}
        if moved:
            manifest["transliteration"] = {"to": r.data.transliterate, **moved}
        if r.description:
            manifest["description"] = r.description
        tok_json = (Path(st["folder"]) / "tokenizer.json").read_bytes()
        dest = self.out / r.name
        if dest.exists() and any(dest.iterdir()) and not (dest / "manifest.json").is_file():
            raise BuildError(f"{dest}: exists and is not a bundle; refusing to replace it")
        files = {"model.onnx": int8, "tokenizer.json": tok_json,
                 PROFILE_FILE: self.work.path("profile") / PROFILE_FILE}
        bundle = write_bundle(self.out / r.name, manifest, files, render_card(manifest))
        return bundle.path

    def _sources(self, sentences: int) -> list[dict[str, Any]]:
        r = self.r
        if not r.training_data:
            raise RecipeError(f"{r.path}: at least one [[training_data]] entry (name, licence, citation, url, "
                              "source) is required; the manifest must say what the bundle was trained on")
        out = []
        for src in r.training_data:
            if not src.name or not src.licence:
                raise RecipeError(f"{r.path}: every [[training_data]] entry needs a name and a licence")
            row = {"name": src.name, "licence": src.licence, "citation": src.citation, "url": src.url,
                   "source": src.source}
            if len(r.training_data) == 1:
                row["sentences"] = sentences
            out.append(row)
        return out

    def _licence(self) -> str:
        r = self.r
        if r.licence:
            return r.licence
        lic = {s.licence for s in r.training_data}
        if len(lic) != 1:
            raise RecipeError(f"{r.path}: the training data have different licences {sorted(lic)}; set `licence` "
                              "to the most restrictive one")
        return lic.pop()


def unk_id(tok: Any) -> int | None:
    """The tokenizer's unknown-piece id (word dropout's replacement), if it has one."""
    for name in ("[UNK]", "<unk>"):
        tid = tok.token_to_id(name)
        if tid is not None:
            return int(tid)
    return None


def _schedule(section: Any) -> Any:
    from .train import Schedule

    return Schedule(section.epochs, section.max_steps, section.batch_size, section.learning_rate, section.warmup,
                    section.weight_decay, section.max_minutes, section.average)


def _sample(items: list[Any], limit: int, rng: random.Random) -> list[Any]:
    """A seeded sample of at most ``limit`` items in their original order (all when 0)."""
    if limit <= 0 or len(items) <= limit:
        return items
    keep = sorted(rng.sample(range(len(items)), limit))
    return [items[i] for i in keep]


def _display_path(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def _toolchain() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"edge_finer": EDGE_FINER_VERSION}
    for dist in ("onnxruntime", "onnx", "torch", "transformers", "optimum", "optimum-onnx", "tokenizers"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    out["python"] = platform.python_version()
    return out
