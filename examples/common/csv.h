/*
 * csv: a small, strict CSV reader for the librad command-line tool.
 *
 * It parses a whole CSV text held in memory (csv_parse), picks columns by
 * name or by 0-based index (csv_select), and turns the selected columns
 * into a float matrix, skipping and counting the rows where a selected
 * field is missing or not a number (csv_extract). It never prints; every
 * failure is a status code and a message in a caller-supplied buffer.
 *
 * THE FORMAT (RFC 4180, read leniently where that cannot lose data)
 *
 * - Fields are separated by commas; records end with LF, CRLF or a lone CR;
 *   the last record may lack a terminator.
 * - A field that starts with a double quote is quoted: it runs to the next
 *   lone quote, may hold commas, CR and LF, and "" stands for one quote.
 *   Characters after the closing quote are kept (Python's csv does the
 *   same). A quoted field still open at the end of the input is an error
 *   (CSV_ESYNTAX): it would silently swallow the rest of the file.
 *   A quote inside an unquoted field is an ordinary character.
 * - A UTF-8 byte order mark at the very start is ignored.
 * - Blank records (a terminator alone) are ignored everywhere: they are
 *   neither rows nor counted. A record of spaces is a row.
 * - The first non-blank record is the header; its fields are the column
 *   names. A header field holding a NUL byte is an error (a binary file,
 *   most likely). Data fields may hold any bytes, NUL included.
 * - Rows may have fewer fields than the header (the missing fields are
 *   missing values) or more (csv_extract skips such rows: their columns
 *   are misaligned).
 *
 * NUMBERS (csv_number)
 *
 * A field is a number if, after trimming spaces and tabs at both ends, the
 * whole of it is parsed by strtod in the C locale (decimal point '.', no
 * thousands separators, whatever the process locale is: the conversion
 * runs under uselocale() with a "C" locale object), it is decimal (no hex
 * floats), and the value is finite and within float32 range. NaN, inf,
 * "1e999" and "1.5abc" are refused; an empty (or all-blank) field is
 * missing. Values below float32's smallest normal magnitude are kept as
 * the nearest float (possibly 0).
 *
 * LIMITS
 *
 * Any input bytes are accepted without crashing; the only resource used
 * is memory proportional to the input (a copy of it, plus two size_t per
 * field and per record). Out of memory is CSV_ENOMEM.
 */
#ifndef RAD_EXAMPLES_CSV_H
#define RAD_EXAMPLES_CSV_H

#include <stddef.h>
#include <stdio.h>

/* Status codes (0 or negative). */
enum {
  CSV_OK = 0,
  CSV_ENOMEM = -1,  /* out of memory */
  CSV_ESYNTAX = -2, /* malformed CSV (unterminated quote, no header, ...) */
  CSV_EIO = -3,     /* the file cannot be read */
  CSV_ECOLUMN = -4, /* a column spec names no column, or is ambiguous */
  CSV_EINVAL = -5   /* invalid argument (NULL, empty selection) */
};

/* A parsed CSV text. Read it through the functions below. */
typedef struct csv_table csv_table;

/* Parses len bytes at buf (which need not be NUL-terminated and may hold
   any bytes). On success *out receives a table the caller frees with
   csv_free. On failure *out is NULL and, if err is not NULL, err receives
   a one-line message (at most errlen bytes, NUL-terminated) naming the
   line, e.g. "line 7: quoted field not closed before the end of the
   input". */
int csv_parse(const char *buf, size_t len, csv_table **out, char *err,
              size_t errlen);
void csv_free(csv_table *t);

/* Number of header fields (columns, >= 1) and of data rows. */
size_t csv_num_cols(const csv_table *t);
size_t csv_num_rows(const csv_table *t);
/* Name of column `col` (NUL-terminated, no embedded NUL); NULL if col is
   out of range. */
const char *csv_col_name(const csv_table *t, size_t col);
/* Number of fields of row `row` (may differ from csv_num_cols). */
size_t csv_row_num_fields(const csv_table *t, size_t row);
/* 1-based line number of the input where row `row` starts (line 1 holds
   the header when there are no blank lines before it). */
size_t csv_row_line(const csv_table *t, size_t row);
/* Field `col` of row `row`, unquoted and NUL-terminated, with its length
   in *len (the field may itself contain NUL bytes). NULL, with *len = 0,
   when the row has no such field. len may be NULL. */
