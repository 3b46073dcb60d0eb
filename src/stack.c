/* Chunked batch drivers over a stack of coupling layers, and workspaces.
   Inside a chunk every activation is feature-major (one row of m floats
   per feature), so dense layers are single sgemm calls and elementwise
   loops run over contiguous memory. */
#include <math.h>
#include <stdlib.h>

#include "stack.h"

/* Samples per chunk at most: larger chunks only push the activations
   out of cache (measured: 512-row chunks give 1.2-1.5x the log_prob rate
   of 4096-row ones), while every per-chunk cost is small by 512. */
#define RAD_DEFAULT_CHUNK RAD__CHUNK_MAX
static const double LOG_2PI = 1.8378770664093454836;

/* Chunks are padded with zero columns to a multiple of RAD__PAD, so every
   real column is computed by the same code whatever the chunk's width:
   OpenBLAS's kernels for the edge columns of a matrix, and the scalar
   tails of the vector loops, round differently from the main ones, and a
   sample must not get other bits because it sat at the end of a chunk. */
static size_t padded(size_t m) { return (m + RAD__PAD - 1) / RAD__PAD * RAD__PAD; }

typedef struct plan {
  float **Z;             /* n_layers + 1 (GRAD) or 1 buffers of dim x m */
  rad__lcache *cache;    /* n_layers (GRAD) or 1 */
  double *ld;            /* m */
  float *w;              /* m (GRAD) */
  rad__bscratch bs;
  float *gpc;            /* chunk parameter gradient (n_params) */
  double *gpa;           /* accumulated parameter gradient (n_params) */
  float *gZ;             /* dim x m */
} plan;

static void max_shapes(const rad__stack *S, size_t *out, size_t *hid,
                       size_t *d2, size_t *cacheb, size_t m) {
  *out = *hid = *d2 = *cacheb = 0;
  for (size_t l = 0; l < S->n_layers; l++) {
    const rad__layer *L = &S->layers[l];
    *out = RAD_MAX(*out, L->cond.out);
    *hid = RAD_MAX(*hid, RAD_MAX(L->cond.hidden, L->gate.hidden));
    *d2 = RAD_MAX(*d2, L->d2);
    rad__arena a = {NULL, SIZE_MAX, 0, 0};
    rad__lcache c;
    rad__layer_cache_take(L, m, &a, &c, 1);
    *cacheb = a.failed ? SIZE_MAX : RAD_MAX(*cacheb, a.used);
  }
}

/* Carves the scratch of `mode` for chunks of m from `a` (which may be a
   measuring arena). The Z pointer table and caches come from the arena
   too, so a plan needs nothing else. */
static void plan_take(const rad__stack *S, int mode, size_t m, rad__arena *a,
                      plan *P) {
  memset(P, 0, sizeof(*P));
  const size_t d = S->dim, L = S->n_layers;
  const size_t nz = mode == RAD__MODE_GRAD ? L + 1 : 1;
  const size_t nc = mode == RAD__MODE_GRAD ? L : (L ? 1 : 0);
  size_t dm;
  if (!rad__mul_size(d, m, &dm)) {
    a->failed = 1;
    return;
  }
  P->Z = rad__arena_take(a, nz, sizeof(float *));
  P->cache = rad__arena_take(a, nc ? nc : 1, sizeof(rad__lcache));
  for (size_t i = 0; i < nz; i++) {
    float *z = rad__arena_take(a, dm, sizeof(float));
    if (P->Z) P->Z[i] = z;
  }
  if (mode == RAD__MODE_GRAD) {
    for (size_t l = 0; l < L; l++) {
      rad__lcache c;
      rad__layer_cache_take(&S->layers[l], m, a, &c, 1);
      if (P->cache) P->cache[l] = c;
    }
  } else if (nc) {
    /* one cache, big enough for every layer: carve the largest */
    size_t best = 0, bestb = 0;
    for (size_t l = 0; l < L; l++) {
      rad__arena t = {NULL, SIZE_MAX, 0, 0};
      rad__lcache c;
      rad__layer_cache_take(&S->layers[l], m, &t, &c, 0);
      if (t.failed) {
        a->failed = 1;
        return;
      }
      if (t.used > bestb) {
        bestb = t.used;
        best = l;
      }
    }
    /* carve a raw block of that size; each layer re-carves it */
    unsigned char *blk = rad__arena_take(a, bestb ? bestb : 1, 1);
    if (P->cache) {
      P->cache[0].X1 = (float *)(void *)blk; /* marks the block; see cache_for */
    }
    (void)best;
  }
  P->ld = rad__arena_take(a, m, sizeof(double));
  if (mode == RAD__MODE_GRAD) {
    size_t mo, mh, md2, cb;
    max_shapes(S, &mo, &mh, &md2, &cb, m);
    size_t t;
    P->w = rad__arena_take(a, m, sizeof(float));
    P->gZ = rad__arena_take(a, dm, sizeof(float));
    P->bs.gO = rad__arena_take(a, rad__mul_size(mo, m, &t) ? t : SIZE_MAX, sizeof(float));
    P->bs.gH = rad__arena_take(a, rad__mul_size(mh, m, &t) ? t : SIZE_MAX, sizeof(float));
    P->bs.gGL = rad__arena_take(a, rad__mul_size(3 * md2, m, &t) ? t : SIZE_MAX, sizeof(float));
    P->bs.gZh = rad__arena_take(a, rad__mul_size(md2, m, &t) ? t : SIZE_MAX, sizeof(float));
    P->bs.gX = rad__arena_take(a, dm, sizeof(float));
    P->bs.gc = rad__arena_take(a, 2 * md2 + 1, sizeof(double));
    P->gpc = rad__arena_take(a, S->n_params + 1, sizeof(float));
    P->gpa = rad__arena_take(a, S->n_params + 1, sizeof(double));
  }
}

