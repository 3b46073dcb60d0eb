#!/usr/bin/env python3
"""The across-machines cost model of docs/scaling.md.

    python3 mpi/scaling_model.py

One data-parallel step on R ranks, one rank per machine:

    T(R) = C(B) / R + U + A(R)

C(B)  compute of the gradient of a global batch of B rows on one core
      (measured: compute CPU seconds per step of a 1-rank run, mpi/bench.sh);
      split evenly, each rank computes B/R rows.
U     the update (rad_adam_step and rad_flow_set_params on every parameter),
      done by every rank on the whole vector: not divided by R.
A(R)  the all-reduce of N = 4 (P + 3) bytes (P float gradients, plus the
      loss and two flags), for R > 1, as MPI libraries do it for these
      sizes (Rabenseifner: a reduce-scatter by recursive halving, then an
      allgather by recursive doubling):
          A(R) = 2 ceil(log2 R) alpha + 2 (R - 1) / R * N / beta
      each rank sends (and receives) about 2 N bytes; alpha is the latency
      of one message, beta the link bandwidth. (A ring has the same
      bandwidth term but 2 (R - 1) latencies.)

Speedup S(R) = T(1) / T(R), efficiency S(R) / R; R runs up to B (every
rank needs at least one row). The numbers below are
this machine's measurements (docs/scaling.md); pass others on the command
line to redo the table:
    --model NAME,P,C500,C8000,U   (seconds per step; repeatable)
    --alpha SECONDS  --gbits G[,G...]
"""
import argparse
import math

MEASURED = [
    # name, parameters, compute s/step at B=500, at B=8000, update s/step
    ("d2 (6 layers, H=G=8)", 954, 0.000191, 0.00407, 0.000010),
    ("d16 (8 layers, H=G=64)", 67520, 0.00439, 0.0931, 0.00050),
]


def allreduce(R, nbytes, alpha, beta):
    if R == 1:
        return 0.0
    return 2 * math.ceil(math.log2(R)) * alpha + 2 * (R - 1) / R * nbytes / beta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--alpha", type=float, default=25e-6)
    ap.add_argument("--gbits", default="10,100")
    a = ap.parse_args()
    models = MEASURED
    if a.model:
        models = []
        for m in a.model:
            n, p, c1, c2, u = m.split(",")
            models.append((n, int(p), float(c1), float(c2), float(u)))
    ranks = [2, 4, 8, 16, 32, 64]
    nets = [float(g) for g in a.gbits.split(",")]
    print("Latency %g us. Speedup T(1)/T(R) (efficiency).\n" % (a.alpha * 1e6))
    print("| model | B | network | " + " | ".join("R=%d" % r for r in ranks) +
          " | fastest R | largest R at >= 50% |")
    print("|---|---:|---|" + "---:|" * (len(ranks) + 2))
    notes = []
    for name, P, c500, c8000, U in models:
        N = 4 * (P + 3)
        for B, C in ((500, c500), (8000, c8000)):
            for gb in nets:
                beta = gb * 1e9 / 8
                t1 = C + U
                cells = []
                for R in ranks:
                    S = t1 / (C / R + U + allreduce(R, N, a.alpha, beta))
                    cells.append("%.2fx (%.0f%%)" % (S, 100 * S / R))
                # the fastest R, and the largest R still at >= 50%
                # efficiency, over R <= B (every rank needs a row)
                best, best_r, half = 0.0, 1, 1
                for R in range(1, B + 1):
                    S = t1 / (C / R + U + allreduce(R, N, a.alpha, beta))
                    if S > best:
                        best, best_r = S, R
                    if S / R >= 0.5:
                        half = R
                print("| %s | %d | %g Gbit/s | %s | %d (%.1fx) | %d |"
                      % (name, B, gb, " | ".join(cells), best_r, best, half))
        # the local batch whose compute equals one all-reduce on 8 ranks
        c = c8000 / 8000
        for gb in nets:
            A8 = allreduce(8, N, a.alpha, gb * 1e9 / 8)
            notes.append("%s, %g Gbit/s: %.1f KB per all-reduce, %.0f us on 8 "
                         "ranks = the compute of %.0f rows (%.2f us per row)"
                         % (name, gb, N / 1e3, 1e6 * A8, A8 / c, 1e6 * c))
    print()
    for n in notes:
        print("- " + n)


if __name__ == "__main__":
    main()
