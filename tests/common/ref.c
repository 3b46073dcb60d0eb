/* Reference model in double precision; see ref.h. */
#include "ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

static void sig_push(ref_sig *s, int v) {
  if (s && s->n < REF_MAX_SIG) s->v[s->n++] = v;
}

static size_t layer_np(ref_layer *l) {
  size_t out = l->kind == RAD_LAYER_RAD ? 10 * l->d2 : 2 * l->d2;
  size_t np = l->H * l->d1 + l->H + out * l->H + out;
  if (l->kind == RAD_LAYER_RAD)
    np += 2 * l->d2 + l->G * l->dim + l->G + 3 * l->d2 * l->G + 3 * l->d2;
  else
    np += l->d2;
  return np;
}

static int layer_from(const rad_coupling *c, ref_layer *l) {
  memset(l, 0, sizeof(*l));
  l->kind = rad_coupling_kind(c);
  l->dim = rad_coupling_dim(c);
  if (l->dim > REF_MAX_DIM) return -1;
  if (rad_coupling_get_mask(c, l->mask, l->dim)) return -1;
  for (size_t i = 0; i < l->dim; i++) {
    if (l->mask[i])
      l->idx2[l->d2++] = i;
    else
      l->idx1[l->d1++] = i;
  }
  l->H = rad_coupling_hidden(c);
  l->G = rad_coupling_gate_hidden(c);
  double b;
  rad_coupling_get_option(c, RAD_OPTION_LOGIT_BOUND, &b);
  l->B = isinf(b) ? 0.0 : b;
  l->np = layer_np(l);
  return l->np == rad_coupling_num_params(c) ? 0 : -1;
}

int ref_from_flow(const rad_flow *flow, ref_model *m) {
  memset(m, 0, sizeof(*m));
  m->dim = rad_flow_dim(flow);
  m->L = rad_flow_num_layers(flow);
  m->with_base = 1;
  if (m->L > REF_MAX_LAYERS) return -1;
  for (size_t i = 0; i < m->L; i++) {
    rad_coupling *c;
    if (rad_flow_get_coupling(flow, i, &c)) return -1;
    int rc = layer_from(c, &m->layer[i]);
    rad_coupling_free(c);
    if (rc) return rc;
    m->layer[i].off = m->np;
    m->np += m->layer[i].np;
    if (m->layer[i].kind == RAD_LAYER_RAD) m->nlabels += m->layer[i].d2;
  }
  return m->np == rad_flow_num_params(flow) ? 0 : -1;
}

int ref_from_coupling(const rad_coupling *c, ref_model *m) {
  memset(m, 0, sizeof(*m));
  m->L = 1;
  if (layer_from(c, &m->layer[0])) return -1;
  m->dim = m->layer[0].dim;
  m->np = m->layer[0].np;
  m->nlabels = m->layer[0].kind == RAD_LAYER_RAD ? m->layer[0].d2 : 0;
  return 0;
}

static void softmax3(const double l[3], double p[3]) {
  double mx = fmax(l[0], fmax(l[1], l[2]));
  double s = 0;
  for (int c = 0; c < 3; c++) s += (p[c] = exp(l[c] - mx));
  for (int c = 0; c < 3; c++) p[c] /= s;
}

/* The slopes straight from the probabilities (MODEL.md section 1 with the
   paper's corrected eq. 26). */
static void slopes(const double lp[3], const double lm[3], double al[5],
                   double *a, double *b) {
  double pp[3], pm[3];
  softmax3(lp, pp);
  softmax3(lm, pm);
  double a2 = 1.0 + pp[0] / pp[1] + pm[2] / pm[1];
  double a1 = a2 * pp[1] / pp[0];
  double a3 = a2 * pm[1] / pm[2];
  al[0] = a1;
  al[1] = a2;
  al[2] = a3;
  al[3] = a1 * pm[0]; /* alpha_minus */
  al[4] = a3 * pp[2]; /* alpha_plus */
  *a = 2.0 / a1 - 1.0;
  *b = 1.0 - 2.0 / a3;
}

