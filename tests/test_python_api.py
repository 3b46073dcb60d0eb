"""The Python binding examples/python/rad.py (ctypes + numpy) against the
library in RAD_LIB: round trips, shapes and dtypes, errors, fits and
callbacks, exactness of inverse and sampling, the mixture view, optimizer
resume. Run by `make check` with RAD_LIB=lib/librad.so; exit status 77
(skip) without numpy."""
import os
import pickle
import sys
import tempfile
import threading
import unittest

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed for %s (apt-get install python3-numpy)"
          % sys.executable)
    sys.exit(77)

TOP = os.environ.get("RAD_TOP", os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(TOP, "examples", "python"))
import rad  # noqa: E402


def small_flow(kind="rad", seed=3, layers=4):
    return rad.Flow.create(kind, dim=2, layers=layers, hidden=8,
                           gate_hidden=8, seed=seed)


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.x = rad.problem_sample("moons", 1000, seed=1)
        cls.xt = rad.problem_sample("moons", 500, seed=2)
        # a trained flow shared by the read-only tests
        cls.flow = small_flow()
        cls.flow.fit(cls.x, steps=150, batch=200, lr=3e-3, seed=5)

    @classmethod
    def tearDownClass(cls):
        cls.flow.close()

    def assertRadError(self, cls, text, fn, *args, **kw):
        with self.assertRaises(cls) as cm:
            fn(*args, **kw)
        self.assertIsInstance(cm.exception, rad.RadError)
        self.assertIn(text, str(cm.exception))
        self.assertIn(rad.strerror(cm.exception.code), str(cm.exception))
        return cm.exception


class ModuleTest(Base):
    def test_library(self):
        if "RAD_LIB" in os.environ:
            self.assertEqual(rad.library_path(), os.environ["RAD_LIB"])
        self.assertRegex(rad.version(), r"^\d+\.\d+\.\d+$")
        major, minor, patch = map(int, rad.version().split("."))
        self.assertEqual(rad.version_number(), major * 10000 + minor * 100 + patch)

    def test_problems(self):
        names = rad.problem_names()
        self.assertEqual(len(names), 6)
        self.assertIn("moons", names)
        for i, name in enumerate(names, 1):
            self.assertEqual(rad.problem_id(name), i)
            self.assertTrue(np.isfinite(rad.true_log_likelihood(name)))
        a = rad.problem_sample("moons", 50, seed=4)
        self.assertEqual((a.shape, a.dtype), ((50, 2), np.float32))
        np.testing.assert_array_equal(rad.problem_sample(3, 20, seed=4), a[:20])
        self.assertFalse(np.array_equal(rad.problem_sample("moons", 50, seed=5), a))
        self.assertEqual(rad.problem_sample("ring", 0).shape, (0, 2))
        e = self.assertRadError(rad.RadError, "unknown problem", rad.problem_sample,
                                "nope", 3)
        self.assertEqual(e.code, rad.EINVAL)
        self.assertRaises(ValueError, rad.problem_sample, "moons", -1)

    def test_error_object(self):
        e = rad.RadError(rad.ELABEL, function="rad_flow_inverse")
        self.assertEqual(e.message, rad.strerror(rad.ELABEL))
        # not a C int: not a status code, never wrapped onto one (2**40 -> 0)
        for c in (2**40, -2**40, 2**31, -2**31 - 1):
            self.assertEqual(rad.strerror(c), rad.strerror(-10**6))
            self.assertNotEqual(rad.strerror(c), rad.strerror(0))
        self.assertIn("rad_flow_inverse", str(e))
        e2 = pickle.loads(pickle.dumps(e))
        self.assertEqual((e2.code, str(e2)), (e.code, str(e)))