/* In FWD/INV mode one raw block serves each layer in turn. */
static rad__lcache *cache_for(const rad__stack *S, plan *P, int mode, size_t l,
                              size_t m, rad__lcache *tmp) {
  if (mode == RAD__MODE_GRAD) return &P->cache[l];
  rad__arena a = {(unsigned char *)(void *)P->cache[0].X1, SIZE_MAX, 0, 0};
  rad__layer_cache_take(&S->layers[l], m, &a, tmp, 0);
  return tmp;
}

size_t rad__stack_scratch_bytes(const rad__stack *S, int mode, size_t m) {
  rad__arena a = {NULL, SIZE_MAX, 0, 0};
  plan P;
  plan_take(S, mode, m, &a, &P);
  return a.failed ? SIZE_MAX : a.used;
}

/* Scratch for a call: the workspace's block (with the largest chunk size
   that fits) or a fresh allocation. */
typedef struct scratch {
  unsigned char *owned;
  rad__arena arena;
  size_t m;
} scratch;

static int scratch_get(const rad__stack *S, rad_workspace *ws, int mode,
                       size_t n, scratch *sc) {
  memset(sc, 0, sizeof(*sc));
  if (ws) {
    size_t m = padded(RAD_MIN(ws->max_batch, (size_t)RAD__CHUNK_MAX));
    while (m > 0 && rad__stack_scratch_bytes(S, mode, m) > ws->cap) m = m / 2 / RAD__PAD * RAD__PAD;
    if (m == 0) return RAD_EMISMATCH;
    sc->m = m;
    sc->arena.base = ws->mem;
    sc->arena.cap = ws->cap;
    return RAD_OK;
  }
  size_t m = padded(RAD_MIN(n, (size_t)RAD_DEFAULT_CHUNK));
  if (m == 0) m = RAD__PAD;
  size_t b = rad__stack_scratch_bytes(S, mode, m);
  if (b == SIZE_MAX) return RAD_ETOOBIG;
  sc->owned = malloc(b ? b : 1);
  if (!sc->owned) return RAD_ENOMEM;
  sc->m = m;
  sc->arena.base = sc->owned;
  sc->arena.cap = b;
  return RAD_OK;
}

static void scratch_put(scratch *sc) { free(sc->owned); }



/* x rows 0 .. m-1 (row-major, d columns) -> Z (d x mp, zero padding) */
static void to_fm(const float *x, size_t d, size_t m, size_t mp, float *Z) {
  for (size_t i = 0; i < m; i++)
    for (size_t f = 0; f < d; f++) Z[f * mp + i] = x[i * d + f];
  for (size_t f = 0; f < d; f++)
    for (size_t i = m; i < mp; i++) Z[f * mp + i] = 0.0f;
}
static void from_fm(const float *Z, size_t d, size_t m, size_t mp, float *x) {
  for (size_t i = 0; i < m; i++)
    for (size_t f = 0; f < d; f++) x[i * d + f] = Z[f * mp + i];
}

/* The standardization layer: z = (x - shift) / scale on the way in,
   x = z scale + shift on the way out, and dL/dx = dL/dz / scale. */
