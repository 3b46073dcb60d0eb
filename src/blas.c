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

/* C (M x N) = op(A) B + beta C where B's and C's columns are samples:
   called in blocks of exactly RAD__COLS columns (N is a multiple), so
   every call has the same shape and BLAS takes the same path for every
   sample, whatever the batch: OpenBLAS's Haswell and Zen kernels round a
   column differently depending on the matrix width. */
void rad__sgemm_cols(int ta, size_t M, size_t N, size_t K, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc) {
  for (size_t j = 0; j < N; j += RAD__COLS) {
    const size_t nb = N - j < RAD__COLS ? N - j : RAD__COLS;
    rad__sgemm(ta, 0, M, nb, K, 1.0f, A, lda, B + j, ldb, beta, C + j, ldc);
  }
}
