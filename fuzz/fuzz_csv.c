/*
 * fuzz_csv: libFuzzer harness for the CSV reader of the `rad` tool
 * (examples/common/csv.c).
 *
 * The input is parsed with csv_parse (from a buffer of exactly its size,
 * not NUL-terminated), then goes through what `rad fit` does with a table:
 * the numeric columns (csv_numeric_columns), their extraction into a float
 * matrix (csv_extract), column selection by index and by name
 * (csv_select, csv_find_column). Then the table is written back with
 * csv_write_field (as `rad` writes CSV) and parsed again.
 *
 * What is checked (csv.h):
 * - status codes; *out NULL and a NUL-terminated message on failure, also
 *   with tiny message buffers;
 * - the table is what an independent reading of csv.h's FORMAT section
 *   gives (fc_ref_parse below): the same status, records, fields (bytes)
 *   and line numbers;
 * - the table's shape: at least one column, names without NUL, every field
 *   NUL-terminated at its length, out-of-range queries give NULL / 0, row
 *   lines strictly increasing, no more field bytes than input bytes;
 * - numeric columns: every listed column has a number and nothing but
 *   numbers or blanks (rows longer than the header ignored);
 * - extraction: kept + skipped = rows; kept rows in order, every value
 *   finite, within float32 range and equal to csv_number of its field;
 *   every skip has a valid reason that matches its row;
 * - the round trip: writing each record with csv_write_field and parsing
 *   the result gives the same fields. Three cases cannot round-trip and
 *   are left out: a field holding a NUL byte (csv_write_field takes a C
 *   string), a record made of one empty field (it is written as an empty
 *   line, which is a blank record), and a header whose first field starts
 *   with a UTF-8 byte order mark (it is stripped on reading).
 * A violated check prints what failed and aborts.
 *
 * The entry point is also compiled into tests/test_regress.c (which
 * defines FUZZ_CSV_ENTRY to another name).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../examples/common/csv.h"

#ifndef FUZZ_CSV_ENTRY
#define FUZZ_CSV_ENTRY LLVMFuzzerTestOneInput
#endif

#define FC_CHECK(cond)                                                       \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "fuzz_csv: %s:%d: check failed: %s\n", __FILE__,       \
              __LINE__, #cond);                                              \
      abort();                                                               \
    }                                                                        \
  } while (0)

static void *fc_alloc(size_t n) {
  void *p = calloc(n ? n : 1, 1);
  FC_CHECK(p != NULL);
  return p;
}

/* A message written into err[0..errlen) is NUL-terminated there. */
static void fc_check_msg(const char *err, size_t errlen) {
  if (errlen == 0) return;
  FC_CHECK(memchr(err, '\0', errlen) != NULL);
}

static void fc_check_shape(const csv_table *t, size_t size) {
  const size_t nc = csv_num_cols(t), nr = csv_num_rows(t);
  FC_CHECK(nc >= 1);
  size_t bytes = 0;
  for (size_t c = 0; c < nc; c++) {
    const char *name = csv_col_name(t, c);
    FC_CHECK(name != NULL);
    bytes += strlen(name);
  }
  FC_CHECK(csv_col_name(t, nc) == NULL);
  size_t prev_line = 0;
  for (size_t r = 0; r < nr; r++) {
    const size_t nf = csv_row_num_fields(t, r), line = csv_row_line(t, r);
    FC_CHECK(nf >= 1);
    FC_CHECK(line >= 2 && line > prev_line);
    prev_line = line;
    for (size_t f = 0; f < nf; f++) {
      size_t len = (size_t)-1;
      const char *s = csv_field(t, r, f, &len);
      FC_CHECK(s != NULL && len != (size_t)-1);
      FC_CHECK(s[len] == '\0');
      bytes += len;
    }
    size_t len = 1;
    FC_CHECK(csv_field(t, r, nf, &len) == NULL && len == 0);
    FC_CHECK(csv_field(t, r, nf, NULL) == NULL);
  }
  FC_CHECK(csv_row_num_fields(t, nr) == 0 && csv_row_line(t, nr) == 0);
  size_t len = 1;
  FC_CHECK(csv_field(t, nr, 0, &len) == NULL && len == 0);
  FC_CHECK(bytes <= size);
}

/* csv_extract over cols: the counts, values and skip records agree with
   the table. */