static void std_in(const rad__stack *S, float *Z, size_t m) {
  if (!S->std_shift) return;
  for (size_t f = 0; f < S->dim; f++) {
    const float sh = S->std_shift[f], is = 1.0f / S->std_scale[f];
    float *z = Z + f * m;
    for (size_t i = 0; i < m; i++) z[i] = (z[i] - sh) * is;
  }
}
static void std_out(const rad__stack *S, float *Z, size_t m) {
  if (!S->std_shift) return;
  for (size_t f = 0; f < S->dim; f++) {
    const float sh = S->std_shift[f], sc = S->std_scale[f];
    float *z = Z + f * m;
    for (size_t i = 0; i < m; i++) z[i] = z[i] * sc + sh;
  }
}
static void std_grad(const rad__stack *S, float *G, size_t m) {
  if (!S->std_shift) return;
  for (size_t f = 0; f < S->dim; f++) {
    const float is = 1.0f / S->std_scale[f];
    float *g = G + f * m;
    for (size_t i = 0; i < m; i++) g[i] *= is;
  }
}

static double base_logp(const float *Z, size_t d, size_t m, size_t i) {
  double s = 0.0;
  for (size_t f = 0; f < d; f++) {
    double v = Z[f * m + i];
    s += v * v;
  }
  return -0.5 * s - 0.5 * (double)d * LOG_2PI;
}

static int par_forward(const rad__stack *S, rad_workspace *ws, size_t n, const float *x,
                       float *z, int32_t *k, float *lp);

int rad__stack_forward(const rad__stack *S, rad_workspace *ws, size_t n,
                       const float *x, float *z, int32_t *k, float *lp,
                       float *zs_layers, float *gate_probs) {
  const size_t d = S->dim, nl = S->n_labels;
  if (n == 0) return RAD_OK;
  if (!x) return RAD_EINVAL;
  int rc = rad__check_batch(n, d, sizeof(float));
  if (rc == RAD_OK && S->n_layers) rc = rad__check_batch(n, d * S->n_layers, sizeof(float));
  if (rc == RAD_OK) rc = rad__check_batch(n, nl, sizeof(int32_t));
  if (rc == RAD_OK && gate_probs) rc = rad__check_batch(n, 3 * nl, sizeof(float));
  if (rc) return rc;
  if (!rad__all_finite(x, n * d)) return RAD_ENONFINITE;
  if (ws && ws->pool && n >= 2 * ws->threads && !zs_layers && !gate_probs)
    return par_forward(S, ws, n, x, z, k, lp);
  scratch sc;
  if ((rc = scratch_get(S, ws, RAD__MODE_FWD, n, &sc))) return rc;
  plan P;
  int overflow = 0;
  plan_take(S, RAD__MODE_FWD, sc.m, &sc.arena, &P);
  for (size_t row0 = 0; row0 < n; row0 += sc.m) {
    const size_t m = RAD_MIN(sc.m, n - row0), mp = padded(m);
    float *Z = P.Z[0];
    to_fm(x + row0 * d, d, m, mp, Z);
    std_in(S, Z, mp);
    for (size_t i = 0; i < mp; i++) P.ld[i] = S->std_logdet;
    for (size_t l = 0; l < S->n_layers; l++) {
      rad__lcache tmp;
      rad__lcache *c = cache_for(S, &P, RAD__MODE_FWD, l, mp, &tmp);
      rad__layer_forward(&S->layers[l], S->params + S->poff[l], mp, Z, Z, c,
                         P.ld, k ? k + row0 * nl + S->loff[l] : NULL, nl, m);
      if (gate_probs && S->layers[l].kind == RAD_LAYER_RAD)
        rad__layer_gate_probs(&S->layers[l], c, mp, m,
                              gate_probs + (row0 * nl + S->loff[l]) * 3, 3 * nl);
      if (zs_layers) from_fm(Z, d, m, mp, zs_layers + l * n * d + row0 * d);
    }
    if (lp) {
      for (size_t i = 0; i < m; i++) {
        double v = P.ld[i] + (S->with_base ? base_logp(Z, d, mp, i) : 0.0);
        float fv = (float)v;
        lp[row0 + i] = rad__isfinite_f(fv) ? fv : -INFINITY;
      }
    }
    if (z || zs_layers) {
      for (size_t f = 0; f < d; f++)
        if (!rad__all_finite(Z + f * mp, m)) overflow = 1;
      if (z) from_fm(Z, d, m, mp, z + row0 * d);
    }
  }
  scratch_put(&sc);
  return overflow ? RAD_EOVERFLOW : RAD_OK;
}

/* One pass of the inverse over every chunk; writes x and checks overflow
   only when `write` is set. */