const char *csv_field(const csv_table *t, size_t row, size_t col,
                      size_t *len);

/* Number classification (see NUMBERS above). */
enum {
  CSV_NUM_OK = 0,
  CSV_NUM_MISSING = 1,   /* empty or blank */
  CSV_NUM_BAD = 2,       /* not (entirely) a decimal number */
  CSV_NUM_NONFINITE = 3  /* NaN, infinite, or beyond float32's range */
};
/* Classifies and converts the len bytes at s; *out (may be NULL) receives
   the value when the result is CSV_NUM_OK. s[len] must be readable and
   NUL (fields returned by csv_field are). Returns a CSV_NUM_* value, or
   CSV_ENOMEM if no C locale object could be made. */
int csv_number(const char *s, size_t len, double *out);

/* Finds a column by exact name. Returns CSV_OK and *col, or CSV_ECOLUMN
   when no column has that name (err: "no column 'x'") or more than one
   does (err names their indices). */
int csv_find_column(const csv_table *t, const char *name, size_t *col,
                    char *err, size_t errlen);

/* Parses a comma-separated column list, each item a column name or a
   0-based column index. A name matches first: an item that is all digits
   is an index only if no column has that name. Items are not trimmed;
   quote nothing (a name holding a comma cannot be selected by name: use
   its index). Rejects empty items, unknown names, indices out of range
   and repeated columns. On success *cols (free it) holds *n_cols >= 1
   indices, in the order given. On failure err names the bad item and
   lists the available columns. */
int csv_select(const csv_table *t, const char *spec, size_t **cols,
               size_t *n_cols, char *err, size_t errlen);

/* The columns that look numeric: at least one field is a number and
   every non-empty field is (CSV_NUM_OK). Rows with more fields than the
   header are ignored. On success *cols (free it) holds *n_cols indices
   in increasing order; *n_cols may be 0. */
int csv_numeric_columns(const csv_table *t, size_t **cols, size_t *n_cols,
                        char *err, size_t errlen);

/* Why a row was skipped. */
enum {
  CSV_SKIP_MISSING = 1,    /* a selected field is empty or absent */
  CSV_SKIP_BAD = 2,        /* a selected field is not a number */
  CSV_SKIP_NONFINITE = 3,  /* a selected field is NaN, inf or too large */
  CSV_SKIP_TOO_MANY = 4    /* the row has more fields than the header */
};
typedef struct csv_skip {
  size_t row;    /* row index (see csv_row_line for its line) */
  size_t col;    /* the offending column (index into the table); for
                    CSV_SKIP_TOO_MANY the row's field count */
  int reason;    /* CSV_SKIP_* */
} csv_skip;

/* The selected columns as floats. */
typedef struct csv_matrix {
  size_t n;          /* rows kept */
  size_t dim;        /* columns selected */
  float *x;          /* n x dim, row-major, in input order */
  size_t *rows;      /* n: the table row of each kept row */
  size_t n_skipped;  /* rows skipped */
  csv_skip *skips;   /* n_skipped entries, in input order (first offending
                        selected column of each) */
  size_t n_too_many; /* how many of them were CSV_SKIP_TOO_MANY */
} csv_matrix;

/* Converts columns cols[0..dim-1] of every row. A row is kept only if
   every selected field is a number (csv_number gives CSV_NUM_OK) and the
   row has no more fields than the header; otherwise it is skipped and
   recorded, never filled in. Numbers are converted under one C locale
   object for the whole table. On success *m is filled (release it with
   csv_matrix_free); m->n may be 0. */
int csv_extract(const csv_table *t, const size_t *cols, size_t dim,
                csv_matrix *m, char *err, size_t errlen);
void csv_matrix_free(csv_matrix *m);

/* Reads a whole file (path "-" is standard input) into a new buffer
   (*buf, free it; NUL-terminated one byte past *len). err gets
   "PATH: strerror text". */
int csv_read_file(const char *path, char **buf, size_t *len, char *err,
                  size_t errlen);

/* Writes s as one CSV field: as is when it holds no comma, quote, CR,
   LF or leading/trailing space, otherwise quoted with quotes doubled.
   Returns 0 or EOF on a write error. */
int csv_write_field(FILE *f, const char *s);

/* A short description of a CSV_SKIP_* reason: "is empty", "is not a
   number", "is not finite", "has too many fields". */
const char *csv_skip_reason(int reason);

#endif /* RAD_EXAMPLES_CSV_H */
