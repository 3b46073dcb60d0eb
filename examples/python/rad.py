"""librad from Python: RAD normalizing flows through ctypes, numpy in and out.

A thin binding over the C API of include/rad/rad.h (one file, no build
step, only numpy). Copy it next to your code or put examples/python on
sys.path.

    import rad
    x = rad.problem_sample("moons", 10000, seed=1)
    with rad.Flow.create("rad", dim=2, layers=6, hidden=8, gate_hidden=8,
                         seed=3) as flow:
        flow.fit(x, steps=2000, batch=500, lr=1e-3)
        print(flow.log_prob(x).mean())
        samples = flow.sample(1000, seed=7)
        z, labels, log_prob = flow.forward(samples)

Library lookup, first match wins:
  1. the environment variable RAD_LIB (a path to librad.so), if set;
  2. the in-tree build, ../../lib/librad.so relative to this file;
  3. an installed library: ctypes.util.find_library("rad"), then
     "librad.so.0" through the dynamic loader's search path.

Arrays. A batch of n points of dimension d is an (n, d) array; inputs may
be anything numpy converts (lists, float64, non-contiguous views) and are
converted with np.ascontiguousarray(x, dtype=np.float32), which copies
nothing when x already is a C-contiguous float32 array. Shapes are checked
here, in Python (the C API cannot detect a buffer that is too short): a
wrong shape raises ShapeError, a subclass of both RadError (code ESIZE)
and ValueError, with the expected and the actual shape in its message.
Discrete labels are int32 arrays of shape (n, num_labels) with values in
{1, 2, 3}. Outputs are new numpy arrays (float32, int32 for labels).
Zero-row batches are valid and give empty outputs, except for gradients
(the mean over no points is undefined: RadError, code EINVAL).

Errors. Every nonzero status code of the library raises RadError or one of
its subclasses (NonFiniteError, LabelError, FileFormatError, RadIOError,
NumericError, RejectedError, ShapeError): err.code is the status code (the
module constants EINVAL, ESIZE, ...), err.function the C function, and
str(err) is "function: <rad_strerror text>[: detail] (RAD_ECODE)". Wrong
types and negative counts raise TypeError or ValueError before any C
call. An exception raised by a fit callback is re-raised by Flow.fit.

Threads. ctypes releases the GIL during every C call, so calls really run
in parallel. Following the C API's rules, one Flow may be used from
several threads at once for read-only calls: log_prob, score, grad,
grad_weighted, forward, forward_layers, inverse, sample, gate_probs,
sample_component, copy, save, to_bytes and the property getters. Calls
that modify the flow (fit, and setting params, standardization,
column_names or logit_bound) need exclusive access: no other call on the
same Flow may run meanwhile. close() (also run by `with` and by garbage
collection) must not race with any other call. An Adam object is used by
one thread at a time. The library never changes OpenBLAS's thread count:
set OPENBLAS_NUM_THREADS=1 in the environment when you parallelise with
Python threads.
"""

import ctypes
import ctypes.util
import operator
import os

import numpy as np

__all__ = [
    "RadError", "NonFiniteError", "LabelError", "FileFormatError",
    "RadIOError", "NumericError", "RejectedError", "ShapeError",
    "Flow", "Adam",
    "problem_sample", "problem_names", "problem_id", "true_log_likelihood",
    "version", "version_number", "strerror", "library_path",
]

# ---- Loading the library --------------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_library():
    env = os.environ.get("RAD_LIB")
    if env:
        # An explicit choice: failing to load it is an error, not a fallback.
        return ctypes.CDLL(env), env
    intree = os.path.normpath(os.path.join(_HERE, "..", "..", "lib", "librad.so"))
    if os.path.exists(intree):
        return ctypes.CDLL(intree), intree
    tried = [intree]
    for name in (ctypes.util.find_library("rad"), "librad.so.0"):
        if not name:
            continue
        try:
            return ctypes.CDLL(name), name
        except OSError:
            tried.append(name)
    raise OSError("librad not found (tried %s); build it with `make`, install "
                  "it, or set RAD_LIB to the path of librad.so"
                  % ", ".join(tried))


_lib, _lib_path = _load_library()


def library_path():
    """The path or name librad was loaded from."""
    return _lib_path


# ---- C types ----------------------------------------------------------------

class _rad_flow(ctypes.Structure):
    """Opaque struct rad_flow."""


class _rad_adam(ctypes.Structure):
    """Opaque struct rad_adam."""


class _rad_fit_options(ctypes.Structure):
    """Opaque struct rad_fit_options."""


_FlowP = ctypes.POINTER(_rad_flow)
_AdamP = ctypes.POINTER(_rad_adam)
_OptsP = ctypes.POINTER(_rad_fit_options)
_F32P = ctypes.POINTER(ctypes.c_float)
_F64P = ctypes.POINTER(ctypes.c_double)
_I32P = ctypes.POINTER(ctypes.c_int32)
_U64P = ctypes.POINTER(ctypes.c_uint64)
_SizeP = ctypes.POINTER(ctypes.c_size_t)
_c_int = ctypes.c_int
_c_size = ctypes.c_size_t
_c_u64 = ctypes.c_uint64
_c_double = ctypes.c_double
_c_char_p = ctypes.c_char_p
_c_void_p = ctypes.c_void_p

# typedef int (*rad_fit_callback)(void *user, uint64_t step,
#                                 double train_ll, double heldout_ll);
_FIT_CALLBACK = ctypes.CFUNCTYPE(_c_int, _c_void_p, _c_u64, _c_double, _c_double)