static int inverse_pass(const rad__stack *S, scratch *sc, size_t n,
                        const float *z, const int32_t *k, float *x, int write) {
  const size_t d = S->dim, nl = S->n_labels;
  plan P;
  sc->arena.used = 0;
  plan_take(S, RAD__MODE_INV, sc->m, &sc->arena, &P);
  for (size_t row0 = 0; row0 < n; row0 += sc->m) {
    const size_t m = RAD_MIN(sc->m, n - row0), mp = padded(m);
    float *Z = P.Z[0];
    to_fm(z + row0 * d, d, m, mp, Z);
    for (size_t l = S->n_layers; l-- > 0;) {
      rad__lcache tmp;
      rad__lcache *c = cache_for(S, &P, RAD__MODE_INV, l, mp, &tmp);
      int rc = rad__layer_inverse(&S->layers[l], S->params + S->poff[l], mp, m, Z, c,
                                  k ? k + row0 * nl + S->loff[l] : NULL, nl, NULL,
                                  NULL, 0, NULL);
      if (rc) return rc;
    }
    std_out(S, Z, mp);
    for (size_t f = 0; f < d; f++)
      if (!rad__all_finite(Z + f * mp, m)) return RAD_EOVERFLOW;
    if (write) from_fm(Z, d, m, mp, x + row0 * d);
  }
  return RAD_OK;
}

static int par_inverse(const rad__stack *S, rad_workspace *ws, size_t n, const float *z,
                       const int32_t *k, float *x);

/* mode 0: check and write; 1: check only; 2: write only (checked before) */
static int inverse_mode(const rad__stack *S, rad_workspace *ws, size_t n, const float *z,
                        const int32_t *k, float *x, int mode) {
  scratch sc;
  int rc = scratch_get(S, ws, RAD__MODE_INV, n, &sc);
  if (rc) return rc;
  /* A bad label may only show in a late chunk: with several chunks, a
     first pass checks everything so that nothing is written on error. */
  if (mode == 1 || (mode == 0 && n > sc.m)) rc = inverse_pass(S, &sc, n, z, k, x, 0);
  if (rc == RAD_OK && mode != 1) rc = inverse_pass(S, &sc, n, z, k, x, 1);
  scratch_put(&sc);
  return rc;
}

int rad__stack_inverse(const rad__stack *S, rad_workspace *ws, size_t n,
                       const float *z, const int32_t *k, float *x) {
  const size_t d = S->dim, nl = S->n_labels;
  if (n == 0) return RAD_OK;
  if (!z || !x || (nl && !k)) return RAD_EINVAL;
  int rc = rad__check_batch(n, d, sizeof(float));
  if (rc == RAD_OK) rc = rad__check_batch(n, nl, sizeof(int32_t));
  if (rc) return rc;
  if (!rad__all_finite(z, n * d)) return RAD_ENONFINITE;
  if (nl && !rad__labels_valid(k, n * nl)) return RAD_ELABEL;
  if (ws && ws->pool && n >= 2 * ws->threads) return par_inverse(S, ws, n, z, k, x);
  return inverse_mode(S, ws, n, z, k, x, 0);
}

static void draw_normals(uint64_t seed, size_t row0, size_t m, size_t d,
                         float *Z) {
  for (size_t i = 0; i < m; i++) {
    const size_t row = row0 + i;
    for (size_t q = 0; q * 4 < d; q++) {
      uint32_t r[4];
      rad__philox(seed, (uint32_t)row, (uint32_t)((uint64_t)row >> 32), (uint32_t)q,
                  RAD__TAG_NORMAL ^ (uint32_t)((uint64_t)q >> 32), r);
      for (int h = 0; h < 2; h++) {
        double rad = sqrt(-2.0 * log(rad__u01(r[2 * h])));
        double th = 2.0 * RAD_PI * rad__u01(r[2 * h + 1]);
        size_t f0 = 4 * q + 2 * (size_t)h;
        if (f0 < d) Z[f0 * m + i] = (float)(rad * cos(th));
        if (f0 + 1 < d) Z[(f0 + 1) * m + i] = (float)(rad * sin(th));
      }
    }
  }
}

static int par_sample(const rad__stack *S, rad_workspace *ws, uint64_t seed, uint64_t first,
                      size_t n, float *x, float *z, int32_t *k);

