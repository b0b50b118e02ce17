/* Counting and statistics of posattn-bench (bench_core.h). */
#include "bench_core.h"

#include <stdlib.h>
#include <string.h>

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t len(int64_t lo, int64_t hi) { return hi >= lo ? hi - lo + 1 : 0; }

int64_t pb_visible_pairs(int32_t lq, int32_t lk, int causal, int32_t wl, int32_t wr,
                         const int32_t *doc, int32_t anchors) {
  int64_t total = 0;
  int64_t ds = 0, de = -1; /* current query's document: tokens ds..de (documents are contiguous) */
  for (int64_t i = 0; i < lq; ++i) {
    const int64_t ip = i + (int64_t)lk - lq;
    int64_t lo = 0, hi = (int64_t)lk - 1;
    if (causal) hi = min64(hi, ip);
    if (wl >= 0) lo = max64(lo, ip - wl);
    if (wr >= 0) hi = min64(hi, ip + wr);
    if (!doc) {
      total += len(lo, hi);
      continue;
    }
    if (i > de) { /* a new document starts at row i */
      ds = i;
      de = i;
      while (de + 1 < lk && doc[de + 1] == doc[i]) ++de;
    }
    const int64_t a_hi = (int64_t)anchors - 1;
    /* |own document ∪ anchors| inside [lo, hi] = |X| + |Y| - |X ∩ Y| */
    const int64_t x = len(max64(lo, ds), min64(hi, de));
    const int64_t y = len(lo, min64(hi, a_hi));
    const int64_t xy = len(max64(lo, ds), min64(min64(hi, de), a_hi));
    total += x + y - xy;
  }
  return total;
}

double pb_flops(int64_t visible_pairs_all_seqs, int32_t q_heads, int32_t head_dim) {
  return 4.0 * (double)head_dim * (double)visible_pairs_all_seqs * (double)q_heads;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Linear interpolation between closest ranks of sorted data. */
static double quantile(const double *sorted, int n, double q) {
  const double pos = q * (double)(n - 1);
  const int i = (int)pos;
  if (i + 1 >= n) return sorted[n - 1];
  return sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]);
}

void pb_stats_compute(double *t, int n, pb_stats *s) {
  memset(s, 0, sizeof *s);
  if (n < 1) return;
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += t[i];
  s->n = n;
  s->min = t[0];
  s->median = quantile(t, n, 0.5);
  s->p20 = quantile(t, n, 0.2);
  s->p80 = quantile(t, n, 0.8);
  s->mean = sum / n;
  s->spread = s->median > 0 ? (s->p80 - s->p20) / s->median : 0;
}

int pb_should_stop(const double *t, int n, double elapsed, const pb_time_opts *o, int *converged) {
  *converged = 0;
  if (n >= o->min_samples) {
    double *tmp = malloc((size_t)n * sizeof *tmp);
    if (tmp) {
      pb_stats s;
      memcpy(tmp, t, (size_t)n * sizeof *tmp);
      pb_stats_compute(tmp, n, &s);
      free(tmp);
      if (s.spread < o->target_spread) {
        *converged = 1;
        return 1;
      }
    }
  }
  if (n >= o->max_samples) return 1;
  /* The time bound still leaves the minimum sample count unless one run alone exceeds it. */
  return elapsed >= o->max_seconds && n >= 1 &&
         (n >= o->min_samples || elapsed >= 3 * o->max_seconds);
}
