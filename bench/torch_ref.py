#!/usr/bin/python3
"""The models of MODEL.md in PyTorch, as a speed reference for librad.

    /usr/bin/python3 bench/torch_ref.py [--quick] [--librad FILE] [--no-check]

Implements MODEL.md sections 1-6 exactly: the normalized fold with
log-space slopes, the soft clamp B = 3 of the boundary logits, the gating
distribution with its trigonometric weights, the RAD coupling layer
(conditioner dense(d1 -> H) ReLU dense(H -> 10 d2), gating network
dense(d -> G) ReLU dense(G -> 3 d2), s1 = c1 tanh(r1), s2 = c2 tanh(r2)),
the affine REAL NVP layer, alternating masks, the standard normal base and
Adam (lr 1e-3; torch.optim.Adam with foreach=True, its faster
multi-tensor path). Everything is vectorized over the batch; CPU,
float32, one thread (torch.set_num_threads(1)), eager mode.

It measures, as medians of repetitions after a warm-up, training steps/s
(forward, backward and an Adam step on a random minibatch of 500 of
10,000 moons points) and log_prob points/s (torch.no_grad(), batches 1e4
and 1e5) for the paper configuration: d = 2, 6 layers, RAD H = G = 8 and
REAL NVP H = 56.

Cross-checks against librad (lib/librad.so through ctypes, or RAD_LIB):
log p at initialization (librad's own initial parameters loaded into the
torch model), log p and the gradient of the mean log-likelihood at random
parameters, and the log-likelihood after 200 Adam steps from the same
start in both (different minibatch orders: the same ballpark is expected,
not the same number).

With --librad FILE (the output of `rad-bench --compare`), it ends with
the ratios librad / PyTorch. Output lines `bench name=... value=...
unit=...` are machine-readable, as rad-bench's.
"""
import argparse
import ctypes
import math
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as Fn
except ImportError:
    print("PyTorch not installed: apt-get install python3-torch")
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
LOG_2PI = math.log(2.0 * math.pi)
LAYER_RAD, LAYER_AFFINE = 1, 2
PROBLEM_MOONS = 3


# ---------------------------------------------------------------------------
# The model (MODEL.md sections 1-6)
# ---------------------------------------------------------------------------
def default_mask(d, layer):
    """Layer l transforms the dims i with (i + l) odd; all of them for d = 1."""
    return [1 if d == 1 else (i + layer) % 2 for i in range(d)]


