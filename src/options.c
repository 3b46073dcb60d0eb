/* The option table: every RAD_OPTION_* key with its range and default,
   shared by flows, coupling layers, Adam and fit options. */
#include <float.h>
#include <math.h>

#include "options.h"

#define INT_MAX_EXACT 9007199254740992.0 /* 2^53 */

static const rad__option_info TABLE[RAD__OPTION_COUNT] = {
    {0, 0, 0, 0, 0, 0},
    /* key, min, max, default, min exclusive, integer */
    {RAD_OPTION_LOGIT_BOUND, 0.0, INFINITY, RAD_DEFAULT_LOGIT_BOUND, 0, 0},
    {RAD_OPTION_LEARNING_RATE, 0.0, INFINITY, 1e-3, 1, 0},
    {RAD_OPTION_BETA1, 0.0, 1.0, 0.9, 0, 0},
    {RAD_OPTION_BETA2, 0.0, 1.0, 0.999, 0, 0},
    {RAD_OPTION_EPSILON, 0.0, INFINITY, 1e-8, 1, 0},
    {RAD_OPTION_BATCH_SIZE, 1.0, INT_MAX_EXACT, 500.0, 0, 1},
    {RAD_OPTION_STEPS, 0.0, INT_MAX_EXACT, 1000.0, 0, 1},
    {RAD_OPTION_SEED, 0.0, INT_MAX_EXACT, 0.0, 0, 1},
    {RAD_OPTION_EVAL_EVERY, 0.0, INT_MAX_EXACT, 1000.0, 0, 1},
    {RAD_OPTION_REPORT_EVERY, 0.0, INT_MAX_EXACT, 100.0, 0, 1},
    {RAD_OPTION_KEEP_BEST, 0.0, 1.0, 0.0, 0, 1},
    {RAD_OPTION_LR_SCHEDULE, 0.0, 1.0, 0.0, 0, 1},
    {RAD_OPTION_LR_FINAL_FRACTION, 0.0, 1.0, 0.01, 0, 0},
    {RAD_OPTION_LR_HORIZON, 0.0, INT_MAX_EXACT, 0.0, 0, 1},
    {RAD_OPTION_THREADS, 1.0, 64.0, 1.0, 0, 1},
    {RAD_OPTION_CLIP_NORM, 0.0, INFINITY, 0.0, 0, 0},
};

const rad__option_info *rad__option(int key) {
  if (key <= 0 || key >= RAD__OPTION_COUNT) return NULL;
  return &TABLE[key];
}

int rad__option_valid(int key, double value) {
  const rad__option_info *o = rad__option(key);
  if (!o || isnan(value)) return RAD_EINVAL;
  if (value < o->min || (o->min_exclusive && value == o->min)) return RAD_EINVAL;
  if (value > o->max) return RAD_EINVAL;
  /* beta < 1: the bias correction divides by 1 - beta^t */
  if ((key == RAD_OPTION_BETA1 || key == RAD_OPTION_BETA2) && value >= 1.0) return RAD_EINVAL;
  if (o->integer && value != floor(value)) return RAD_EINVAL;
  /* infinity is meaningful only for the logit bound (unclamped) and the
     clipping norm (no clipping); elsewhere it is refused */
  if (isinf(value) && key != RAD_OPTION_LOGIT_BOUND && key != RAD_OPTION_CLIP_NORM) return RAD_EINVAL;
  if (key == RAD_OPTION_SEED && value >= INT_MAX_EXACT) return RAD_EINVAL;
  return RAD_OK;
}

int rad_option_bounds(int option, double *min, double *max, double *default_value) {
  const rad__option_info *o = rad__option(option);
  if (!o) return RAD_EINVAL;
  if (min) *min = o->min;
  if (max) *max = o->max;
  if (default_value) *default_value = o->def;
  return RAD_OK;
}

int rad__option_check(int option, double value, float *bound_out) {
  if (option != RAD_OPTION_LOGIT_BOUND) return RAD_EINVAL;
  int rc = rad__option_valid(option, value);
  if (rc) return rc;
  /* 0 and +inf both mean unclamped; so does a bound beyond float range */
  if (isinf(value) || value > FLT_MAX) {
    *bound_out = 0.0f;
    return RAD_OK;
  }
  if (value > 0.0 && value < FLT_MIN) return RAD_EINVAL; /* would round to 0 */
  *bound_out = (float)value;
  return RAD_OK;
}
