/* Adam internals shared with the fit routine. */
#ifndef RAD_ADAM_H
#define RAD_ADAM_H

#include "internal.h"

/* One ascent step with an explicit learning rate (schedules). */
int rad__adam_step_lr(rad_adam *a, float *params, const float *grad, size_t len,
                      double lr);

#endif