int rad__stack_sample(const rad__stack *S, rad_workspace *ws, uint64_t seed,
                      uint64_t first, size_t n, float *x, float *z, int32_t *k) {
  const size_t d = S->dim, nl = S->n_labels;
  if (n == 0) return RAD_OK;
  if (!x) return RAD_EINVAL;
  int rc = rad__check_batch(n, d, sizeof(float));
  if (rc == RAD_OK) rc = rad__check_batch(n, nl, sizeof(int32_t));
  if (rc) return rc;
  if (ws && ws->pool && n >= 2 * ws->threads) return par_sample(S, ws, seed, first, n, x, z, k);
  /* Column c of a chunk holds sample (base + c) with base a multiple of
     RAD__PAD, whatever `first` is: OpenBLAS's AVX2 kernels round a column
     differently depending on where it sits within the block of RAD__PAD
     (src/blas.c), so sample i always sits at column i mod RAD__PAD. The
     samples before `first` in its block are drawn and dropped. */
  const size_t lead = (size_t)(first % RAD__PAD);
  scratch sc;
  if ((rc = scratch_get(S, ws, RAD__MODE_INV, n + lead, &sc))) return rc;
  plan P;
  plan_take(S, RAD__MODE_INV, sc.m, &sc.arena, &P);
  for (size_t row0 = 0, skip = lead; row0 < n && rc == RAD_OK; row0 += sc.m - skip, skip = 0) {
    const size_t m = RAD_MIN(sc.m - skip, n - row0), mp = padded(skip + m);
    const size_t base = (size_t)first + row0 - skip;
    float *Z = P.Z[0];
    /* the padding columns draw too (samples beyond this call's): cheap,
       and it keeps every column on the same code path */
    draw_normals(seed, base, mp, d, Z);
    if (z) from_fm(Z + skip, d, m, mp, z + row0 * d);
    for (size_t l = S->n_layers; l-- > 0;) {
      rad__lcache tmp;
      rad__lcache *c = cache_for(S, &P, RAD__MODE_INV, l, mp, &tmp);
      rad__draw dr = {seed, base, S->loff[l], skip};
      (void)rad__layer_inverse(&S->layers[l], S->params + S->poff[l], mp, skip + m, Z, c, NULL,
                               0, &dr, k ? k + row0 * nl + S->loff[l] : NULL, nl, NULL);
    }
    std_out(S, Z, mp);
    for (size_t f = 0; f < d; f++)
      if (!rad__all_finite(Z + f * mp + skip, m)) rc = RAD_EOVERFLOW;
    from_fm(Z + skip, d, m, mp, x + row0 * d);
  }
  scratch_put(&sc);
  return rc;
}

/* The backward pass over one range of rows with one scratch: ADDS the
   log-density sum into *total and points *gpa_out at the parameter
   gradient, accumulated in double inside the scratch (valid until the
   scratch is used again). */
static int backward_acc(const rad__stack *S, rad_workspace *ws, size_t n, const float *x,
                        const float *gz, const float *w, double wscale, float *gx, int want_gp,
                        double *total_out, double **gpa_out, float *lp, scratch *sc) {
  const size_t d = S->dim, L = S->n_layers, np = S->n_params;
  int rc = scratch_get(S, ws, RAD__MODE_GRAD, n, sc);
  if (rc) return rc;
  plan P;
  double total = 0.0;
  plan_take(S, RAD__MODE_GRAD, sc->m, &sc->arena, &P);
  double *gpa = P.gpa;
  if (want_gp) memset(gpa, 0, np * sizeof(double));
  /* A weighted mean skips rows of weight 0 altogether (their values may
     overflow, and 0 x inf is NaN); other calls take every row. */
  const int compact = w && !gz && !gx && !lp;
  for (size_t src = 0; src < n;) {
    size_t m = 0, end = src, mp;
    if (compact) {
      while (end < n && m < sc->m) m += w[end++] != 0.0f;
      mp = padded(m);
      for (size_t r = src, i = 0; r < end; r++)
        if (w[r] != 0.0f) {
          for (size_t f = 0; f < d; f++) P.Z[0][f * mp + i] = x[r * d + f];
          P.w[i++] = w[r];
        }
      for (size_t f = 0; f < d; f++)
        for (size_t i = m; i < mp; i++) P.Z[0][f * mp + i] = 0.0f;
    } else {
      m = RAD_MIN(sc->m, n - src);
      mp = padded(m);
      end = src + m;
      to_fm(x + src * d, d, m, mp, P.Z[0]);
      for (size_t i = 0; i < m; i++) P.w[i] = w ? w[src + i] : 1.0f;
    }
    for (size_t i = m; i < mp; i++) P.w[i] = 0.0f; /* padding: no weight */
    const size_t row0 = src;
    src = end;
    if (m == 0) continue;
    std_in(S, P.Z[0], mp);
    for (size_t i = 0; i < mp; i++) P.ld[i] = S->std_logdet;
    for (size_t l = 0; l < L; l++)
      rad__layer_forward(&S->layers[l], S->params + S->poff[l], mp, P.Z[l], P.Z[l + 1],
                         &P.cache[l], P.ld, NULL, 0, 0);
    const float *ZL = P.Z[L];
    for (size_t i = 0; i < m; i++) {
      double v = P.ld[i] + (S->with_base ? base_logp(ZL, d, mp, i) : 0.0);
      const float wr = P.w[i];
      if (wr != 0.0f) total += (double)wr * v;
      if (lp) lp[row0 + i] = rad__isfinite_d(v) ? (float)v : -INFINITY;
      P.w[i] = (float)((double)wr * wscale); /* in double: w = 1e-40, 1/sum = 1e40 */
    }
    /* dL/dz_L: the upstream gradient, plus the base density's -w z */
    if (gz)
      to_fm(gz + row0 * d, d, m, mp, P.gZ);
    else
      memset(P.gZ, 0, d * mp * sizeof(float));
    if (S->with_base)
      for (size_t f = 0; f < d; f++)
        for (size_t i = 0; i < mp; i++) P.gZ[f * mp + i] -= P.w[i] * ZL[f * mp + i];
    if (want_gp) memset(P.gpc, 0, np * sizeof(float));
    for (size_t l = L; l-- > 0;)
      rad__layer_backward(&S->layers[l], S->params + S->poff[l], mp, P.Z[l], P.Z[l + 1],
                          &P.cache[l], P.w, P.gZ, want_gp ? P.gpc + S->poff[l] : NULL, &P.bs);
    if (want_gp)
      for (size_t j = 0; j < np; j++) gpa[j] += P.gpc[j];
    if (gx) {
      std_grad(S, P.gZ, mp);
      from_fm(P.gZ, d, m, mp, gx + row0 * d);
    }
  }
  *total_out += total;
  *gpa_out = gpa;
  return RAD_OK;
}

