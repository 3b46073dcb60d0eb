/* csv: see csv.h. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "csv.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct csv_table {
  char *store;   /* unquoted fields, each NUL-terminated */
  size_t cap;    /* bytes of store */
  size_t *foff;  /* per field: offset in store */
  size_t *flen;  /* per field: length (without the NUL) */
  size_t nf, capf;
  size_t *rfirst; /* per record: index of its first field; rfirst[nr] is
                     the total field count (a sentinel) */
  size_t *rline;  /* per record: 1-based line where it starts */
  size_t nr, capr;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Doubles the capacity of two parallel size_t arrays when full. */
static int grow2(size_t **a, size_t **b, size_t *cap, size_t need) {
  if (need <= *cap) return CSV_OK;
  size_t c = *cap ? *cap : 64;
  while (c < need) {
    if (c > SIZE_MAX / sizeof(size_t) / 2) return CSV_ENOMEM;
    c *= 2;
  }
  size_t *na = realloc(*a, c * sizeof(size_t));
  if (!na) return CSV_ENOMEM;
  *a = na;
  size_t *nb = realloc(*b, c * sizeof(size_t));
  if (!nb) return CSV_ENOMEM;
  *b = nb;
  *cap = c;
  return CSV_OK;
}

static int push_field(csv_table *t, size_t off, size_t len) {
  int rc = grow2(&t->foff, &t->flen, &t->capf, t->nf + 1);
  if (rc) return rc;
  t->foff[t->nf] = off;
  t->flen[t->nf] = len;
  t->nf++;
  return CSV_OK;
}

/* Appends a record (and keeps room for the sentinel). */
static int push_record(csv_table *t, size_t line) {
  int rc = grow2(&t->rfirst, &t->rline, &t->capr, t->nr + 2);
  if (rc) return rc;
  t->rfirst[t->nr] = t->nf;
  t->rline[t->nr] = line;
  t->nr++;
  return CSV_OK;
}

void csv_free(csv_table *t) {
  if (!t) return;
  free(t->store);
  free(t->foff);
  free(t->flen);
  free(t->rfirst);
  free(t->rline);
  free(t);
}