_PROTOTYPES = {
    # name: (restype, argtypes)
    "rad_version": (_c_int, []),
    "rad_version_string": (_c_char_p, []),
    "rad_status_min": (_c_int, []),
    "rad_strerror": (_c_char_p, [_c_int]),
    # flows
    "rad_flow_create": (_c_int, [_c_int, _c_size, _c_size, _c_size, _c_size,
                                 _c_u64, ctypes.POINTER(_FlowP)]),
    "rad_flow_free": (None, [_FlowP]),
    "rad_flow_copy": (_c_int, [_FlowP, ctypes.POINTER(_FlowP)]),
    "rad_flow_num_layers": (_c_size, [_FlowP]),
    "rad_flow_dim": (_c_size, [_FlowP]),
    "rad_flow_num_params": (_c_size, [_FlowP]),
    "rad_flow_num_labels": (_c_size, [_FlowP]),
    "rad_flow_set_option": (_c_int, [_FlowP, _c_int, _c_double]),
    "rad_flow_get_option": (_c_int, [_FlowP, _c_int, _F64P]),
    "rad_flow_set_standardization": (_c_int, [_FlowP, _F32P, _F32P, _c_size]),
    "rad_flow_get_standardization": (_c_int, [_FlowP, _F32P, _F32P, _c_size]),
    "rad_flow_has_standardization": (_c_int, [_FlowP]),
    "rad_flow_set_column_names": (_c_int, [_FlowP, ctypes.POINTER(_c_char_p),
                                           _c_size]),
    "rad_flow_column_name": (_c_char_p, [_FlowP, _c_size]),
    "rad_flow_get_params": (_c_int, [_FlowP, _F32P, _c_size]),
    "rad_flow_set_params": (_c_int, [_FlowP, _F32P, _c_size]),
    "rad_flow_log_prob": (_c_int, [_FlowP, _c_size, _F32P, _F32P]),
    "rad_flow_forward": (_c_int, [_FlowP, _c_size, _F32P, _F32P, _I32P, _F32P]),
    "rad_flow_inverse": (_c_int, [_FlowP, _c_size, _F32P, _I32P, _F32P]),
    "rad_flow_sample": (_c_int, [_FlowP, _c_u64, _c_size, _F32P, _F32P, _I32P]),
    "rad_flow_grad": (_c_int, [_FlowP, _c_size, _F32P, _F32P, _F64P]),
    "rad_flow_grad_weighted": (_c_int, [_FlowP, _c_size, _F32P, _F32P, _F32P,
                                        _F64P]),
    "rad_flow_gate_probs": (_c_int, [_FlowP, _c_size, _F32P, _F32P]),
    "rad_flow_sample_component": (_c_int, [_FlowP, _c_u64, _I32P, _c_size,
                                           _c_size, _F32P, _F32P, _F64P]),
    "rad_flow_score": (_c_int, [_FlowP, _c_size, _F32P, _F32P, _F32P]),
    "rad_flow_forward_layers": (_c_int, [_FlowP, _c_size, _F32P, _F32P, _I32P]),
    "rad_flow_fit": (_c_int, [_FlowP, _AdamP, _OptsP, _c_size, _F32P, _c_size,
                              _F32P, _FIT_CALLBACK, _c_void_p, _U64P]),
    "rad_flow_save": (_c_int, [_FlowP, _c_char_p]),
    "rad_flow_load": (_c_int, [_c_char_p, ctypes.POINTER(_FlowP)]),
    "rad_flow_save_to_buffer": (_c_int, [_FlowP, _c_void_p, _c_size, _SizeP]),
    "rad_flow_load_from_buffer": (_c_int, [_c_void_p, _c_size,
                                           ctypes.POINTER(_FlowP)]),
    # Adam
    "rad_adam_create": (_c_int, [_c_size, ctypes.POINTER(_AdamP)]),
    "rad_adam_free": (None, [_AdamP]),
    "rad_adam_num_params": (_c_size, [_AdamP]),
    "rad_adam_steps": (_c_u64, [_AdamP]),
    "rad_adam_set_option": (_c_int, [_AdamP, _c_int, _c_double]),
    "rad_adam_get_option": (_c_int, [_AdamP, _c_int, _F64P]),
    "rad_adam_reset": (None, [_AdamP]),
    "rad_adam_step": (_c_int, [_AdamP, _F32P, _F32P, _c_size]),
    "rad_adam_get_state": (_c_int, [_AdamP, _F32P, _F32P, _U64P, _c_size]),
    "rad_adam_set_state": (_c_int, [_AdamP, _F32P, _F32P, _c_u64, _c_size]),
    "rad_adam_save": (_c_int, [_AdamP, _c_char_p]),
    "rad_adam_load": (_c_int, [_c_char_p, ctypes.POINTER(_AdamP)]),
    "rad_adam_save_to_buffer": (_c_int, [_AdamP, _c_void_p, _c_size, _SizeP]),
    "rad_adam_load_from_buffer": (_c_int, [_c_void_p, _c_size,
                                           ctypes.POINTER(_AdamP)]),
    # fit options
    "rad_fit_options_create": (_c_int, [ctypes.POINTER(_OptsP)]),
    "rad_fit_options_free": (None, [_OptsP]),
    "rad_fit_options_set": (_c_int, [_OptsP, _c_int, _c_double]),
    # options and problems
    "rad_option_bounds": (_c_int, [_c_int, _F64P, _F64P, _F64P]),
    "rad_problem_count": (_c_int, []),
    "rad_problem_name": (_c_char_p, [_c_int]),
    "rad_problem_from_name": (_c_int, [_c_char_p]),
    "rad_problem_sample": (_c_int, [_c_int, _c_u64, _c_size, _F32P]),
    "rad_problem_true_log_likelihood": (_c_double, [_c_int]),
}

for _name, (_restype, _argtypes) in _PROTOTYPES.items():
    _fn = getattr(_lib, _name)  # AttributeError: library older than this file
    _fn.restype = _restype
    _fn.argtypes = _argtypes
del _name, _restype, _argtypes, _fn

# ---- Constants (pinned values of rad.h) ----------------------------------

OK = 0
EINVAL, ENOMEM, ESIZE, ETOOBIG, ENONFINITE, ELABEL, EMASK, EOVERFLOW = range(-1, -9, -1)
ENUMERIC, EIO, EFORMAT, EVERSION, ETRUNCATED, ECORRUPT, EMISMATCH = range(-9, -16, -1)
EUNSUPPORTED, EREJECTED = -16, -17

