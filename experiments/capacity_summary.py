#!/usr/bin/python3
"""Summarize a capacity sweep (experiments/capacity.sh) as markdown.

  /usr/bin/python3 experiments/capacity_summary.py RESULTS_TSV [--gmm GMM_TSV]
                                                   [--tol 0.05]

RESULTS_TSV has the columns model, layers, hidden, problem, test_ll, steps,
seconds (capacity.sh writes it); GMM_TSV is experiments/gmm.py --tsv's
output. Parameter counts come from librad itself, through ctypes
(rad.Flow.create(...).num_params, RAD with gate hidden = hidden); the true
log-likelihoods from rad.true_log_likelihood. The gap is true LL - test LL.

Prints: the gap of every configuration on every problem; per problem, the
smallest parameter count at which each model comes within --tol nats of
the true log-likelihood (or its best gap and at what size); and the best
gap of each model within a few parameter budgets (equal-size comparison).
"""

import argparse
import csv
import os
import sys
from collections import defaultdict

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "examples", "python"))
import rad  # noqa: E402

MODEL_NAMES = {"rad": "RAD", "realnvp": "REAL NVP", "gmm": "GMM"}
BUDGETS = (400, 1000, 2000, 5000, None)


def num_params(model, layers, hidden, cache={}):
    key = (model, layers, hidden)
    if key not in cache:
        with rad.Flow.create(model, dim=2, layers=layers, hidden=hidden,
                             gate_hidden=hidden, seed=0) as f:
            cache[key] = int(f.num_params)
    return cache[key]


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def fmt_gap(g):
    return "%.3f" % g


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--gmm", help="experiments/gmm.py --tsv output")
    ap.add_argument("--tol", type=float, default=0.05,
                    help="'within' threshold in nats (default 0.05)")
    args = ap.parse_args()

    problems = rad.problem_names()
    true_ll = {p: rad.true_log_likelihood(p) for p in problems}

    # runs[(model, layers, hidden)][problem] = (test_ll, seconds)
    runs = defaultdict(dict)
    steps = set()
    for r in read_tsv(args.results):
        key = (r["model"], int(r["layers"]), int(r["hidden"]))
        runs[key][r["problem"]] = (float(r["test_ll"]), float(r["seconds"]))
        steps.add(int(r["steps"]))
    problems = [p for p in problems if any(p in v for v in runs.values())]
    configs = sorted(runs, key=lambda k: (k[0], num_params(*k), k[1]))

    gmm = {}
    if args.gmm:
        for r in read_tsv(args.gmm):
            gmm[r["problem"]] = (float(r["test_ll"]), int(r["params"]),
                                 int(r["k"]))

    out = []
    w = out.append
    w("Capacity sweep: %d configurations, %s Adam steps per run; entries are "
      "gaps in nats (true log-likelihood minus mean test log-likelihood; "
      "lower is better, 0 is the best possible, negative is noise or the "
      "table's rounding)." % (len(configs),
                              "/".join(str(s) for s in sorted(steps))))
    w("")
    w("| model | layers | hidden | params | " + " | ".join(problems)
      + " | train s (sum) |")
    w("|---|--:|--:|--:|" + "--:|" * len(problems) + "--:|")
    for key in configs:
        cells = []
        secs = 0.0
        for p in problems:
            if p in runs[key]:
                ll, s = runs[key][p]
                secs += s
                cells.append(fmt_gap(true_ll[p] - ll))
            else:
                cells.append("")
        w("| %s | %d | %d | %d | %s | %.0f |"
          % (MODEL_NAMES.get(key[0], key[0]), key[1], key[2],
             num_params(*key), " | ".join(cells), secs))
    if gmm:
        w("| GMM (k on validation) | | | %s | %s | |"
          % ("/".join(str(gmm[p][1]) for p in problems if p in gmm),
             " | ".join(fmt_gap(true_ll[p] - gmm[p][0]) if p in gmm else ""
                        for p in problems)))
    w("")
    w("True log-likelihoods: " + ", ".join("%s %.2f" % (p, true_ll[p])
                                         for p in problems) + ".")
    w("")

    # Smallest size within tol, else the best gap.
    w("Smallest parameter count within %.2f nats of the true log-likelihood "
      "(else: the best gap reached, and at what size):" % args.tol)
    w("")
    models = sorted({k[0] for k in configs})
    w("| problem | " + " | ".join(MODEL_NAMES.get(m, m) for m in models)
      + (" | GMM (k, params, gap) |" if gmm else " |"))
    w("|---|" + "---|" * len(models) + ("---|" if gmm else ""))
    for p in problems:
        cells = []
        for m in models:
            rows = [(num_params(*k), k, true_ll[p] - runs[k][p][0])
                    for k in configs if k[0] == m and p in runs[k]]
            if not rows:
                cells.append("")
                continue
            ok = sorted(r for r in rows if r[2] < args.tol)
            if ok:
                n, k, g = ok[0]
                cells.append("**%d** (L=%d, H=%d; gap %.3f)" % (n, k[1], k[2], g))
            else:
                n, k, g = min(rows, key=lambda r: r[2])
                cells.append("never; best gap %.3f at %d (L=%d, H=%d)"
                             % (g, n, k[1], k[2]))
        line = "| %s | %s |" % (p, " | ".join(cells))
        if gmm:
            if p in gmm:
                ll, n, k = gmm[p]
                line += " k=%d, %d, gap %.3f |" % (k, n, true_ll[p] - ll)
            else:
                line += " |"
        w(line)
    w("")

    # Equal-size comparison: best gap within each parameter budget.
    w("Best gap within a parameter budget (equal-size comparison; '-' = no "
      "configuration that small):")
    w("")
    heads = ["<= %d" % b if b else "any" for b in BUDGETS]
    w("| problem | model | " + " | ".join(heads) + " |")
    w("|---|---|" + "--:|" * len(BUDGETS))
    for p in problems:
        for m in models:
            cells = []
            for b in BUDGETS:
                gs = [true_ll[p] - runs[k][p][0] for k in configs
                      if k[0] == m and p in runs[k]
                      and (b is None or num_params(*k) <= b)]
                cells.append(fmt_gap(min(gs)) if gs else "-")
            w("| %s | %s | %s |" % (p, MODEL_NAMES.get(m, m), " | ".join(cells)))
    print("\n".join(out))


if __name__ == "__main__":
    main()
