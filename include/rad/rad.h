/*
 * librad: RAD flows (Real and Discrete normalizing flows) in C.
 *
 * Implements Dinh, Sohl-Dickstein, Larochelle, Pascanu, "A RAD approach to
 * deep mixture models": coupling layers built on a piecewise-linear folding
 * function with a gating network p(k|z) over its three preimages, giving a
 * deep mixture model with exact sampling, exact inference of the discrete
 * labels and an exact, continuous log-likelihood.
 *
 * This header is the whole public API. Anything not declared here is not
 * part of the API and may change without notice.
 *
 * CONVENTIONS (they hold for every function below unless its comment says
 * otherwise)
 *
 * Status codes. Every fallible function returns int: RAD_OK (0) or one of
 * the negative RAD_E* codes below. The values are pinned: new codes are
 * appended, existing values never change or get reused. rad_strerror()
 * names each code.
 *
 * No side channels. librad never prints, never aborts, never exits, and
 * never changes process-wide state (in particular it never changes
 * OpenBLAS's thread count). Randomness comes only from explicit seeds.
 *
 * Bad input. A NULL pointer where a buffer or handle is required, a size
 * that does not match the handle, an unknown enum value, non-finite
 * numbers (NaN, +-inf) in x, z or parameters: each returns a specific
 * status code, leaves every handle unchanged and usable, and leaves every
 * output buffer untouched (outputs are written only on success). Output
 * handles (`T **out`) are set to NULL on failure.
 *
 * Buffers. Arrays are owned by the caller; librad never keeps a pointer to
 * a caller's buffer after a call returns. A batch of n samples of
 * dimension d is n*d floats, row-major (sample i occupies
 * x[i*d .. i*d+d-1]), float32. Discrete labels are int32_t in {1, 2, 3}.
 * Functions that take a pointer without a length cannot detect a buffer
 * that is too short: passing one is undefined behaviour, as with memcpy.
 * Where a length is passed (get/set params), a mismatch is RAD_ESIZE.
 * n = 0 is a valid empty batch (RAD_OK, nothing written) except for
 * gradients of a mean, where it is RAD_EINVAL.
 *
 * Handles. Handles are opaque: `typedef struct rad_flow rad_flow;` and so
 * on. Each *_create / *_load has a *_free that accepts NULL.
 *
 * Threads. Functions taking a `const T *` handle may be called on the same
 * handle from many threads at once. Functions taking a non-const handle
 * (set_params, training) need exclusive access. A rad_workspace is used by
 * one thread at a time.
 */
#ifndef RAD_RAD_H
#define RAD_RAD_H

#include <stddef.h>
#include <stdint.h>

/* ---- Export macro ------------------------------------------------------ */
#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(RAD_BUILDING_LIBRARY)
#    define RAD_API __declspec(dllexport)
#  else
#    define RAD_API
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define RAD_API __attribute__((visibility("default")))
#else
#  define RAD_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ----------------------------------------------------------- */
#define RAD_VERSION_MAJOR 0
#define RAD_VERSION_MINOR 1
#define RAD_VERSION_PATCH 0
#define RAD_VERSION_NUMBER \
  (RAD_VERSION_MAJOR * 10000 + RAD_VERSION_MINOR * 100 + RAD_VERSION_PATCH)
#define RAD_VERSION_STRING "0.1.0"

/* Runtime version of the loaded library: MAJOR*10000 + MINOR*100 + PATCH.
   Compare with RAD_VERSION_NUMBER to detect a header/library mismatch. */
RAD_API int rad_version(void);
/* "MAJOR.MINOR.PATCH" of the loaded library. Static storage. */
RAD_API const char *rad_version_string(void);

/* ---- Status codes (pinned values; appended, never reused) ------------- */
enum {
  RAD_OK = 0,
  RAD_EINVAL = -1,      /* invalid argument: NULL, unknown enum, zero size */
  RAD_ENOMEM = -2,      /* out of memory */
  RAD_ESIZE = -3,       /* a length does not match the handle */
  RAD_ETOOBIG = -4,     /* a size's byte count overflows size_t */
  RAD_ENONFINITE = -5,  /* NaN or infinity in the input */
  RAD_ELABEL = -6,      /* label outside {1,2,3} or inconsistent with z */
  RAD_EMASK = -7,       /* invalid mask (wrong length, not 0/1, all zeros) */
  RAD_EOVERFLOW = -8,   /* a result overflows float32 */
  RAD_ENUMERIC = -9,    /* training step gave a non-finite loss/gradient */
  RAD_EIO = -10,        /* I/O error (open, read, write, rename) */
  RAD_EFORMAT = -11,    /* not a librad file (bad magic) */
  RAD_EVERSION = -12,   /* file format version newer than this library */
  RAD_ETRUNCATED = -13, /* file or buffer truncated */
  RAD_ECORRUPT = -14,   /* checksum mismatch or inconsistent content */
  RAD_EMISMATCH = -15,  /* handles that do not belong together */
  RAD_EUNSUPPORTED = -16 /* operation not defined for this handle */
};
/* The smallest (most negative) status code this library version defines. */
#define RAD_STATUS_MIN (-16)
RAD_API int rad_status_min(void);

/* A short English description of a status code. Static storage, never
   NULL; unknown codes give "unknown status code". */
RAD_API const char *rad_strerror(int code);

/* The model API (folds, gates, coupling layers, flows) follows here. */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RAD_RAD_H */
