/*
 * version.c: library version and status-code messages.
 */
#include <rad/rad.h>

int rad_version(void) { return RAD_VERSION_NUMBER; }

const char *rad_version_string(void) { return RAD_VERSION_STRING; }

int rad_status_min(void) { return RAD_STATUS_MIN; }

/* Indexed by -code. A new status code needs a message here: the static
   assertion fails when RAD_STATUS_MIN moves without this table growing,
   and tests/test_version.c fails on a missing (NULL) entry. */
static const char *const status_messages[] = {
    [-RAD_OK] = "success",
    [-RAD_EINVAL] = "invalid argument",
    [-RAD_ENOMEM] = "out of memory",
    [-RAD_ESIZE] = "size does not match the handle",
    [-RAD_ETOOBIG] = "size too large: byte count overflows size_t, or beyond the model file's limits",
    [-RAD_ENONFINITE] = "non-finite value (NaN or infinity) in the input",
    [-RAD_ELABEL] = "label outside {1,2,3} or inconsistent with z",
    [-RAD_EMASK] = "invalid mask",
    [-RAD_EOVERFLOW] = "result overflows float32",
    [-RAD_ENUMERIC] = "non-finite loss or gradient in a training step",
    [-RAD_EIO] = "I/O error",
    [-RAD_EFORMAT] = "not a librad file (bad magic)",
    [-RAD_EVERSION] = "file format version newer than this library",
    [-RAD_ETRUNCATED] = "file or buffer truncated",
    [-RAD_ECORRUPT] = "corrupt data (checksum mismatch or inconsistent content)",
    [-RAD_EMISMATCH] = "handles do not belong together",
    [-RAD_EUNSUPPORTED] = "operation not supported by this handle",
    [-RAD_EREJECTED] = "component too improbable: sampling attempts exhausted",
};

_Static_assert(sizeof status_messages / sizeof status_messages[0] ==
                   (size_t)(1 - RAD_STATUS_MIN),
               "status_messages needs one entry per status code");

const char *rad_strerror(int code) {
  /* Compare before negating: -INT_MIN overflows. */
  if (code > RAD_OK || code < RAD_STATUS_MIN) return "unknown status code";
  const char *msg = status_messages[-code];
  return msg != NULL ? msg : "unknown status code";
}
