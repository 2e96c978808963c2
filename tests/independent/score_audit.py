#!/usr/bin/env python3
"""Score a `pcam data audit` report against an independent ground truth.

Usage:
  score_audit.py --truth DIR/independent_truth.json --audit REPORT/audit.json
                 [--out scores.json] [--check]

The truth file is written by tests/independent/corrupt_pcam.py (SYNTHETIC data).  The
audit's findings are matched per kind on (split, index).  Exit status: 0 ok (or all
targets met with --check), 1 some target unmet (--check only), 2 unreadable/malformed input.
"""

import argparse
import json
import os
import sys

# truth kind -> audit kind
AUDIT_KIND = {
    "invalid_values": "invalid_values",
    "blank": "blank",
    "saturated": "saturated",
    "trigger_patch": "trigger_patch",
    "exact_duplicate_across_splits": "exact_duplicate_across_splits",
    "near_duplicate_across_splits": "near_duplicate_across_splits",
    "label_flip": "label_noise_candidate",
    "slide_in_several_splits": "slide_in_several_splits",
}
# (min recall, min precision)
TARGETS = {k: (0.95, 0.95) for k in AUDIT_KIND}
TARGETS["label_flip"] = (0.6, 0.8)
# subtype field used for the per-subtype recall tables
SUBTYPES = {"trigger_patch": "shape", "near_duplicate_across_splits": "transform",
            "invalid_values": "variant"}

RULES = [
    "A kind missing from the audit counts as nothing found.",
    "recall = TP / injected (1.0 when nothing was injected); precision = TP / (TP + FP) "
    "(1.0 when nothing was found); the counts are shown so such cases are visible.",
    "label_flip vs label_noise_candidate: tiles carrying another injected corruption "
    "(e.g. trigger tiles, whose labels were forced to 1) count neither as false positives "
    "nor as misses.",
    "Duplicates: the clean test/valid source tile of an injected duplicate (the other half of "
    "the pair) counts neither as TP nor FP for that kind (column 'ignored').",
    "slide_in_several_splits: train tiles on a slide shared with valid count neither as TP nor "
    "FP (column 'ignored'); only the valid tiles are injected.",
]


class Malformed(Exception):
    pass


def load_json(path, what):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise Malformed(f"cannot read {what} {path}: {e.strerror or e}")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Malformed(f"{what} {path} is not valid JSON: {e}")


def tile_key(t, where):
    if not isinstance(t, dict):
        raise Malformed(f"{where}: tile entry is not an object: {t!r:.80}")
    s, i = t.get("split"), t.get("index")
    if not isinstance(s, str) or isinstance(i, bool) or not isinstance(i, int) or i < 0:
        raise Malformed(f"{where}: tile entry needs a string 'split' and a non-negative int 'index': {t!r:.80}")
    return (s, i)


def parse_truth(truth):
    if not isinstance(truth, dict) or not isinstance(truth.get("kinds"), dict):
        raise Malformed("truth file has no 'kinds' object")
    kinds = {}
    for k in AUDIT_KIND:
        recs = truth["kinds"].get(k, [])
        if not isinstance(recs, list):
            raise Malformed(f"truth kinds.{k} is not a list")
        for r in recs:
            tile_key(r, f"truth kinds.{k}")
        kinds[k] = recs
    neutral = {}
    raw = truth.get("neutral", {})
    if not isinstance(raw, dict):
        raise Malformed("truth 'neutral' is not an object")
    for k, v in raw.items():
        if k.startswith("_"):
            continue
        if not isinstance(v, list):
            raise Malformed(f"truth neutral.{k} is not a list")
        neutral[k] = {tile_key(t, f"truth neutral.{k}") for t in v}
    return kinds, neutral


def parse_audit(audit):
    if not isinstance(audit, dict) or not isinstance(audit.get("findings"), list):
        raise Malformed("audit has no 'findings' list")
    found, no_tiles = {}, 0
    for n, f in enumerate(audit["findings"]):
        if not isinstance(f, dict) or not isinstance(f.get("kind"), str):
            raise Malformed(f"audit findings[{n}] is not an object with a string 'kind'")
        tiles = f.get("tiles")
        if tiles is None:
            no_tiles += 1
            tiles = []
        if not isinstance(tiles, list):
            raise Malformed(f"audit findings[{n}].tiles is not a list")
        s = found.setdefault(f["kind"], set())
        for t in tiles:
            s.add(tile_key(t, f"audit findings[{n}]"))
    return found, no_tiles


def ratio(a, b, empty):
    return (a / b) if b else empty