class Coupling(torch.nn.Module):
    """One coupling layer, RAD (section 4) or affine (section 5). Parameter
    order and shapes are librad's (rad.h, coupling layers), so a flat
    parameter vector moves between the two."""

    def __init__(self, kind, d, layer, hidden, gate_hidden, bound=3.0):
        super().__init__()
        mask = default_mask(d, layer)
        idx1 = [i for i in range(d) if not mask[i]]
        idx2 = [i for i in range(d) if mask[i]]
        self.kind, self.d, self.d1, self.d2 = kind, d, len(idx1), len(idx2)
        self.bound = bound
        self.register_buffer("idx1", torch.tensor(idx1, dtype=torch.long))
        self.register_buffer("idx2", torch.tensor(idx2, dtype=torch.long))
        # column i of the layer output is column pos[i] of cat(z1, z2)
        order = idx1 + idx2
        pos = [order.index(i) for i in range(d)]
        self.register_buffer("pos", torch.tensor(pos, dtype=torch.long))
        H, G, d1, d2 = hidden, gate_hidden, self.d1, self.d2
        blocks = 10 if kind == LAYER_RAD else 2
        shapes = [("W1", (H, d1)), ("b1", (H,)), ("W2", (blocks * d2, H)),
                  ("b2", (blocks * d2,))]
        if kind == LAYER_RAD:
            shapes += [("c1", (d2,)), ("c2", (d2,)), ("V1", (G, d)), ("a1", (G,)),
                       ("V2", (3 * d2, G)), ("a2", (3 * d2,))]
        else:
            shapes += [("c", (d2,))]
        self.shapes = shapes
        for name, shape in shapes:
            self.register_parameter(name, torch.nn.Parameter(torch.zeros(shape)))
        self.reset_parameters()

    def reset_parameters(self):
        """MODEL.md section 4: first dense layers U(+-1/sqrt(fan_in)), last
        ones zero, scales 1 (librad's draws differ: use load_flat to copy
        librad's initial parameters)."""
        with torch.no_grad():
            for w, b, fan in (("W1", "b1", self.d1), ("V1", "a1", self.d)):
                if hasattr(self, w):
                    s = 1.0 / math.sqrt(max(fan, 1))
                    getattr(self, w).uniform_(-s, s)
                    getattr(self, b).uniform_(-s, s)
            for name, _ in self.shapes:
                if name in ("W2", "b2", "V2", "a2"):
                    getattr(self, name).zero_()
                if name in ("c", "c1", "c2"):
                    getattr(self, name).fill_(1.0)

    def num_params(self):
        return sum(math.prod(shape) for _, shape in self.shapes)

    def load_flat(self, flat):
        with torch.no_grad():
            k = 0
            for name, shape in self.shapes:
                n = math.prod(shape)
                getattr(self, name).copy_(flat[k:k + n].view(shape))
                k += n

    def forward(self, x):
        """z = layer(x) and the layer's contribution to log p, per row."""
        n = x.shape[0]
        x1 = x.index_select(1, self.idx1)
        x2 = x.index_select(1, self.idx2)
        h = torch.relu(Fn.linear(x1, self.W1, self.b1))
        if self.kind == LAYER_AFFINE:
            o = Fn.linear(h, self.W2, self.b2).view(n, 2, self.d2)
            s = self.c * torch.tanh(o[:, 0])
            z2 = x2 * torch.exp(s) + o[:, 1]
            z = torch.cat([x1, z2], 1).index_select(1, self.pos)
            return z, s.sum(1)
        o = Fn.linear(h, self.W2, self.b2).view(n, 10, self.d2)
        s1 = self.c1 * torch.tanh(o[:, 0])
        t1 = o[:, 1]
        B = self.bound
        lp = B * torch.tanh(o[:, 2:5] / B)  # l+ (n, 3, d2), soft clamp
        lm = B * torch.tanh(o[:, 5:8] / B)  # l-
        s2 = self.c2 * torch.tanh(o[:, 8])
        t2 = o[:, 9]

        # Section 1: the fold's slopes, every one in log space.
        u = x2 * torch.exp(s1) + t1
        la2 = torch.logsumexp(torch.stack(
            [torch.zeros_like(u), lp[:, 0] - lp[:, 1], lm[:, 2] - lm[:, 1]]), 0)
        la1 = la2 + lp[:, 1] - lp[:, 0]
        la3 = la2 + lm[:, 1] - lm[:, 2]
        lam = la1 + torch.log_softmax(lm, 1)[:, 0]  # log alpha_minus
        lap = la3 + torch.log_softmax(lp, 1)[:, 2]  # log alpha_plus
        a = 2.0 * torch.exp(-la1) - 1.0
        b = 1.0 - 2.0 * torch.exp(-la3)
        # pieces L: u < -1, 1: [-1, a], 2: (a, b], 3: (b, 1], R: u > 1; only the
        # selected piece's slope and anchor enter (no unused branch computed)
        left, right = u < -1.0, u > 1.0
        low = u <= a  # L or 1
        mid = (u > a) & (u <= b)  # 2
        inner = ~(left | right)
        ls = torch.where(left, lam, torch.where(low, la1, torch.where(
            mid, la2, torch.where(right, lap, la3))))
        slope = torch.where(mid, -torch.exp(ls), torch.exp(ls))
        u0 = torch.where(low, torch.full_like(u, -1.0),
                         torch.where(mid, a, torch.ones_like(u)))
        z0 = torch.where(low, torch.full_like(u, -1.0), torch.ones_like(u))
        zh = slope * (u - u0) + z0
        zh = torch.where(inner, zh.clamp(-1.0, 1.0), zh)
        z2 = zh * torch.exp(s2) + t2
        z = torch.cat([x1, z2], 1).index_select(1, self.pos)

        # Section 2: the gating distribution, on the full layer output z.
        g = Fn.linear(torch.relu(Fn.linear(z, self.V1, self.a1)), self.V2,
                      self.a2).view(n, 3, self.d2)
        zc = zh.clamp(-1.0, 1.0)
        wc = 0.5 * (1.0 + torch.cos(math.pi * zc))
        sn = torch.sin(0.5 * math.pi * zc)
        wp, wm = 0.5 * (1.0 + sn), 0.5 * (1.0 - sn)
        lam3 = wc.unsqueeze(1) * g + wp.unsqueeze(1) * lp + wm.unsqueeze(1) * lm
        k = torch.where(low, 0, torch.where(mid, 1, 2))  # label - 1
        logpk = torch.log_softmax(lam3, 1).gather(1, k.unsqueeze(1)).squeeze(1)
        gate = torch.where(inner, logpk, torch.zeros_like(logpk))
        return z, (s1 + s2 + ls + gate).sum(1)


