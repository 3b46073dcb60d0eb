# librad from Julia: RAD normalizing flows through ccall (no dependencies
# beyond the standard library Libdl).
#
#     include("examples/julia/rad.jl"); using .Rad
#     x = problem_sample("moons", 10_000; seed=1)          # 2 x 10000
#     flow = Flow(:rad, 2; layers=6, hidden=8, gate_hidden=8, seed=3)
#     fit!(flow, x; steps=2000, batch=500, lr=1e-3)
#     println(sum(log_prob(flow, x)) / size(x, 2))
#
# NOT TESTED: no Julia was available where this file was written. It mirrors
# examples/python/rad.py (which is tested by tests/test_python_api.py) call
# for call; see docs/bindings.md.
#
# LAYOUT. Julia arrays are column-major. librad's batch of n points of
# dimension d is n*d float32, row-major (point i at x[i*d+1 .. i*d+d]):
# exactly the memory of a Julia d x n Matrix{Float32} whose column j is
# point j. So every batch here is a d x n matrix (one point per COLUMN), and
# labels are a num_labels x n Matrix{Int32}. Nothing is transposed: the
# matrix is handed to C as it is (other element types and non-contiguous
# arrays are converted to a fresh Matrix{Float32} first).
#
# Library lookup: ENV["RAD_LIB"] if set when this file is included; else the
# in-tree ../../lib/librad.so relative to this file; else an installed
# librad (Libdl.find_library("librad"), then "librad.so.0").

module Rad

using Libdl

export Flow, Adam, RadError,
    fit!, log_prob, score, grad, grad_weighted, forward, forward_layers,
    inverse, sample, gate_probs, sample_component,
    save, to_bytes, load_flow, flow_from_bytes, load_adam, adam_from_bytes,
    dim, num_params, num_labels, num_layers,
    params, set_params!, standardization, set_standardization!,
    column_names, set_column_names!, logit_bound, set_logit_bound!,
    steps, get_option, set_option!, reset!, get_state, set_state!, step!,
    problem_sample, problem_names, problem_id, true_log_likelihood

# ---- The library --------------------------------------------------------

function _find_library()
    p = get(ENV, "RAD_LIB", "")
    isempty(p) || return p
    intree = normpath(joinpath(@__DIR__, "..", "..", "lib", "librad.so"))
    isfile(intree) && return intree
    p = Libdl.find_library(["librad", "librad.so.0"])
    isempty(p) || return p
    return "librad.so.0"
end

"Path or name of the librad shared library used by every ccall."
const librad = _find_library()

# ---- Constants (pinned values of rad.h) ----------------------------------

const RAD_OK = 0
const RAD_EINVAL = -1
const RAD_ENOMEM = -2
const RAD_ESIZE = -3
const RAD_ETOOBIG = -4
const RAD_ENONFINITE = -5
const RAD_ELABEL = -6
const RAD_EMASK = -7
const RAD_EOVERFLOW = -8
const RAD_ENUMERIC = -9
const RAD_EIO = -10
const RAD_EFORMAT = -11
const RAD_EVERSION = -12
const RAD_ETRUNCATED = -13
const RAD_ECORRUPT = -14
const RAD_EMISMATCH = -15
const RAD_EUNSUPPORTED = -16
const RAD_EREJECTED = -17

const _CODE_NAMES = Dict{Int,String}(
    0 => "RAD_OK", -1 => "RAD_EINVAL", -2 => "RAD_ENOMEM", -3 => "RAD_ESIZE",
    -4 => "RAD_ETOOBIG", -5 => "RAD_ENONFINITE", -6 => "RAD_ELABEL",
    -7 => "RAD_EMASK", -8 => "RAD_EOVERFLOW", -9 => "RAD_ENUMERIC",
    -10 => "RAD_EIO", -11 => "RAD_EFORMAT", -12 => "RAD_EVERSION",
    -13 => "RAD_ETRUNCATED", -14 => "RAD_ECORRUPT", -15 => "RAD_EMISMATCH",
    -16 => "RAD_EUNSUPPORTED", -17 => "RAD_EREJECTED")

const RAD_LAYER_RAD = Cint(1)
const RAD_LAYER_AFFINE = Cint(2)

const _OPTION_LOGIT_BOUND = Cint(1)
const _OPTION_LEARNING_RATE = Cint(2)
const _OPTION_BETA1 = Cint(3)
const _OPTION_BETA2 = Cint(4)
const _OPTION_EPSILON = Cint(5)
const _OPTION_BATCH_SIZE = Cint(6)
const _OPTION_STEPS = Cint(7)
const _OPTION_SEED = Cint(8)
const _OPTION_EVAL_EVERY = Cint(9)
const _OPTION_REPORT_EVERY = Cint(10)
const _OPTION_KEEP_BEST = Cint(11)
const _OPTION_LR_SCHEDULE = Cint(12)
const _OPTION_LR_FINAL_FRACTION = Cint(13)
const _OPTION_LR_HORIZON = Cint(14)
const _OPTION_THREADS = Cint(15)
const _OPTION_CLIP_NORM = Cint(16)

const _ADAM_OPTIONS = Dict{Symbol,Cint}(:lr => _OPTION_LEARNING_RATE,
    :beta1 => _OPTION_BETA1, :beta2 => _OPTION_BETA2, :epsilon => _OPTION_EPSILON)

# ---- Errors ----------------------------------------------------------------

"""
    strerror(code) -> String

librad's description of a status code (`rad_strerror`).
"""
function strerror(code::Integer)
    p = ccall((:rad_strerror, librad), Ptr{UInt8}, (Cint,), Cint(code))
    return unsafe_string(p)
