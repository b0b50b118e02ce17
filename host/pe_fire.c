/* pe_fire.c -- FIRE (pe-spec §4): the input x, the MLP evaluated directly, and its compilation
 * into exact piecewise-linear segments for the kernels. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

double posattn_pe_fire_x(double c, double L, double eps, int64_t pq, int64_t pk) {
  double ac = fabs(c);
  double norm = (double)pq > L ? (double)pq : L;
  return log1p(ac * fabs((double)pq - (double)pk)) / (log1p(ac * norm) + eps);
}

double pa_fire_mlp_eval(const posattn_fire_params *fire, int32_t q_heads, int32_t head, double x) {
  (void)q_heads; /* w2 rows are per head; the head count only sizes the arrays */
  const float *w2 = fire->w2 + (int64_t)head * fire->mlp_width;
  double y = (double)fire->b2[head];
  for (int32_t k = 0; k < fire->mlp_width; k++) {
    double hidden = (double)fire->w1[k] * x + (double)fire->b1[k];
    if (hidden > 0) y += (double)w2[k] * hidden;
  }
  return y;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void pa_fire_segments_free(pa_fire_segments *s) {
  if (!s) return;
  free(s->start);
  free(s->slope);
  free(s->icpt);
  s->start = s->slope = s->icpt = NULL;
  s->nseg = 0;
}

posattn_status pa_fire_segments_build(const posattn_fire_params *fire, int32_t q_heads,
                                      pa_fire_segments *out, char *msg, size_t msg_size) {
  if (!fire || !out)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NULL_POINTER, "fire and out must not be NULL");
  out->nseg = 0;
  out->start = out->slope = out->icpt = NULL;
  if (q_heads < 1)
    return pa_fail(msg, msg_size, POSATTN_STATUS_BAD_SIZE, "q_heads (%d) must be >= 1",
                   (int)q_heads);
  int32_t w = fire->mlp_width;
  if (w < 1 || w > 1024)
    return pa_fail(msg, msg_size, POSATTN_STATUS_BAD_PE_PARAMS,
                   "fire.mlp_width (%d) must be in 1..1024", (int)w);
  if (!fire->w1 || !fire->b1 || !fire->w2 || !fire->b2)
    return pa_fail(msg, msg_size, POSATTN_STATUS_NULL_POINTER,
                   "fire.w1, b1, w2 and b2 must not be NULL");

  /* Hidden unit k changes sign at x = -b1/w1. Every kink in (0, inf) starts a segment, so the
   * first segment holds from 0 and the last one for all x beyond the last kink (where the MLP is
   * linear): the table is exact for any x >= 0, whatever the positions of the call. */
  out->start = (double *)malloc((size_t)(w + 1) * sizeof(double));
  if (!out->start)
    return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED, "FIRE segment table");
  int32_t nk = 0;
  for (int32_t k = 0; k < w; k++) {
    if (fire->w1[k] == 0) continue; /* constant unit: no kink */
    double t = -(double)fire->b1[k] / (double)fire->w1[k];
    if (t > 0) out->start[1 + nk++] = t;
  }
  qsort(out->start + 1, (size_t)nk, sizeof(double), cmp_double);
  int32_t nseg = 1;
  out->start[0] = 0;
  for (int32_t i = 0; i < nk; i++)
    if (out->start[1 + i] != out->start[nseg - 1]) out->start[nseg++] = out->start[1 + i];
  out->nseg = nseg;

  out->slope = (double *)malloc((size_t)q_heads * (size_t)nseg * sizeof(double));
  out->icpt = (double *)malloc((size_t)q_heads * (size_t)nseg * sizeof(double));
  if (!out->slope || !out->icpt) {
    pa_fire_segments_free(out);
    return pa_fail(msg, msg_size, POSATTN_STATUS_ALLOC_FAILED, "FIRE segment table");
  }
  for (int32_t s = 0; s < nseg; s++) {
    /* which units are on is constant inside a segment: decide at an inner point (the last
     * segment is unbounded; 2 start + 1 lies beyond its start even for start = 0) */
    double mid = s + 1 < nseg ? 0.5 * (out->start[s] + out->start[s + 1]) : 2 * out->start[s] + 1;
    for (int32_t h = 0; h < q_heads; h++) {
      const float *w2 = fire->w2 + (int64_t)h * w;
      double slope = 0, icpt = (double)fire->b2[h];
      for (int32_t k = 0; k < w; k++) {
        if ((double)fire->w1[k] * mid + (double)fire->b1[k] > 0) {
          slope += (double)w2[k] * (double)fire->w1[k];
          icpt += (double)w2[k] * (double)fire->b1[k];
        }
      }
      out->slope[(int64_t)h * nseg + s] = slope;
      out->icpt[(int64_t)h * nseg + s] = icpt;
    }
  }
  return POSATTN_STATUS_SUCCESS;
}

double pa_fire_segments_eval(const pa_fire_segments *s, int32_t head, double x) {
  /* last segment whose start <= x (x below 0 uses the first) */
  int32_t lo = 0, hi = s->nseg - 1;
  while (lo < hi) {
    int32_t mid = (lo + hi + 1) / 2;
    if (s->start[mid] <= x)
      lo = mid;
    else
      hi = mid - 1;
  }
  int64_t i = (int64_t)head * s->nseg + lo;
  return s->slope[i] * x + s->icpt[i];
}
