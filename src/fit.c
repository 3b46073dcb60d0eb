/* Fitting a flow to an in-memory data set by minibatch Adam. Everything a
   step needs is allocated before the first step. */
#include <math.h>
#include <stdlib.h>

#include "adam.h"
#include "objects.h"
#include "options.h"

#define RAD__TAG_PERM 0x7065726du /* "perm" */

struct rad_fit_options {
  double v[RAD__OPTION_COUNT];
};

static int fit_key(int option) {
  return option >= RAD_OPTION_LEARNING_RATE && option < RAD__OPTION_COUNT;
}

int rad_fit_options_create(rad_fit_options **out) {
  if (!out) return RAD_EINVAL;
  rad_fit_options *o = calloc(1, sizeof(*o));
  *out = o;
  if (!o) return RAD_ENOMEM;
  for (int k = 1; k < RAD__OPTION_COUNT; k++) o->v[k] = rad__option(k)->def;
  return RAD_OK;
}

void rad_fit_options_free(rad_fit_options *o) { free(o); }

int rad_fit_options_set(rad_fit_options *o, int option, double value) {
  if (!o || !fit_key(option)) return RAD_EINVAL;
  int rc = rad__option_valid(option, value);
  if (rc == RAD_OK) o->v[option] = value;
  return rc;
}

int rad_fit_options_get(const rad_fit_options *o, int option, double *value) {
  if (!o || !value || !fit_key(option)) return RAD_EINVAL;
  *value = o->v[option];
  return RAD_OK;
}

/* Fisher-Yates shuffle of 0..n-1 for (seed, epoch): j uniform in [0, i]
   by multiplying 32 random bits by i + 1 (Lemire; bias below n / 2^32),
   or 53 bits for n >= 2^32. */