end

"""
    RadError(code, func, msg)

A librad call returned the nonzero status `code` (one of the `RAD_E*`
constants). `func` is the C function, `msg` is `rad_strerror(code)`,
possibly followed by details. Shapes that do not match the flow are
reported as `RAD_ESIZE` before any C call (the C API cannot detect a short
buffer).
"""
struct RadError <: Exception
    code::Int
    func::String
    msg::String
end

RadError(code::Integer, func::AbstractString) =
    RadError(Int(code), String(func), strerror(code))

function Base.showerror(io::IO, e::RadError)
    print(io, "RadError: ", e.func, ": ", e.msg, " (",
          get(_CODE_NAMES, e.code, string(e.code)), ")")
end

function _check(rc::Integer, func::AbstractString, detail::AbstractString="")
    if rc != 0
        msg = strerror(rc)
        isempty(detail) || (msg = string(msg, ": ", detail))
        throw(RadError(Int(rc), String(func), msg))
    end
    return nothing
end

_size_error(func, detail) =
    RadError(RAD_ESIZE, String(func), string(strerror(RAD_ESIZE), ": ", detail))

# ---- Argument helpers ------------------------------------------------------

# librad refuses a NULL buffer even for an empty batch: empty arrays are
# passed as a one-element dummy (never read or written when n = 0).
const _DUMMY_F32 = zeros(Float32, 1)
const _DUMMY_I32 = zeros(Int32, 1)
_nz(a::Array{Float32}) = isempty(a) ? _DUMMY_F32 : a
_nz(a::Array{Int32}) = isempty(a) ? _DUMMY_I32 : a

_f32(x::Array{Float32}) = x
_f32(x::AbstractArray{<:Real}) = Array{Float32}(x)

function _count(n::Integer, what::AbstractString="n")
    n < 0 && throw(ArgumentError("$what must be >= 0, got $n"))
    return Csize_t(n)
end

_seed(s::Integer) = UInt64(s)   # InexactError for a negative seed

# A d x n batch as a Matrix{Float32} (no copy when it already is one).
function _batch(x::AbstractMatrix{<:Real}, d::Integer, func, name="x")
    X = _f32(x)
    size(X, 1) == d || throw(_size_error(func,
        "$name must be a $d x n matrix (one point per column), got " *
        "$(size(X, 1)) x $(size(X, 2))"))
    return X
end
_batch(x::AbstractVector, d::Integer, func, name="x") = throw(_size_error(func,
    "$name must be a $d x n matrix (one point per column), got a vector of " *
    "length $(length(x)); for one point use reshape(x, :, 1)"))

function _vector(v::AbstractVector{<:Real}, len::Integer, func, name)
    V = _f32(v)
    length(V) == len || throw(_size_error(func,
        "$name must have $len elements, got $(length(V))"))
    return V
end

function _labels(k::AbstractArray{<:Integer}, shape::Tuple, func)
    K = k isa Array{Int32} ? k : Array{Int32}(k)   # InexactError if out of range
    size(K) == shape || throw(_size_error(func,
        "labels must be a $(join(shape, " x ")) array, got $(join(size(K), " x "))"))
    return K
end

# save_to_buffer protocol: ask for the size (buf NULL), then fill a buffer.
# `call(buf, cap, size_ref)` performs the ccall.
function _to_bytes(call, func::AbstractString)
    sz = Ref{Csize_t}(0)
    _check(call(C_NULL, 0, sz), func)
    buf = Vector{UInt8}(undef, max(Int(sz[]), 1))
    _check(call(buf, length(buf), sz), func)
    return resize!(buf, Int(sz[]))
end

# ---- Module functions --------------------------------------------------------

"Version string of the loaded library, \"MAJOR.MINOR.PATCH\"."
version() = unsafe_string(ccall((:rad_version_string, librad), Ptr{UInt8}, ()))

"Version of the loaded library as MAJOR*10000 + MINOR*100 + PATCH."
version_number() = Int(ccall((:rad_version, librad), Cint, ()))

"Names of the paper's 2-D problems, in id order (ids 1..6)."
function problem_names()
    count = ccall((:rad_problem_count, librad), Cint, ())
    return [unsafe_string(ccall((:rad_problem_name, librad), Ptr{UInt8},
                                (Cint,), i)) for i in 1:count]
end

"""
    problem_id(name) -> Int

The id (1..6) of a problem name (a String or Symbol); an integer id is
checked and returned.
"""
function problem_id(name::Integer)
    p = ccall((:rad_problem_name, librad), Ptr{UInt8}, (Cint,), Cint(name))
    p == C_NULL && throw(RadError(RAD_EINVAL, "rad_problem_name",
        string(strerror(RAD_EINVAL), ": unknown problem id ", name)))
    return Int(name)
end
function problem_id(name::Union{AbstractString,Symbol})
    id = ccall((:rad_problem_from_name, librad), Cint, (Cstring,), string(name))
    id < 0 && _check(id, "rad_problem_from_name",
        "unknown problem \"$name\" (known: $(join(problem_names(), ", ")))")
    return Int(id)
end

"""
    problem_sample(name, n; seed=0) -> Matrix{Float32}

`n` points of a problem as a 2 x n matrix (one point per column). Point i
depends only on (seed, i).
"""
function problem_sample(name, n::Integer; seed::Integer=0)
    id = problem_id(name)
    n = Int(_count(n))
    x = Matrix{Float32}(undef, 2, n)
    _check(ccall((:rad_problem_sample, librad), Cint,
                 (Cint, UInt64, Csize_t, Ptr{Float32}),
                 id, _seed(seed), n, _nz(x)), "rad_problem_sample")
    return x