static void fc_check_extract(const csv_table *t, const size_t *cols, size_t dim) {
  const size_t nc = csv_num_cols(t), nr = csv_num_rows(t);
  csv_matrix m;
  char err[128];
  int rc = csv_extract(t, cols, dim, &m, err, sizeof err);
  FC_CHECK(rc == CSV_OK || rc == CSV_ENOMEM);
  if (rc != CSV_OK) return;
  FC_CHECK(m.dim == dim);
  FC_CHECK(m.n + m.n_skipped == nr);
  size_t too_many = 0, ik = 0, is = 0;
  for (size_t r = 0; r < nr; r++) {
    const size_t nf = csv_row_num_fields(t, r);
    if (ik < m.n && m.rows[ik] == r) { /* kept */
      FC_CHECK(nf <= nc);
      for (size_t j = 0; j < dim; j++) {
        size_t len;
        const char *f = csv_field(t, r, cols[j], &len);
        double v;
        FC_CHECK(f != NULL);
        FC_CHECK(csv_number(f, len, &v) == CSV_NUM_OK);
        const float x = m.x[ik * dim + j];
        FC_CHECK(isfinite(x) && fabsf(x) <= FLT_MAX);
        const float fv = (float)v;
        FC_CHECK(memcmp(&x, &fv, sizeof x) == 0);
      }
      ik++;
    } else { /* skipped */
      FC_CHECK(is < m.n_skipped);
      const csv_skip *s = &m.skips[is++];
      FC_CHECK(s->row == r);
      if (s->reason == CSV_SKIP_TOO_MANY) {
        too_many++;
        FC_CHECK(nf > nc && s->col == nf);
      } else {
        FC_CHECK(nf <= nc);
        FC_CHECK(s->reason == CSV_SKIP_MISSING || s->reason == CSV_SKIP_BAD ||
                 s->reason == CSV_SKIP_NONFINITE);
        int sel = 0;
        for (size_t j = 0; j < dim; j++) sel |= cols[j] == s->col;
        FC_CHECK(sel);
        size_t len;
        const char *f = csv_field(t, r, s->col, &len);
        const int k = f ? csv_number(f, len, NULL) : CSV_NUM_MISSING;
        FC_CHECK(k == (s->reason == CSV_SKIP_MISSING ? CSV_NUM_MISSING
                       : s->reason == CSV_SKIP_BAD   ? CSV_NUM_BAD
                                                     : CSV_NUM_NONFINITE));
      }
      FC_CHECK(strlen(csv_skip_reason(s->reason)) > 0);
    }
  }
  FC_CHECK(ik == m.n && is == m.n_skipped && too_many == m.n_too_many);
  csv_matrix_free(&m);
  FC_CHECK(m.x == NULL && m.n == 0);
}

/* What `rad fit` does without --columns: the numeric columns, then the
   matrix. */
static void fc_check_numeric(const csv_table *t) {
  const size_t nc = csv_num_cols(t), nr = csv_num_rows(t);
  size_t *cols = (size_t *)&cols, n = 99;
  char err[128];
  int rc = csv_numeric_columns(t, &cols, &n, err, sizeof err);
  FC_CHECK(rc == CSV_OK || rc == CSV_ENOMEM);
  if (rc != CSV_OK) {
    FC_CHECK(cols == NULL && n == 0);
    return;
  }
  FC_CHECK(n <= nc);
  for (size_t i = 0; i < n; i++) {
    FC_CHECK(cols[i] < nc);
    if (i) FC_CHECK(cols[i] > cols[i - 1]);
  }
  /* the definition, column by column */
  size_t at = 0;
  for (size_t c = 0; c < nc; c++) {
    int numbers = 0, other = 0;
    for (size_t r = 0; r < nr; r++) {
      if (csv_row_num_fields(t, r) > nc) continue;
      size_t len;
      const char *f = csv_field(t, r, c, &len);
      const int k = f ? csv_number(f, len, NULL) : CSV_NUM_MISSING;
      if (k == CSV_NUM_OK) numbers = 1;
      else if (k != CSV_NUM_MISSING) other = 1;
    }
    const int listed = at < n && cols[at] == c;
    FC_CHECK(listed == (numbers && !other));
    at += listed;
  }
  if (n > 0) fc_check_extract(t, cols, n);
  free(cols);
}