def score(truth, audit):
    kinds, neutral = parse_truth(truth)
    found, no_tiles = parse_audit(audit)
    all_injected = {k: {(r["split"], r["index"]) for r in recs} for k, recs in kinds.items()}
    per_kind, per_sub = {}, {}
    for k, recs in kinds.items():
        ak = AUDIT_KIND[k]
        injected = set(all_injected[k])
        ignore = set(neutral.get(k, set()))
        if k == "label_flip":
            other = set().union(*(v for kk, v in all_injected.items() if kk != k))
            injected -= other
            ignore |= other
        ignore -= injected
        F = found.get(ak, set())
        tp = len(F & injected)
        ign = len(F & ignore)
        fp = len(F) - tp - ign
        rmin, pmin = TARGETS[k]
        rec = ratio(tp, len(injected), 1.0)
        prec = ratio(tp, tp + fp, 1.0)
        per_kind[k] = {
            "audit_kind": ak, "injected": len(injected), "found": len(F), "true_positives": tp,
            "false_positives": fp, "ignored": ign, "missed": len(injected) - tp,
            "recall": rec, "precision": prec, "target_recall": rmin, "target_precision": pmin,
            "met": rec >= rmin and prec >= pmin, "present_in_audit": ak in found,
            "missed_tiles": [{"split": s, "index": i} for s, i in sorted(injected - F)][:50],
            "false_positive_tiles": [{"split": s, "index": i} for s, i in sorted(F - injected - ignore)][:50],
        }
        if k in SUBTYPES:
            field = SUBTYPES[k]
            groups = {}
            for r in recs:
                groups.setdefault(str(r.get(field, "?")), []).append((r["split"], r["index"]))
            per_sub[k] = {
                "field": field,
                "recall": {g: {"injected": len(v), "found": len(set(v) & F),
                               "recall": ratio(len(set(v) & F), len(v), 1.0)}
                           for g, v in sorted(groups.items())},
            }
    extra = {k: len(v) for k, v in found.items() if k not in AUDIT_KIND.values()}
    return {"truth": {"seed": truth.get("seed"), "dtype": truth.get("dtype"), "sizes": truth.get("sizes"),
                      "generator": truth.get("generator")},
            "rules": RULES, "per_kind": per_kind, "per_subtype": per_sub,
            "unscored_audit_kinds": extra, "findings_without_tiles": no_tiles}


def fmt(x):
    return f"{x:.3f}"


def markdown(res):
    out = []
    t = res["truth"]
    out.append(f"# Independent audit score (SYNTHETIC data: seed {t['seed']}, dtype {t['dtype']}, sizes {t['sizes']})")
    out.append("")
    out.append("Rules:")
    for r in res["rules"]:
        out.append(f"- {r}")
    out.append("")
    out.append("| truth kind | audit kind | injected | found | TP | FP | ignored | recall | precision | target R/P | met |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for k, v in res["per_kind"].items():
        absent = "" if v["present_in_audit"] else " (absent)"
        out.append(f"| {k} | {v['audit_kind']}{absent} | {v['injected']} | {v['found']} | {v['true_positives']} | "
                   f"{v['false_positives']} | {v['ignored']} | {fmt(v['recall'])} | {fmt(v['precision'])} | "
                   f"{v['target_recall']}/{v['target_precision']} | {'yes' if v['met'] else 'NO'} |")
    titles = {"trigger_patch": "Recall per trigger shape",
              "near_duplicate_across_splits": "Recall per near-duplicate transform",
              "invalid_values": "Recall per invalid-value variant"}
    for k, sub in res["per_subtype"].items():
        if not sub["recall"]:
            continue
        out.append("")
        out.append(f"## {titles.get(k, k)} (precision is per kind, above)")
        out.append("")
        out.append(f"| {sub['field']} | injected | found | recall |")
        out.append("|---|---:|---:|---:|")
        for g, v in sub["recall"].items():
            out.append(f"| {g} | {v['injected']} | {v['found']} | {fmt(v['recall'])} |")
    if res["unscored_audit_kinds"]:
        out.append("")
        out.append("Audit kinds not scored here (tiles): " +
                   ", ".join(f"{k} ({n})" for k, n in sorted(res["unscored_audit_kinds"].items())))
    if res["findings_without_tiles"]:
        out.append(f"Audit findings without a 'tiles' list (counted as empty): {res['findings_without_tiles']}")
    return "\n".join(out)


def write_json_atomic(path, obj):
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Score a pcam audit.json against independent_truth.json")
    ap.add_argument("--truth", required=True)
    ap.add_argument("--audit", required=True)
    ap.add_argument("--out")
    ap.add_argument("--check", action="store_true", help="exit 1 unless every target is met")
    args = ap.parse_args(argv)
    try:
        res = score(load_json(args.truth, "truth"), load_json(args.audit, "audit"))
    except Malformed as e:
        print(f"score_audit.py: error: {e}", file=sys.stderr)
        return 2
    print(markdown(res))
    unmet = [k for k, v in res["per_kind"].items() if not v["met"]]
    res["all_targets_met"] = not unmet
    if args.out:
        try:
            write_json_atomic(args.out, res)
        except OSError as e:
            print(f"score_audit.py: error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
            return 2
    if args.check:
        print("")
        if unmet:
            for k in unmet:
                v = res["per_kind"][k]
                print(f"UNMET: {k} (audit kind {v['audit_kind']}): recall {fmt(v['recall'])} "
                      f"(target >= {v['target_recall']}), precision {fmt(v['precision'])} "
                      f"(target >= {v['target_precision']})")
            return 1
        print("All targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