class RoundTripTest(Base):
    def test_file(self):
        f = self.flow
        f2 = f.copy()
        f2.standardization = ([0.5, 0.25], [0.9, 0.5])
        f2.column_names = ["x\u00e9", "y"]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.radflow")
            f2.save(path)
            with rad.Flow.load(path) as g:
                np.testing.assert_array_equal(g.params, f2.params)
                np.testing.assert_array_equal(g.log_prob(self.xt), f2.log_prob(self.xt))
                self.assertEqual(g.column_names, ["x\u00e9", "y"])
                shift, scale = g.standardization
                np.testing.assert_array_equal(shift, np.float32([0.5, 0.25]))
                np.testing.assert_array_equal(scale, np.float32([0.9, 0.5]))
        self.assertIsNone(f.standardization)
        self.assertIsNone(f.column_names)
        f2.standardization = None
        f2.column_names = None
        self.assertIsNone(f2.standardization)
        self.assertIsNone(f2.column_names)
        np.testing.assert_array_equal(f2.log_prob(self.xt), f.log_prob(self.xt))
        f2.close()

    def test_bytes_and_pickle(self):
        f = self.flow
        b = f.to_bytes()
        self.assertIsInstance(b, bytes)
        for g in (rad.Flow.from_bytes(b), rad.Flow.from_bytes(bytearray(b)),
                  pickle.loads(pickle.dumps(f))):
            self.assertEqual(g.to_bytes(), b)
            np.testing.assert_array_equal(g.log_prob(self.xt), f.log_prob(self.xt))
            self.assertEqual((g.dim, g.num_layers, g.num_params, g.num_labels),
                             (f.dim, f.num_layers, f.num_params, f.num_labels))
            g.close()

    def test_params(self):
        f = small_flow()
        p = f.params
        self.assertEqual((p.shape, p.dtype), ((f.num_params,), np.float32))
        lp0 = f.log_prob(self.xt)
        f.params = self.flow.params.astype(np.float64)  # converted
        np.testing.assert_array_equal(f.log_prob(self.xt), self.flow.log_prob(self.xt))
        f.params = p
        np.testing.assert_array_equal(f.log_prob(self.xt), lp0)
        self.assertRaises(rad.ShapeError, setattr, f, "params", p[:-1])
        bad = p.copy()
        bad[3] = np.nan
        self.assertRadError(rad.NonFiniteError, "non-finite", setattr, f, "params", bad)
        np.testing.assert_array_equal(f.params, p)  # unchanged on failure
        self.assertEqual(f.logit_bound, 3.0)
        f.logit_bound = 2.0
        self.assertEqual(f.logit_bound, 2.0)
        f.close()

    def test_handles(self):
        f = small_flow()
        with f as g:
            self.assertIs(g, f)
        self.assertTrue(f.closed)
        f.close()  # idempotent
        self.assertRaises(ValueError, f.log_prob, self.xt)
        self.assertIn("closed", repr(f))
        g = small_flow()
        del g  # freed by the garbage collector, once
        o = rad.Adam(self.flow, lr=2e-3)
        self.assertEqual(o.num_params, self.flow.num_params)
        self.assertAlmostEqual(o.lr, 2e-3)
        o.close()