static double fold_piece(const double lp[3], const double lm[3], double u,
                         int *piece, double *slope) {
  double al[5], a, b;
  slopes(lp, lm, al, &a, &b);
  if (u < -1.0) {
    *piece = 0;
    *slope = al[3];
    return al[3] * (u + 1.0) - 1.0;
  }
  if (u <= a) {
    *piece = 1;
    *slope = al[0];
    return al[0] * (u + 1.0) - 1.0;
  }
  if (u <= b) {
    *piece = 2;
    *slope = al[1];
    return -al[1] * (u - a) + 1.0;
  }
  if (u <= 1.0) {
    *piece = 3;
    *slope = al[2];
    return al[2] * (u - 1.0) + 1.0;
  }
  *piece = 4;
  *slope = al[4];
  return al[4] * (u - 1.0) + 1.0;
}

double ref_fold(const double lp[3], const double lm[3], double u, int *label,
                double *log_slope) {
  int p;
  double s, zh = fold_piece(lp, lm, u, &p, &s);
  if (label) *label = p == 0 ? 1 : (p == 4 ? 3 : p);
  if (log_slope) *log_slope = log(s);
  return zh;
}

double ref_gate_logp(const double lp[3], const double lm[3], const double g[3],
                     double zh, int k) {
  double wc = 0.5 * (1.0 + cos(PI * zh));
  double wp = 0.5 * (1.0 + sin(PI * zh / 2.0));
  double wm = 0.5 * (1.0 - sin(PI * zh / 2.0));
  double lam[3], mx = -INFINITY, s = 0;
  for (int c = 0; c < 3; c++) {
    lam[c] = wc * g[c] + wp * lp[c] + wm * lm[c];
    mx = fmax(mx, lam[c]);
  }
  for (int c = 0; c < 3; c++) s += exp(lam[c] - mx);
  return lam[k - 1] - mx - log(s);
}

/* dense(in -> H) ReLU dense(H -> out) with W1, b1, W2, b2 at p. */
static void mlp(const double *p, size_t in, size_t H, size_t out,
                const double *x, double *o, ref_sig *sig) {
  const double *W1 = p, *b1 = W1 + H * in, *W2 = b1 + H, *b2 = W2 + out * H;
  double *a = malloc((H ? H : 1) * sizeof(double));
  for (size_t h = 0; h < H; h++) {
    double v = b1[h];
    for (size_t i = 0; i < in; i++) v += W1[h * in + i] * x[i];
    sig_push(sig, v > 0.0);
    a[h] = v > 0.0 ? v : 0.0;
  }
  for (size_t r = 0; r < out; r++) {
    double v = b2[r];
    for (size_t h = 0; h < H; h++) v += W2[r * H + h] * a[h];
    o[r] = v;
  }
  free(a);
}