static int par_backward(const rad__stack *S, rad_workspace *ws, size_t n, const float *x,
                        const float *gz, const float *w, double wscale, float *gx, int want_gp,
                        double *total, double **gpa, float *lp, scratch *sc0);

int rad__stack_backward(const rad__stack *S, rad_workspace *ws, size_t n,
                        const float *x, const float *gz, const float *w,
                        double wscale, float *gx, float *gp, double *sum_ld,
                        float *lp) {
  const size_t d = S->dim, np = S->n_params;
  if (n == 0) return RAD_OK;
  if (!x) return RAD_EINVAL;
  int rc = rad__check_batch(n, d, sizeof(float));
  if (rc) return rc;
  if (!rad__all_finite(x, n * d)) return RAD_ENONFINITE;
  if (gz && !rad__all_finite(gz, n * d)) return RAD_ENONFINITE;
  if (w && !rad__all_finite(w, n)) return RAD_ENONFINITE;
  double total = 0.0, *gpa = NULL;
  scratch sc;
  if (ws && ws->pool && n >= 2 * ws->threads)
    rc = par_backward(S, ws, n, x, gz, w, wscale, gx, gp != NULL, &total, &gpa, lp, &sc);
  else
    rc = backward_acc(S, ws, n, x, gz, w, wscale, gx, gp != NULL, &total, &gpa, lp, &sc);
  if (rc) return rc;
  if (gp) {
    int ok = rad__isfinite_d(total);
    for (size_t j = 0; j < np && ok; j++) ok = rad__isfinite_d(gpa[j]);
    if (!ok) {
      scratch_put(&sc);
      return RAD_ENUMERIC;
    }
    for (size_t j = 0; j < np; j++) gp[j] = (float)gpa[j];
  }
  if (sum_ld) *sum_ld = total;
  scratch_put(&sc);
  return RAD_OK;
}

/* ---- threads: a batch split into one contiguous range per thread ------ */

typedef struct par_job {
  const rad__stack *S;
  rad_workspace *ws;
  int op; /* 0 forward, 1 inverse check, 2 inverse write, 3 sample, 4 backward */
  size_t n, T;
  const float *x, *gz, *w;
  float *z, *lp, *gx;
  int32_t *k;
  const int32_t *kin;
  uint64_t seed, first;
  double wscale;
  int want_gp;
  int rc[RAD__MAX_THREADS];
  double total[RAD__MAX_THREADS];
  double *gpa[RAD__MAX_THREADS];
} par_job;

/* Where thread t's rows start: near n t / T, at a multiple of RAD__PAD
   counted from `base` rows before the batch (the sample index of row 0,
   modulo RAD__PAD, when sampling; 0 otherwise), so that every row sits at
   the same column of its block of RAD__PAD as with one thread (see
   rad__stack_sample). Small batches may leave a thread without rows. */
static size_t par_bound(size_t n, size_t T, size_t t, size_t base) {
  if (t == 0) return 0;
  if (t >= T) return n;
  const size_t a = base + n * t / T, r = (a + RAD__PAD / 2) / RAD__PAD * RAD__PAD;
  return r <= base ? 0 : RAD_MIN(r - base, n);
}