_CODE_NAMES = {
    OK: "RAD_OK", EINVAL: "RAD_EINVAL", ENOMEM: "RAD_ENOMEM",
    ESIZE: "RAD_ESIZE", ETOOBIG: "RAD_ETOOBIG", ENONFINITE: "RAD_ENONFINITE",
    ELABEL: "RAD_ELABEL", EMASK: "RAD_EMASK", EOVERFLOW: "RAD_EOVERFLOW",
    ENUMERIC: "RAD_ENUMERIC", EIO: "RAD_EIO", EFORMAT: "RAD_EFORMAT",
    EVERSION: "RAD_EVERSION", ETRUNCATED: "RAD_ETRUNCATED",
    ECORRUPT: "RAD_ECORRUPT", EMISMATCH: "RAD_EMISMATCH",
    EUNSUPPORTED: "RAD_EUNSUPPORTED", EREJECTED: "RAD_EREJECTED",
}

LAYER_RAD, LAYER_AFFINE = 1, 2
_KINDS = {"rad": LAYER_RAD, "realnvp": LAYER_AFFINE, "affine": LAYER_AFFINE}

_OPTION_LOGIT_BOUND = 1
_OPTION_LEARNING_RATE = 2
_OPTION_BETA1 = 3
_OPTION_BETA2 = 4
_OPTION_EPSILON = 5
_OPTION_BATCH_SIZE = 6
_OPTION_STEPS = 7
_OPTION_SEED = 8
_OPTION_EVAL_EVERY = 9
_OPTION_REPORT_EVERY = 10
_OPTION_KEEP_BEST = 11
_OPTION_LR_SCHEDULE = 12
_OPTION_LR_FINAL_FRACTION = 13
_OPTION_LR_HORIZON = 14
_OPTION_THREADS = 15
_OPTION_CLIP_NORM = 16

_ADAM_OPTIONS = {"lr": _OPTION_LEARNING_RATE, "beta1": _OPTION_BETA1,
                 "beta2": _OPTION_BETA2, "epsilon": _OPTION_EPSILON}
_SCHEDULES = {"constant": 0, "cosine": 1}

# ---- Errors -------------------------------------------------------------


def strerror(code):
    """rad_strerror(code): the library's description of a status code."""
    code = int(code)
    if not -2**31 <= code < 2**31:
        code = -2**31  # not a C int, so no status code: librad's "unknown"
    return _lib.rad_strerror(code).decode("utf-8", "replace")


class RadError(Exception):
    """A librad call returned a nonzero status.

    code: the status code (a negative int, one of the E* constants);
    function: the C function that returned it (or None);
    message: rad_strerror(code), possibly with details appended.
    str(err) is "function: message (RAD_E...)".
    """

    def __init__(self, code, message=None, function=None):
        self.code = int(code)
        self.message = strerror(code) if message is None else message
        self.function = function
        text = self.message
        if function:
            text = "%s: %s" % (function, text)
        name = _CODE_NAMES.get(self.code)
        if name:
            text += " (%s)" % name
        super().__init__(text)

    def __reduce__(self):
        return (self.__class__, (self.code, self.message, self.function))


class NonFiniteError(RadError):
    """RAD_ENONFINITE: NaN or infinity in the input."""


class LabelError(RadError):
    """RAD_ELABEL: a label outside {1,2,3} or inconsistent with z."""


class FileFormatError(RadError):
    """RAD_EFORMAT, RAD_EVERSION, RAD_ETRUNCATED, RAD_ECORRUPT: bad data."""


class RadIOError(RadError):
    """RAD_EIO: open, read, write or rename failed."""


class NumericError(RadError):
    """RAD_ENUMERIC or RAD_EOVERFLOW: a non-finite loss, gradient or result."""


class RejectedError(RadError):
    """RAD_EREJECTED: component sampling ran out of attempts."""


class ShapeError(RadError, ValueError):
    """An array whose shape does not match the flow (code RAD_ESIZE),
    detected here before any C call: the C API takes no length for most
    batches and cannot detect a short buffer. Also a ValueError."""


_ERROR_CLASSES = {
    ENONFINITE: NonFiniteError, ELABEL: LabelError,
    EFORMAT: FileFormatError, EVERSION: FileFormatError,
    ETRUNCATED: FileFormatError, ECORRUPT: FileFormatError,
    EIO: RadIOError, ENUMERIC: NumericError, EOVERFLOW: NumericError,
    EREJECTED: RejectedError,
}


def _error(code, function, detail=None):
    message = strerror(code)
    if detail:
        message = "%s: %s" % (message, detail)
    return _ERROR_CLASSES.get(code, RadError)(code, message, function)


def _check(rc, function, detail=None):
    if rc != OK:
        raise _error(rc, function, detail)


def _shape_error(detail, function=None):
    return ShapeError(ESIZE, "%s: %s" % (strerror(ESIZE), detail), function)


# ---- Argument helpers --------------------------------------------------------

_DUMMY_F32 = np.zeros(1, np.float32)
_DUMMY_I32 = np.zeros(1, np.int32)


def _fp(a):
    """float* of a C-contiguous float32 array (never NULL, even when empty)."""
    if a.size == 0:
        a = _DUMMY_F32
    return a.ctypes.data_as(_F32P)


def _ip(a):
    """int32_t* of a C-contiguous int32 array (never NULL, even when empty)."""
    if a.size == 0:
        a = _DUMMY_I32
    return a.ctypes.data_as(_I32P)


def _count(n, what="n"):
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError("%s must be an integer, got %r" % (what, n)) from None
    if n < 0:
        raise ValueError("%s must be >= 0, got %d" % (what, n))
    return n


def _seed(seed):
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError("seed must be an integer, got %r" % (seed,)) from None
    if not 0 <= seed < 2**64:
        raise ValueError("seed must be in [0, 2**64), got %d" % seed)
    return seed