/* Column selection by index and by name. */
static void fc_check_select(const csv_table *t) {
  const size_t nc = csv_num_cols(t);
  char err[256], spec[64];
  size_t *cols = NULL, n = 0;
  /* by index: the first and the last column */
  if (nc > 1)
    snprintf(spec, sizeof spec, "%zu,0", nc - 1);
  else
    snprintf(spec, sizeof spec, "0");
  int rc = csv_select(t, spec, &cols, &n, err, sizeof err);
  fc_check_msg(err, sizeof err);
  FC_CHECK(rc == CSV_OK || rc == CSV_ECOLUMN || rc == CSV_ENOMEM);
  if (rc == CSV_OK) {
    FC_CHECK(n == (nc > 1 ? 2u : 1u));
    for (size_t i = 0; i < n; i++) FC_CHECK(cols[i] < nc);
    fc_check_extract(t, cols, n);
    free(cols);
  } else {
    FC_CHECK(cols == NULL && n == 0);
  }
  /* specs that must be refused (unknown name, index out of range, a
     column twice, an empty item), with message buffers of every small
     size: the message lists the columns and is cut to fit */
  const char *bad[4] = {"\x01no such column", NULL, "0,0", "0,"};
  char big_index[32];
  snprintf(big_index, sizeof big_index, "%zu", nc);
  bad[1] = big_index;
  static const size_t errlens[5] = {0, 1, 4, 5, 200};
  for (int b = 0; b < 4; b++)
    for (int e = 0; e < 5; e++) {
      char msg[200];
      memset(msg, 'x', sizeof msg);
      size_t *bc = (size_t *)&bc, bn = 7;
      rc = csv_select(t, bad[b], &bc, &bn, errlens[e] ? msg : NULL, errlens[e]);
      if (rc == CSV_OK) {
        /* only when a column has that very name (names match first) */
        int named = 0;
        for (size_t q = 0; q < nc; q++) named |= strcmp(csv_col_name(t, q), bad[b]) == 0;
        FC_CHECK(b < 2 && named && bn == 1);
        free(bc);
      } else {
        FC_CHECK(bc == NULL && bn == 0);
        FC_CHECK(rc == CSV_ECOLUMN || rc == CSV_ENOMEM);
        fc_check_msg(msg, errlens[e]);
        if (errlens[e] > 1 && rc == CSV_ECOLUMN) FC_CHECK(msg[0] != '\0');
      }
    }
  /* invalid arguments */
  FC_CHECK(csv_select(t, NULL, &cols, &n, err, sizeof err) == CSV_EINVAL);
  size_t at0;
  FC_CHECK(csv_find_column(t, NULL, &at0, err, sizeof err) == CSV_EINVAL);
  {
    const size_t out_of_range = nc;
    csv_matrix m;
    FC_CHECK(csv_extract(t, &out_of_range, 1, &m, err, sizeof err) == CSV_EINVAL);
    FC_CHECK(m.x == NULL && m.n == 0);
    FC_CHECK(csv_extract(t, &out_of_range, 0, &m, err, sizeof err) == CSV_EINVAL);
  }

  /* by name: the first few columns */
  for (size_t c = 0; c < nc && c < 8; c++) {
    const char *name = csv_col_name(t, c);
    size_t at = 99;
    rc = csv_find_column(t, name, &at, err, sizeof err);
    fc_check_msg(err, sizeof err);
    FC_CHECK(rc == CSV_OK || rc == CSV_ECOLUMN);
    size_t same = 0, first = nc;
    for (size_t q = 0; q < nc; q++)
      if (strcmp(csv_col_name(t, q), name) == 0) {
        if (!same) first = q;
        same++;
      }
    FC_CHECK((rc == CSV_OK) == (same == 1));
    if (rc == CSV_OK) FC_CHECK(at == first && first == c);
    if (name[0] && !strchr(name, ',') && strlen(name) < 4096) {
      rc = csv_select(t, name, &cols, &n, err, sizeof err);
      fc_check_msg(err, sizeof err);
      FC_CHECK(rc == CSV_OK || rc == CSV_ECOLUMN || rc == CSV_ENOMEM);
      if (same == 1) FC_CHECK(rc == CSV_OK || rc == CSV_ENOMEM);
      if (rc == CSV_OK) {
        FC_CHECK(n == 1 && cols[0] < nc);
        if (same == 1) FC_CHECK(cols[0] == c);
        free(cols);
      }
    }
  }
}