class Flow(torch.nn.Module):
    """Section 6: coupling layers over N(0, I)."""

    def __init__(self, kind, d, layers, hidden, gate_hidden=0):
        super().__init__()
        self.d = d
        self.layers = torch.nn.ModuleList(
            Coupling(kind, d, l, hidden, gate_hidden) for l in range(layers))

    def num_params(self):
        return sum(L.num_params() for L in self.layers)

    def load_flat(self, flat):
        k = 0
        for L in self.layers:
            n = L.num_params()
            L.load_flat(flat[k:k + n])
            k += n

    def log_prob(self, x):
        ld = torch.zeros(x.shape[0], dtype=x.dtype)
        z = x
        for L in self.layers:
            z, c = L(z)
            ld = ld + c
        return ld - 0.5 * (z * z).sum(1) - 0.5 * self.d * LOG_2PI


PAPER = {
    "rad.paper": ("RAD d=2 L=6 H=8 G=8", LAYER_RAD, 2, 6, 8, 8),
    "realnvp.paper": ("REAL NVP d=2 L=6 H=56", LAYER_AFFINE, 2, 6, 56, 0),
}


def make_flow(tag):
    _, kind, d, layers, hidden, gate = PAPER[tag]
    return Flow(kind, d, layers, hidden, gate)


# ---------------------------------------------------------------------------
# librad through ctypes (for data and the cross-checks)
# ---------------------------------------------------------------------------
class Librad:
    def __init__(self, path):
        c = ctypes
        L = c.CDLL(path)
        P, F, sz = c.c_void_p, c.POINTER(c.c_float), c.c_size_t
        L.rad_strerror.restype = c.c_char_p
        L.rad_strerror.argtypes = [c.c_int]
        L.rad_version_string.restype = c.c_char_p
        L.rad_flow_create.argtypes = [c.c_int, sz, sz, sz, sz, c.c_uint64, c.POINTER(P)]
        L.rad_flow_free.argtypes = [P]
        L.rad_flow_free.restype = None
        L.rad_flow_num_params.argtypes = [P]
        L.rad_flow_num_params.restype = sz
        L.rad_flow_get_params.argtypes = [P, F, sz]
        L.rad_flow_set_params.argtypes = [P, F, sz]
        L.rad_flow_log_prob.argtypes = [P, sz, F, F]
        L.rad_flow_grad.argtypes = [P, sz, F, F, c.POINTER(c.c_double)]
        L.rad_problem_sample.argtypes = [c.c_int, c.c_uint64, sz, F]
        L.rad_fit_options_create.argtypes = [c.POINTER(P)]
        L.rad_fit_options_set.argtypes = [P, c.c_int, c.c_double]
        L.rad_fit_options_free.argtypes = [P]
        L.rad_fit_options_free.restype = None
        L.rad_flow_fit.argtypes = [P, P, P, sz, F, sz, F, P, P, c.POINTER(c.c_uint64)]
        self.L = L

    def check(self, rc, what):
        if rc != 0:
            raise RuntimeError("%s: %s (%d)" % (what, self.L.rad_strerror(rc).decode(), rc))

    @staticmethod
    def fptr(t):
        assert t.dtype == torch.float32 and t.is_contiguous()
        return ctypes.cast(t.data_ptr(), ctypes.POINTER(ctypes.c_float))

    def version(self):
        return self.L.rad_version_string().decode()

    def moons(self, n, seed):
        x = torch.empty(n, 2)
        self.check(self.L.rad_problem_sample(PROBLEM_MOONS, seed, n, self.fptr(x)),
                   "rad_problem_sample")
        return x

    def flow(self, tag, seed):
        _, kind, d, layers, hidden, gate = PAPER[tag]
        h = ctypes.c_void_p()
        self.check(self.L.rad_flow_create(kind, d, layers, hidden, gate, seed,
                                          ctypes.byref(h)), "rad_flow_create")
        return h

    def params(self, h):
        p = torch.empty(self.L.rad_flow_num_params(h))
        self.check(self.L.rad_flow_get_params(h, self.fptr(p), p.numel()), "get_params")
        return p

    def set_params(self, h, p):
        p = p.contiguous()
        self.check(self.L.rad_flow_set_params(h, self.fptr(p), p.numel()), "set_params")

    def log_prob(self, h, x):
        x = x.contiguous()
        out = torch.empty(x.shape[0])
        self.check(self.L.rad_flow_log_prob(h, x.shape[0], self.fptr(x), self.fptr(out)),
                   "rad_flow_log_prob")
        return out

    def grad(self, h, x, n_params):
        x = x.contiguous()
        g = torch.empty(n_params)
        mean = ctypes.c_double()
        self.check(self.L.rad_flow_grad(h, x.shape[0], self.fptr(x), self.fptr(g),
                                        ctypes.byref(mean)), "rad_flow_grad")
        return g, mean.value

    def fit(self, h, x, steps, seed):
        o = ctypes.c_void_p()
        self.check(self.L.rad_fit_options_create(ctypes.byref(o)), "fit_options_create")
        for key, val in ((6, 500), (7, steps), (8, seed), (9, 0), (10, 0)):
            self.check(self.L.rad_fit_options_set(o, key, float(val)), "fit_options_set")
        done = ctypes.c_uint64()
        x = x.contiguous()
        rc = self.L.rad_flow_fit(h, None, o, x.shape[0], self.fptr(x), 0, None, None, None,
                                 ctypes.byref(done))
        self.L.rad_fit_options_free(o)
        self.check(rc, "rad_flow_fit")


