/*
 * test_version.c: runtime version against the header, status messages.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rad/rad.h>

static const char *unknown_message(void) { return rad_strerror(1); }

START_TEST(test_version_number) {
  ck_assert_int_eq(rad_version(), RAD_VERSION_NUMBER);
  ck_assert_int_eq(rad_version(), RAD_VERSION_MAJOR * 10000 +
                                      RAD_VERSION_MINOR * 100 +
                                      RAD_VERSION_PATCH);
}
END_TEST

START_TEST(test_version_string) {
  const char *s = rad_version_string();
  ck_assert_ptr_nonnull(s);
  ck_assert_str_eq(s, RAD_VERSION_STRING);
  char expect[64];
  snprintf(expect, sizeof expect, "%d.%d.%d", RAD_VERSION_MAJOR,
           RAD_VERSION_MINOR, RAD_VERSION_PATCH);
  ck_assert_str_eq(s, expect);
}
END_TEST

START_TEST(test_status_min) {
  ck_assert_int_eq(rad_status_min(), RAD_STATUS_MIN);
  ck_assert_int_lt(rad_status_min(), RAD_OK);
  /* The last code the header defines today; appended codes move it. */
  ck_assert_int_le(rad_status_min(), RAD_EUNSUPPORTED);
}
END_TEST

START_TEST(test_strerror_known_codes) {
  const char *unknown = unknown_message();
  ck_assert_str_eq(unknown, "unknown status code");
  for (int c = RAD_OK; c >= rad_status_min(); c--) {
    const char *m = rad_strerror(c);
    ck_assert_msg(m != NULL, "rad_strerror(%d) is NULL", c);
    ck_assert_msg(m[0] != '\0', "rad_strerror(%d) is empty", c);
    ck_assert_msg(strcmp(m, unknown) != 0,
                  "rad_strerror(%d) is the unknown-code message", c);
    /* Static storage: the same pointer every time. */
    ck_assert_ptr_eq(rad_strerror(c), m);
    for (int d = c + 1; d <= RAD_OK; d++)
      ck_assert_msg(strcmp(m, rad_strerror(d)) != 0,
                    "rad_strerror(%d) and rad_strerror(%d) are both \"%s\"",
                    c, d, m);
  }
}
END_TEST

START_TEST(test_strerror_named_codes) {
  /* Every code the header names is within [rad_status_min(), 0]. */
  static const int codes[] = {
      RAD_OK,         RAD_EINVAL,    RAD_ENOMEM,    RAD_ESIZE,
      RAD_ETOOBIG,    RAD_ENONFINITE, RAD_ELABEL,   RAD_EMASK,
      RAD_EOVERFLOW,  RAD_ENUMERIC,  RAD_EIO,       RAD_EFORMAT,
      RAD_EVERSION,   RAD_ETRUNCATED, RAD_ECORRUPT, RAD_EMISMATCH,
      RAD_EUNSUPPORTED};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    ck_assert_int_le(codes[i], RAD_OK);
    ck_assert_int_ge(codes[i], rad_status_min());
    ck_assert_str_ne(rad_strerror(codes[i]), unknown_message());
  }
}
END_TEST

START_TEST(test_strerror_unknown_codes) {
  const char *unknown = unknown_message();
  const int codes[] = {1, 2, 12345, INT_MAX, rad_status_min() - 1,
                       rad_status_min() - 100, INT_MIN, INT_MIN + 1};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *m = rad_strerror(codes[i]);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m, unknown);
  }
}
END_TEST

static Suite *version_suite(void) {
  Suite *s = suite_create("version");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_version_number);
  tcase_add_test(tc, test_version_string);
  tcase_add_test(tc, test_status_min);
  tcase_add_test(tc, test_strerror_known_codes);
  tcase_add_test(tc, test_strerror_named_codes);
  tcase_add_test(tc, test_strerror_unknown_codes);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(version_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