int csv_parse(const char *buf, size_t len, csv_table **out, char *err,
              size_t errlen) {
  if (out) *out = NULL;
  if (!out || (!buf && len)) {
    set_err(err, errlen, "invalid argument");
    return CSV_EINVAL;
  }
  csv_table *t = calloc(1, sizeof *t);
  if (!t) goto nomem;
  /* Every field's content plus its NUL fits in the bytes it consumed
     (its delimiter or terminator, or its two quotes), except one empty
     field at the very end of the input: len + 1 bytes suffice; one more
     for safety. */
  if (len > SIZE_MAX - 2) goto nomem;
  t->cap = len + 2;
  t->store = malloc(t->cap);
  if (!t->store) goto nomem;

  size_t i = 0, w = 0, line = 1;
  if (len >= 3 && (unsigned char)buf[0] == 0xEF &&
      (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
    i = 3;
  int rc;
  while (i < len) {
    /* a blank record: skipped */
    if (buf[i] == '\n') {
      i++;
      line++;
      continue;
    }
    if (buf[i] == '\r') {
      i++;
      if (i < len && buf[i] == '\n') i++;
      line++;
      continue;
    }
    if ((rc = push_record(t, line))) goto fail;
    for (;;) { /* one field per iteration */
      const size_t off = w;
      if (i < len && buf[i] == '"') {
        const size_t open_line = line;
        i++;
        for (;;) {
          if (i >= len) {
            set_err(err, errlen,
                    "line %zu: quoted field not closed before the end of "
                    "the input",
                    open_line);
            rc = CSV_ESYNTAX;
            goto fail_msg;
          }
          const char c = buf[i];
          if (c == '"') {
            if (i + 1 < len && buf[i + 1] == '"') {
              t->store[w++] = '"';
              i += 2;
              continue;
            }
            i++; /* the closing quote */
            break;
          }
          if (c == '\n' || (c == '\r' && !(i + 1 < len && buf[i + 1] == '\n')))
            line++;
          t->store[w++] = c;
          i++;
        }
      }
      /* the unquoted field, or what follows a closing quote */
      while (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r')
        t->store[w++] = buf[i++];
      t->store[w++] = '\0';
      if ((rc = push_field(t, off, w - 1 - off))) goto fail;
      if (i >= len) break;
      if (buf[i] == ',') { /* another field, perhaps empty at the end */
        i++;
        continue;
      }
      if (buf[i] == '\r') {
        i++;
        if (i < len && buf[i] == '\n') i++;
      } else {
        i++;
      }
      line++;
      break;
    }
  }
  if (t->nr == 0) {
    set_err(err, errlen, "no header row (the input is empty)");
    rc = CSV_ESYNTAX;
    goto fail_msg;
  }
  t->rfirst[t->nr] = t->nf; /* sentinel (push_record kept room) */
  for (size_t c = 0; c < csv_num_cols(t); c++)
    if (memchr(t->store + t->foff[c], '\0', t->flen[c])) {
      set_err(err, errlen,
              "line %zu: header field %zu holds a NUL byte (not a text CSV "
              "file?)",
              t->rline[0], c + 1);
      rc = CSV_ESYNTAX;
      goto fail_msg;
    }
  *out = t;
  return CSV_OK;

nomem:
  rc = CSV_ENOMEM;
fail:
  if (rc == CSV_ENOMEM) set_err(err, errlen, "out of memory");
fail_msg:
  csv_free(t);
  return rc;
}

size_t csv_num_cols(const csv_table *t) {
  return t && t->nr ? t->rfirst[1] - t->rfirst[0] : 0;
}

size_t csv_num_rows(const csv_table *t) { return t && t->nr ? t->nr - 1 : 0; }

const char *csv_col_name(const csv_table *t, size_t col) {
  if (!t || col >= csv_num_cols(t)) return NULL;
  return t->store + t->foff[t->rfirst[0] + col];
}

size_t csv_row_num_fields(const csv_table *t, size_t row) {
  if (!t || row >= csv_num_rows(t)) return 0;
  return t->rfirst[row + 2] - t->rfirst[row + 1];
}

size_t csv_row_line(const csv_table *t, size_t row) {
  if (!t || row >= csv_num_rows(t)) return 0;
  return t->rline[row + 1];
}

const char *csv_field(const csv_table *t, size_t row, size_t col,
                      size_t *len) {
  if (len) *len = 0;
  if (!t || row >= csv_num_rows(t) || col >= csv_row_num_fields(t, row))
    return NULL;
  size_t f = t->rfirst[row + 1] + col;
  if (len) *len = t->flen[f];
  return t->store + t->foff[f];
}

/* ---- Numbers ------------------------------------------------------------ */

/* The conversion proper; the caller has made the C locale current. */
static int number_c(const char *s, size_t len, double *out) {
  size_t a = 0, b = len;
  while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
  if (a == b) return CSV_NUM_MISSING;
  if (memchr(s + a, '\0', b - a)) return CSV_NUM_BAD;
  const char *p = s + a;
  const size_t n = b - a;
  /* strtod would skip other white space (CR, LF, VT, FF): refuse it */
  if (p[0] == '\n' || p[0] == '\r' || p[0] == '\v' || p[0] == '\f')
    return CSV_NUM_BAD;
  size_t k = (p[0] == '+' || p[0] == '-') ? 1 : 0;
  if (k + 1 < n && p[k] == '0' && (p[k + 1] == 'x' || p[k + 1] == 'X'))
    return CSV_NUM_BAD; /* no hex floats */
  char *end = NULL;
  errno = 0;
  /* s[len] is NUL and s[b..len) are blanks, so strtod stops at s + b at
     the latest. */
  double v = strtod(p, &end);
  if (end != p + n) return CSV_NUM_BAD;
  if (!isfinite(v) || fabs(v) > (double)FLT_MAX) return CSV_NUM_NONFINITE;
  if (out) *out = v;
  return CSV_NUM_OK;
}

int csv_number(const char *s, size_t len, double *out) {
  if (!s) return CSV_NUM_MISSING;
  locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (c == (locale_t)0) return CSV_ENOMEM;
  locale_t old = uselocale(c);
  int r = number_c(s, len, out);
  uselocale(old);
  freelocale(c);
  return r;
}

/* ---- Columns ------------------------------------------------------------ */

/* Appends ", 0 name, 1 name ..." (as much as fits) to err. */
static void list_columns(const csv_table *t, char *err, size_t errlen) {
  if (!err || errlen == 0) return;
  size_t used = strlen(err);
  const size_t nc = csv_num_cols(t);
  for (size_t c = 0; c < nc && used + 1 < errlen; c++) {
    int k = snprintf(err + used, errlen - used, "%s%zu:%s",
                     c ? ", " : "", c, csv_col_name(t, c));
    if (k < 0) break;
    if ((size_t)k >= errlen - used) { /* truncated: end with "..." */
      if (errlen >= 4) memcpy(err + errlen - 4, "...", 4);
      return;
    }
    used += (size_t)k;
  }
}

int csv_find_column(const csv_table *t, const char *name, size_t *col,
                    char *err, size_t errlen) {
  if (!t || !name || !col) {
    set_err(err, errlen, "invalid argument");
    return CSV_EINVAL;
  }
  size_t found = 0, first = 0, second = 0;
  for (size_t c = 0; c < csv_num_cols(t); c++)
    if (strcmp(csv_col_name(t, c), name) == 0) {
      if (found == 0) first = c;
      if (found == 1) second = c;
      found++;
    }
  if (found == 1) {
    *col = first;
    return CSV_OK;
  }
  if (found == 0)
    set_err(err, errlen, "no column '%s'", name);
  else
    set_err(err, errlen,
            "column name '%s' is used by columns %zu and %zu (0-based): "
            "select it by index",
            name, first, second);
  return CSV_ECOLUMN;
}

static int all_digits(const char *s, size_t n) {
  if (n == 0 || n > 18) return 0; /* 18 digits: no overflow */
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

int csv_select(const csv_table *t, const char *spec, size_t **cols,
               size_t *n_cols, char *err, size_t errlen) {
  if (cols) *cols = NULL;
  if (n_cols) *n_cols = 0;
  if (!t || !spec || !cols || !n_cols) {
    set_err(err, errlen, "invalid argument");
    return CSV_EINVAL;
  }
  const size_t slen = strlen(spec);
  size_t items = 1;
  for (size_t i = 0; i < slen; i++) items += spec[i] == ',';
  char *item = malloc(slen + 1);
  size_t *out = malloc(items * sizeof *out);
  if (!item || !out) {
    free(item);
    free(out);
    set_err(err, errlen, "out of memory");
    return CSV_ENOMEM;
  }
  const size_t nc = csv_num_cols(t);
  size_t n = 0, pos = 0;
  int rc = CSV_OK;
  for (;;) {
    const char *comma = strchr(spec + pos, ',');
    const size_t ilen = comma ? (size_t)(comma - spec) - pos : slen - pos;
    memcpy(item, spec + pos, ilen);
    item[ilen] = '\0';
    if (ilen == 0) {
      set_err(err, errlen, "empty item in the column list '%s'", spec);
      rc = CSV_ECOLUMN;
      break;
    }
    size_t c = 0;
    char sub[256];
    rc = csv_find_column(t, item, &c, sub, sizeof sub);
    if (rc == CSV_ECOLUMN && strncmp(sub, "no column", 9) == 0 &&
        all_digits(item, ilen)) {
      unsigned long long v = strtoull(item, NULL, 10);
      if (v < nc) {
        c = (size_t)v;
        rc = CSV_OK;
      } else {
        set_err(err, errlen,
                "column index %s is out of range (the header has %zu "
                "columns, 0..%zu): ",
                item, nc, nc - 1);
        list_columns(t, err, errlen);
        break;
      }
    }
    if (rc == CSV_ECOLUMN) {
      if (strncmp(sub, "no column", 9) == 0) {
        set_err(err, errlen, "no column '%s'; the columns are ", item);
        list_columns(t, err, errlen);
      } else {
        set_err(err, errlen, "%s", sub);
      }
      break;
    }
    if (rc) {
      set_err(err, errlen, "%s", sub);
      break;
    }
    for (size_t j = 0; j < n; j++)
      if (out[j] == c) {
        set_err(err, errlen, "column %zu ('%s') is selected twice", c,
                csv_col_name(t, c));
        rc = CSV_ECOLUMN;
        break;
      }
    if (rc) break;
    out[n++] = c;
    if (!comma) break;
    pos += ilen + 1;
  }
  free(item);
  if (rc) {
    free(out);
    return rc;
  }
  *cols = out;
  *n_cols = n;
  return CSV_OK;
}

int csv_numeric_columns(const csv_table *t, size_t **cols, size_t *n_cols,
                        char *err, size_t errlen) {
  if (cols) *cols = NULL;
  if (n_cols) *n_cols = 0;
  if (!t || !cols || !n_cols) {
    set_err(err, errlen, "invalid argument");
    return CSV_EINVAL;
  }
  const size_t nc = csv_num_cols(t), nr = csv_num_rows(t);
  size_t *out = malloc(nc * sizeof *out);
  locale_t loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (!out || loc == (locale_t)0) {
    free(out);
    if (loc != (locale_t)0) freelocale(loc);
    set_err(err, errlen, "out of memory");
    return CSV_ENOMEM;
  }
  locale_t old = uselocale(loc);
  size_t n = 0;
  for (size_t c = 0; c < nc; c++) {
    int numbers = 0, other = 0;
    for (size_t r = 0; r < nr && !other; r++) {
      if (csv_row_num_fields(t, r) > nc) continue;
      size_t flen;
      const char *f = csv_field(t, r, c, &flen);
      int k = f ? number_c(f, flen, NULL) : CSV_NUM_MISSING;
      if (k == CSV_NUM_OK) numbers = 1;
      else if (k != CSV_NUM_MISSING) other = 1;
    }
    if (numbers && !other) out[n++] = c;
  }
  uselocale(old);
  freelocale(loc);
  *cols = out;
  *n_cols = n;
  return CSV_OK;
}

/* ---- Extraction --------------------------------------------------------- */

const char *csv_skip_reason(int reason) {
  switch (reason) {
  case CSV_SKIP_MISSING: return "is empty";
  case CSV_SKIP_BAD: return "is not a number";
  case CSV_SKIP_NONFINITE: return "is not finite (or beyond float32 range)";
  case CSV_SKIP_TOO_MANY: return "has more fields than the header";
  default: return "is unusable";
  }
}

void csv_matrix_free(csv_matrix *m) {
  if (!m) return;
  free(m->x);
  free(m->rows);
  free(m->skips);
  memset(m, 0, sizeof *m);
}

int csv_extract(const csv_table *t, const size_t *cols, size_t dim,
                csv_matrix *m, char *err, size_t errlen) {
  if (!m) {
    set_err(err, errlen, "invalid argument");
    return CSV_EINVAL;
  }
  memset(m, 0, sizeof *m);
  if (!t || !cols || dim == 0) {
    set_err(err, errlen, "invalid argument");
    return CSV_EINVAL;
  }
  const size_t nc = csv_num_cols(t), nr = csv_num_rows(t);
  for (size_t j = 0; j < dim; j++)
    if (cols[j] >= nc) {
      set_err(err, errlen, "column index %zu is out of range", cols[j]);
      return CSV_EINVAL;
    }
  const size_t rows_alloc = nr ? nr : 1;
  if (rows_alloc > SIZE_MAX / dim / sizeof(float) ||
      rows_alloc > SIZE_MAX / sizeof(csv_skip)) {
    set_err(err, errlen, "out of memory");
    return CSV_ENOMEM;
  }
  m->dim = dim;
  m->x = malloc(rows_alloc * dim * sizeof(float));
  m->rows = malloc(rows_alloc * sizeof(size_t));
  m->skips = malloc(rows_alloc * sizeof(csv_skip));
  locale_t loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (!m->x || !m->rows || !m->skips || loc == (locale_t)0) {
    if (loc != (locale_t)0) freelocale(loc);
    csv_matrix_free(m);
    set_err(err, errlen, "out of memory");
    return CSV_ENOMEM;
  }
  locale_t old = uselocale(loc);
  for (size_t r = 0; r < nr; r++) {
    const size_t nf = csv_row_num_fields(t, r);
    int reason = 0;
    size_t bad_col = 0;
    if (nf > nc) {
      reason = CSV_SKIP_TOO_MANY;
      bad_col = nf;
    }
    float *row = m->x + m->n * dim;
    for (size_t j = 0; j < dim && !reason; j++) {
      size_t flen;
      const char *f = csv_field(t, r, cols[j], &flen);
      double v = 0.0;
      int k = f ? number_c(f, flen, &v) : CSV_NUM_MISSING;
      if (k == CSV_NUM_OK) {
        row[j] = (float)v;
      } else {
        reason = k == CSV_NUM_MISSING ? CSV_SKIP_MISSING
                 : k == CSV_NUM_BAD   ? CSV_SKIP_BAD
                                      : CSV_SKIP_NONFINITE;
        bad_col = cols[j];
      }
    }
    if (reason) {
      csv_skip *s = &m->skips[m->n_skipped++];
      s->row = r;
      s->col = bad_col;
      s->reason = reason;
      if (reason == CSV_SKIP_TOO_MANY) m->n_too_many++;
    } else {
      m->rows[m->n++] = r;
    }
  }
  uselocale(old);
  freelocale(loc);
  return CSV_OK;
}

/* ---- Files -------------------------------------------------------------- */

int csv_read_file(const char *path, char **buf, size_t *len, char *err,
                  size_t errlen) {
  if (buf) *buf = NULL;
  if (len) *len = 0;
  if (!path || !buf || !len) {
    set_err(err, errlen, "invalid argument");
    return CSV_EINVAL;
  }
  const int is_stdin = strcmp(path, "-") == 0;
  FILE *f = is_stdin ? stdin : fopen(path, "rb");
  if (!f) {
    set_err(err, errlen, "%s: %s", path, strerror(errno));
    return CSV_EIO;
  }
  size_t cap = 65536, n = 0;
  char *b = malloc(cap);
  if (!b) {
    if (!is_stdin) fclose(f);
    set_err(err, errlen, "out of memory");
    return CSV_ENOMEM;
  }
  for (;;) {
    if (cap - n < 2) {
      if (cap > SIZE_MAX / 2) {
        free(b);
        if (!is_stdin) fclose(f);
        set_err(err, errlen, "%s: too large", path);
        return CSV_ENOMEM;
      }
      char *nb = realloc(b, cap * 2);
      if (!nb) {
        free(b);
        if (!is_stdin) fclose(f);
        set_err(err, errlen, "%s: out of memory", path);
        return CSV_ENOMEM;
      }
      b = nb;
      cap *= 2;
    }
    errno = 0;
    size_t got = fread(b + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) {
        int e = errno ? errno : EIO;
        free(b);
        if (!is_stdin) fclose(f);
        set_err(err, errlen, "%s: %s", is_stdin ? "standard input" : path,
                strerror(e));
        return CSV_EIO;
      }
      break;
    }
  }
  if (!is_stdin) fclose(f);
  b[n] = '\0';
  *buf = b;
  *len = n;
  return CSV_OK;
}

int csv_write_field(FILE *f, const char *s) {
  const size_t n = strlen(s);
  int quote = n > 0 && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' ||
                        s[n - 1] == '\t');
  if (!quote) quote = strpbrk(s, ",\"\r\n") != NULL;
  if (!quote) return fputs(s, f) < 0 ? EOF : 0;
  if (putc('"', f) == EOF) return EOF;
  for (const char *p = s; *p; p++) {
    if (*p == '"' && putc('"', f) == EOF) return EOF;
    if (putc(*p, f) == EOF) return EOF;
  }
  return putc('"', f) == EOF ? EOF : 0;
}