def find_librad():
    for p in (os.environ.get("RAD_LIB"), os.path.join(HERE, "..", "lib", "librad.so")):
        if p and os.path.exists(p):
            return p
    return None


# ---------------------------------------------------------------------------
# Timing: medians of repetitions after a warm-up
# ---------------------------------------------------------------------------
def measure(fn, units, reps, target):
    """fn(iters) does iters units of work; returns the (median, min, max)
    rate and the median CPU share (process CPU time / wall time)."""
    t = time.perf_counter()
    fn(1)
    per = max(time.perf_counter() - t, 1e-6)
    iters = max(1, int(math.ceil(target / per)))
    fn(iters)  # a second warm-up at the real size
    rates, cpu = [], []
    for _ in range(reps):
        c, t = time.process_time(), time.perf_counter()
        fn(iters)
        t = time.perf_counter() - t
        rates.append(units * iters / t)
        cpu.append((time.process_time() - c) / t)
    return statistics.median(rates), min(rates), max(rates), statistics.median(cpu)


def train_loop(flow, data, batch=500, seed=0):
    # foreach=True: the multi-tensor Adam, PyTorch's faster path (fewer ops)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           foreach=True)
    gen = torch.Generator().manual_seed(seed)
    state = {"perm": torch.randperm(data.shape[0], generator=gen), "pos": 0}

    def step():
        if state["pos"] + batch > data.shape[0]:
            state["perm"] = torch.randperm(data.shape[0], generator=gen)
            state["pos"] = 0
        xb = data.index_select(0, state["perm"][state["pos"]:state["pos"] + batch])
        state["pos"] += batch
        loss = -flow.log_prob(xb).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return -loss.item()

    return step


RESULTS = {}