def _floats(x, shape, name, function=None):
    """x as a C-contiguous float32 array of the given shape (None = any);
    ShapeError otherwise."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim != len(shape) or any(s is not None and s != t
                                   for s, t in zip(shape, a.shape)):
        want = "(%s)" % ", ".join("n" if s is None else str(s) for s in shape)
        if len(shape) == 1:
            want = want[:-1] + ",)"
        hint = ""
        if len(shape) == 2 and a.ndim == 1 and shape[1] == a.shape[0]:
            hint = "; for a single point use x.reshape(1, -1)"
        raise _shape_error("%s must have shape %s, got %s%s"
                           % (name, want, a.shape, hint), function)
    return a


def _labels(k, shape, name="labels", function=None):
    """k as a C-contiguous int32 array of the given shape; ShapeError or
    ValueError otherwise. The values themselves are checked by librad."""
    a = np.asarray(k)
    if a.size and not (np.issubdtype(a.dtype, np.integer)
                       or np.issubdtype(a.dtype, np.bool_)):
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError("%s must hold integers in {1, 2, 3}" % name)
    if a.size and (np.min(a) < -2**31 or np.max(a) >= 2**31):
        # int32 would wrap them (2**32 + 1 into 1): refuse instead
        raise ValueError("%s must hold integers in {1, 2, 3}" % name)
    a = np.ascontiguousarray(a, dtype=np.int32)
    if a.shape != tuple(shape):
        raise _shape_error("%s must have shape %s, got %s"
                           % (name, tuple(shape), a.shape), function)
    return a


def _path(path):
    return os.fsencode(os.fspath(path))


def _buffer(data):
    """(void*, size, keep-alive) for any bytes-like object."""
    a = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if a.size == 0:
        return ctypes.cast(_DUMMY_I32.ctypes.data, _c_void_p), 0, a
    return ctypes.cast(a.ctypes.data, _c_void_p), a.size, a


def _to_bytes(save, handle, function):
    size = _c_size(0)
    _check(save(handle, None, 0, ctypes.byref(size)), function)
    buf = ctypes.create_string_buffer(max(size.value, 1))
    _check(save(handle, buf, size.value, ctypes.byref(size)), function)
    return buf.raw[:size.value]


# ---- Module functions ------------------------------------------------------


def version():
    """The loaded library's version string, "MAJOR.MINOR.PATCH"."""
    return _lib.rad_version_string().decode()


def version_number():
    """The loaded library's version as MAJOR*10000 + MINOR*100 + PATCH."""
    return _lib.rad_version()


def problem_names():
    """The names of the paper's 2-D problems, in id order (ids 1..6)."""
    return [_lib.rad_problem_name(i).decode()
            for i in range(1, _lib.rad_problem_count() + 1)]


def problem_id(name):
    """The id (1..6) of a problem name; an int id is checked and returned."""
    if isinstance(name, (int, np.integer)):
        pid = int(name)
        if _lib.rad_problem_name(pid) is None:
            raise RadError(EINVAL, "%s: unknown problem id %d (valid: 1..%d)"
                           % (strerror(EINVAL), pid, _lib.rad_problem_count()),
                           "rad_problem_name")
        return pid
    if isinstance(name, bytes):
        name = name.decode()
    if not isinstance(name, str):
        raise TypeError("problem must be a name or an id, got %r" % (name,))
    pid = _lib.rad_problem_from_name(name.encode())
    if pid < 0:
        raise _error(pid, "rad_problem_from_name",
                     "unknown problem %r (known: %s)"
                     % (name, ", ".join(problem_names())))
    return pid


def problem_sample(name, n, seed=0):
    """n points (an (n, 2) float32 array) of a problem, by name or id.

    Point i depends only on (seed, i): a longer sample extends a shorter
    one with the same seed."""
    pid = problem_id(name)
    n = _count(n)
    x = np.empty((n, 2), np.float32)
    _check(_lib.rad_problem_sample(pid, _seed(seed), n, _fp(x)),
           "rad_problem_sample")
    return x


def true_log_likelihood(name):
    """The best mean log-likelihood any model can reach on a problem (nats)."""
    return float(_lib.rad_problem_true_log_likelihood(problem_id(name)))


# ---- Handles -------------------------------------------------------------


