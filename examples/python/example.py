#!/usr/bin/python3
"""librad from Python, end to end: fit a RAD flow on the "moons" problem,
report the held-out log-likelihood, sample, infer the discrete labels,
save and reload.

    make                                   # builds lib/librad.so
    /usr/bin/python3 examples/python/example.py [--steps N] [--out DIR]

rad.py (next to this file) finds the in-tree library by itself; set RAD_LIB
to use another librad.so.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rad  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3000, help="Adam steps (3000)")
    ap.add_argument("--out", help="directory for model.radflow (default: a "
                    "temporary directory, removed at the end)")
    args = ap.parse_args()

    print("librad %s (%s)" % (rad.version(), rad.library_path()))
    problem = "moons"
    train = rad.problem_sample(problem, 10000, seed=1)
    heldout = rad.problem_sample(problem, 5000, seed=2)

    # The paper's RAD configuration: 6 layers, H = G = 8 hidden units.
    with rad.Flow.create("rad", dim=2, layers=6, hidden=8, gate_hidden=8,
                         seed=3) as flow:
        flow.column_names = ["x", "y"]
        # Standardize with the training data's moments: a fixed layer under
        # the flow, so log-likelihoods stay in the data's own units.
        flow.standardization = (train.mean(axis=0), train.std(axis=0))
        print(flow)

        def progress(step, train_ll, heldout_ll):
            if step % 1000 == 0 or step == args.steps:
                print("  step %5d  train LL %.4f  held-out LL %.4f"
                      % (step, train_ll, heldout_ll))
            return False  # True would stop the fit

        flow.fit(train, steps=args.steps, batch=500, lr=3e-3,
                 lr_schedule="cosine", seed=4, heldout=heldout,
                 eval_every=500, report_every=500, callback=progress)
        ll = float(flow.log_prob(heldout).astype(np.float64).mean())
        print("held-out LL %.4f nats (true LL of %s: %.2f)"
              % (ll, problem, rad.true_log_likelihood(problem)))

        # Exact sampling, with the latent z and the labels of each sample.
        x, z, k = flow.sample(5, seed=7, return_z=True, return_labels=True)
        print("samples:\n%s" % np.array2string(x, precision=3))

        # Exact inference of the labels of data points, and their gating
        # probabilities p(k | z) (n x num_labels x 3); the "gate confidence"
        # printed is the mean probability of the most likely value of each
        # label.
        points = heldout[:3]
        z, labels, lp = flow.forward(points)
        probs = flow.gate_probs(points)
        for i in range(len(points)):
            print("point %s: log p %.3f, labels %s, gate confidence %.2f"
                  % (np.array2string(points[i], precision=3), lp[i],
                     "".join(map(str, labels[i])), probs[i].max(axis=1).mean()))
        back = flow.inverse(z, labels)
        print("inverse(forward(x)) max error %.2g" % np.abs(back - points).max())

        # Samples of one mixture component: every label fixed to those of
        # the first point; the acceptance rate estimates its weight.
        comp, acc = flow.sample_component(labels[0], 100, seed=8,
                                          max_attempts=100000,
                                          return_acceptance=True)
        print("component %s: weight about %.4f, sample mean %s"
              % ("".join(map(str, labels[0])), acc,
                 np.array2string(comp.mean(axis=0), precision=3)))

        # Save and reload: the file keeps everything, and is exact.
        with tempfile.TemporaryDirectory() as tmp:
            out = args.out or tmp
            os.makedirs(out, exist_ok=True)
            path = os.path.join(out, "model.radflow")
            flow.save(path)
            with rad.Flow.load(path) as again:
                same = np.array_equal(again.log_prob(heldout),
                                      flow.log_prob(heldout))
                print("saved %s (%d bytes), reloaded: columns %s, identical "
                      "log-likelihoods: %s" % (path if args.out else "model.radflow",
                                               os.path.getsize(path),
                                               again.column_names, same))
                if not same:
                    return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except rad.RadError as e:
        print("example.py: %s" % e, file=sys.stderr)
        sys.exit(1)