def report(name, title, value, lo, hi, unit, reps, cpu):
    RESULTS[name] = (value, cpu)
    print("%-46s %11.4g %11.4g %11.4g  %-8s %3.0f%%" % (title, value, lo, hi, unit, 100 * cpu))
    put_line("torch." + name, value, unit,
             " min=%.6g max=%.6g reps=%d cpu=%.2f" % (lo, hi, reps, cpu))
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# Cross-checks against librad
# ---------------------------------------------------------------------------
def cross_check(lib, data):
    print("\n== Cross-check against librad %s (ctypes) ==" % lib.version())
    x = data[:2000].contiguous()
    wide = (torch.randn(2000, 2, generator=torch.Generator().manual_seed(5)) * 2.0).contiguous()
    for tag in PAPER:
        title = PAPER[tag][0]
        h = lib.flow(tag, 7)
        try:
            p0 = lib.params(h)
            flow = make_flow(tag)
            assert flow.num_params() == p0.numel(), (flow.num_params(), p0.numel())
            flow.load_flat(p0)
            with torch.no_grad():
                d_init = (flow.log_prob(x) - lib.log_prob(h, x)).abs().max().item()
                normal = -0.5 * (x * x).sum(1) - LOG_2PI
                d_norm = (flow.log_prob(x) - normal).abs().max().item()
            print("%s, at initialization (librad's parameters): max |log p torch - librad| "
                  "= %.2e nats (max |log p - log N(x; 0, I)| = %.2f: %s)" % (
                      title, d_init, d_norm,
                      "the new fold, alpha = 3, is not the identity" if tag.startswith("rad")
                      else "a new affine flow is the identity"))
            put_line("check.init_max_abs_diff." + tag, d_init, "nats")
            # random parameters (last layers no longer zero): log p against a
            # float64 run of the torch model, and the gradient
            gen = torch.Generator().manual_seed(11)
            p = (p0 + 0.3 * torch.randn(p0.numel(), generator=gen)).contiguous()
            lib.set_params(h, p)
            flow.load_flat(p)
            f64 = make_flow(tag).double()
            f64.load_flat(p.double())
            for pts, what, key in ((x, "moons", "moons"), (wide, "N(0, 4 I)", "wide")):
                with torch.no_grad():
                    lt, lr = flow.log_prob(pts).double(), lib.log_prob(h, pts).double()
                    ref = f64.log_prob(pts.double())
                scale = ref.abs().clamp(min=1.0)
                rel_l = ((lr - ref).abs() / scale).max().item()
                rel_t = ((lt - ref).abs() / scale).max().item()
                print("%s, random parameters, %s points (log p from %.3g to %.3g): max "
                      "error relative to float64 torch: librad %.2e, float32 torch %.2e; "
                      "max |librad - float32 torch| %.2e nats" % (
                          title, what, ref.min().item(), ref.max().item(), rel_l, rel_t,
                          (lt - lr).abs().max().item()))
                put_line("check.random_rel_err_vs_f64.librad.%s.%s" % (tag, key), rel_l, "1")
                put_line("check.random_rel_err_vs_f64.torch32.%s.%s" % (tag, key), rel_t, "1")
            flow.zero_grad(set_to_none=True)
            flow.log_prob(x).mean().backward()
            gt = torch.cat([prm.grad.reshape(-1) for L in flow.layers
                            for prm in (getattr(L, n) for n, _ in L.shapes)])
            gl, _ = lib.grad(h, x, p.numel())
            gerr = ((gt - gl).abs().max() / gl.abs().max()).item()
            print("%s, random parameters: gradient of the mean log-likelihood, "
                  "max |torch - librad| / max |librad| = %.2e" % (title, gerr))
            put_line("check.grad_rel_diff." + tag, gerr, "1")
        finally:
            lib.L.rad_flow_free(h)

    # 200 Adam steps from the same start (librad's initial parameters)
    steps = 200
    test = lib.moons(10000, 99)
    for tag in PAPER:
        title = PAPER[tag][0]
        h = lib.flow(tag, 7)
        try:
            flow = make_flow(tag)
            flow.load_flat(lib.params(h))
            lib.fit(h, data, steps, 1)
            step = train_loop(flow, data, seed=1)
            for _ in range(steps):
                step()
            with torch.no_grad():
                ll_t = flow.log_prob(test).mean().item()
            ll_l = lib.log_prob(h, test).double().mean().item()
            print("%s, %d Adam steps (batch 500, lr 1e-3) from the same start: test "
                  "log-likelihood librad %.4f, torch %.4f nats" % (title, steps, ll_l, ll_t))
            put_line("check.ll_after_%d.librad.%s" % (steps, tag), ll_l, "nats")
            put_line("check.ll_after_%d.torch.%s" % (steps, tag), ll_t, "nats")
        finally:
            lib.L.rad_flow_free(h)


LINES = []


def put_line(name, value, unit, extra=""):
    LINES.append("bench name=%s value=%.6g unit=%s%s" % (name, value, unit, extra))


