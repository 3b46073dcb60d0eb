/* Option keys, ranges and defaults (internal). */
#ifndef RAD_OPTIONS_H
#define RAD_OPTIONS_H

#include "internal.h"

#define RAD__OPTION_COUNT 17 /* keys 1 .. 16 */

typedef struct rad__option_info {
  int key;
  double min, max, def;
  int min_exclusive, integer;
} rad__option_info;

/* NULL for an unknown key. */
const rad__option_info *rad__option(int key);
/* RAD_OK if value is in range (and an integer where required). */
int rad__option_valid(int key, double value);
/* RAD_OPTION_LOGIT_BOUND: validates and converts (0 = unclamped). */
int rad__option_check(int option, double value, float *bound_out);

#endif
