/* Model and optimizer files: a documented, portable, checksummed format
   (docs/file-format.md). Everything is little-endian and fixed-width;
   loading checks the magic, the version, the declared size, a CRC-32 over
   the whole file, and then every field against the architecture before
   it allocates. Saving writes a temporary file in the target directory,
   syncs it and renames it over the target, so a crash leaves either the
   old file or the new one, never half of one. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "objects.h"
#include "options.h"

#define RAD__FORMAT_VERSION 1u
#define RAD__HEADER 24u /* magic 8, version 4, flags 4, total size 8 */

static const unsigned char MAGIC_FLOW[8] = {0x89, 'R', 'A', 'D', 'F', 'L', 'O', 'W'};
static const unsigned char MAGIC_ADAM[8] = {0x89, 'R', 'A', 'D', 'A', 'D', 'A', 'M'};

/* ---- CRC-32 (IEEE 802.3, as zlib's crc32) --------------------------- */
uint32_t rad__crc32(const unsigned char *p, size_t n) {
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/* ---- little-endian writer and reader -------------------------------- */
typedef struct wbuf {
  unsigned char *p; /* NULL: only count */
  size_t n;
} wbuf;

static void w_bytes(wbuf *w, const void *src, size_t n) {
  if (w->p && n) memcpy(w->p + w->n, src, n);
  w->n += n;
}
static void w_u32(wbuf *w, uint32_t v) {
  unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  w_bytes(w, b, 4);
}
static void w_u64(wbuf *w, uint64_t v) {
  w_u32(w, (uint32_t)v);
  w_u32(w, (uint32_t)(v >> 32));
}
static void w_f32(wbuf *w, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  w_u32(w, u);
}
static void w_f64(wbuf *w, double f) {
  uint64_t u;
  memcpy(&u, &f, 8);
  w_u64(w, u);
}

typedef struct rbuf {
  const unsigned char *p;
  size_t n, at;
  int bad;
} rbuf;

static int r_has(rbuf *r, size_t n) {
  if (r->bad || n > r->n - r->at) {
    r->bad = 1;
    return 0;
  }
  return 1;
}
static uint32_t r_u32(rbuf *r) {
  if (!r_has(r, 4)) return 0;
  const unsigned char *b = r->p + r->at;
  r->at += 4;
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t r_u64(rbuf *r) {
  uint64_t lo = r_u32(r);
  return lo | (uint64_t)r_u32(r) << 32;
}
static float r_f32(rbuf *r) {
  uint32_t u = r_u32(r);
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static double r_f64(rbuf *r) {
  uint64_t u = r_u64(r);
  double f;
  memcpy(&f, &u, 8);
  return f;
}

/* ---- the container: header, body, CRC ------------------------------- */
static void w_header(wbuf *w, const unsigned char magic[8], uint64_t total) {
  w_bytes(w, magic, 8);
  w_u32(w, RAD__FORMAT_VERSION);
  w_u32(w, 0); /* flags */
  w_u64(w, total);
}

/* Checks magic, version, size and CRC; on success r is positioned after
   the header, with the CRC excluded from its length. */
static int open_container(const unsigned char *buf, size_t size, const unsigned char magic[8],
                          rbuf *r) {
  if (!buf) return RAD_EINVAL;
  size_t k = size < 8 ? size : 8;
  if (memcmp(buf, magic, k) != 0) return RAD_EFORMAT;
  if (size < RAD__HEADER + 4) return RAD_ETRUNCATED;
  rbuf h = {buf, size, 8, 0};
  uint32_t version = r_u32(&h);
  uint32_t flags = r_u32(&h);
  uint64_t total = r_u64(&h);
  if (version > RAD__FORMAT_VERSION) return RAD_EVERSION;
  if (version == 0) return RAD_ECORRUPT;
  if (total > size) return RAD_ETRUNCATED;
  if (total < size || total < RAD__HEADER + 4) return RAD_ECORRUPT;
  rbuf c = {buf, size, size - 4, 0};
  if (rad__crc32(buf, size - 4) != r_u32(&c)) return RAD_ECORRUPT;
  /* none defined in version 1: a set flag could change the meaning of
     the data, so a reader that does not know it refuses the file */
  if (flags != 0) return RAD_EVERSION;
  r->p = buf;
  r->n = size - 4;
  r->at = RAD__HEADER;
  r->bad = 0;
  return RAD_OK;
}

/* ---- flows ------------------------------------------------------------ */
static void w_flow(wbuf *w, const rad_flow *F, uint64_t total) {
  const size_t d = F->dim;
  w_header(w, MAGIC_FLOW, total);
  w_u64(w, d);
  w_u64(w, F->n_layers);
  w_u64(w, F->n_params);
  w_u32(w, F->std_shift ? 1u : 0u);
  if (F->std_shift)
    for (size_t i = 0; i < d; i++) w_f32(w, F->std_shift[i]), w_f32(w, F->std_scale[i]);
  w_u32(w, F->names ? 1u : 0u);
  if (F->names)
    for (size_t i = 0; i < d; i++) {
      size_t l = strlen(F->names[i]);
      w_u32(w, (uint32_t)l);
      w_bytes(w, F->names[i], l);
    }
  for (size_t l = 0; l < F->n_layers; l++) {
    const rad__layer *L = &F->layers[l];
    w_u32(w, (uint32_t)L->kind);
    w_u64(w, L->cond.hidden);
    w_u64(w, L->kind == RAD_LAYER_RAD ? L->gate.hidden : 0);
    w_f32(w, L->bound);
    w_bytes(w, L->mask, d);
  }
  for (size_t i = 0; i < F->n_params; i++) w_f32(w, F->params[i]);
}

int rad_flow_save_to_buffer(const rad_flow *F, void *buf, size_t cap, size_t *size) {
  if (!F || !size) return RAD_EINVAL;
  wbuf count = {NULL, 0};
  w_flow(&count, F, 0);
  const size_t total = count.n + 4;
  *size = total;
  if (!buf) return RAD_OK; /* size query */
  if (cap < total) return RAD_ESIZE;
  wbuf w = {buf, 0};
  w_flow(&w, F, total);
  w_u32(&w, rad__crc32(buf, w.n));
  return RAD_OK;
}

int rad_flow_load_from_buffer(const void *buf, size_t size, rad_flow **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  rbuf r;
  int rc = open_container(buf, size, MAGIC_FLOW, &r);
  if (rc) return rc;
  const uint64_t d = r_u64(&r), nl = r_u64(&r), np = r_u64(&r);
  if (r.bad || d == 0 || d > RAD__MAX_DIM || nl > RAD__MAX_LAYERS) return RAD_ECORRUPT;
  /* the parameters close the body: they must fit in what is left */
  if (np > (r.n - r.at) / 4) return RAD_ECORRUPT;
  /* every field below is bounded by what is left in the buffer before
     anything of that size is allocated */
  const uint32_t has_std = r_u32(&r);
  if (has_std > 1 || (has_std && !r_has(&r, 8 * (size_t)d))) return RAD_ECORRUPT;
  rad_flow *F = NULL;
  float *sh = NULL, *sc = NULL;
  char **names = NULL;
  uint8_t *mask = NULL;
  if ((rc = rad_flow_create_empty((size_t)d, &F))) return rc;
  rc = RAD_ECORRUPT;
  if (has_std) {
    sh = malloc((size_t)d * sizeof(float));
    sc = malloc((size_t)d * sizeof(float));
    if (!sh || !sc) {
      rc = RAD_ENOMEM;
      goto fail;
    }
    for (size_t i = 0; i < d; i++) sh[i] = r_f32(&r), sc[i] = r_f32(&r);
    if (rad_flow_set_standardization(F, sh, sc, (size_t)d)) goto fail;
  }
  const uint32_t has_names = r_u32(&r);
  if (r.bad || has_names > 1) goto fail;
  if (has_names) {
    names = calloc((size_t)d, sizeof(char *));
    if (!names) {
      rc = RAD_ENOMEM;
      goto fail;
    }
    for (size_t i = 0; i < d; i++) {
      uint32_t l = r_u32(&r);
      if (l > RAD__MAX_NAME || !r_has(&r, l)) goto fail;
      names[i] = malloc((size_t)l + 1);
      if (!names[i]) {
        rc = RAD_ENOMEM;
        goto fail;
      }
      memcpy(names[i], r.p + r.at, l);
      names[i][l] = '\0';
      if (strlen(names[i]) != l) goto fail; /* an embedded NUL */
      r.at += l;
    }
    if (rad_flow_set_column_names(F, (const char *const *)names, (size_t)d)) goto fail;
  }
  mask = malloc((size_t)d);
  if (!mask) {
    rc = RAD_ENOMEM;
    goto fail;
  }
  for (uint64_t l = 0; l < nl; l++) {
    const uint32_t kind = r_u32(&r);
    const uint64_t hid = r_u64(&r), ghid = r_u64(&r);
    const float bound = r_f32(&r);
    if (!r_has(&r, (size_t)d)) goto fail;
    memcpy(mask, r.p + r.at, (size_t)d);
    r.at += (size_t)d;
    if (hid > RAD__MAX_WIDTH || ghid > RAD__MAX_WIDTH) goto fail;
    if (!(bound >= 0.0f) || !isfinite(bound)) goto fail;
    if (kind == RAD_LAYER_AFFINE && ghid != 0) goto fail;
    /* the layer's parameter count from its shape, checked against the
       declared total before anything of that size is allocated */
    rad__layer shape;
    if (rad__layer_init(&shape, (int)kind, (size_t)d, mask, (size_t)d, (size_t)hid, (size_t)ghid))
      goto fail;
    const size_t lnp = shape.n_params;
    rad__layer_free(&shape);
    if (lnp > np - F->n_params) goto fail;
    rad_coupling *c;
    int crc = rad_coupling_create((int)kind, (size_t)d, mask, (size_t)d, (size_t)hid, (size_t)ghid, 0, &c);
    if (crc) {
      if (crc == RAD_ENOMEM) rc = RAD_ENOMEM;
      goto fail;
    }
    c->L.bound = bound;
    int arc = rad_flow_add_coupling(F, c);
    rad_coupling_free(c);
    if (arc) {
      rc = arc == RAD_ENOMEM ? RAD_ENOMEM : RAD_ECORRUPT;
      goto fail;
    }
  }
  if (F->n_params != np || !r_has(&r, (size_t)np * 4)) goto fail;
  for (size_t i = 0; i < np; i++) F->params[i] = r_f32(&r);
  if (r.bad || r.at != r.n) goto fail;
  if (!rad__all_finite(F->params, F->n_params)) goto fail;
  free(sh), free(sc), free(mask);
  if (names)
    for (size_t i = 0; i < d; i++) free(names[i]);
  free(names);
  *out = F;
  return RAD_OK;
fail:
  free(sh), free(sc), free(mask);
  if (names)
    for (size_t i = 0; i < d; i++) free(names[i]);
  free(names);
  rad_flow_free(F);
  return rc;
}

/* ---- files ------------------------------------------------------------ */

/* fsync of the directory holding `path` (its entries: the rename).
   Systems that cannot open or sync a directory (EINVAL, EBADF, EACCES,
   EISDIR) are not an error: the file itself is on disk. */
static int sync_dir(char *path) {
  char *slash = strrchr(path, '/');
  const char *dir = ".";
  if (slash == path) {
    dir = "/";
  } else if (slash) {
    *slash = '\0';
    dir = path;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  int rc = RAD_OK;
  if (fd >= 0) {
    if (fsync(fd) != 0 && errno == EIO) rc = RAD_EIO;
    close(fd);
  }
  if (slash && slash != path) *slash = '/';
  return rc;
}

/* Writes buf to path atomically: a temporary file in the same directory,
   written, flushed to disk, then renamed over path. */
static int write_atomic(const char *path, const unsigned char *buf, size_t n) {
  size_t pl = strlen(path);
  char *tmp = malloc(pl + 16);
  if (!tmp) return RAD_ENOMEM;
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    free(tmp);
    return RAD_EIO;
  }
  int rc = RAD_OK;
  size_t done = 0;
  while (done < n) {
    ssize_t k = write(fd, buf + done, n - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      rc = RAD_EIO;
      break;
    }
    done += (size_t)k;
  }
  if (rc == RAD_OK && fsync(fd) != 0) rc = RAD_EIO;
  if (fchmod(fd, 0644) != 0) { /* mkstemp makes 0600; models are data */
  }
  if (close(fd) != 0) rc = RAD_EIO;
  if (rc == RAD_OK && rename(tmp, path) != 0) rc = RAD_EIO;
  if (rc != RAD_OK) unlink(tmp);
  /* the rename is durable only once the directory is on disk too */
  if (rc == RAD_OK) rc = sync_dir(tmp);
  free(tmp);
  return rc;
}

static int read_file(const char *path, unsigned char **out, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return RAD_EIO;
  size_t cap = 1 << 16, len = 0;
  unsigned char *b = malloc(cap);
  if (!b) {
    fclose(f);
    return RAD_ENOMEM;
  }
  for (;;) {
    if (len == cap) {
      if (cap > SIZE_MAX / 2) {
        free(b);
        fclose(f);
        return RAD_ETOOBIG;
      }
      unsigned char *nb = realloc(b, cap * 2);
      if (!nb) {
        free(b);
        fclose(f);
        return RAD_ENOMEM;
      }
      b = nb;
      cap *= 2;
    }
    size_t k = fread(b + len, 1, cap - len, f);
    len += k;
    if (k == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(b);
    return RAD_EIO;
  }
  *out = b;
  *n = len;
  return RAD_OK;
}

int rad_flow_save(const rad_flow *F, const char *path) {
  if (!F || !path || !*path) return RAD_EINVAL;
  size_t n;
  int rc = rad_flow_save_to_buffer(F, NULL, 0, &n);
  if (rc) return rc;
  unsigned char *buf = malloc(n);
  if (!buf) return RAD_ENOMEM;
  rc = rad_flow_save_to_buffer(F, buf, n, &n);
  if (rc == RAD_OK) rc = write_atomic(path, buf, n);
  free(buf);
  return rc;
}

int rad_flow_load(const char *path, rad_flow **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (!path) return RAD_EINVAL;
  unsigned char *buf;
  size_t n;
  int rc = read_file(path, &buf, &n);
  if (rc) return rc;
  rc = rad_flow_load_from_buffer(buf, n, out);
  free(buf);
  return rc;
}

/* ---- optimizer state ---------------------------------------------------- */
static int w_adam(wbuf *w, const rad_adam *a, uint64_t total) {
  const size_t n = rad_adam_num_params(a);
  double lr, b1, b2, eps;
  rad_adam_get_option(a, RAD_OPTION_LEARNING_RATE, &lr);
  rad_adam_get_option(a, RAD_OPTION_BETA1, &b1);
  rad_adam_get_option(a, RAD_OPTION_BETA2, &b2);
  rad_adam_get_option(a, RAD_OPTION_EPSILON, &eps);
  w_header(w, MAGIC_ADAM, total);
  w_u64(w, n);
  w_f64(w, lr);
  w_f64(w, b1);
  w_f64(w, b2);
  w_f64(w, eps);
  w_u64(w, rad_adam_steps(a));
  if (w->p) {
    float *m = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
    uint64_t t;
    if (!m || !v) {
      free(m), free(v);
      return RAD_ENOMEM;
    }
    rad_adam_get_state(a, m, v, &t, n);
    for (size_t i = 0; i < n; i++) w_f32(w, m[i]);
    for (size_t i = 0; i < n; i++) w_f32(w, v[i]);
    free(m), free(v);
  } else {
    w->n += 8 * n;
  }
  return RAD_OK;
}

int rad_adam_save_to_buffer(const rad_adam *a, void *buf, size_t cap, size_t *size) {
  if (!a || !size) return RAD_EINVAL;
  wbuf count = {NULL, 0};
  w_adam(&count, a, 0);
  const size_t total = count.n + 4;
  *size = total;
  if (!buf) return RAD_OK;
  if (cap < total) return RAD_ESIZE;
  wbuf w = {buf, 0};
  int rc = w_adam(&w, a, total);
  if (rc) return rc;
  w_u32(&w, rad__crc32(buf, w.n));
  return RAD_OK;
}

int rad_adam_load_from_buffer(const void *buf, size_t size, rad_adam **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  rbuf r;
  int rc = open_container(buf, size, MAGIC_ADAM, &r);
  if (rc) return rc;
  const uint64_t n = r_u64(&r);
  const double lr = r_f64(&r), b1 = r_f64(&r), b2 = r_f64(&r), eps = r_f64(&r);
  const uint64_t t = r_u64(&r);
  if (r.bad || n == 0 || n > SIZE_MAX / 8 || r.n - r.at != 8 * n) return RAD_ECORRUPT;
  rad_adam *a;
  if ((rc = rad_adam_create((size_t)n, &a))) return rc;
  float *m = malloc((size_t)n * sizeof(float)), *v = malloc((size_t)n * sizeof(float));
  if (!m || !v) {
    rc = RAD_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) m[i] = r_f32(&r);
  for (size_t i = 0; i < n; i++) v[i] = r_f32(&r);
  rc = RAD_ECORRUPT;
  if (rad_adam_set_option(a, RAD_OPTION_LEARNING_RATE, lr) ||
      rad_adam_set_option(a, RAD_OPTION_BETA1, b1) || rad_adam_set_option(a, RAD_OPTION_BETA2, b2) ||
      rad_adam_set_option(a, RAD_OPTION_EPSILON, eps) ||
      rad_adam_set_state(a, m, v, t, (size_t)n))
    goto done;
  rc = RAD_OK;
done:
  free(m), free(v);
  if (rc) {
    rad_adam_free(a);
    return rc;
  }
  *out = a;
  return RAD_OK;
}

int rad_adam_save(const rad_adam *a, const char *path) {
  if (!a || !path || !*path) return RAD_EINVAL;
  size_t n;
  int rc = rad_adam_save_to_buffer(a, NULL, 0, &n);
  if (rc) return rc;
  unsigned char *buf = malloc(n);
  if (!buf) return RAD_ENOMEM;
  rc = rad_adam_save_to_buffer(a, buf, n, &n);
  if (rc == RAD_OK) rc = write_atomic(path, buf, n);
  free(buf);
  return rc;
}

int rad_adam_load(const char *path, rad_adam **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (!path) return RAD_EINVAL;
  unsigned char *buf;
  size_t n;
  int rc = read_file(path, &buf, &n);
  if (rc) return rc;
  rc = rad_adam_load_from_buffer(buf, n, out);
  free(buf);
  return rc;
}