static double layer_eval(const ref_layer *l, const double *p, const double *x,
                         double *z, int32_t *k, ref_sig *sig, double *probs) {
  const size_t d1 = l->d1, d2 = l->d2, H = l->H;
  double x1[REF_MAX_DIM], o[10 * REF_MAX_DIM];
  for (size_t i = 0; i < d1; i++) x1[i] = x[l->idx1[i]];
  size_t out = (l->kind == RAD_LAYER_RAD ? 10 : 2) * d2;
  mlp(p, d1, H, out, x1, o, sig);
  const double *cs = p + (H * d1 + H + out * H + out);
  for (size_t i = 0; i < l->dim; i++) z[i] = x[i];
  double ld = 0.0;
  if (l->kind == RAD_LAYER_AFFINE) {
    for (size_t j = 0; j < d2; j++) {
      double s = cs[j] * tanh(o[j]), t = o[d2 + j];
      z[l->idx2[j]] = x[l->idx2[j]] * exp(s) + t;
      ld += s;
    }
    return ld;
  }
  double lp[REF_MAX_DIM][3], lm[REF_MAX_DIM][3], zh[REF_MAX_DIM];
  int piece[REF_MAX_DIM];
  for (size_t j = 0; j < d2; j++) {
    for (int c = 0; c < 3; c++) {
      double qp = o[(2 + c) * d2 + j], qm = o[(5 + c) * d2 + j];
      lp[j][c] = l->B > 0 ? l->B * tanh(qp / l->B) : qp;
      lm[j][c] = l->B > 0 ? l->B * tanh(qm / l->B) : qm;
    }
    double s1 = cs[j] * tanh(o[j]), t1 = o[d2 + j];
    double s2 = cs[d2 + j] * tanh(o[8 * d2 + j]), t2 = o[9 * d2 + j];
    double u = x[l->idx2[j]] * exp(s1) + t1, slope;
    zh[j] = fold_piece(lp[j], lm[j], u, &piece[j], &slope);
    sig_push(sig, 10 + piece[j]);
    z[l->idx2[j]] = zh[j] * exp(s2) + t2;
    ld += s1 + s2 + log(slope);
    if (k) k[j] = piece[j] == 0 ? 1 : (piece[j] == 4 ? 3 : piece[j]);
  }
  double g[3 * REF_MAX_DIM];
  mlp(cs + 2 * d2, l->dim, l->G, 3 * d2, z, g, sig);
  for (size_t j = 0; j < d2; j++) {
    if (piece[j] == 0 || piece[j] == 4) {
      if (probs)
        for (int c = 0; c < 3; c++) probs[3 * j + c] = (piece[j] == 0 ? c == 0 : c == 2) ? 1.0 : 0.0;
      continue;
    }
    double gj[3] = {g[j], g[d2 + j], g[2 * d2 + j]};
    ld += ref_gate_logp(lp[j], lm[j], gj, zh[j], piece[j]);
    if (probs)
      for (int c = 0; c < 3; c++) probs[3 * j + c] = exp(ref_gate_logp(lp[j], lm[j], gj, zh[j], c + 1));
  }
  return ld;
}

double ref_eval_probs(const ref_model *m, const double *params, const double *x,
                      double *probs) {
  double a[REF_MAX_DIM], b[REF_MAX_DIM], total = 0.0;
  for (size_t i = 0; i < m->dim; i++) a[i] = x[i];
  size_t lo = 0;
  for (size_t l = 0; l < m->L; l++) {
    const ref_layer *ly = &m->layer[l];
    total += layer_eval(ly, params + ly->off, a, b, NULL, NULL, probs + 3 * lo);
    if (ly->kind == RAD_LAYER_RAD) lo += ly->d2;
    memcpy(a, b, m->dim * sizeof(double));
  }
  return total;
}

double ref_eval(const ref_model *m, const double *params, const double *x,
                double *z, int32_t *k, ref_sig *sig) {
  double a[REF_MAX_DIM], b[REF_MAX_DIM], total = 0.0;
  for (size_t i = 0; i < m->dim; i++) a[i] = x[i];
  size_t lo = 0;
  for (size_t l = 0; l < m->L; l++) {
    const ref_layer *ly = &m->layer[l];
    total += layer_eval(ly, params + ly->off, a, b, k ? k + lo : NULL, sig, NULL);
    if (ly->kind == RAD_LAYER_RAD) lo += ly->d2;
    memcpy(a, b, m->dim * sizeof(double));
  }
  if (m->with_base) {
    double s = 0;
    for (size_t i = 0; i < m->dim; i++) s += a[i] * a[i];
    total += -0.5 * s - 0.5 * (double)m->dim * log(2.0 * PI);
  }
  if (z) memcpy(z, a, m->dim * sizeof(double));
  return total;
}