/* Writes the table with csv_write_field and parses it again. */
static void fc_check_roundtrip(const csv_table *t) {
  const size_t nc = csv_num_cols(t), nr = csv_num_rows(t);
  const char *h0 = csv_col_name(t, 0);
  if ((unsigned char)h0[0] == 0xEF && (unsigned char)h0[1] == 0xBB &&
      (unsigned char)h0[2] == 0xBF)
    return;
  if (nc == 1 && h0[0] == '\0') return;
  for (size_t r = 0; r < nr; r++) {
    const size_t nf = csv_row_num_fields(t, r);
    size_t len;
    if (nf == 1 && (csv_field(t, r, 0, &len), len == 0)) return;
    for (size_t f = 0; f < nf; f++) {
      const char *s = csv_field(t, r, f, &len);
      if (memchr(s, '\0', len)) return;
    }
  }
  char *out = NULL;
  size_t outlen = 0;
  FILE *mf = open_memstream(&out, &outlen);
  FC_CHECK(mf != NULL);
  for (size_t c = 0; c < nc; c++) {
    if (c) FC_CHECK(putc(',', mf) == ',');
    FC_CHECK(csv_write_field(mf, csv_col_name(t, c)) == 0);
  }
  putc('\n', mf);
  for (size_t r = 0; r < nr; r++) {
    const size_t nf = csv_row_num_fields(t, r);
    for (size_t f = 0; f < nf; f++) {
      if (f) putc(',', mf);
      FC_CHECK(csv_write_field(mf, csv_field(t, r, f, NULL)) == 0);
    }
    putc('\n', mf);
  }
  FC_CHECK(fclose(mf) == 0);
  csv_table *u = NULL;
  char err[128];
  int rc = csv_parse(out, outlen, &u, err, sizeof err);
  FC_CHECK(rc == CSV_OK || rc == CSV_ENOMEM);
  if (rc == CSV_OK) {
    FC_CHECK(csv_num_cols(u) == nc && csv_num_rows(u) == nr);
    for (size_t c = 0; c < nc; c++) FC_CHECK(strcmp(csv_col_name(t, c), csv_col_name(u, c)) == 0);
    for (size_t r = 0; r < nr; r++) {
      const size_t nf = csv_row_num_fields(t, r);
      FC_CHECK(csv_row_num_fields(u, r) == nf);
      for (size_t f = 0; f < nf; f++) {
        size_t la, lb;
        const char *a = csv_field(t, r, f, &la), *b = csv_field(u, r, f, &lb);
        FC_CHECK(la == lb && memcmp(a, b, la) == 0);
      }
    }
    csv_free(u);
  }
  free(out);
}

int FUZZ_CSV_ENTRY(const uint8_t *data, size_t size);
/* ---- an independent reading of csv.h's FORMAT section ------------------
   Records as (line, first field); fields as (offset, length) into a store.
   Returns CSV_OK, CSV_ESYNTAX or CSV_ENOMEM (never on these sizes). */
typedef struct fc_ref {
  char *store;
  size_t *foff, *flen, nf;
  size_t *rfirst, *rline, nr; /* rfirst[nr] = nf */
} fc_ref;

static void fc_ref_free(fc_ref *r) {
  free(r->store), free(r->foff), free(r->flen), free(r->rfirst), free(r->rline);
}

static int fc_ref_parse(const char *b, size_t len, fc_ref *r) {
  memset(r, 0, sizeof *r);
  /* at most len + 1 fields and records; len + 1 bytes of content + NULs */
  r->store = fc_alloc(2 * len + 2);
  r->foff = fc_alloc((len + 2) * sizeof(size_t));
  r->flen = fc_alloc((len + 2) * sizeof(size_t));
  r->rfirst = fc_alloc((len + 2) * sizeof(size_t));
  r->rline = fc_alloc((len + 2) * sizeof(size_t));
  size_t i = 0, w = 0, line = 1;
  if (len >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0) i = 3;
  while (i < len) {
    if (b[i] == '\n' || b[i] == '\r') { /* a blank record */
      i += (b[i] == '\r' && i + 1 < len && b[i + 1] == '\n') ? 2 : 1;
      line++;
      continue;
    }
    r->rfirst[r->nr] = r->nf;
    r->rline[r->nr++] = line;
    for (;;) {
      const size_t off = w;
      if (i < len && b[i] == '"') {
        i++;
        for (;;) {
          if (i >= len) return CSV_ESYNTAX; /* still open at the end */
          if (b[i] == '"' && i + 1 < len && b[i + 1] == '"') {
            r->store[w++] = '"';
            i += 2;
          } else if (b[i] == '"') {
            i++;
            break;
          } else {
            if (b[i] == '\n' || (b[i] == '\r' && !(i + 1 < len && b[i + 1] == '\n'))) line++;
            r->store[w++] = b[i++];
          }
        }
      }
      while (i < len && b[i] != ',' && b[i] != '\n' && b[i] != '\r') r->store[w++] = b[i++];
      r->foff[r->nf] = off;
      r->flen[r->nf++] = w - off;
      r->store[w++] = '\0';
      if (i >= len) break;
      if (b[i] == ',') {
        i++;
        continue;
      }
      i += (b[i] == '\r' && i + 1 < len && b[i + 1] == '\n') ? 2 : 1;
      line++;
      break;
    }
  }
  r->rfirst[r->nr] = r->nf;
  if (r->nr == 0) return CSV_ESYNTAX; /* no header */
  for (size_t f = r->rfirst[0]; f < r->rfirst[1]; f++)
    if (memchr(r->store + r->foff[f], '\0', r->flen[f])) return CSV_ESYNTAX;
  return CSV_OK;
}

