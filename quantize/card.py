"""MODEL_CARD.md: what a bundle is, for a human, generated from its manifest.

Why generated: the card's figures must be the manifest's figures; written by hand they drift.
A demo bundle says so in its first lines, in words no one can miss.
"""
from __future__ import annotations

from typing import Any, Mapping

SYSTEMS = (("teacher_fp32", "teacher (PyTorch, fp32)"), ("student_fp32", "student (ONNX, fp32)"),
           ("student_int8", "student (ONNX, int8) — **this bundle**"))


def _mib(n: int | float) -> str:
    return f"{n / 2**20:.2f} MiB"


def render_card(m: Mapping[str, Any]) -> str:
    lang, tax, model, ev, q = m["language"], m["taxonomy"], m["model"], m["evaluation"], m["quantization"]
    out: list[str] = [f"# {m['name']} {m['version']}", ""]
    if m.get("demo"):
        out += ["> **DEMO — not for real use.** This bundle was trained from scratch in minutes, without "
                "any pretrained encoder, to show the format and the pipeline. Its accuracy is far below a "
                "real model's; do not use its output for anything.", ""]
    out += [
        f"Fine-grained named-entity annotator for **{lang.get('name') or lang['bcp47']}** "
        f"(`{lang['bcp47']}`{', ' + lang['iso639_3'] if lang.get('iso639_3') else ''}"
        f"{', scripts ' + ', '.join(lang.get('scripts', [])) if lang.get('scripts') else ''}) "
        f"with the **{tax['name']}** taxonomy ({len(tax['types'])} types), for the edge-finer runtime.",
        "",
        "## Model",
        "",
        f"- Student: {model['architecture']}, {model['layers']} layers, hidden {model['hidden_size']}, "
        f"{model['heads']} heads, feed-forward {model['intermediate_size']}, vocabulary {model['vocab_size']} "
        f"(trimmed), {model['parameters']:,} parameters.",
        f"- Distilled from a teacher with {model['teacher']['parameters']:,} parameters "
        f"({model['teacher']['origin']}).",
        f"- ONNX opset {model['opset']}, exported with {model['exporter']}"
        + (f" (fallback: {model['export_fallback_reason']})" if model.get("export_fallback_reason") else "") + ".",
        f"- Quantised: {q['method']} {q['weight_type']} weights, preset `{q['preset']}`, per-channel "
        f"{'yes' if q['per_channel'] else 'no'}, {q['tool']}.",
        f"- Windows of at most {m['max_length']} subwords with {m['stride']} overlap; labels read from the "
        f"first subword of each word (`{m['decoding']['aggregation']}`).",
    ]
    chosen = [(who, f) for who, f in (("teacher", model["teacher"].get("training", {})),
                                      ("student", model.get("distillation", {})))
              if isinstance(f, dict) and "selected_step" in f]
    if chosen:
        out.append("- Checkpoints chosen by F1 on the evaluation split: "
                   + "; ".join(f"{who} step {f['selected_step']} (dev F1 {f['selected_dev_f1']:.3f})"
                               for who, f in chosen) + ".")
    feats = m.get("features")
    if feats:
        out.append(f"- Word features (bundle format 2): {', '.join(feats['kinds'])}, hashed into "
                   f"{feats['buckets']:,} rows (seed {feats['seed']}), added to every subword's input.")
    cal = ev.get("threshold_calibration")
    typed = m["decoding"].get("type_thresholds") or {}
    out.append(f"- Entity-score threshold {m['decoding']['threshold']:.2f}"
               + (f", calibrated on the `{cal['split']}` split (F1 {cal['f1_at_zero']:.3f} at 0 → "
                  f"{cal.get('f1_global', cal['f1']):.3f}; the table below is at threshold 0)" if cal else "")
               + ("; `--threshold` overrides it." if not typed else "."))
    if typed and cal:
        cv = cal["cross_validated"]
        out.append("- Per-type thresholds (" + ", ".join(f"{t} {v:.2f}" for t, v in typed.items())
                   + f"), calibrated on the same split: F1 {cal['f1']:.3f}. Fitted on one half of the split and "
                   f"scored on the other (both ways), they are worth {cv['global']:.3f} → {cv['per_type']:.3f}: "
                   "that, not the in-sample gain, is what to expect on new text. `--threshold` replaces them all.")
    elif cal and "cross_validated" in cal:
        cv = cal["cross_validated"]
        out.append(f"- Per-type thresholds were fitted too and not kept: fitted on one half of the split and scored "
                   f"on the other they gave {cv['per_type']:.3f} against one threshold's {cv['global']:.3f}.")
    out += [
        "",
        "## Figures",
        "",
        f"Entity-level scores (seqeval, strict IOB2, micro average) on **{ev['dataset']}**, split "
        f"`{ev['split']}` ({ev['sentences']} sentences), measured through the edge-finer runtime.",
        "",
        "| system | F1 | precision | recall | words/s |",
        "|---|---|---|---|---|",
    ]
    for key, title in SYSTEMS:
        s = ev.get(key)
        if s:
            out.append(f"| {title} | {s['f1']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | "
                       f"{s.get('words_per_second', 0):,.0f} |")
    out += [
        "",
        f"Speed: {ev['threads']} thread{'s' if ev['threads'] != 1 else ''}, on the build machine. Size: model + tokenizer "
        f"{_mib(ev['size_bytes'])} (the teacher folder: {_mib(ev['teacher_size_bytes'])}). int8 and fp32 "
        f"students agree on {100 * ev['int8_fp32_token_agreement']:.2f} % of tokens.",
        "",
        "Per type (int8 student):",
        "",
        "| type | coarse | F1 | precision | recall | support |",
        "|---|---|---|---|---|---|",
    ]
    per_type = ev["student_int8"]["per_type"]
    for t in sorted(per_type, key=lambda t: -per_type[t]["support"]):
        r = per_type[t]
        out.append(f"| {t} | {tax['coarse'].get(t, t)} | {r['f1']:.3f} | {r['precision']:.3f} | "
                   f"{r['recall']:.3f} | {r['support']} |")
    out += ["", "## Training data", ""]
    for src in m["training_data"]:
        out.append(f"- **{src['name']}** — licence {src['licence']}"
                   + (f"; {src['sentences']:,} sentences used" if src.get("sentences") else "")
                   + (f"; {src['url']}" if src.get("url") else "")
                   + (f"; source {src['source']}" if src.get("source") else ""))
        if src.get("citation"):
            out.append(f"  - Citation: {src['citation']}")
    out += [
        "",
        "## Licence",
        "",
        f"{m['licence']} (the most restrictive licence of the training data).",
        *(["", "**NON-COMMERCIAL**: the training data's licence forbids commercial use of this bundle; "
               "ask the data's authors for other terms."]
          if m.get("non_commercial") else []),
        "",
        "## Limits",
        "",
        "- Trained on the data above only: expect lower accuracy on other domains, registers and spelling.",
        "- The vocabulary was trimmed to the training text; words made of unseen characters become unknown "
        "tokens and are rarely tagged.",
        f"- Only the {len(tax['types'])} types listed above are ever predicted.",
        "- Scores are on the development split; the official test split was held out."
        + (" The same split chose the checkpoints and the threshold (as spaCy's trainer chooses its best "
           "model), so expect held-out figures a little lower." if chosen or cal else ""),
        "",
        "## Rebuild",
        "",
        f"`python -m quantize build {m.get('recipe', {}).get('file', 'RECIPE.toml')}` "
        f"(seed {m.get('build', {}).get('seed', '?')}); toolchain: "
        + ", ".join(f"{k} {v}" for k, v in m["built_with"].items()) + ".",
        "",
    ]
    return "\n".join(out)