class ShapeTest(Base):
    def test_dtypes_and_layout(self):
        f = self.flow
        x64 = self.xt.astype(np.float64)
        lp = f.log_prob(self.xt)
        self.assertEqual((lp.shape, lp.dtype), ((500,), np.float32))
        np.testing.assert_array_equal(f.log_prob(x64), lp)
        np.testing.assert_array_equal(f.log_prob(x64.tolist()), lp)
        # non-contiguous views: a strided row slice, a Fortran-order copy
        wide = np.zeros((1000, 5), np.float32)
        wide[::2, 1:3] = self.xt
        view = wide[::2, 1:3]
        self.assertFalse(view.flags.c_contiguous)
        np.testing.assert_array_equal(f.log_prob(view), lp)
        np.testing.assert_array_equal(f.log_prob(np.asfortranarray(self.xt)), lp)
        z, k, lp2 = f.forward(view)
        self.assertEqual((z.dtype, k.dtype, lp2.dtype),
                         (np.float32, np.int32, np.float32))
        self.assertEqual((z.shape, k.shape), ((500, 2), (500, f.num_labels)))
        np.testing.assert_allclose(lp2, lp, rtol=1e-5, atol=1e-5)
        s, lp3 = f.score(self.xt, return_log_prob=True)
        self.assertEqual(s.shape, (500, 2))
        np.testing.assert_allclose(lp3, lp, rtol=1e-5, atol=1e-5)
        zs, k2 = f.forward_layers(self.xt)
        self.assertEqual(zs.shape, (f.num_layers, 500, 2))
        np.testing.assert_allclose(zs[-1], z, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(k2, k)

    def test_empty(self):
        f = self.flow
        e = np.empty((0, 2))
        self.assertEqual(f.log_prob(e).shape, (0,))
        z, k, lp = f.forward(e)
        self.assertEqual((z.shape, k.shape, lp.shape), ((0, 2), (0, f.num_labels), (0,)))
        self.assertEqual(f.inverse(z, k).shape, (0, 2))
        self.assertEqual(f.sample(0).shape, (0, 2))
        self.assertEqual(f.gate_probs(e).shape, (0, f.num_labels, 3))
        self.assertEqual(f.score(e).shape, (0, 2))
        self.assertEqual(f.forward_layers(e)[0].shape, (f.num_layers, 0, 2))
        self.assertRadError(rad.RadError, "invalid argument", f.grad, e)

    def test_wrong_shapes(self):
        f = self.flow
        for bad in (np.zeros((5, 3)), np.zeros(2), np.zeros((2, 2, 2)), 1.0):
            e = self.assertRadError(rad.ShapeError, "(n, 2)", f.log_prob, bad)
            self.assertIsInstance(e, ValueError)
            self.assertEqual(e.code, rad.ESIZE)
            self.assertEqual(e.function, "rad_flow_log_prob")
        self.assertIn("reshape", str(self.assertRadError(
            rad.ShapeError, "(n, 2)", f.log_prob, [0.1, 0.2])))
        z, k, _ = f.forward(self.xt[:4])
        self.assertRaises(rad.ShapeError, f.inverse, z, k[:3])
        self.assertRaises(rad.ShapeError, f.inverse, z, None)
        self.assertRaises(rad.ShapeError, f.grad_weighted, self.xt, np.ones(3))
        self.assertRaises(rad.ShapeError, f.fit, self.x, heldout=np.zeros((3, 3)))
        self.assertRaises(rad.ShapeError, setattr, f, "standardization",
                          ([0.0], [1.0]))
        self.assertRaises(rad.ShapeError, setattr, f, "column_names", ["a"])
        self.assertRaises(rad.ShapeError, f.sample_component, [1, 2], 3)


class ErrorTest(Base):
    def test_nonfinite(self):
        x = self.xt[:10].copy()
        x[4, 1] = np.nan
        for fn in (self.flow.log_prob, self.flow.forward, self.flow.gate_probs):
            e = self.assertRadError(rad.NonFiniteError, "non-finite", fn, x)
            self.assertEqual(e.code, rad.ENONFINITE)
        x[4, 1] = np.inf
        self.assertRadError(rad.NonFiniteError, "non-finite", self.flow.fit, x, steps=1)

    def test_bad_labels(self):
        z, k, _ = self.flow.forward(self.xt[:20])
        for v in (0, 4, -1):
            bad = k.copy()
            bad[7, 2] = v
            e = self.assertRadError(rad.LabelError, "label outside {1,2,3}",
                                    self.flow.inverse, z, bad)
            self.assertEqual((e.code, e.function), (rad.ELABEL, "rad_flow_inverse"))
        self.assertRaises(ValueError, self.flow.inverse, z, k + 0.5)
        # beyond int32: refused, not wrapped (2**32 + k would become k)
        self.assertRaises(ValueError, self.flow.inverse, z, k.astype(np.int64) + 2**32)
        self.assertRaises(ValueError, self.flow.inverse, z, k.astype(np.int64) - 2**33)

    def test_bad_files(self):
        b = self.flow.to_bytes()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "cut.radflow")
            with open(path, "wb") as fh:
                fh.write(b[:len(b) // 2])
            e = self.assertRadError(rad.FileFormatError, "truncated", rad.Flow.load, path)
            self.assertEqual((e.code, e.function), (rad.ETRUNCATED, "rad_flow_load"))
            self.assertIn(path, str(e))
            with open(path, "wb") as fh:
                fh.write(b"not a flow at all, just text" * 4)
            self.assertRadError(rad.FileFormatError, "bad magic", rad.Flow.load, path)
            self.assertRadError(rad.RadIOError, "I/O error", rad.Flow.load,
                                os.path.join(d, "missing"))
            corrupt = bytearray(b)
            corrupt[len(b) // 2] ^= 0x10
            self.assertRadError(rad.FileFormatError, "corrupt",
                                rad.Flow.from_bytes, bytes(corrupt))
        self.assertRadError(rad.FileFormatError, "truncated", rad.Flow.from_bytes,
                            b[:40])
        self.assertRadError(rad.FileFormatError, "truncated", rad.Flow.from_bytes, b"")
        # an optimizer file is not a flow file
        with rad.Adam(self.flow) as o:
            self.assertRadError(rad.FileFormatError, "bad magic", rad.Flow.from_bytes,
                                o.to_bytes())

    def test_bad_arguments(self):
        self.assertRaises(ValueError, rad.Flow.create, "glow", dim=2)
        self.assertRaises(TypeError, rad.Flow.create, "rad")
        self.assertRadError(rad.RadError, "invalid argument", rad.Flow.create,
                            "rad", dim=0)
        self.assertRaises(ValueError, self.flow.sample, 3, seed=-1)
        self.assertRaises(TypeError, self.flow.sample, 2.5)
        self.assertRaises(ValueError, self.flow.fit, self.x, lr_schedule="linear")
        e = self.assertRadError(rad.RadError, "invalid argument", self.flow.fit,
                                self.x, lr=-1.0)
        self.assertIn("lr", str(e))
        with rad.Adam(10) as o:
            self.assertRadError(rad.RadError, "do not belong together",
                                self.flow.fit, self.x, steps=1, optimizer=o)
            self.assertRaises(ValueError, o.set_option, "momentum", 0.5)
            self.assertRadError(rad.RadError, "invalid argument", o.set_option,
                                "beta1", 1.0)


class FitTest(Base):
    def test_fit_improves(self):
        f = small_flow(seed=11)
        before = float(f.log_prob(self.xt).mean())
        seen = []
        done = f.fit(self.x, steps=300, batch=200, lr=3e-3, seed=1, heldout=self.xt,
                     eval_every=100, report_every=100,
                     callback=lambda *a: seen.append(a))
        after = float(f.log_prob(self.xt).mean())
        self.assertEqual(done, 300)
        self.assertGreater(after, before + 0.5)
        self.assertGreater(after, rad.true_log_likelihood("moons") - 1.0)
        self.assertEqual([s[0] for s in seen], [100, 200, 300])
        self.assertAlmostEqual(seen[-1][2], after, places=4)
        self.assertTrue(all(np.isfinite(s[1]) for s in seen))
        # cosine schedule and keep_best run too
        g = small_flow(seed=11)
        g.fit(self.x, steps=50, batch=200, lr=3e-3, lr_schedule="cosine",
              heldout=self.xt, eval_every=10, keep_best=True)
        self.assertGreater(float(g.log_prob(self.xt).mean()), before)
        f.close()
        g.close()

    def test_realnvp(self):
        with rad.Flow.create("realnvp", dim=2, layers=4, hidden=16, seed=2) as f:
            self.assertEqual(f.num_labels, 0)
            before = float(f.log_prob(self.xt).mean())
            f.fit(self.x, steps=100, batch=200, lr=3e-3)
            self.assertGreater(float(f.log_prob(self.xt).mean()), before)
            z, k, _ = f.forward(self.xt)
            self.assertEqual(k.shape, (500, 0))
            np.testing.assert_allclose(f.inverse(z), self.xt, atol=1e-4, rtol=1e-4)
            self.assertEqual(f.gate_probs(self.xt).shape, (500, 0, 3))

    def test_callback_stops(self):
        f = small_flow()
        calls = []

        def cb(step, train_ll, heldout_ll):
            calls.append((step, train_ll, heldout_ll))
            return step >= 20

        done = f.fit(self.x, steps=1000, batch=100, report_every=10, callback=cb)
        self.assertEqual(done, 20)
        self.assertEqual([c[0] for c in calls], [10, 20])
        self.assertTrue(np.isnan(calls[0][2]))  # no held-out set
        f.close()

    def test_callback_exception(self):
        f = small_flow()
        opt = rad.Adam(f)

        class Boom(Exception):
            pass

        def cb(step, train_ll, heldout_ll):
            if step >= 30:
                raise Boom("stop at %d" % step)

        with self.assertRaises(Boom) as cm:
            f.fit(self.x, steps=1000, batch=100, report_every=10, callback=cb,
                  optimizer=opt)
        self.assertEqual(str(cm.exception), "stop at 30")
        self.assertEqual(opt.steps, 30)  # the fit stopped there
        # the flow is intact and usable
        self.assertTrue(np.all(np.isfinite(f.log_prob(self.xt))))
        self.assertEqual(f.fit(self.x, steps=5, batch=100, optimizer=opt), 5)
        self.assertEqual(opt.steps, 35)
        # a callback with a wrong signature is an exception too, not a crash
        self.assertRaises(TypeError, f.fit, self.x, steps=5, callback=lambda: 0)
        f.close()
        opt.close()

    def test_optimizer_resume(self):
        a = small_flow(seed=5)
        b = a.copy()
        kw = dict(batch=300, seed=77, lr=2e-3)  # batches straddle epochs
        with rad.Adam(a) as oa:
            self.assertEqual(a.fit(self.x, steps=200, optimizer=oa, **kw), 200)
            self.assertEqual(oa.steps, 200)
        ob = rad.Adam(b)
        b.fit(self.x, steps=120, optimizer=ob, **kw)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "opt.radadam")
            ob.save(path)
            ob.close()
            oc = rad.Adam.load(path)
        self.assertEqual(oc.steps, 120)
        od = rad.Adam.from_bytes(oc.to_bytes())
        b2 = b.copy()
        b.fit(self.x, steps=80, optimizer=oc, **kw)
        np.testing.assert_array_equal(b.params, a.params)
        # get_state / set_state into a fresh optimizer gives the same again
        oe = rad.Adam(b2)
        oe.set_state(*od.get_state())
        b2.fit(self.x, steps=80, optimizer=oe, **kw)
        np.testing.assert_array_equal(b2.params, a.params)
        for h in (a, b, b2, oc, od, oe):
            h.close()

    def test_cosine_resume_with_horizon(self):
        """lr_horizon: a cosine fit resumed in two calls equals one call
        (the decay is counted on the optimizer's steps); without it the
        second call restarts the decay and differs."""
        a = small_flow(seed=8)
        b, c = a.copy(), a.copy()
        kw = dict(batch=300, seed=3, lr=3e-3, lr_schedule="cosine",
                  clip_norm=100.0, threads=2)
        with rad.Adam(a) as oa:
            a.fit(self.x, steps=60, optimizer=oa, lr_horizon=60, **kw)
        with rad.Adam(b) as ob:
            b.fit(self.x, steps=25, optimizer=ob, lr_horizon=60, **kw)
            b.fit(self.x, steps=35, optimizer=ob, lr_horizon=60, **kw)
        np.testing.assert_array_equal(b.params, a.params)
        with rad.Adam(c) as oc:
            c.fit(self.x, steps=25, optimizer=oc, **kw)
            c.fit(self.x, steps=35, optimizer=oc, **kw)
        self.assertFalse(np.array_equal(c.params, a.params))
        with self.assertRaises(rad.RadError):
            a.fit(self.x, steps=5, threads=0)
        for h in (a, b, c):
            h.close()

    def test_optimizer_learning_rate(self):
        """fit without lr uses the optimizer's own rate (rad_flow_fit itself
        takes it from the fit options)."""
        a = small_flow(seed=6)
        b = a.copy()
        with rad.Adam(a, lr=5e-3) as opt:
            a.fit(self.x, steps=20, batch=300, optimizer=opt)
        b.fit(self.x, steps=20, batch=300, lr=5e-3)
        np.testing.assert_array_equal(a.params, b.params)
        a.close()
        b.close()

    def test_adam_step(self):
        f = small_flow()
        with rad.Adam(f, lr=1e-2) as opt:
            p = f.params
            before = float(f.log_prob(self.x).mean())
            for _ in range(20):
                g, _mean = f.grad(self.x)
                f.params = opt.step(p, g)
            self.assertEqual(opt.steps, 20)
            self.assertGreater(float(f.log_prob(self.x).mean()), before)
            self.assertRaises(ValueError, opt.step, p.astype(np.float64), g)
            m, v, t = opt.get_state()
            self.assertEqual((m.shape, t), ((f.num_params,), 20))
            opt.reset()
            self.assertEqual(opt.steps, 0)
        f.close()


class ExactnessTest(Base):
    def test_inverse_of_forward(self):
        f = self.flow
        rng = np.random.default_rng(0)
        for x in (self.xt, rng.normal(0, 2, size=(500, 2)).astype(np.float32)):
            z, k, _ = f.forward(x)
            back = f.inverse(z, k)
            err = np.abs(back - x) / (1 + np.abs(x))
            self.assertLess(err.max(), 1e-4)

    def test_sample(self):
        f = self.flow
        a, z, k = f.sample(300, seed=9, return_z=True, return_labels=True)
        np.testing.assert_array_equal(f.sample(300, seed=9), a)
        np.testing.assert_array_equal(f.sample(50, seed=9), a[:50])  # by index
        self.assertFalse(np.array_equal(f.sample(300, seed=10), a))
        self.assertEqual((z.shape, k.shape), ((300, 2), (300, f.num_labels)))
        self.assertTrue(np.all((k >= 1) & (k <= 3)))
        np.testing.assert_allclose(f.inverse(z, k), a, rtol=1e-4, atol=1e-4)
        # forward recovers the labels and the latents of the samples
        z2, k2, _ = f.forward(a)
        self.assertGreater(np.mean(np.all(k2 == k, axis=1)), 0.99)
        x2, k3 = f.sample(5, seed=9, return_labels=True)
        np.testing.assert_array_equal(x2, a[:5])
        np.testing.assert_array_equal(k3, k[:5])

    def test_gate_probs(self):
        p = self.flow.gate_probs(self.xt)
        self.assertEqual(p.shape, (500, self.flow.num_labels, 3))
        self.assertTrue(np.all(p >= 0))
        np.testing.assert_allclose(p.sum(axis=2), 1.0, atol=1e-5)

    def test_sample_component(self):
        f = self.flow
        _, k, _ = f.forward(self.xt[:1])
        x, acc = f.sample_component(k[0], 20, seed=4, return_acceptance=True)
        self.assertEqual(x.shape, (20, 2))
        self.assertTrue(0 < acc <= 1)
        np.testing.assert_array_equal(f.sample_component(k[0], 20, seed=4), x)
        _, k2, _ = f.forward(x)
        self.assertTrue(np.all(k2 == k[0]))
        self.assertRaises(rad.RadError, f.sample_component, [9] * f.num_labels, 2)
        self.assertRadError(rad.RejectedError, "attempts exhausted",
                            f.sample_component, k[0], 200, seed=1, max_attempts=1)

    def test_weighted_grad(self):
        f = self.flow
        g, mean = f.grad(self.xt)
        gw, meanw = f.grad_weighted(self.xt, np.full(len(self.xt), 2.5))
        np.testing.assert_allclose(gw, g, rtol=1e-4, atol=1e-6)
        self.assertAlmostEqual(meanw, mean, places=5)
        self.assertAlmostEqual(mean, float(f.log_prob(self.xt).astype(np.float64).mean()),
                               places=4)
        # weight 0 drops rows
        w = np.zeros(len(self.xt))
        w[:100] = 1
        g100, m100 = f.grad(self.xt[:100])
        gw100, mw100 = f.grad_weighted(self.xt, w)
        np.testing.assert_allclose(gw100, g100, rtol=1e-4, atol=1e-6)
        self.assertAlmostEqual(mw100, m100, places=5)
        self.assertRadError(rad.RadError, "invalid argument", f.grad_weighted,
                            self.xt, np.zeros(len(self.xt)))

    def test_threads(self):
        """Read-only calls on one flow from several threads at once."""
        f = self.flow
        want = f.log_prob(self.xt)
        want_s = f.sample(200, seed=3)
        results = [None] * 8

        def work(i):
            results[i] = (f.log_prob(self.xt), f.sample(200, seed=3))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for lp, s in results:
            np.testing.assert_array_equal(lp, want)
            np.testing.assert_array_equal(s, want_s)


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False).result.wasSuccessful() else 1)