class _Handle:
    """An owned C handle, freed exactly once (close, `with`, or GC)."""

    _free = None  # the C free function, set by subclasses
    _what = "handle"

    def __init__(self, handle):
        if not handle:
            raise ValueError("NULL %s" % self._what)
        self._h = handle

    @property
    def _handle(self):
        h = self._h
        if h is None:
            raise ValueError("this %s is closed" % self._what)
        return h

    @property
    def closed(self):
        return self._h is None

    def close(self):
        """Free the C handle now (idempotent). The object is unusable after."""
        h, self._h = getattr(self, "_h", None), None
        if h is not None:
            type(self)._free(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        # The free function is a class attribute: it survives module
        # teardown at interpreter exit.
        try:
            self.close()
        except Exception:
            pass


# ---- Flows ------------------------------------------------------------


class Flow(_Handle):
    """A RAD or REAL NVP flow (an owned rad_flow handle).

    Build one with Flow.create, Flow.load or Flow.from_bytes. The handle is
    freed exactly once: by close(), at the end of a `with` block, or when
    the object is garbage-collected. Flows pickle (through to_bytes).

    Thread safety: read-only calls (log_prob, score, grad, grad_weighted,
    forward, forward_layers, inverse, sample, gate_probs, sample_component,
    copy, save, to_bytes, property getters) may run on one Flow from
    several threads at once (ctypes releases the GIL, so they run in
    parallel). fit and the property setters need exclusive access, and
    close() must not race with anything.
    """

    _free = _lib.rad_flow_free
    _what = "flow"

    # -- construction

    @classmethod
    def create(cls, kind="rad", dim=None, layers=6, hidden=8, gate_hidden=8,
               seed=0, logit_bound=None):
        """A new flow: `layers` coupling layers with alternating masks.

        kind: "rad" (RAD layers, the default) or "realnvp" (affine
        coupling layers; "affine" is a synonym); dim: the data dimension
        (required); hidden: conditioner width; gate_hidden: gating network
        width (RAD only; ignored for realnvp); seed: initial parameters
        (0 <= seed < 2**64); logit_bound: the soft clamp B of the fold's
        boundary logits (None: library default, 3; 0 or inf: unclamped)."""
        if dim is None:
            raise TypeError("Flow.create: dim is required")
        if isinstance(kind, str):
            try:
                k = _KINDS[kind.lower()]
            except KeyError:
                raise ValueError("kind must be 'rad' or 'realnvp', got %r"
                                 % kind) from None
        elif kind in (LAYER_RAD, LAYER_AFFINE):
            k = int(kind)
        else:
            raise ValueError("kind must be 'rad' or 'realnvp', got %r" % (kind,))
        h = _FlowP()
        _check(_lib.rad_flow_create(
            k, _count(dim, "dim"), _count(layers, "layers"),
            _count(hidden, "hidden"), _count(gate_hidden, "gate_hidden"),
            _seed(seed), ctypes.byref(h)), "rad_flow_create")
        flow = cls(h)
        if logit_bound is not None:
            try:
                flow.logit_bound = logit_bound
            except BaseException:
                flow.close()
                raise
        return flow

    @classmethod
    def load(cls, path):
        """Load a flow file (rad_flow_load). Raises FileFormatError for
        foreign, newer, truncated or corrupt files, RadIOError if it
        cannot be read."""
        h = _FlowP()
        _check(_lib.rad_flow_load(_path(path), ctypes.byref(h)),
               "rad_flow_load", os.fsdecode(os.fspath(path)))
        return cls(h)

    @classmethod
    def from_bytes(cls, data):
        """A flow from the bytes of a flow file (rad_flow_load_from_buffer)."""
        ptr, size, keep = _buffer(data)
        h = _FlowP()
        _check(_lib.rad_flow_load_from_buffer(ptr, size, ctypes.byref(h)),
               "rad_flow_load_from_buffer")
        del keep
        return cls(h)

    def save(self, path):
        """Write the flow file atomically (temporary file, fsync, rename)."""
        _check(_lib.rad_flow_save(self._handle, _path(path)), "rad_flow_save",
               os.fsdecode(os.fspath(path)))

    def to_bytes(self):
        """The flow file's content as bytes."""
        return _to_bytes(_lib.rad_flow_save_to_buffer, self._handle,
                         "rad_flow_save_to_buffer")

    def copy(self):
        """A deep copy (an independent handle)."""
        h = _FlowP()
        _check(_lib.rad_flow_copy(self._handle, ctypes.byref(h)), "rad_flow_copy")
        return type(self)(h)

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return (self.__class__.from_bytes, (self.to_bytes(),))

    def __repr__(self):
        if self.closed:
            return "<rad.Flow (closed)>"
        return ("<rad.Flow dim=%d layers=%d params=%d labels=%d>"
                % (self.dim, self.num_layers, self.num_params, self.num_labels))

    # -- properties

    @property
    def dim(self):
        """Data dimension d."""
        return _lib.rad_flow_dim(self._handle)

    @property
    def num_params(self):
        """Number of trainable parameters."""
        return _lib.rad_flow_num_params(self._handle)

    @property
    def num_labels(self):
        """Discrete latents per point (0 for a REAL NVP flow)."""
        return _lib.rad_flow_num_labels(self._handle)

    @property
    def num_layers(self):
        """Number of coupling layers."""
        return _lib.rad_flow_num_layers(self._handle)

    @property
    def params(self):
        """All trainable parameters as a float32 vector (a copy).
        Assigning a vector of num_params values sets them."""
        out = np.empty(self.num_params, np.float32)
        _check(_lib.rad_flow_get_params(self._handle, _fp(out), out.size),
               "rad_flow_get_params")
        return out

    @params.setter
    def params(self, value):
        p = _floats(value, (self.num_params,), "params", "rad_flow_set_params")
        _check(_lib.rad_flow_set_params(self._handle, _fp(p), p.size),
               "rad_flow_set_params")

    @property
    def standardization(self):
        """(shift, scale), float32 vectors of length dim, or None if the
        flow has none. The flow evaluates z = (x - shift) / scale before
        its first layer (densities stay in x's units). Assign (shift,
        scale) to set it, None to remove it."""
        h = self._handle
        if not _lib.rad_flow_has_standardization(h):
            return None
        d = self.dim
        shift = np.empty(d, np.float32)
        scale = np.empty(d, np.float32)
        _check(_lib.rad_flow_get_standardization(h, _fp(shift), _fp(scale), d),
               "rad_flow_get_standardization")
        return shift, scale

    @standardization.setter
    def standardization(self, value):
        h = self._handle
        if value is None:
            _check(_lib.rad_flow_set_standardization(h, None, None, 0),
                   "rad_flow_set_standardization")
            return
        try:
            shift, scale = value
        except (TypeError, ValueError):
            raise TypeError("standardization must be None or a pair "
                            "(shift, scale)") from None
        d = self.dim
        fn = "rad_flow_set_standardization"
        shift = _floats(shift, (d,), "shift", fn)
        scale = _floats(scale, (d,), "scale", fn)
        _check(_lib.rad_flow_set_standardization(h, _fp(shift), _fp(scale), d),
               "rad_flow_set_standardization")

    @property
    def column_names(self):
        """A list of dim str, or None. Assign a sequence of dim strings (at
        most 4096 UTF-8 bytes each), or None to remove them."""
        h = self._handle
        names = []
        for i in range(self.dim):
            s = _lib.rad_flow_column_name(h, i)
            if s is None:
                return None
            names.append(s.decode("utf-8", "replace"))
        return names

    @column_names.setter
    def column_names(self, names):
        h = self._handle
        if names is None:
            _check(_lib.rad_flow_set_column_names(h, None, 0),
                   "rad_flow_set_column_names")
            return
        if isinstance(names, (str, bytes)):
            raise TypeError("column_names must be a sequence of strings")
        enc = [n if isinstance(n, bytes) else str(n).encode("utf-8")
               for n in names]
        if len(enc) != self.dim:
            raise _shape_error("column_names needs %d names, got %d"
                               % (self.dim, len(enc)),
                               "rad_flow_set_column_names")
        if any(b"\0" in n for n in enc):
            raise ValueError("column names cannot contain NUL characters")
        arr = (_c_char_p * max(len(enc), 1))(*enc)
        _check(_lib.rad_flow_set_column_names(h, arr, len(enc)),
               "rad_flow_set_column_names")

    @property
    def logit_bound(self):
        """The soft clamp B of the fold's boundary logits (0: unclamped).
        Setting it applies to every layer."""
        v = _c_double()
        _check(_lib.rad_flow_get_option(self._handle, _OPTION_LOGIT_BOUND,
                                        ctypes.byref(v)), "rad_flow_get_option")
        return v.value

    @logit_bound.setter
    def logit_bound(self, value):
        _check(_lib.rad_flow_set_option(self._handle, _OPTION_LOGIT_BOUND,
                                        float(value)), "rad_flow_set_option")

    # -- evaluation

    def _x(self, x, function, name="x"):
        return _floats(x, (None, self.dim), name, function)

    def log_prob(self, x):
        """log p(x) in nats for an (n, dim) batch: a float32 vector (n,)."""
        h = self._handle
        x = self._x(x, "rad_flow_log_prob")
        out = np.empty(x.shape[0], np.float32)
        _check(_lib.rad_flow_log_prob(h, x.shape[0], _fp(x), _fp(out)),
               "rad_flow_log_prob")
        return out

    def score(self, x, return_log_prob=False):
        """The score d log p(x) / dx, (n, dim); with return_log_prob,
        (score, log_prob)."""
        h = self._handle
        x = self._x(x, "rad_flow_score")
        n = x.shape[0]
        s = np.empty_like(x)
        lp = np.empty(n, np.float32)
        _check(_lib.rad_flow_score(h, n, _fp(x), _fp(s), _fp(lp)),
               "rad_flow_score")
        return (s, lp) if return_log_prob else s

    def grad(self, x):
        """(grad, mean): the gradient of the MEAN log-likelihood of the
        batch w.r.t. params (float32, num_params) and that mean (a float).
        An empty batch raises RadError (EINVAL)."""
        h = self._handle
        x = self._x(x, "rad_flow_grad")
        g = np.empty(self.num_params, np.float32)
        mean = _c_double()
        _check(_lib.rad_flow_grad(h, x.shape[0], _fp(x), _fp(g),
                                  ctypes.byref(mean)), "rad_flow_grad")
        return g, mean.value

    def grad_weighted(self, x, weights):
        """(grad, mean) of the weighted mean log-likelihood
        sum_i w_i log p(x_i) / sum_i w_i; weights are finite, >= 0, with a
        positive sum."""
        h = self._handle
        x = self._x(x, "rad_flow_grad_weighted")
        w = _floats(weights, (x.shape[0],), "weights", "rad_flow_grad_weighted")
        g = np.empty(self.num_params, np.float32)
        mean = _c_double()
        _check(_lib.rad_flow_grad_weighted(h, x.shape[0], _fp(x), _fp(w),
                                           _fp(g), ctypes.byref(mean)),
               "rad_flow_grad_weighted")
        return g, mean.value

    def forward(self, x):
        """Inference x -> (z, labels, log_prob): z (n, dim) float32, labels
        (n, num_labels) int32 in {1,2,3} (forward layer order, then unit
        order), log_prob (n,) float32."""
        h = self._handle
        x = self._x(x, "rad_flow_forward")
        n = x.shape[0]
        z = np.empty_like(x)
        k = np.empty((n, self.num_labels), np.int32)
        lp = np.empty(n, np.float32)
        _check(_lib.rad_flow_forward(h, n, _fp(x), _fp(z), _ip(k), _fp(lp)),
               "rad_flow_forward")
        return z, k, lp

    def forward_layers(self, x):
        """(zs, labels): zs (num_layers, n, dim) holds every layer's output
        (zs[-1] is z); labels as in forward."""
        h = self._handle
        x = self._x(x, "rad_flow_forward_layers")
        n = x.shape[0]
        zs = np.empty((self.num_layers, n, self.dim), np.float32)
        k = np.empty((n, self.num_labels), np.int32)
        _check(_lib.rad_flow_forward_layers(h, n, _fp(x), _fp(zs), _ip(k)),
               "rad_flow_forward_layers")
        return zs, k

    def inverse(self, z, labels=None):
        """The exact inverse x (n, dim) of z given the labels forward
        returned ((n, num_labels) integers in {1,2,3}; None only for a
        flow without labels). LabelError if a label cannot have produced z."""
        h = self._handle
        z = self._x(z, "rad_flow_inverse", "z")
        n, nl = z.shape[0], self.num_labels
        if labels is None:
            if nl:
                raise _shape_error("labels of shape (%d, %d) are required"
                               % (n, nl), "rad_flow_inverse")
            labels = np.empty((n, 0), np.int32)
        k = _labels(labels, (n, nl), "labels", "rad_flow_inverse")
        x = np.empty_like(z)
        _check(_lib.rad_flow_inverse(h, n, _fp(z), _ip(k) if nl else None,
                                     _fp(x)), "rad_flow_inverse")
        return x

    def sample(self, n, seed=0, return_z=False, return_labels=False):
        """n exact samples, (n, dim) float32. Sample i depends only on
        (seed, i). With return_z / return_labels, returns a tuple
        (x[, z][, labels])."""
        h = self._handle
        n = _count(n)
        d = self.dim
        x = np.empty((n, d), np.float32)
        z = np.empty((n, d), np.float32) if return_z else None
        k = np.empty((n, self.num_labels), np.int32) if return_labels else None
        _check(_lib.rad_flow_sample(h, _seed(seed), n, _fp(x),
                                    _fp(z) if return_z else None,
                                    _ip(k) if return_labels else None),
               "rad_flow_sample")
        if not (return_z or return_labels):
            return x
        out = (x,)
        if return_z:
            out += (z,)
        if return_labels:
            out += (k,)
        return out

    def gate_probs(self, x):
        """The gating distribution of every label: (n, num_labels, 3)
        float32, probs[i, j, c] = p(label j = c + 1 | z) of point i."""
        h = self._handle
        x = self._x(x, "rad_flow_gate_probs")
        n = x.shape[0]
        p = np.empty((n, self.num_labels, 3), np.float32)
        _check(_lib.rad_flow_gate_probs(h, n, _fp(x), _fp(p)),
               "rad_flow_gate_probs")
        return p

    def sample_component(self, labels, n, seed=0, max_attempts=10000,
                         return_z=False, return_acceptance=False):
        """n exact samples (n, dim) of the mixture component whose labels
        are all fixed to `labels` (num_labels integers in {1,2,3}), by
        rejection. RejectedError if a sample needs more than max_attempts
        attempts. With return_z / return_acceptance, returns a tuple
        (x[, z][, acceptance]), acceptance being the observed acceptance
        rate (an estimate of the component's weight)."""
        h = self._handle
        n = _count(n)
        d, nl = self.dim, self.num_labels
        k = _labels(np.reshape(labels, -1), (nl,), "labels",
                    "rad_flow_sample_component")
        x = np.empty((n, d), np.float32)
        z = np.empty((n, d), np.float32) if return_z else None
        acc = _c_double(float("nan"))
        _check(_lib.rad_flow_sample_component(
            h, _seed(seed), _ip(k), n, _count(max_attempts, "max_attempts"),
            _fp(x), _fp(z) if return_z else None, ctypes.byref(acc)),
            "rad_flow_sample_component")
        if not (return_z or return_acceptance):
            return x
        out = (x,)
        if return_z:
            out += (z,)
        if return_acceptance:
            out += (acc.value,)
        return out

    # -- training

    def fit(self, x, steps=None, batch=None, lr=None, lr_schedule="constant",
            seed=0, heldout=None, eval_every=None, report_every=None,
            keep_best=False, callback=None, optimizer=None,
            lr_final_fraction=None, lr_horizon=None, threads=None,
            clip_norm=None):
        """Maximize the mean log-likelihood of x (n, dim) by minibatch Adam
        (rad_flow_fit). Returns the number of steps taken.

        steps (default 1000), batch (default 500), eval_every (held-out
        evaluation period, default 1000; 0 = only at the end), report_every
        (callback period, default 100; 0 = only at the end): None keeps the
        library default. lr: learning rate (None: the optimizer's own rate
        if an optimizer is given, else 1e-3). lr_schedule: "constant" or
        "cosine" (decay to lr_final_fraction * lr, default 0.01, over the
        steps of this call, or over lr_horizon optimizer steps counted from
        the optimizer's step count, so that a resumed fit continues the
        same decay). threads: the batch split across this many threads
        (RAD_OPTION_THREADS, default 1). clip_norm: each minibatch gradient
        scaled down to at most this norm (0 or None: no clipping). seed: minibatch order (an integer < 2**53).
        heldout: an (m, dim) held-out set, evaluated every eval_every steps
        and at the end. keep_best: end with the parameters of the best
        held-out evaluation.

        callback(step, train_ll, heldout_ll) is called every report_every
        steps and at the end, with the optimizer's step count, the mean
        training log-likelihood of the minibatches since the previous call
        and the latest held-out mean log-likelihood (nan before the first
        evaluation or without a held-out set); a true return value stops
        the fit. An exception raised by the callback stops the fit and is
        re-raised once rad_flow_fit has returned (the flow then holds the
        parameters reached so far).

        optimizer: an Adam with num_params entries, continued (its step
        count and with it the minibatch order go on), so that a fit resumed
        with the same data, seed and optimizer state takes the same steps
        as one that never stopped. None: a fresh Adam, discarded."""
        h = self._handle
        x = self._x(x, "rad_flow_fit")
        if heldout is None:
            hx = np.empty((0, self.dim), np.float32)
        else:
            hx = self._x(heldout, "rad_flow_fit", "heldout")
        if lr_schedule not in _SCHEDULES:
            raise ValueError("lr_schedule must be 'constant' or 'cosine', got %r"
                             % (lr_schedule,))
        if optimizer is not None and not isinstance(optimizer, Adam):
            raise TypeError("optimizer must be a rad.Adam")
        if lr is None and optimizer is not None:
            lr = optimizer.lr  # rad_flow_fit takes the rate from its options
        settings = [
            (_OPTION_STEPS, steps, "steps"), (_OPTION_BATCH_SIZE, batch, "batch"),
            (_OPTION_LEARNING_RATE, lr, "lr"), (_OPTION_SEED, seed, "seed"),
            (_OPTION_EVAL_EVERY, eval_every, "eval_every"),
            (_OPTION_REPORT_EVERY, report_every, "report_every"),
            (_OPTION_KEEP_BEST, 1 if keep_best else 0, "keep_best"),
            (_OPTION_LR_SCHEDULE, _SCHEDULES[lr_schedule], "lr_schedule"),
            (_OPTION_LR_FINAL_FRACTION, lr_final_fraction, "lr_final_fraction"),
            (_OPTION_LR_HORIZON, lr_horizon, "lr_horizon"),
            (_OPTION_THREADS, threads, "threads"),
            (_OPTION_CLIP_NORM, clip_norm, "clip_norm"),
        ]
        errors = []
        if callback is not None:
            if not callable(callback):
                raise TypeError("callback must be callable")

            def trampoline(user, step, train_ll, heldout_ll):
                try:
                    return 1 if callback(int(step), train_ll, heldout_ll) else 0
                except BaseException as e:  # incl. KeyboardInterrupt
                    errors.append(e)
                    return 1
            c_callback = _FIT_CALLBACK(trampoline)  # alive for the whole call
        else:
            c_callback = _FIT_CALLBACK()  # NULL
        opts = _OptsP()
        _check(_lib.rad_fit_options_create(ctypes.byref(opts)),
               "rad_fit_options_create")
        try:
            for key, value, name in settings:
                if value is None:
                    continue
                rc = _lib.rad_fit_options_set(opts, key, float(value))
                _check(rc, "rad_fit_options_set", "%s = %r" % (name, value))
            done = _c_u64(0)
            rc = _lib.rad_flow_fit(
                h, optimizer._handle if optimizer is not None else None, opts,
                x.shape[0], _fp(x), hx.shape[0],
                _fp(hx) if hx.shape[0] else None, c_callback, None,
                ctypes.byref(done))
        finally:
            _lib.rad_fit_options_free(opts)
        if errors:
            raise errors[0]
        _check(rc, "rad_flow_fit")
        return int(done.value)


# ---- Adam -----------------------------------------------------------------


class Adam(_Handle):
    """Adam state for gradient ascent (an owned rad_adam handle): moments,
    step count and hyperparameters, kept apart from the flow so that a fit
    can stop and resume (pass it as Flow.fit(..., optimizer=opt)). Use from
    one thread at a time.

        opt = rad.Adam(flow)                     # or Adam(num_params)
        flow.fit(x, steps=500, optimizer=opt)
        opt.save("opt.radadam")                  # later: Adam.load(...)
    """

    _free = _lib.rad_adam_free
    _what = "optimizer"

    def __init__(self, num_params, lr=None, beta1=None, beta2=None,
                 epsilon=None, _handle=None):
        """num_params: an int or a Flow (its num_params). Options left None
        keep the library defaults (lr 1e-3, beta1 0.9, beta2 0.999,
        epsilon 1e-8)."""
        if _handle is None:
            if isinstance(num_params, Flow):
                num_params = num_params.num_params
            _handle = _AdamP()
            _check(_lib.rad_adam_create(_count(num_params, "num_params"),
                                        ctypes.byref(_handle)),
                   "rad_adam_create")
        super().__init__(_handle)
        self.set_options(lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon)

    @classmethod
    def _wrap(cls, handle):
        return cls(None, _handle=handle)

    @classmethod
    def load(cls, path):
        """Load an optimizer file (rad_adam_load)."""
        h = _AdamP()
        _check(_lib.rad_adam_load(_path(path), ctypes.byref(h)),
               "rad_adam_load", os.fsdecode(os.fspath(path)))
        return cls._wrap(h)

    @classmethod
    def from_bytes(cls, data):
        """An optimizer from the bytes of an optimizer file."""
        ptr, size, keep = _buffer(data)
        h = _AdamP()
        _check(_lib.rad_adam_load_from_buffer(ptr, size, ctypes.byref(h)),
               "rad_adam_load_from_buffer")
        del keep
        return cls._wrap(h)

    def save(self, path):
        """Write the optimizer file atomically."""
        _check(_lib.rad_adam_save(self._handle, _path(path)), "rad_adam_save",
               os.fsdecode(os.fspath(path)))

    def to_bytes(self):
        """The optimizer file's content as bytes."""
        return _to_bytes(_lib.rad_adam_save_to_buffer, self._handle,
                         "rad_adam_save_to_buffer")

    def copy(self):
        """An independent copy (through to_bytes)."""
        return type(self).from_bytes(self.to_bytes())

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return (self.__class__.from_bytes, (self.to_bytes(),))

    def __repr__(self):
        if self.closed:
            return "<rad.Adam (closed)>"
        return "<rad.Adam params=%d steps=%d lr=%g>" % (
            self.num_params, self.steps, self.lr)

    @property
    def num_params(self):
        return _lib.rad_adam_num_params(self._handle)

    @property
    def steps(self):
        """Steps taken so far (t)."""
        return int(_lib.rad_adam_steps(self._handle))

    def set_option(self, name, value):
        """Set "lr", "beta1", "beta2" or "epsilon"."""
        try:
            key = _ADAM_OPTIONS[name]
        except KeyError:
            raise ValueError("unknown Adam option %r (known: %s)"
                             % (name, ", ".join(_ADAM_OPTIONS))) from None
        _check(_lib.rad_adam_set_option(self._handle, key, float(value)),
               "rad_adam_set_option", "%s = %r" % (name, value))

    def get_option(self, name):
        try:
            key = _ADAM_OPTIONS[name]
        except KeyError:
            raise ValueError("unknown Adam option %r" % (name,)) from None
        v = _c_double()
        _check(_lib.rad_adam_get_option(self._handle, key, ctypes.byref(v)),
               "rad_adam_get_option")
        return v.value

    def set_options(self, **options):
        """set_options(lr=..., beta1=..., beta2=..., epsilon=...); None
        values are skipped."""
        for name, value in options.items():
            if value is not None:
                self.set_option(name, value)

    lr = property(lambda self: self.get_option("lr"),
                  lambda self, v: self.set_option("lr", v),
                  doc="Learning rate (> 0).")
    beta1 = property(lambda self: self.get_option("beta1"),
                     lambda self, v: self.set_option("beta1", v))
    beta2 = property(lambda self: self.get_option("beta2"),
                     lambda self, v: self.set_option("beta2", v))
    epsilon = property(lambda self: self.get_option("epsilon"),
                       lambda self, v: self.set_option("epsilon", v))

    def reset(self):
        """Zero the moments and the step count (options are kept)."""
        _lib.rad_adam_reset(self._handle)

    def get_state(self):
        """(m, v, t): first and second moments (float32) and step count."""
        n = self.num_params
        m = np.empty(n, np.float32)
        v = np.empty(n, np.float32)
        t = _c_u64()
        _check(_lib.rad_adam_get_state(self._handle, _fp(m), _fp(v),
                                       ctypes.byref(t), n), "rad_adam_get_state")
        return m, v, int(t.value)

    def set_state(self, m, v, t):
        n = self.num_params
        m = _floats(m, (n,), "m", "rad_adam_set_state")
        v = _floats(v, (n,), "v", "rad_adam_set_state")
        _check(_lib.rad_adam_set_state(self._handle, _fp(m), _fp(v),
                                       _seed(t), n), "rad_adam_set_state")

    def step(self, params, grad):
        """One ascent step: updates `params` IN PLACE (it must be a
        writable C-contiguous float32 array of num_params values, e.g.
        flow.params) and returns it. Set the flow's params afterwards."""
        n = self.num_params
        if (not isinstance(params, np.ndarray) or params.dtype != np.float32
                or not params.flags.c_contiguous or not params.flags.writeable
                or params.shape != (n,)):
            raise _shape_error("params must be a writable C-contiguous "
                               "float32 array of shape (%d,)" % n,
                               "rad_adam_step")
        g = _floats(grad, (n,), "grad", "rad_adam_step")
        _check(_lib.rad_adam_step(self._handle, _fp(params), _fp(g), n),
               "rad_adam_step")
        return params
