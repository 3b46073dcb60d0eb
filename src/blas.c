/* The one place librad calls BLAS. */
#include <cblas.h>

#include "internal.h"

void rad__sgemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb,
                float beta, float *C, size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    /* C = beta C; BLAS implementations differ on K = 0, so do it here. */
    for (size_t i = 0; i < M; i++)
      for (size_t j = 0; j < N; j++)
        C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
              (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
              (blasint)ldc);
}