static void par_task(void *ctx, size_t t) {
  par_job *J = ctx;
  const rad__stack *S = J->S;
  const size_t d = S->dim, nl = S->n_labels;
  const size_t base = J->op == 3 ? (size_t)(J->first % RAD__PAD) : 0;
  const size_t a = par_bound(J->n, J->T, t, base), b = par_bound(J->n, J->T, t + 1, base);
  const size_t m = b - a;
  rad_workspace sub = {J->ws->max_batch, J->ws->cap, J->ws->mem + t * J->ws->cap, 1, NULL};
  int rc = RAD_OK;
  switch (J->op) {
  case 0:
    rc = rad__stack_forward(S, &sub, m, J->x + a * d, J->z ? J->z + a * d : NULL,
                            J->k ? J->k + a * nl : NULL, J->lp ? J->lp + a : NULL, NULL, NULL);
    break;
  case 1:
  case 2:
    rc = inverse_mode(S, &sub, m, J->x + a * d, J->kin ? J->kin + a * nl : NULL, J->z + a * d,
                      J->op == 1 ? 1 : 2);
    break;
  case 3:
    rc = rad__stack_sample(S, &sub, J->seed, J->first + a, m, J->z + a * d,
                           J->gx ? J->gx + a * d : NULL, J->k ? J->k + a * nl : NULL);
    break;
  default: {
    scratch sc;
    J->total[t] = 0.0;
    rc = backward_acc(S, &sub, m, J->x + a * d, J->gz ? J->gz + a * d : NULL,
                      J->w ? J->w + a : NULL, J->wscale, J->gx ? J->gx + a * d : NULL, J->want_gp,
                      &J->total[t], &J->gpa[t], J->lp ? J->lp + a : NULL, &sc);
    break; /* the scratch is the workspace's: nothing to put back */
  }
  }
  J->rc[t] = rc;
}

static int par_run(par_job *J) {
  J->T = J->ws->threads;
  rad__pool_run(J->ws->pool, J->T, par_task, J);
  for (size_t t = 0; t < J->T; t++)
    if (J->rc[t]) return J->rc[t];
  return RAD_OK;
}

static int par_forward(const rad__stack *S, rad_workspace *ws, size_t n, const float *x,
                       float *z, int32_t *k, float *lp) {
  par_job J;
  memset(&J, 0, sizeof J);
  J.S = S, J.ws = ws, J.op = 0, J.n = n, J.x = x, J.z = z, J.k = k, J.lp = lp;
  return par_run(&J);
}

static int par_inverse(const rad__stack *S, rad_workspace *ws, size_t n, const float *z,
                       const int32_t *k, float *x) {
  par_job J;
  memset(&J, 0, sizeof J);
  /* every range is checked before any range is written */
  J.S = S, J.ws = ws, J.op = 1, J.n = n, J.x = z, J.kin = k, J.z = x;
  int rc = par_run(&J);
  if (rc) return rc;
  J.op = 2;
  return par_run(&J);
}

static int par_sample(const rad__stack *S, rad_workspace *ws, uint64_t seed, uint64_t first,
                      size_t n, float *x, float *z, int32_t *k) {
  par_job J;
  memset(&J, 0, sizeof J);
  J.S = S, J.ws = ws, J.op = 3, J.n = n, J.seed = seed, J.first = first, J.z = x, J.gx = z,
  J.k = k;
  return par_run(&J);
}

static int par_backward(const rad__stack *S, rad_workspace *ws, size_t n, const float *x,
                        const float *gz, const float *w, double wscale, float *gx, int want_gp,
                        double *total, double **gpa, float *lp, scratch *sc0) {
  par_job J;
  memset(&J, 0, sizeof J);
  J.S = S, J.ws = ws, J.op = 4, J.n = n, J.x = x, J.gz = gz, J.w = w, J.wscale = wscale;
  J.gx = gx, J.want_gp = want_gp, J.lp = lp;
  memset(sc0, 0, sizeof *sc0); /* the scratch belongs to the workspace */
  int rc = par_run(&J);
  if (rc) return rc;
  /* sums in thread order: the same result for the same thread count */
  *total = 0.0;
  for (size_t t = 0; t < J.T; t++) *total += J.total[t];
  *gpa = J.gpa[0];
  if (want_gp)
    for (size_t t = 1; t < J.T; t++)
      for (size_t j = 0; j < S->n_params; j++) (*gpa)[j] += J.gpa[t][j];
  return RAD_OK;
}

#define RAD__TAG_COMPONENT 0x636f6d70u /* "comp" */
#define RAD__TAG_ACCEPT 0x61636370u    /* "accp" */