end

"The best mean log-likelihood any model can reach on a problem, in nats."
true_log_likelihood(name) = ccall((:rad_problem_true_log_likelihood, librad),
                                  Cdouble, (Cint,), problem_id(name))

# ---- Flows ------------------------------------------------------------------

"""
    Flow(kind, dim; layers=6, hidden=8, gate_hidden=8, seed=0, logit_bound=nothing)

A new flow of `layers` coupling layers with alternating masks. `kind` is
`:rad` (RAD layers) or `:realnvp` (affine coupling layers; `:affine` is a
synonym). `gate_hidden` is ignored for `:realnvp`. `logit_bound` is the
soft clamp of the fold's boundary logits (`nothing`: library default 3; 0
or `Inf`: unclamped).

A Flow owns a `rad_flow` handle, freed by `close(flow)` or by the
finalizer, exactly once. Threads: read-only calls (`log_prob`, `score`,
`grad`, `grad_weighted`, `forward`, `forward_layers`, `inverse`, `sample`,
`gate_probs`, `sample_component`, `copy`, `save`, `to_bytes`, getters) may
run on one Flow from several threads at once; `fit!` and the `set_*!`
functions need exclusive access; `close` must not race with anything.

Batches are d x n matrices (one point per column): the same memory as
librad's n x d row-major batch.
"""
mutable struct Flow
    ptr::Ptr{Cvoid}
    function Flow(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(ArgumentError("NULL rad_flow handle"))
        f = new(ptr)
        finalizer(_free!, f)
        return f
    end
end

function _free!(f::Flow)
    p = f.ptr
    if p != C_NULL
        f.ptr = C_NULL
        ccall((:rad_flow_free, librad), Cvoid, (Ptr{Cvoid},), p)
    end
    return nothing
end

"Free the flow's handle now (idempotent); the Flow is unusable after."
Base.close(f::Flow) = _free!(f)

# ccall(..., (Ptr{Cvoid},), flow) passes the handle and keeps `flow` alive
# (so not finalized) during the call.
function Base.unsafe_convert(::Type{Ptr{Cvoid}}, f::Flow)
    f.ptr == C_NULL && throw(ArgumentError("this Flow is closed"))
    return f.ptr
end

function Flow(kind::Union{Symbol,AbstractString}, dim::Integer; layers::Integer=6,
              hidden::Integer=8, gate_hidden::Integer=8, seed::Integer=0,
              logit_bound=nothing)
    k = Symbol(lowercase(string(kind)))
    if k === :rad
        lk = RAD_LAYER_RAD
    elseif k === :realnvp || k === :affine
        lk = RAD_LAYER_AFFINE
    else
        throw(ArgumentError("kind must be :rad or :realnvp, got $(repr(kind))"))
    end
    out = Ref{Ptr{Cvoid}}(C_NULL)
    _check(ccall((:rad_flow_create, librad), Cint,
                 (Cint, Csize_t, Csize_t, Csize_t, Csize_t, UInt64, Ref{Ptr{Cvoid}}),
                 lk, _count(dim, "dim"), _count(layers, "layers"),
                 _count(hidden, "hidden"), _count(gate_hidden, "gate_hidden"),
                 _seed(seed), out), "rad_flow_create")
    f = Flow(out[])
    if logit_bound !== nothing
        try
            set_logit_bound!(f, logit_bound)
        catch
            close(f)
            rethrow()
        end
    end
    return f
end

"""
    load_flow(path) -> Flow

Load a flow file (`rad_flow_load`). Foreign, newer, truncated or corrupt
files raise `RadError` (`RAD_EFORMAT`, `RAD_EVERSION`, `RAD_ETRUNCATED`,
`RAD_ECORRUPT`); an unreadable one `RAD_EIO`.
"""
function load_flow(path::AbstractString)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    _check(ccall((:rad_flow_load, librad), Cint, (Cstring, Ref{Ptr{Cvoid}}),
                 path, out), "rad_flow_load", path)
    return Flow(out[])
end

"A flow from the bytes of a flow file (`rad_flow_load_from_buffer`)."
function flow_from_bytes(data::AbstractVector{UInt8})
    buf = data isa Vector{UInt8} ? data : Vector{UInt8}(data)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    _check(ccall((:rad_flow_load_from_buffer, librad), Cint,
                 (Ptr{UInt8}, Csize_t, Ref{Ptr{Cvoid}}),
                 isempty(buf) ? UInt8[0] : buf, length(buf), out),
           "rad_flow_load_from_buffer")
    return Flow(out[])
end

"Write the flow file atomically (temporary file, fsync, rename)."
function save(f::Flow, path::AbstractString)
    _check(ccall((:rad_flow_save, librad), Cint, (Ptr{Cvoid}, Cstring), f, path),
           "rad_flow_save", path)
    return path
end

"The flow file's content as a Vector{UInt8}."
function to_bytes(f::Flow)
    return _to_bytes("rad_flow_save_to_buffer") do buf, cap, sz
        ccall((:rad_flow_save_to_buffer, librad), Cint,
              (Ptr{Cvoid}, Ptr{Cvoid}, Csize_t, Ref{Csize_t}), f, buf, cap, sz)
    end
end

"A deep copy (an independent handle)."
function Base.copy(f::Flow)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    _check(ccall((:rad_flow_copy, librad), Cint, (Ptr{Cvoid}, Ref{Ptr{Cvoid}}),
                 f, out), "rad_flow_copy")
    return Flow(out[])
end

function Base.show(io::IO, f::Flow)
    if f.ptr == C_NULL
        print(io, "Rad.Flow(closed)")
    else
        print(io, "Rad.Flow(dim=", dim(f), ", layers=", num_layers(f),
              ", params=", num_params(f), ", labels=", num_labels(f), ")")
    end
end

"Data dimension d."
dim(f::Flow) = Int(ccall((:rad_flow_dim, librad), Csize_t, (Ptr{Cvoid},), f))
"Number of trainable parameters."
num_params(f::Flow) = Int(ccall((:rad_flow_num_params, librad), Csize_t, (Ptr{Cvoid},), f))
"Discrete latents per point (0 for a REAL NVP flow)."
num_labels(f::Flow) = Int(ccall((:rad_flow_num_labels, librad), Csize_t, (Ptr{Cvoid},), f))
"Number of coupling layers."
num_layers(f::Flow) = Int(ccall((:rad_flow_num_layers, librad), Csize_t, (Ptr{Cvoid},), f))

"All trainable parameters as a Vector{Float32} (a copy)."
function params(f::Flow)
    p = Vector{Float32}(undef, num_params(f))
    _check(ccall((:rad_flow_get_params, librad), Cint,
                 (Ptr{Cvoid}, Ptr{Float32}, Csize_t), f, _nz(p), length(p)),
           "rad_flow_get_params")
    return p
end

"Set all trainable parameters (a vector of `num_params(f)` values)."
function set_params!(f::Flow, p::AbstractVector{<:Real})
    P = _vector(p, num_params(f), "rad_flow_set_params", "params")
    _check(ccall((:rad_flow_set_params, librad), Cint,
                 (Ptr{Cvoid}, Ptr{Float32}, Csize_t), f, _nz(P), length(P)),
           "rad_flow_set_params")
    return f
end

"""
    standardization(f) -> (shift, scale) or nothing

The fixed affine layer z = (x - shift) ./ scale under the flow, or
`nothing` if the flow has none.
"""
function standardization(f::Flow)
    ccall((:rad_flow_has_standardization, librad), Cint, (Ptr{Cvoid},), f) == 0 &&
        return nothing
    d = dim(f)
    shift = Vector{Float32}(undef, d)
    scale = Vector{Float32}(undef, d)
    _check(ccall((:rad_flow_get_standardization, librad), Cint,
                 (Ptr{Cvoid}, Ptr{Float32}, Ptr{Float32}, Csize_t),
                 f, shift, scale, d), "rad_flow_get_standardization")
    return (shift, scale)
end

"""
    set_standardization!(f, shift, scale)
    set_standardization!(f, nothing)

Set (scale > 0, both of length dim) or remove the standardization.
Log-likelihoods stay in x's own units.
"""
function set_standardization!(f::Flow, shift::AbstractVector{<:Real},
                              scale::AbstractVector{<:Real})
    d = dim(f)
    fn = "rad_flow_set_standardization"
    sh = _vector(shift, d, fn, "shift")
    sc = _vector(scale, d, fn, "scale")
    _check(ccall((:rad_flow_set_standardization, librad), Cint,
                 (Ptr{Cvoid}, Ptr{Float32}, Ptr{Float32}, Csize_t), f, sh, sc, d), fn)
    return f
end
function set_standardization!(f::Flow, ::Nothing)
    _check(ccall((:rad_flow_set_standardization, librad), Cint,
                 (Ptr{Cvoid}, Ptr{Float32}, Ptr{Float32}, Csize_t),
                 f, C_NULL, C_NULL, 0), "rad_flow_set_standardization")
    return f
end

"Column names (a Vector{String} of length dim), or `nothing`."
function column_names(f::Flow)
    names = String[]
    for i in 0:dim(f)-1
        p = ccall((:rad_flow_column_name, librad), Ptr{UInt8},
                  (Ptr{Cvoid}, Csize_t), f, i)
        p == C_NULL && return nothing
        push!(names, unsafe_string(p))
    end
    return names
end

"Set the column names (dim strings, at most 4096 bytes each), or remove them (`nothing`)."
function set_column_names!(f::Flow, names::AbstractVector{<:AbstractString})
    strs = String[String(s) for s in names]
    length(strs) == dim(f) || throw(_size_error("rad_flow_set_column_names",
        "column names must be $(dim(f)) strings, got $(length(strs))"))
    any(s -> occursin('\0', s), strs) &&
        throw(ArgumentError("column names cannot contain NUL characters"))
    ptrs = Ptr{UInt8}[pointer(s) for s in strs]   # Julia strings end in NUL
    GC.@preserve strs begin
        _check(ccall((:rad_flow_set_column_names, librad), Cint,
                     (Ptr{Cvoid}, Ptr{Ptr{UInt8}}, Csize_t), f, ptrs, length(ptrs)),
               "rad_flow_set_column_names")
    end
    return f
end
function set_column_names!(f::Flow, ::Nothing)
    _check(ccall((:rad_flow_set_column_names, librad), Cint,
                 (Ptr{Cvoid}, Ptr{Ptr{UInt8}}, Csize_t), f, C_NULL, 0),
           "rad_flow_set_column_names")
    return f
end

"The soft clamp of the fold's boundary logits (0: unclamped)."
function logit_bound(f::Flow)
    v = Ref{Cdouble}(0)
    _check(ccall((:rad_flow_get_option, librad), Cint, (Ptr{Cvoid}, Cint, Ref{Cdouble}),
                 f, _OPTION_LOGIT_BOUND, v), "rad_flow_get_option")
    return v[]
end

"Set the logit bound of every layer (0 or Inf: unclamped)."
function set_logit_bound!(f::Flow, b::Real)
    _check(ccall((:rad_flow_set_option, librad), Cint, (Ptr{Cvoid}, Cint, Cdouble),
                 f, _OPTION_LOGIT_BOUND, Float64(b)), "rad_flow_set_option")
    return f
end

# ---- Evaluation ------------------------------------------------------------

"""
    log_prob(f, x) -> Vector{Float32}

log p of each column of the d x n matrix `x` (one point per column), in nats.
"""
function log_prob(f::Flow, x::AbstractVecOrMat)
    X = _batch(x, dim(f), "rad_flow_log_prob")
    n = size(X, 2)
    lp = Vector{Float32}(undef, n)
    _check(ccall((:rad_flow_log_prob, librad), Cint,
                 (Ptr{Cvoid}, Csize_t, Ptr{Float32}, Ptr{Float32}),
                 f, n, _nz(X), _nz(lp)), "rad_flow_log_prob")
    return lp
end

"""
    score(f, x; return_log_prob=false)

The score d log p / dx of each column of the d x n matrix `x`, a d x n
matrix; with `return_log_prob=true`, `(score, log_prob)`.
"""
function score(f::Flow, x::AbstractVecOrMat; return_log_prob::Bool=false)
    X = _batch(x, dim(f), "rad_flow_score")
    n = size(X, 2)
    s = similar(X)
    lp = Vector{Float32}(undef, n)
    _check(ccall((:rad_flow_score, librad), Cint,
                 (Ptr{Cvoid}, Csize_t, Ptr{Float32}, Ptr{Float32}, Ptr{Float32}),
                 f, n, _nz(X), _nz(s), _nz(lp)), "rad_flow_score")
    return return_log_prob ? (s, lp) : s
end

"""
    grad(f, x) -> (grad::Vector{Float32}, mean::Float64)

Gradient of the MEAN log-likelihood of the columns of `x` (d x n, n >= 1)
with respect to `params(f)`, and that mean.
"""
function grad(f::Flow, x::AbstractVecOrMat)
    X = _batch(x, dim(f), "rad_flow_grad")
    g = Vector{Float32}(undef, num_params(f))
    mean = Ref{Cdouble}(0)
    _check(ccall((:rad_flow_grad, librad), Cint,
                 (Ptr{Cvoid}, Csize_t, Ptr{Float32}, Ptr{Float32}, Ref{Cdouble}),
                 f, size(X, 2), _nz(X), _nz(g), mean), "rad_flow_grad")
    return g, mean[]
end

"""
    grad_weighted(f, x, w) -> (grad, weighted_mean)

Gradient of sum_i w_i log p(x_i) / sum_i w_i; `w` has one finite weight
>= 0 per column of `x`, with a positive sum.
"""
function grad_weighted(f::Flow, x::AbstractVecOrMat, w::AbstractVector{<:Real})
    fn = "rad_flow_grad_weighted"
    X = _batch(x, dim(f), fn)
    W = _vector(w, size(X, 2), fn, "weights")
    g = Vector{Float32}(undef, num_params(f))
    mean = Ref{Cdouble}(0)
    _check(ccall((:rad_flow_grad_weighted, librad), Cint,
                 (Ptr{Cvoid}, Csize_t, Ptr{Float32}, Ptr{Float32}, Ptr{Float32},
                  Ref{Cdouble}),
                 f, size(X, 2), _nz(X), _nz(W), _nz(g), mean), fn)
    return g, mean[]
end

"""
    forward(f, x) -> (z, labels, log_prob)

Inference: z is d x n, labels a num_labels x n Matrix{Int32} in {1,2,3}
(column j holds point j's labels: forward layer order, then unit order),
log_prob a length-n vector.
"""
function forward(f::Flow, x::AbstractVecOrMat)
    X = _batch(x, dim(f), "rad_flow_forward")
    n = size(X, 2)
    z = similar(X)
    k = Matrix{Int32}(undef, num_labels(f), n)
    lp = Vector{Float32}(undef, n)
    _check(ccall((:rad_flow_forward, librad), Cint,
                 (Ptr{Cvoid}, Csize_t, Ptr{Float32}, Ptr{Float32}, Ptr{Int32},
                  Ptr{Float32}),
                 f, n, _nz(X), _nz(z), _nz(k), _nz(lp)), "rad_flow_forward")
    return z, k, lp
end

"""
    forward_layers(f, x) -> (zs, labels)

Every layer's output: zs is d x n x num_layers (`zs[:, :, end]` is z);
labels as in `forward`.
"""
function forward_layers(f::Flow, x::AbstractVecOrMat)
    X = _batch(x, dim(f), "rad_flow_forward_layers")
    n = size(X, 2)
    zs = Array{Float32,3}(undef, dim(f), n, num_layers(f))
    k = Matrix{Int32}(undef, num_labels(f), n)
    _check(ccall((:rad_flow_forward_layers, librad), Cint,
                 (Ptr{Cvoid}, Csize_t, Ptr{Float32}, Ptr{Float32}, Ptr{Int32}),
                 f, n, _nz(X), _nz(zs), _nz(k)), "rad_flow_forward_layers")
    return zs, k
end

"""
    inverse(f, z, labels=nothing) -> x

The exact inverse of `forward`: `z` is d x n, `labels` num_labels x n
(`nothing` only for a flow without labels). A label that cannot have
produced z raises RadError(RAD_ELABEL).
"""
function inverse(f::Flow, z::AbstractVecOrMat, labels=nothing)
    fn = "rad_flow_inverse"
    Z = _batch(z, dim(f), fn, "z")
    n, nl = size(Z, 2), num_labels(f)
    if labels === nothing
        nl == 0 || throw(_size_error(fn, "labels ($nl x $n) are required"))
        K = _DUMMY_I32
    else
        K = _labels(labels, (nl, n), fn)
    end
    x = similar(Z)
    _check(ccall((:rad_flow_inverse, librad), Cint,
                 (Ptr{Cvoid}, Csize_t, Ptr{Float32}, Ptr{Int32}, Ptr{Float32}),
                 f, n, _nz(Z), nl == 0 ? C_NULL : _nz(K), _nz(x)), fn)
    return x
end

"""
    sample(f, n; seed=0, return_z=false, return_labels=false)

`n` exact samples as a d x n matrix; sample i depends only on (seed, i).
With `return_z` / `return_labels`, a tuple `(x[, z][, labels])` (z d x n,
labels num_labels x n). The name clashes with `StatsBase.sample`: write
`Rad.sample` if both are loaded.
"""
function sample(f::Flow, n::Integer; seed::Integer=0, return_z::Bool=false,
                return_labels::Bool=false)
    n = Int(_count(n))
    d = dim(f)
    x = Matrix{Float32}(undef, d, n)
    z = Matrix{Float32}(undef, d, return_z ? n : 0)
    k = Matrix{Int32}(undef, num_labels(f), return_labels ? n : 0)
    _check(ccall((:rad_flow_sample, librad), Cint,
                 (Ptr{Cvoid}, UInt64, Csize_t, Ptr{Float32}, Ptr{Float32}, Ptr{Int32}),
                 f, _seed(seed), n, _nz(x),
                 return_z ? _nz(z) : C_NULL,
                 return_labels ? _nz(k) : C_NULL), "rad_flow_sample")
    (return_z || return_labels) || return x
    out = (x,)
    return_z && (out = (out..., z))
    return_labels && (out = (out..., k))
    return out
end

"""
    gate_probs(f, x) -> Array{Float32,3}

The gating distribution of every label, 3 x num_labels x n:
`p[c, j, i]` = p(label j of point i = c | z).
"""
function gate_probs(f::Flow, x::AbstractVecOrMat)
    X = _batch(x, dim(f), "rad_flow_gate_probs")
    n = size(X, 2)
    p = Array{Float32,3}(undef, 3, num_labels(f), n)
    _check(ccall((:rad_flow_gate_probs, librad), Cint,
                 (Ptr{Cvoid}, Csize_t, Ptr{Float32}, Ptr{Float32}),
                 f, n, _nz(X), _nz(p)), "rad_flow_gate_probs")
    return p
end

"""
    sample_component(f, labels, n; seed=0, max_attempts=10000,
                     return_z=false, return_acceptance=false)

`n` exact samples (d x n) of the mixture component with every label fixed
to `labels` (num_labels integers in {1,2,3}), by rejection.
RadError(RAD_EREJECTED) if a sample needs more than `max_attempts`
attempts. With the flags, a tuple `(x[, z][, acceptance])`.
"""
function sample_component(f::Flow, labels::AbstractVector{<:Integer}, n::Integer;
                          seed::Integer=0, max_attempts::Integer=10000,
                          return_z::Bool=false, return_acceptance::Bool=false)
    fn = "rad_flow_sample_component"
    n = Int(_count(n))
    d, nl = dim(f), num_labels(f)
    K = _labels(labels, (nl,), fn)
    x = Matrix{Float32}(undef, d, n)
    z = Matrix{Float32}(undef, d, return_z ? n : 0)
    acc = Ref{Cdouble}(NaN)
    _check(ccall((:rad_flow_sample_component, librad), Cint,
                 (Ptr{Cvoid}, UInt64, Ptr{Int32}, Csize_t, Csize_t, Ptr{Float32},
                  Ptr{Float32}, Ref{Cdouble}),
                 f, _seed(seed), _nz(K), n, _count(max_attempts, "max_attempts"),
                 _nz(x), return_z ? _nz(z) : C_NULL, acc), fn)
    (return_z || return_acceptance) || return x
    out = (x,)
    return_z && (out = (out..., z))
    return_acceptance && (out = (out..., acc[]))
    return out
end

# ---- Adam --------------------------------------------------------------------

"""
    Adam(num_params_or_flow; lr=nothing, beta1=nothing, beta2=nothing, epsilon=nothing)

Adam state for gradient ascent (moments, step count, hyperparameters),
kept apart from the flow so that a fit can stop and resume:
`fit!(flow, x; optimizer=opt)`. Options left `nothing` keep the library
defaults (1e-3, 0.9, 0.999, 1e-8). Freed by `close` or the finalizer. Use
from one thread at a time.
"""
mutable struct Adam
    ptr::Ptr{Cvoid}
    function Adam(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(ArgumentError("NULL rad_adam handle"))
        a = new(ptr)
        finalizer(_free!, a)
        return a
    end
end

function _free!(a::Adam)
    p = a.ptr
    if p != C_NULL
        a.ptr = C_NULL
        ccall((:rad_adam_free, librad), Cvoid, (Ptr{Cvoid},), p)
    end
    return nothing
end

Base.close(a::Adam) = _free!(a)

function Base.unsafe_convert(::Type{Ptr{Cvoid}}, a::Adam)
    a.ptr == C_NULL && throw(ArgumentError("this Adam is closed"))
    return a.ptr
end

function Adam(n::Integer; lr=nothing, beta1=nothing, beta2=nothing, epsilon=nothing)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    _check(ccall((:rad_adam_create, librad), Cint, (Csize_t, Ref{Ptr{Cvoid}}),
                 _count(n, "num_params"), out), "rad_adam_create")
    a = Adam(out[])
    for (name, v) in ((:lr, lr), (:beta1, beta1), (:beta2, beta2), (:epsilon, epsilon))
        v === nothing || set_option!(a, name, v)
    end
    return a
end
Adam(f::Flow; kw...) = Adam(num_params(f); kw...)

"Load an optimizer file (`rad_adam_load`)."
function load_adam(path::AbstractString)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    _check(ccall((:rad_adam_load, librad), Cint, (Cstring, Ref{Ptr{Cvoid}}),
                 path, out), "rad_adam_load", path)
    return Adam(out[])
end

"An optimizer from the bytes of an optimizer file."
function adam_from_bytes(data::AbstractVector{UInt8})
    buf = data isa Vector{UInt8} ? data : Vector{UInt8}(data)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    _check(ccall((:rad_adam_load_from_buffer, librad), Cint,
                 (Ptr{UInt8}, Csize_t, Ref{Ptr{Cvoid}}),
                 isempty(buf) ? UInt8[0] : buf, length(buf), out),
           "rad_adam_load_from_buffer")
    return Adam(out[])
end

function save(a::Adam, path::AbstractString)
    _check(ccall((:rad_adam_save, librad), Cint, (Ptr{Cvoid}, Cstring), a, path),
           "rad_adam_save", path)
    return path
end

function to_bytes(a::Adam)
    return _to_bytes("rad_adam_save_to_buffer") do buf, cap, sz
        ccall((:rad_adam_save_to_buffer, librad), Cint,
              (Ptr{Cvoid}, Ptr{Cvoid}, Csize_t, Ref{Csize_t}), a, buf, cap, sz)
    end
end
Base.copy(a::Adam) = adam_from_bytes(to_bytes(a))

num_params(a::Adam) = Int(ccall((:rad_adam_num_params, librad), Csize_t, (Ptr{Cvoid},), a))
"Steps taken so far."
steps(a::Adam) = Int(ccall((:rad_adam_steps, librad), UInt64, (Ptr{Cvoid},), a))

function Base.show(io::IO, a::Adam)
    if a.ptr == C_NULL
        print(io, "Rad.Adam(closed)")
    else
        print(io, "Rad.Adam(params=", num_params(a), ", steps=", steps(a),
              ", lr=", get_option(a, :lr), ")")
    end
end

function _adam_key(name::Symbol)
    haskey(_ADAM_OPTIONS, name) || throw(ArgumentError(
        "unknown Adam option :$name (known: :lr, :beta1, :beta2, :epsilon)"))
    return _ADAM_OPTIONS[name]
end

"Set `:lr`, `:beta1`, `:beta2` or `:epsilon`."
function set_option!(a::Adam, name::Symbol, value::Real)
    _check(ccall((:rad_adam_set_option, librad), Cint, (Ptr{Cvoid}, Cint, Cdouble),
                 a, _adam_key(name), Float64(value)), "rad_adam_set_option",
           "$name = $value")
    return a
end

function get_option(a::Adam, name::Symbol)
    v = Ref{Cdouble}(0)
    _check(ccall((:rad_adam_get_option, librad), Cint, (Ptr{Cvoid}, Cint, Ref{Cdouble}),
                 a, _adam_key(name), v), "rad_adam_get_option")
    return v[]
end

"Zero the moments and the step count (options are kept)."
reset!(a::Adam) = (ccall((:rad_adam_reset, librad), Cvoid, (Ptr{Cvoid},), a); a)

"`(m, v, t)`: first and second moments and the step count."
function get_state(a::Adam)
    n = num_params(a)
    m = Vector{Float32}(undef, n)
    v = Vector{Float32}(undef, n)
    t = Ref{UInt64}(0)
    _check(ccall((:rad_adam_get_state, librad), Cint,
                 (Ptr{Cvoid}, Ptr{Float32}, Ptr{Float32}, Ref{UInt64}, Csize_t),
                 a, m, v, t, n), "rad_adam_get_state")
    return m, v, Int(t[])
end

function set_state!(a::Adam, m::AbstractVector{<:Real}, v::AbstractVector{<:Real},
                    t::Integer)
    n = num_params(a)
    fn = "rad_adam_set_state"
    M = _vector(m, n, fn, "m")
    V = _vector(v, n, fn, "v")
    _check(ccall((:rad_adam_set_state, librad), Cint,
                 (Ptr{Cvoid}, Ptr{Float32}, Ptr{Float32}, UInt64, Csize_t),
                 a, M, V, UInt64(t), n), fn)
    return a
end

"""
    step!(opt, params::Vector{Float32}, grad) -> params

One ascent step, updating `params` in place (then `set_params!(flow, params)`).
"""
function step!(a::Adam, p::Vector{Float32}, g::AbstractVector{<:Real})
    n = num_params(a)
    fn = "rad_adam_step"
    length(p) == n || throw(_size_error(fn, "params must have $n elements"))
    G = _vector(g, n, fn, "grad")
    _check(ccall((:rad_adam_step, librad), Cint,
                 (Ptr{Cvoid}, Ptr{Float32}, Ptr{Float32}, Csize_t), a, p, G, n), fn)
    return p
end

# ---- Fits ------------------------------------------------------------------

mutable struct _FitState
    callback::Any
    error::Any   # nothing, or (exception, backtrace) raised by the callback
end

# The C callback: `user` points to the _FitState (kept alive by the caller).
# Exceptions must not unwind through librad's C frames: they are caught
# here, stop the fit, and are rethrown by fit! once rad_flow_fit returns.
function _fit_trampoline(user::Ptr{Cvoid}, step::UInt64, train_ll::Cdouble,
                         heldout_ll::Cdouble)::Cint
    st = unsafe_pointer_to_objref(user)::_FitState
    try
        stop = st.callback(Int(step), Float64(train_ll), Float64(heldout_ll))
        return stop === true ? Cint(1) : Cint(0)
    catch e
        st.error = (e, catch_backtrace())
        return Cint(1)
    end
end

"""
    fit!(f, x; steps=nothing, batch=nothing, lr=nothing, lr_schedule=:constant,
         seed=0, heldout=nothing, eval_every=nothing, report_every=nothing,
         keep_best=false, callback=nothing, optimizer=nothing,
         lr_final_fraction=nothing, lr_horizon=nothing, threads=nothing,
         clip_norm=nothing) -> steps_done

Maximize the mean log-likelihood of the columns of `x` (d x n) by
minibatch Adam (`rad_flow_fit`). `nothing` keeps the library defaults
(steps 1000, batch 500, eval_every 1000, report_every 100; lr: the
optimizer's own rate if one is given, else 1e-3). `lr_schedule` is
`:constant` or `:cosine` (over this call's steps, or over `lr_horizon`
optimizer steps counted from the optimizer's step count, so a resumed fit
continues the same decay). `threads`: the batch split across threads
(`RAD_OPTION_THREADS`); `clip_norm`: gradient norm clipping (0: none).
`seed`: minibatch order, an integer < 2^53.
`heldout`: a d x m matrix evaluated every `eval_every` steps and at the end.

`callback(step, train_ll, heldout_ll)` is called every `report_every` steps
and at the end; returning `true` stops the fit. An exception thrown by the
callback stops the fit and is rethrown after `rad_flow_fit` returns.
`optimizer`: an `Adam` continued by this fit (resume a stopped fit with the
same data and seed to take the same steps as an uninterrupted one).
"""
function fit!(f::Flow, x::AbstractVecOrMat; steps=nothing, batch=nothing, lr=nothing,
              lr_schedule::Symbol=:constant, seed::Integer=0, heldout=nothing,
              eval_every=nothing, report_every=nothing, keep_best::Bool=false,
              callback=nothing, optimizer::Union{Nothing,Adam}=nothing,
              lr_final_fraction=nothing, lr_horizon=nothing, threads=nothing,
              clip_norm=nothing)
    fn = "rad_flow_fit"
    d = dim(f)
    X = _batch(x, d, fn)
    H = heldout === nothing ? Matrix{Float32}(undef, d, 0) : _batch(heldout, d, fn, "heldout")
    lr_schedule in (:constant, :cosine) ||
        throw(ArgumentError("lr_schedule must be :constant or :cosine"))
    if lr === nothing && optimizer !== nothing
        lr = get_option(optimizer, :lr)  # rad_flow_fit takes the rate from its options
    end
    settings = ((_OPTION_STEPS, steps, "steps"), (_OPTION_BATCH_SIZE, batch, "batch"),
                (_OPTION_LEARNING_RATE, lr, "lr"), (_OPTION_SEED, seed, "seed"),
                (_OPTION_EVAL_EVERY, eval_every, "eval_every"),
                (_OPTION_REPORT_EVERY, report_every, "report_every"),
                (_OPTION_KEEP_BEST, keep_best ? 1 : 0, "keep_best"),
                (_OPTION_LR_SCHEDULE, lr_schedule === :cosine ? 1 : 0, "lr_schedule"),
                (_OPTION_LR_FINAL_FRACTION, lr_final_fraction, "lr_final_fraction"),
                (_OPTION_LR_HORIZON, lr_horizon, "lr_horizon"),
                (_OPTION_THREADS, threads, "threads"),
                (_OPTION_CLIP_NORM, clip_norm, "clip_norm"))
    opts = Ref{Ptr{Cvoid}}(C_NULL)
    _check(ccall((:rad_fit_options_create, librad), Cint, (Ref{Ptr{Cvoid}},), opts),
           "rad_fit_options_create")
    state = _FitState(callback, nothing)
    done = Ref{UInt64}(0)
    rc = Cint(0)
    try
        for (key, value, name) in settings
            value === nothing && continue
            _check(ccall((:rad_fit_options_set, librad), Cint, (Ptr{Cvoid}, Cint, Cdouble),
                         opts[], key, Float64(value)), "rad_fit_options_set",
                   "$name = $value")
        end
        cb = callback === nothing ? C_NULL :
             @cfunction(_fit_trampoline, Cint, (Ptr{Cvoid}, UInt64, Cdouble, Cdouble))
        GC.@preserve state begin
            user = callback === nothing ? C_NULL : pointer_from_objref(state)
            rc = ccall((:rad_flow_fit, librad), Cint,
                       (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Csize_t, Ptr{Float32},
                        Csize_t, Ptr{Float32}, Ptr{Cvoid}, Ptr{Cvoid}, Ref{UInt64}),
                       f, optimizer === nothing ? C_NULL : optimizer, opts[],
                       size(X, 2), _nz(X), size(H, 2),
                       size(H, 2) == 0 ? C_NULL : H, cb, user, done)
        end
    finally
        ccall((:rad_fit_options_free, librad), Cvoid, (Ptr{Cvoid},), opts[])
    end
    if state.error !== nothing
        e, bt = state.error
        throw(e)   # the callback's exception (its backtrace: state.error[2])
    end
    _check(rc, fn)
    return Int(done[])
end

end # module Rad