static void permutation(uint64_t seed, uint64_t epoch, size_t n, size_t *perm) {
  for (size_t i = 0; i < n; i++) perm[i] = i;
  uint32_t r[4] = {0, 0, 0, 0};
  for (size_t i = n; i-- > 1;) {
    size_t blk = i / 2, lane = i % 2;
    if (lane == 1 || i == n - 1)
      rad__philox(seed, (uint32_t)blk, (uint32_t)((uint64_t)blk >> 32), (uint32_t)epoch,
                  RAD__TAG_PERM ^ (uint32_t)(epoch >> 32), r);
    size_t j;
    if ((uint64_t)i < 0xffffffffull)
      j = (size_t)(((uint64_t)r[2 * lane] * (uint64_t)(i + 1)) >> 32);
    else {
      double u = ((double)(((uint64_t)r[2 * lane] << 21) ^ r[2 * lane + 1]) + 0.5) / 9007199254740992.0;
      j = (size_t)(u * (double)(i + 1));
      if (j > i) j = i;
    }
    size_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

/* Mean log-likelihood of a set (chunked through the workspace); -inf if
   any point's is -inf. */
static int evaluate(const rad_flow *F, rad_workspace *ws, size_t n, const float *x,
                    float *lp, size_t chunk, double *mean) {
  double s = 0.0;
  for (size_t i = 0; i < n; i += chunk) {
    size_t m = RAD_MIN(chunk, n - i);
    int rc = rad_flow_log_prob_ws(F, ws, m, x + i * F->dim, lp);
    if (rc) return rc;
    for (size_t j = 0; j < m; j++) s += lp[j];
  }
  *mean = s / (double)n;
  return RAD_OK;
}

/* The learning rate of a step: t counts this call's steps, T the
   optimizer's (before the step). */
static double lr_at(const rad_fit_options *o, uint64_t t, uint64_t steps, uint64_t T) {
  const double lr = o->v[RAD_OPTION_LEARNING_RATE];
  if (o->v[RAD_OPTION_LR_SCHEDULE] == 0.0) return lr;
  const uint64_t horizon = (uint64_t)o->v[RAD_OPTION_LR_HORIZON];
  const uint64_t pos = horizon ? T : t, len = horizon ? horizon : steps;
  if (len <= 1) return lr;
  double x = (double)pos / (double)(len - 1);
  if (x > 1.0) x = 1.0;
  const double f = o->v[RAD_OPTION_LR_FINAL_FRACTION];
  const double c = 0.5 * (1.0 + cos(RAD_PI * x));
  return lr * (f + (1.0 - f) * c);
}

int rad_flow_fit(rad_flow *F, rad_adam *opt, const rad_fit_options *options,
                 size_t n, const float *x, size_t n_heldout, const float *heldout,
                 rad_fit_callback callback, void *user, uint64_t *steps_done) {
  if (steps_done) *steps_done = 0;
  if (!F || !x || n == 0) return RAD_EINVAL;
  if (n_heldout && !heldout) return RAD_EINVAL;
  const size_t d = F->dim, np = F->n_params;
  if (np == 0) return RAD_EINVAL; /* nothing to fit */
  int rc = rad__check_batch(n, d, sizeof(float));
  if (rc == RAD_OK) rc = rad__check_batch(n_heldout, d, sizeof(float));
  if (rc) return rc;
  if (opt && rad_adam_num_params(opt) != np) return RAD_EMISMATCH;
  if (!rad__all_finite(x, n * d)) return RAD_ENONFINITE;
  if (n_heldout && !rad__all_finite(heldout, n_heldout * d)) return RAD_ENONFINITE;
  rad_fit_options defaults;
  if (!options) {
    for (int k = 1; k < RAD__OPTION_COUNT; k++) defaults.v[k] = rad__option(k)->def;
    options = &defaults;
  }
  const size_t B = (size_t)options->v[RAD_OPTION_BATCH_SIZE];
  const uint64_t steps = (uint64_t)options->v[RAD_OPTION_STEPS];
  const uint64_t seed = (uint64_t)options->v[RAD_OPTION_SEED];
  const uint64_t eval_every = (uint64_t)options->v[RAD_OPTION_EVAL_EVERY];
  const uint64_t report_every = (uint64_t)options->v[RAD_OPTION_REPORT_EVERY];
  const int keep_best = options->v[RAD_OPTION_KEEP_BEST] != 0.0 && n_heldout > 0;
  const double clip = options->v[RAD_OPTION_CLIP_NORM];
  rc = rad__check_batch(B, d, sizeof(float));
  if (rc == RAD_OK) rc = rad__check_batch(n, 1, sizeof(size_t)); /* the permutation */
  if (rc) return rc;

  uint64_t cur_epoch = UINT64_MAX, t_done = 0;
  double train_sum = 0.0, heldout_ll = NAN, best_ll = -INFINITY;
  uint64_t train_cnt = 0, last_eval = UINT64_MAX;

  /* everything the steps need, allocated once */
  const size_t eval_chunk = 4096;
  rad_adam *own = NULL;
  rad_workspace *ws = NULL;
  float *batch = malloc(B * d * sizeof(float));
  float *grad = malloc(np * sizeof(float));
  float *lp = malloc(eval_chunk * sizeof(float));
  float *best = keep_best ? malloc(np * sizeof(float)) : NULL;
  size_t *perm = malloc(n * sizeof(size_t));
  if (!batch || !grad || !lp || !perm || (keep_best && !best)) {
    rc = RAD_ENOMEM;
    goto done;
  }
  if (!opt) {
    if ((rc = rad_adam_create(np, &own))) goto done;
    opt = own;
  }
  if ((rc = rad_workspace_create(F, RAD_MAX(RAD_MIN(B, 65536), RAD_MIN(eval_chunk, n_heldout)), &ws)))
    goto done;
  if ((rc = rad_workspace_set_option(ws, RAD_OPTION_THREADS, options->v[RAD_OPTION_THREADS])))
    goto done;

  for (uint64_t t = 0; t < steps; t++) {
    const uint64_t T = rad_adam_steps(opt);
    for (size_t b = 0; b < B; b++) {
      /* position T*B + b of the concatenated permutations */
      const uint64_t pos = T * (uint64_t)B + b;
      uint64_t epoch = pos / n;
      if (epoch != cur_epoch) {
        permutation(seed, epoch, n, perm);
        cur_epoch = epoch;
      }
      memcpy(batch + b * d, x + perm[pos % n] * d, d * sizeof(float));
    }
    double mean;
    rc = rad_flow_grad_ws(F, ws, B, batch, grad, &mean);
    if (rc) goto done;
    if (clip > 0.0) {
      double nn = 0.0;
      for (size_t j = 0; j < np; j++) nn += (double)grad[j] * grad[j];
      nn = sqrt(nn);
      if (nn > clip) {
        const float sc = (float)(clip / nn);
        for (size_t j = 0; j < np; j++) grad[j] *= sc;
      }
    }
    rc = rad__adam_step_lr(opt, F->params, grad, np, lr_at(options, t, steps, T));
    if (rc) {
      if (rc == RAD_ENONFINITE) rc = RAD_ENUMERIC;
      goto done;
    }
    t_done = t + 1;
    train_sum += mean;
    train_cnt++;
    const int last = t + 1 == steps;
    if (n_heldout && ((eval_every && (t + 1) % eval_every == 0) || last)) {
      if ((rc = evaluate(F, ws, n_heldout, heldout, lp, eval_chunk, &heldout_ll))) goto done;
      last_eval = t;
      if (keep_best && heldout_ll > best_ll) {
        best_ll = heldout_ll;
        memcpy(best, F->params, np * sizeof(float));
      }
    }
    if (callback && ((report_every && (t + 1) % report_every == 0) || last)) {
      int stop = callback(user, rad_adam_steps(opt), train_sum / (double)train_cnt, heldout_ll);
      train_sum = 0.0;
      train_cnt = 0;
      if (stop) break;
    }
  }
  /* a fit stopped by its callback still ends with an evaluation */
  if (t_done && n_heldout && last_eval != t_done - 1) {
    if ((rc = evaluate(F, ws, n_heldout, heldout, lp, eval_chunk, &heldout_ll))) goto done;
    if (keep_best && heldout_ll > best_ll) {
      best_ll = heldout_ll;
      memcpy(best, F->params, np * sizeof(float));
    }
  }
  if (keep_best && best_ll > -INFINITY) memcpy(F->params, best, np * sizeof(float));
  rc = RAD_OK;
done:
  if (steps_done) *steps_done = t_done;
  rad_workspace_free(ws);
  rad_adam_free(own);
  free(batch);
  free(grad);
  free(lp);
  free(best);
  free(perm);
  return rc;
}