/* The table is the reference reading, field by field, with its lines. */
static void fc_check_against_ref(const csv_table *t, const fc_ref *r) {
  const size_t nc = csv_num_cols(t), nr = csv_num_rows(t);
  FC_CHECK(r->nr == nr + 1);
  FC_CHECK(nc == r->rfirst[1] - r->rfirst[0]);
  for (size_t c = 0; c < nc; c++) {
    const size_t f = r->rfirst[0] + c;
    const char *name = csv_col_name(t, c);
    FC_CHECK(strlen(name) == r->flen[f] && memcmp(name, r->store + r->foff[f], r->flen[f]) == 0);
  }
  for (size_t row = 0; row < nr; row++) {
    const size_t f0 = r->rfirst[row + 1], nf = r->rfirst[row + 2] - f0;
    FC_CHECK(csv_row_num_fields(t, row) == nf);
    FC_CHECK(csv_row_line(t, row) == r->rline[row + 1]);
    for (size_t f = 0; f < nf; f++) {
      size_t len;
      const char *s = csv_field(t, row, f, &len);
      FC_CHECK(len == r->flen[f0 + f] && memcmp(s, r->store + r->foff[f0 + f], len) == 0);
    }
  }
}

int FUZZ_CSV_ENTRY(const uint8_t *data, size_t size) {
  if (size > (1u << 20)) return 0;
  /* exactly size bytes, not NUL-terminated: csv_parse must not read on */
  char *buf = fc_alloc(size);
  if (size) memcpy(buf, data, size);
  csv_table *t = (csv_table *)&t;
  char err[160];
  memset(err, 'x', sizeof err);
  int rc = csv_parse(buf, size, &t, err, sizeof err);
  FC_CHECK(rc == CSV_OK || rc == CSV_ESYNTAX || rc == CSV_ENOMEM);
  fc_ref ref;
  const int ref_rc = fc_ref_parse(buf, size, &ref);
  if (rc != CSV_ENOMEM) FC_CHECK(rc == ref_rc);
  if (rc == CSV_OK) fc_check_against_ref(t, &ref);
  fc_ref_free(&ref);
  if (rc != CSV_OK) {
    FC_CHECK(t == NULL);
    fc_check_msg(err, sizeof err);
    FC_CHECK(err[0] != '\0');
    /* the same failure with message buffers too small for the message */
    for (size_t errlen = 0; errlen < 3; errlen++) {
      char small[3] = {'x', 'x', 'x'};
      csv_table *t2 = (csv_table *)&t2;
      FC_CHECK(csv_parse(buf, size, &t2, errlen ? small : NULL, errlen) == rc);
      FC_CHECK(t2 == NULL);
      fc_check_msg(small, errlen);
    }
  } else {
    FC_CHECK(t != NULL);
    fc_check_shape(t, size);
    fc_check_numeric(t);
    fc_check_select(t);
    fc_check_roundtrip(t);
    csv_free(t);
  }
  /* the whole input as one number (csv_number wants s[len] == NUL) */
  if (size <= 512) {
    char *s = fc_alloc(size + 1);
    if (size) memcpy(s, data, size);
    double v = 0.0;
    int k = csv_number(s, size, &v);
    FC_CHECK(k == CSV_NUM_OK || k == CSV_NUM_MISSING || k == CSV_NUM_BAD ||
             k == CSV_NUM_NONFINITE || k == CSV_ENOMEM);
    if (k == CSV_NUM_OK) FC_CHECK(isfinite(v) && fabs(v) <= FLT_MAX);
    free(s);
  }
  free(buf);
  return 0;
}