int rad__stack_sample_component(const rad__stack *S, rad_workspace *ws, uint64_t seed,
                                const int32_t *k, size_t n, size_t max_attempts, float *x,
                                float *z, double *acceptance) {
  const size_t d = S->dim, nl = S->n_labels;
  if ((nl && !k) || max_attempts == 0 || max_attempts > UINT32_MAX) return RAD_EINVAL;
  if (nl && !rad__labels_valid(k, nl)) return RAD_ELABEL;
  if (n == 0) return RAD_OK;
  if (!x) return RAD_EINVAL;
  int rc = rad__check_batch(n, d, sizeof(float));
  if (rc) return rc;
  scratch sc;
  if ((rc = scratch_get(S, ws, RAD__MODE_INV, n, &sc))) return rc;
  plan P;
  plan_take(S, RAD__MODE_INV, sc.m, &sc.arena, &P);
  /* which sample each column holds, and its attempt count */
  size_t *row = malloc(sc.m * sizeof(size_t));
  uint32_t *att = malloc(sc.m * sizeof(uint32_t));
  float *z0 = malloc(sc.m * d * sizeof(float));
  if (!row || !att || !z0) {
    free(row), free(att), free(z0);
    scratch_put(&sc);
    return RAD_ENOMEM;
  }
  double tried = 0.0, kept = 0.0;
  size_t next = 0, live = 0;
  while (rc == RAD_OK && (next < n || live > 0)) {
    /* fill the free columns with new samples */
    while (live < sc.m && next < n) {
      row[live] = next++;
      att[live] = 0;
      live++;
    }
    const size_t m = live, mp = padded(m);
    float *Z = P.Z[0];
    for (size_t f = 0; f < d; f++)
      for (size_t i = m; i < mp; i++) Z[f * mp + i] = 0.0f;
    for (size_t i = m; i < mp; i++) P.ld[i] = 0.0;
    for (size_t i = 0; i < m; i++) {
      const size_t r = row[i];
      for (size_t q = 0; q * 4 < d; q++) {
        uint32_t u[4];
        rad__philox(seed, (uint32_t)r, (uint32_t)((uint64_t)r >> 32), (uint32_t)q,
                    RAD__TAG_COMPONENT ^ att[i], u);
        for (int h = 0; h < 2; h++) {
          double rr = sqrt(-2.0 * log(rad__u01(u[2 * h])));
          double th = 2.0 * RAD_PI * rad__u01(u[2 * h + 1]);
          size_t f0 = 4 * q + 2 * (size_t)h;
          if (f0 < d) Z[f0 * mp + i] = (float)(rr * cos(th));
          if (f0 + 1 < d) Z[(f0 + 1) * mp + i] = (float)(rr * sin(th));
        }
      }
      P.ld[i] = 0.0;
    }
    for (size_t f = 0; f < d; f++)
      for (size_t i = 0; i < m; i++) z0[i * d + f] = Z[f * mp + i];
    for (size_t l = S->n_layers; l-- > 0;) {
      rad__lcache tmp;
      rad__lcache *c = cache_for(S, &P, RAD__MODE_INV, l, mp, &tmp);
      (void)rad__layer_inverse(&S->layers[l], S->params + S->poff[l], mp, mp, Z, c,
                               nl ? k + S->loff[l] : NULL, 0, NULL, NULL, 0, P.ld);
    }
    std_out(S, Z, mp);
    /* accept, or try again; keep the columns compact */
    size_t w = 0;
    for (size_t i = 0; i < m; i++) {
      uint32_t u[4];
      const size_t r = row[i];
      rad__philox(seed, (uint32_t)r, (uint32_t)((uint64_t)r >> 32), att[i], RAD__TAG_ACCEPT, u);
      tried += 1.0;
      int ok = log(rad__u01(u[0])) < P.ld[i];
      if (ok) {
        int fin = 1;
        for (size_t f = 0; f < d; f++) fin &= rad__isfinite_f(Z[f * mp + i]);
        if (!fin) {
          rc = RAD_EOVERFLOW;
          break;
        }
        kept += 1.0;
        for (size_t f = 0; f < d; f++) x[r * d + f] = Z[f * mp + i];
        if (z) memcpy(z + r * d, z0 + i * d, d * sizeof(float));
        continue;
      }
      if (++att[i] >= max_attempts) {
        rc = RAD_EREJECTED;
        break;
      }
      row[w] = row[i];
      att[w] = att[i];
      w++;
    }
    live = w;
  }
  if (acceptance) *acceptance = tried > 0 ? kept / tried : 0.0;
  free(row), free(att), free(z0);
  scratch_put(&sc);
  return rc;
}