# ---------------------------------------------------------------------------
def read_librad(path):
    vals = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("bench "):
                continue
            kv = dict(t.split("=", 1) for t in line.split()[1:] if "=" in t)
            try:
                vals[kv["name"]] = (float(kv["value"]), float(kv.get("cpu", "nan")))
            except (KeyError, ValueError):
                pass
    return vals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 5; 3 quick)")
    ap.add_argument("--librad", metavar="FILE", help="rad-bench --compare output: print ratios")
    ap.add_argument("--no-check", action="store_true", help="skip the cross-checks")
    args = ap.parse_args()
    reps = args.reps or (3 if args.quick else 5)
    target = 0.1 if args.quick else 0.5

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    print("torch_ref: PyTorch %s, %d thread(s), %s, float32, eager mode; python %s"
          % (torch.__version__, torch.get_num_threads(), "CPU", sys.version.split()[0]))
    print("%d repetitions after a warm-up, >= %.2f s each; median [min, max]" % (reps, target))

    libpath = find_librad()
    lib = Librad(libpath) if libpath else None
    if lib:
        data = lib.moons(10000, 20240601)
    else:
        print("(librad not found: no cross-check; set RAD_LIB. Data: torch's own moons-like "
              "points)")
        t = torch.rand(10000) * math.pi
        data = torch.stack([torch.cos(t), torch.sin(t)], 1) + 0.1 * torch.randn(10000, 2)

    print("\n== PyTorch, paper configuration, 1 thread ==")
    print("%-46s %11s %11s %11s  %-8s %4s" % ("what", "median", "min", "max", "unit", "cpu"))
    evalx = (lib.moons(100000, 20240602) if lib else torch.randn(100000, 2)).contiguous()
    for tag in PAPER:
        title = PAPER[tag][0]
        flow = make_flow(tag)
        if lib:
            h = lib.flow(tag, 7)
            flow.load_flat(lib.params(h))
            lib.L.rad_flow_free(h)
        step = train_loop(flow, data)

        def train(iters, step=step):
            for _ in range(iters):
                step()

        med, lo, hi, cpu = measure(train, 1.0, reps, target)
        report("train.fit." + tag, title + ": train step (fwd+bwd+Adam)", med, lo, hi,
               "steps/s", reps, cpu)
        for n in (10000, 100000):
            xs = evalx[:n]

            def lp(iters, xs=xs, flow=flow):
                with torch.no_grad():
                    for _ in range(iters):
                        flow.log_prob(xs)

            med, lo, hi, cpu = measure(lp, float(n), reps, target)
            report("log_prob.%s.n%d" % (tag, n), "%s: log_prob n=1e%d" % (title, round(
                math.log10(n))), med, lo, hi, "points/s", reps, cpu)

    if lib and not args.no_check:
        cross_check(lib, data)

    if args.librad:
        lv = read_librad(args.librad)
        print("\n== librad / PyTorch, 1 thread, same machine, one after the other "
              "(> 1: librad is faster) ==")
        print("ratio: of the medians; per CPU s: of the rates per CPU-second (rate / cpu share),")
        print("which discounts time either side lost to other processes")
        print("%-44s %12s %12s %10s %11s" % ("what", "librad", "PyTorch", "ratio",
                                             "per CPU s"))
        rows = []
        for tag in PAPER:
            title = PAPER[tag][0]
            rows.append(("training steps/s, " + title, "train.fit." + tag, "train.fit." + tag))
        for tag in PAPER:
            title = PAPER[tag][0]
            for n in (10000, 100000):
                for var in ("log_prob_ws", "log_prob"):
                    rows.append(("log_prob pts/s, %s, %s n=1e%d" % (
                        title.split(" d=")[0], var, round(math.log10(n))),
                        "%s.%s.n%d" % (var, tag, n), "log_prob.%s.n%d" % (tag, n)))
        for label, lkey, tkey in rows:
            if lkey in lv and tkey in RESULTS:
                (lval, lcpu), (tval, tcpu) = lv[lkey], RESULTS[tkey]
                r = lval / tval
                rc = (lval / lcpu) / (tval / tcpu) if lcpu > 0 and tcpu > 0 else float("nan")
                print("%-44s %12.4g %12.4g %9.2fx %10.2fx" % (label, lval, tval, r, rc))
                put_line("ratio." + lkey, r, "x")
                put_line("ratio_per_cpu_s." + lkey, rc, "x")
            else:
                print("%-44s (missing: %s)" % (label, lkey if lkey not in lv else tkey))

    print("\n# machine-readable")
    for line in LINES:
        print(line)


if __name__ == "__main__":
    main()
