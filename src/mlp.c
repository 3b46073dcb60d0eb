/* Two-layer perceptron on feature-major batches; see mlp.h. */
#include <math.h>

#include "kern.h"
#include "mlp.h"

size_t rad__mlp_num_params(const rad__mlp *s) {
  return s->hidden * s->in + s->hidden + s->out * s->hidden + s->out;
}

int rad__mlp_params_ok(const rad__mlp *s) {
  size_t a, b, t;
  if (!rad__mul_size(s->hidden, s->in, &a) || !rad__mul_size(s->out, s->hidden, &b))
    return 0;
  t = a + b;
  if (t < a) return 0;
  if (t + s->hidden < t) return 0;
  t += s->hidden;
  if (t + s->out < t) return 0;
  t += s->out;
  return rad__mul_size(t, sizeof(float), &a);
}

void rad__mlp_init(const rad__mlp *s, float *p, uint64_t seed, uint32_t stream) {
  size_t n1 = s->hidden * s->in + s->hidden;
  double scale = 1.0 / sqrt((double)(s->in ? s->in : 1));
  for (size_t i = 0; i < n1; i++) {
    uint32_t r[4];
    rad__philox(seed, (uint32_t)i, (uint32_t)((uint64_t)i >> 32), stream,
                0x6d6c7031u /* "mlp1" */, r);
    p[i] = (float)((2.0 * rad__u01(r[0]) - 1.0) * scale);
  }
  memset(p + n1, 0, (s->out * s->hidden + s->out) * sizeof(float));
}

void rad__mlp_forward(const rad__mlp *s, const float *p, size_t m,
                      const float *X, float *H, float *O) {
  const size_t in = s->in, hid = s->hidden, out = s->out;
  const float *W1 = p, *b1 = p + hid * in, *W2 = b1 + hid, *b2 = W2 + out * hid;
  const rad__kernels *K = rad__kern();
  rad__sgemm_cols(0, hid, m, in, W1, in, X, m, 0.0f, H, m);
  K->bias_relu(H, b1, hid, m);
  rad__sgemm_cols(0, out, m, hid, W2, hid, H, m, 0.0f, O, m);
  K->bias_add(O, b2, out, m);
}

void rad__mlp_backward(const rad__mlp *s, const float *p, size_t m,
                       const float *X, const float *H, const float *gO,
                       float *gH, float *gX, float *gp) {
  const size_t in = s->in, hid = s->hidden, out = s->out;
  const float *W1 = p, *W2 = p + hid * in + hid;
  const rad__kernels *K = rad__kern();
  if (gp) {
    float *gW1 = gp, *gb1 = gp + hid * in, *gW2 = gb1 + hid, *gb2 = gW2 + out * hid;
    rad__sgemm(0, 1, out, hid, m, 1.0f, gO, m, H, m, 1.0f, gW2, hid);
    K->row_sums_add(gb2, gO, out, m);
    /* gH = W2^T gO, masked by relu' (zero where the unit was off) */
    rad__sgemm_cols(1, hid, m, out, W2, hid, gO, m, 0.0f, gH, m);
    K->relu_mask_sums(gH, H, gb1, hid, m);
    rad__sgemm(0, 1, hid, in, m, 1.0f, gH, m, X, m, 1.0f, gW1, in);
  } else {
    rad__sgemm_cols(1, hid, m, out, W2, hid, gO, m, 0.0f, gH, m);
    K->relu_mask(gH, H, hid * m);
  }
  if (gX) rad__sgemm_cols(1, in, m, hid, W1, in, gH, m, 0.0f, gX, m);
}
