/* The paper's six 2-D problems (shared/docs/DATASETS.md) as seeded
   samplers.

   Randomness is counter-based: point i of a call is a pure function of
   (seed, i), drawn from one Philox4x32-10 block with key = seed and counter
   (i low 32 bits, i high 32 bits, problem id, RAD__TAG_DATA). Its four 32-bit
   words are used as
     r[0]  the discrete choice (mixture component, moon, circle), or unused
     r[1]  the continuous curve parameter (t, angle, q), or unused
     r[2], r[3]  one Box-Muller pair: the two coordinates of the noise
   so no point needs a second block. Everything is computed in double and
   rounded to float once at the end. */
#include <math.h>

#include "internal.h"

/* Philox counter tag of this file ("data"); distinct from the flow
   sampler's "norm" and "labl" (layer.h) and the initializer's "mlp1". */
#define RAD__TAG_DATA 0x64617461u

static const char *const problem_names[] = {"grid",    "ring",   "moons",
                                            "circles", "spiral", "many_moons"};
/* DATASETS.md: the negative entropy of each problem, in nats (+-0.01). */
static const double problem_true_ll[] = {-0.06, 4.29, -1.01, -1.27, 0.92, -0.58};

#define N_PROBLEMS ((int)(sizeof problem_names / sizeof problem_names[0]))

static int valid_problem(int problem) { return problem >= 1 && problem <= N_PROBLEMS; }

int rad_problem_count(void) { return N_PROBLEMS; }

const char *rad_problem_name(int problem) {
  return valid_problem(problem) ? problem_names[problem - 1] : NULL;
}

int rad_problem_from_name(const char *name) {
  if (!name) return RAD_EINVAL;
  for (int p = 0; p < N_PROBLEMS; p++)
    if (strcmp(name, problem_names[p]) == 0) return p + 1;
  return RAD_EINVAL;
}

double rad_problem_true_log_likelihood(int problem) {
  return valid_problem(problem) ? problem_true_ll[problem - 1] : NAN;
}

/* An integer uniform in 0 .. k-1 from 32 random bits. */
static unsigned pick(uint32_t r, unsigned k) {
  unsigned c = (unsigned)(rad__u01(r) * (double)k);
  return c < k ? c : k - 1;
}

/* The noise-free point of `problem` from the block r, and the noise std. */
static double clean_point(int problem, const uint32_t r[4], double *px, double *py) {
  const double u = rad__u01(r[1]);
  switch (problem) {
  case RAD_PROBLEM_GRID: {
    unsigned c = pick(r[0], 25);
    *px = -4.0 + 2.0 * (double)(c / 5);
    *py = -4.0 + 2.0 * (double)(c % 5);
    return 0.05;
  }
  case RAD_PROBLEM_RING: {
    double a = 2.0 * RAD_PI * (double)pick(r[0], 8) / 8.0;
    *px = cos(a);
    *py = sin(a);
    return 0.01;
  }
  case RAD_PROBLEM_MOONS: {
    double t = RAD_PI * u;
    if (pick(r[0], 2) == 0) {
      *px = cos(t);
      *py = sin(t);
    } else {
      *px = 1.0 - cos(t);
      *py = 0.5 - sin(t);
    }
    return 0.1;
  }
  case RAD_PROBLEM_CIRCLES: {
    double radius = pick(r[0], 2) == 0 ? 1.0 : 0.5, a = 2.0 * RAD_PI * u;
    *px = radius * cos(a);
    *py = radius * sin(a);
    return 0.1;
  }
  case RAD_PROBLEM_SPIRAL: {
    double t = 3.0 * RAD_PI * sqrt(u), rho = t / (1.5 * RAD_PI);
    *px = rho * cos(t);
    *py = rho * sin(t);
    return 0.01;
  }
  default: { /* RAD_PROBLEM_MANY_MOONS */
    unsigned i = pick(r[0], 6);
    double t = RAD_PI * u, sgn = (i % 2) ? -1.0 : 1.0;
    double qx = (double)i + sgn * cos(t), qy = 0.5 * (double)(i % 2) + sgn * sin(t);
    *px = 0.5 * (qx - 2.5);
    *py = 0.5 * (qy - 0.25);
    return 0.05;
  }
  }
}

int rad_problem_sample(int problem, uint64_t seed, size_t n, float *x) {
  if (!valid_problem(problem)) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!x) return RAD_EINVAL;
  int rc = rad__check_batch(n, 2, sizeof(float));
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) {
    uint32_t r[4];
    rad__philox(seed, (uint32_t)i, (uint32_t)((uint64_t)i >> 32), (uint32_t)problem, RAD__TAG_DATA, r);
    double px, py, s = clean_point(problem, r, &px, &py);
    double rad = sqrt(-2.0 * log(rad__u01(r[2]))), th = 2.0 * RAD_PI * rad__u01(r[3]);
    x[2 * i] = (float)(px + s * rad * cos(th));
    x[2 * i + 1] = (float)(py + s * rad * sin(th));
  }
  return RAD_OK;
}
