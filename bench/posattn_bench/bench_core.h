/* bench_core.h -- the parts of posattn-bench that decide what a number means: the visible-pair
 * and byte counts (the same rule for every contender) and the sample statistics with their
 * stopping rule. Plain C, no I/O, so that test_bench_core.c checks them directly. */
#ifndef POSATTN_BENCH_CORE_H
#define POSATTN_BENCH_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Keys visible to the queries of ONE sequence of lq queries and lk keys, by the rule in
 * posattn.h: i' = i + lk - lq; causal j <= i'; window i' - wl <= j <= i' + wr (negative =
 * unbounded); documents: doc[i] == doc[j] or j < anchors (doc == NULL: no documents; documents
 * need lq == lk, doc has lk entries, non-decreasing). Counted per query row as an interval
 * intersection, O(lq). */
int64_t pb_visible_pairs(int32_t lq, int32_t lk, int causal, int32_t wl, int32_t wr,
                         const int32_t *doc, int32_t anchors);

/* FLOPs of the unmasked score elements: 4 * head_dim per visible (i, j) pair per query head
 * (2*d for q.k, 2*d for p*v), the same count for every contender. */
double pb_flops(int64_t visible_pairs_all_seqs, int32_t q_heads, int32_t head_dim);

/* Sample statistics of one timed contender (times in ms). spread = (p80 - p20) / median: the
 * width of the middle 60% relative to the median; robust to the rare slow outlier. */
typedef struct pb_stats {
  int n;
  double median, min, p20, p80, mean;
  double spread;  /* relative, 0.01 = 1% */
  int converged;  /* 1 when spread < target after at least min samples */
} pb_stats;

/* Sorts `t` in place and fills `s` (converged is left 0). n >= 1. */
void pb_stats_compute(double *t, int n, pb_stats *s);

/* When to stop sampling: at least min_samples AND spread < target, or max_samples, or the time
 * budget (seconds of measurement for this contender) used up. */
typedef struct pb_time_opts {
  int min_samples, max_samples;
  double target_spread; /* 0.01 */
  double max_seconds;   /* per contender and configuration */
  double warmup_seconds;
} pb_time_opts;

/* 1 = stop. `t` holds the n samples so far (not modified); `elapsed` = seconds spent sampling.
 * Sets *converged. */
int pb_should_stop(const double *t, int n, double elapsed, const pb_time_opts *o, int *converged);

#ifdef __cplusplus
}
#endif
#endif
