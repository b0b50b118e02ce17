/* crosscheck_dump.c -- writes random REF problems and REF's answers for tests/python/crosscheck.py.
 *
 * Usage: posattn_crosscheck_dump <out_dir> <num_cases> <seed>
 * Writes <out_dir>/cases.jsonl (one JSON object per case: the descriptor, PE parameters, index
 * arrays, dtypes, and offsets) and <out_dir>/data.bin (float64 arrays: q, k, v as stored in their
 * dtype and widened exactly; out as REF wrote it, widened; lse). Offsets count float64 elements. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pa_test_shim.h"
#include "posattn.h"

static FILE *g_bin;
static long long g_off; /* float64 elements written so far */

static long long dump_doubles(const double *x, long long n) {
  long long at = g_off;
  fwrite(x, sizeof(double), (size_t)n, g_bin);
  g_off += n;
  return at;
}

static void json_floats(FILE *f, const char *key, const float *x, int n) {
  fprintf(f, ",\"%s\":[", key);
  for (int i = 0; i < n; ++i) fprintf(f, "%s%.9g", i ? "," : "", (double)x[i]);
  fprintf(f, "]");
}
static void json_ints(FILE *f, const char *key, const int32_t *x, long long n) {
  fprintf(f, ",\"%s\":[", key);
  for (long long i = 0; i < n; ++i) fprintf(f, "%s%d", i ? "," : "", x[i]);
  fprintf(f, "]");
}

static float *rand_floats(pat_rng *r, int n, double lo, double hi) {
  float *x = (float *)malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  for (int i = 0; i < n; ++i) x[i] = (float)pat_rng_uniform(r, lo, hi);
  return x;
}

/* x[n] widened to fp64 (the RoPE tables are fp64; their values stay float-representable so the
 * JSON float list describes them exactly). */
static double *widen(const float *x, int n) {
  double *y = (double *)malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  for (int i = 0; i < n; ++i) y[i] = x[i];
  return y;
}

static posattn_dtype rand_dtype(pat_rng *r) { return (posattn_dtype)pat_rng_int(r, 1, 3); }

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <out_dir> <num_cases> <seed>\n", argv[0]);
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/cases.jsonl", argv[1]);
  FILE *js = fopen(path, "w");
  snprintf(path, sizeof path, "%s/data.bin", argv[1]);
  g_bin = fopen(path, "wb");
  if (!js || !g_bin) {
    fprintf(stderr, "cannot write into %s\n", argv[1]);
    return 2;
  }
  const int ncases = atoi(argv[2]);
  pat_rng rng;
  pat_rng_seed(&rng, (uint64_t)atoll(argv[3]));
  posattn_context *ctx = NULL;
  if (posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx) != POSATTN_STATUS_SUCCESS) {
    fprintf(stderr, "no REF context\n");
    return 2;
  }

  int failures = 0;
  for (int c = 0; c < ncases; ++c) {
    pat_rng *r = &rng;
    posattn_attention_desc desc;
    posattn_attention_desc_init(&desc);
    const int varlen = pat_rng_uniform(r, 0, 1) < 0.3;
    const int docs = pat_rng_uniform(r, 0, 1) < 0.2;
    desc.batch = pat_rng_int(r, 1, 3);
    desc.kv_heads = pat_rng_int(r, 1, 3);
    desc.q_heads = desc.kv_heads * pat_rng_int(r, 1, 3);
    desc.head_dim = pat_rng_uniform(r, 0, 1) < 0.5 ? 8 << pat_rng_int(r, 0, 3)
                                                   : 2 * pat_rng_int(r, 2, 24);
    /* lengths; documents need self-attention */
    int32_t lq[4], lk[4], cuq[5] = {0}, cuk[5] = {0};
    int32_t maxq = 0, maxk = 0;
    for (int32_t b = 0; b < desc.batch; ++b) {
      /* varlen sequences may be empty, except the first (so the call has tokens) */
      lq[b] = pat_rng_int(r, varlen && b > 0 ? 0 : 1, 24);
      lk[b] = docs ? lq[b] : pat_rng_int(r, varlen && b > 0 ? 0 : 1, 24);
      if (!varlen) {
        lq[b] = lq[0];
        lk[b] = lk[0];
      }
      cuq[b + 1] = cuq[b] + lq[b];
      cuk[b + 1] = cuk[b] + lk[b];
      if (lq[b] > maxq) maxq = lq[b];
      if (lk[b] > maxk) maxk = lk[b];
    }
    desc.q_len = maxq > 0 ? maxq : 1;
    desc.kv_len = maxk > 0 ? maxk : 1;
    if (varlen) {
      desc.cu_seqlens_q = cuq;
      desc.cu_seqlens_kv = docs ? cuq : cuk;
    }
    const int64_t tq = pat_q_rows(&desc), tk = pat_kv_rows(&desc);

    int32_t *qpos = NULL, *kpos = NULL, *doc = NULL;
    if (pat_rng_uniform(r, 0, 1) < 0.35) {
      qpos = (int32_t *)malloc(sizeof(int32_t) * (size_t)(tq + 1));
      kpos = (int32_t *)malloc(sizeof(int32_t) * (size_t)(tk + 1));
      int32_t top = pat_rng_uniform(r, 0, 1) < 0.3 ? 200000 : 3000;
      for (int64_t i = 0; i < tq; ++i) qpos[i] = pat_rng_int(r, 0, top);
      for (int64_t j = 0; j < tk; ++j) kpos[j] = pat_rng_int(r, 0, top);
      desc.q_positions = qpos;
      desc.kv_positions = kpos;
    }
    desc.causal = pat_rng_uniform(r, 0, 1) < 0.5;
    if (pat_rng_uniform(r, 0, 1) < 0.3) {
      desc.window_left = pat_rng_int(r, -1, 10);
      desc.window_right = pat_rng_int(r, -1, 10);
    }
    if (pat_rng_uniform(r, 0, 1) < 0.2) desc.softcap = (float)pat_rng_uniform(r, 1, 20);
    if (pat_rng_uniform(r, 0, 1) < 0.3) desc.softmax_scale = (float)pat_rng_uniform(r, 0.05, 1);
    if (docs) {
      doc = (int32_t *)malloc(sizeof(int32_t) * (size_t)(tq + 1));
      desc.num_anchor_tokens = pat_rng_int(r, 0, 2);
      int anchors_fit = 1;
      for (int32_t b = 0; b < desc.batch; ++b) {
        int64_t s0 = varlen ? cuq[b] : (int64_t)b * desc.q_len;
        int32_t n = varlen ? lq[b] : desc.q_len, id = pat_rng_int(r, 0, 3);
        if (n < desc.num_anchor_tokens) anchors_fit = 0;
        for (int32_t i = 0; i < n; ++i) {
          if (i > 0 && pat_rng_uniform(r, 0, 1) < 0.25) ++id;
          doc[s0 + i] = id;
        }
      }
      if (!anchors_fit) desc.num_anchor_tokens = 0;
      desc.doc_ids = doc;
    }

    /* positional encoding */
    posattn_pe *pe = &desc.pe;
    /* RoPE and xPos carry eight scalings each: give them more of the cases */
    const double u = pat_rng_uniform(r, 0, 1);
    const posattn_pe_kind others[6] = {POSATTN_PE_NONE, POSATTN_PE_ALIBI, POSATTN_PE_FIRE,
                                       POSATTN_PE_T5, POSATTN_PE_KERPLE_LOG,
                                       POSATTN_PE_KERPLE_POWER};
    pe->kind = u < 0.4 ? POSATTN_PE_ROPE : u < 0.55 ? POSATTN_PE_XPOS : others[pat_rng_int(r, 0, 5)];
    const int32_t d = desc.head_dim;
    double *ext64 = NULL, *invf64 = NULL;
    float *ext = NULL, *invf = NULL, *slopes = NULL, *w1 = NULL, *b1 = NULL, *w2 = NULL,
          *b2 = NULL, *table = NULL, *ka = NULL, *kp = NULL;
    if (pe->kind == POSATTN_PE_ROPE || pe->kind == POSATTN_PE_XPOS) {
      posattn_rope_params *rp = &pe->rope;
      rp->layout = (posattn_rope_layout)pat_rng_int(r, 0, 1);
      rp->rotary_dim = pat_rng_uniform(r, 0, 1) < 0.5 ? 0 : 2 * pat_rng_int(r, 2 < d / 2 ? 2 : 1, d / 2);
      /* a rotated block that does not start at feature 0 (DeepSeek MLA); xPos needs offset 0 */
      if (pe->kind == POSATTN_PE_ROPE && d >= 4 && pat_rng_uniform(r, 0, 1) < 0.3) {
        rp->rotary_offset = pat_rng_int(r, 1, d - 2);
        rp->rotary_dim = 2 * pat_rng_int(r, 1, (d - rp->rotary_offset) / 2);
      }
      const int32_t rd = rp->rotary_dim ? rp->rotary_dim : d;
      if (pat_rng_uniform(r, 0, 1) < 0.2) rp->active_pairs = pat_rng_int(r, 1, rd / 2);
      rp->base = pat_rng_uniform(r, 0, 1) < 0.5 ? 10000 : pat_rng_uniform(r, 100, 1e6);
      rp->scaling = (posattn_rope_scaling)pat_rng_int(r, 0, 7);
      if (rd < 4 && (rp->scaling == POSATTN_ROPE_SCALING_NTK ||
                     rp->scaling == POSATTN_ROPE_SCALING_DYNAMIC_NTK))
        rp->scaling = POSATTN_ROPE_SCALING_LINEAR; /* d/(d-2) needs rotary_dim >= 4 */
      rp->factor = pat_rng_uniform(r, 1, 40);
      rp->original_max_position = pat_rng_int(r, 8, 8192);
      rp->angle_mode = (posattn_angle_mode)pat_rng_int(r, 0, 1);
      if (rp->scaling == POSATTN_ROPE_SCALING_DYNAMIC_NTK && pat_rng_uniform(r, 0, 1) < 0.5)
        rp->dynamic_seq_len = pat_rng_int(r, 1, 20000);
      if (rp->scaling == POSATTN_ROPE_SCALING_YARN) {
        rp->beta_fast = pat_rng_uniform(r, 8, 64);
        rp->beta_slow = pat_rng_uniform(r, 0.5, 4);
        rp->yarn_truncate = pat_rng_int(r, 0, 1);
        if (pat_rng_uniform(r, 0, 1) < 0.5) { /* DeepSeek's pair; used only when both are set */
          rp->mscale = pat_rng_uniform(r, 0, 1) < 0.8 ? pat_rng_uniform(r, 0.5, 1.5) : 0;
          rp->mscale_all_dim = pat_rng_uniform(r, 0.5, 1.5);
        }
      }
      if (rp->scaling == POSATTN_ROPE_SCALING_LLAMA3) {
        rp->low_freq_factor = pat_rng_uniform(r, 0.5, 2);
        rp->high_freq_factor = rp->low_freq_factor + pat_rng_uniform(r, 0.5, 6);
      }
      if (rp->scaling == POSATTN_ROPE_SCALING_LONGROPE) {
        ext = rand_floats(r, rd / 2, 1, 50);
        rp->ext_factors = ext64 = widen(ext, rd / 2);
        rp->max_position = pat_rng_uniform(r, 0, 1) < 0.3
                               ? 0
                               : pat_rng_int(r, rp->original_max_position, 200000);
        if (pat_rng_uniform(r, 0, 1) < 0.5) rp->longrope_factor = pat_rng_uniform(r, 0.5, 64);
      }
      if (rp->scaling == POSATTN_ROPE_SCALING_INV_FREQ) {
        invf = rand_floats(r, rd / 2, 1e-5, 2);
        rp->inv_freq = invf64 = widen(invf, rd / 2);
      }
      if (pat_rng_uniform(r, 0, 1) < 0.25) rp->attention_factor = pat_rng_uniform(r, 0.5, 1.5);
      if (pe->kind == POSATTN_PE_XPOS) {
        pe->xpos.scale_base = pat_rng_uniform(r, 64, 1024);
        pe->xpos.gamma = pat_rng_uniform(r, 0.1, 1);
        if (qpos) { /* keep zeta^(delta/scale_base) far from under/overflow */
          for (int64_t i = 0; i < tq; ++i) qpos[i] %= 300;
          for (int64_t j = 0; j < tk; ++j) kpos[j] %= 300;
        }
      }
    } else if (pe->kind == POSATTN_PE_ALIBI) {
      if (pat_rng_uniform(r, 0, 1) < 0.5) {
        slopes = rand_floats(r, desc.q_heads, 0, 1);
        pe->alibi.slopes = slopes;
      }
    } else if (pe->kind == POSATTN_PE_FIRE) {
      int32_t w = pat_rng_int(r, 1, 40);
      pe->fire.mlp_width = w;
      w1 = rand_floats(r, w, -3, 3);
      b1 = rand_floats(r, w, -1.5, 1.5);
      w2 = rand_floats(r, w * desc.q_heads, -1, 1);
      b2 = rand_floats(r, desc.q_heads, -1, 1);
      pe->fire.w1 = w1;
      pe->fire.b1 = b1;
      pe->fire.w2 = w2;
      pe->fire.b2 = b2;
      pe->fire.c = pat_rng_uniform(r, -1, 1);
      if (pe->fire.c == 0) pe->fire.c = 0.1;
      pe->fire.L = pat_rng_uniform(r, 1, 600);
      pe->fire.eps = pat_rng_uniform(r, 0, 1) < 0.5 ? 1e-6 : 0.0;
    } else if (pe->kind == POSATTN_PE_T5) {
      pe->t5.bidirectional = pat_rng_int(r, 0, 1);
      pe->t5.num_buckets = 2 * pat_rng_int(r, 2, 24);
      int32_t max_exact = pe->t5.num_buckets / (pe->t5.bidirectional ? 4 : 2);
      pe->t5.max_distance = max_exact + pat_rng_int(r, 1, 300);
      table = rand_floats(r, pe->t5.num_buckets * desc.q_heads, -3, 3);
      pe->t5.table = table;
    } else if (pe->kind == POSATTN_PE_KERPLE_LOG || pe->kind == POSATTN_PE_KERPLE_POWER) {
      ka = rand_floats(r, desc.q_heads, 0.01, 2);
      kp = rand_floats(r, desc.q_heads, 0.01, 2);
      pe->kerple.a = ka;
      pe->kerple.p = kp;
    }

    posattn_dtype in_dt = rand_dtype(r), out_dt = rand_dtype(r);
    pat_inputs in;
    if (pat_inputs_random(&in, &desc, in_dt, r, pat_rng_uniform(r, 0.5, 3)) != 0) {
      fprintf(stderr, "allocation failed\n");
      return 2;
    }
    const int64_t nq = tq * desc.q_heads * d, nk = tk * desc.kv_heads * d;
    const int64_t nl = tq * desc.q_heads;
    double *buf = (double *)malloc(sizeof(double) * (size_t)(nq + 2 * nk + nq + nl + 1));
    double *qd = buf, *kd = qd + nq, *vd = kd + nk, *od = vd + nk, *ld = od + nq;
    for (int64_t i = 0; i < nq; ++i) qd[i] = pat_load(in.q.data, in_dt, i);
    for (int64_t i = 0; i < nk; ++i) kd[i] = pat_load(in.k.data, in_dt, i);
    for (int64_t i = 0; i < nk; ++i) vd[i] = pat_load(in.v.data, in_dt, i);
    pat_run run = pat_forward_checked(ctx, &desc, &in.tq, &in.tk, &in.tv, out_dt, od, ld);
    if (run.status != POSATTN_STATUS_SUCCESS || !run.guards_ok || run.out_nan || run.lse_nan) {
      fprintf(stderr, "case %d: REF forward failed: %s (%s), guards %d, NaN left %lld/%lld\n", c,
              posattn_status_string(run.status), run.message, run.guards_ok,
              (long long)run.out_nan, (long long)run.lse_nan);
      ++failures;
    } else {
      long long off = dump_doubles(buf, nq + 2 * nk + nq + nl);
      fprintf(js,
              "{\"case\":%d,\"offset\":%lld,\"batch\":%d,\"q_heads\":%d,\"kv_heads\":%d,"
              "\"head_dim\":%d,\"q_len\":%d,\"kv_len\":%d,\"total_q\":%lld,\"total_kv\":%lld,"
              "\"causal\":%d,\"window_left\":%d,\"window_right\":%d,\"softcap\":%.9g,"
              "\"softmax_scale\":%.9g,\"num_anchor_tokens\":%d,\"in_dtype\":\"%s\","
              "\"out_dtype\":\"%s\",\"pe_kind\":%d",
              c, off, desc.batch, desc.q_heads, desc.kv_heads, d, desc.q_len, desc.kv_len,
              (long long)tq, (long long)tk, desc.causal, desc.window_left, desc.window_right,
              (double)desc.softcap, (double)desc.softmax_scale, desc.num_anchor_tokens,
              posattn_dtype_string(in_dt), posattn_dtype_string(out_dt), pe->kind);
      if (varlen) {
        json_ints(js, "cu_seqlens_q", desc.cu_seqlens_q, desc.batch + 1);
        json_ints(js, "cu_seqlens_kv", desc.cu_seqlens_kv, desc.batch + 1);
      }
      if (desc.q_positions) {
        json_ints(js, "q_positions", desc.q_positions, tq);
        json_ints(js, "kv_positions", desc.kv_positions, tk);
      }
      if (doc) json_ints(js, "doc_ids", doc, tq);
      const posattn_rope_params *rp = &pe->rope;
      fprintf(js,
              ",\"rope\":{\"layout\":%d,\"rotary_dim\":%d,\"base\":%.17g,\"scaling\":%d,"
              "\"factor\":%.17g,\"original_max_position\":%d,\"max_position\":%d,"
              "\"dynamic_seq_len\":%d,\"beta_fast\":%.17g,\"beta_slow\":%.17g,"
              "\"yarn_truncate\":%d,\"low_freq_factor\":%.17g,\"high_freq_factor\":%.17g,"
              "\"attention_factor\":%.17g,\"mscale\":%.17g,\"mscale_all_dim\":%.17g,"
              "\"longrope_factor\":%.17g,\"rotary_offset\":%d,\"active_pairs\":%d",
              rp->layout, rp->rotary_dim, rp->base, rp->scaling, rp->factor,
              rp->original_max_position, rp->max_position, rp->dynamic_seq_len, rp->beta_fast,
              rp->beta_slow, rp->yarn_truncate, rp->low_freq_factor, rp->high_freq_factor,
              rp->attention_factor, rp->mscale, rp->mscale_all_dim, rp->longrope_factor,
              rp->rotary_offset, rp->active_pairs);
      const int32_t rd = rp->rotary_dim ? rp->rotary_dim : d;
      if (ext) json_floats(js, "ext_factors", ext, rd / 2);
      if (invf) json_floats(js, "inv_freq", invf, rd / 2);
      fprintf(js, "},\"xpos\":{\"scale_base\":%.17g,\"gamma\":%.17g}", pe->xpos.scale_base,
              pe->xpos.gamma);
      if (slopes) json_floats(js, "alibi_slopes", slopes, desc.q_heads);
      if (pe->kind == POSATTN_PE_FIRE) {
        fprintf(js, ",\"fire\":{\"width\":%d,\"c\":%.17g,\"L\":%.17g,\"eps\":%.17g",
                pe->fire.mlp_width, pe->fire.c, pe->fire.L, pe->fire.eps);
        json_floats(js, "w1", w1, pe->fire.mlp_width);
        json_floats(js, "b1", b1, pe->fire.mlp_width);
        json_floats(js, "w2", w2, pe->fire.mlp_width * desc.q_heads);
        json_floats(js, "b2", b2, desc.q_heads);
        fprintf(js, "}");
      }
      if (pe->kind == POSATTN_PE_T5) {
        fprintf(js, ",\"t5\":{\"num_buckets\":%d,\"max_distance\":%d,\"bidirectional\":%d",
                pe->t5.num_buckets, pe->t5.max_distance, pe->t5.bidirectional);
        json_floats(js, "table", table, pe->t5.num_buckets * desc.q_heads);
        fprintf(js, "}");
      }
      if (ka) {
        json_floats(js, "kerple_a", ka, desc.q_heads);
        json_floats(js, "kerple_p", kp, desc.q_heads);
      }
      fprintf(js, "}\n");
    }
    pat_inputs_free(&in);
    free(buf);
    free(qpos);
    free(kpos);
    free(doc);
    free(ext);
    free(invf);
    free(ext64);
    free(invf64);
    free(slopes);
    free(w1);
    free(b1);
    free(w2);
    free(b2);
    free(table);
    free(ka);
    free(kp);
  }
  posattn_context_destroy(ctx);
  fclose(js);
  fclose(g_bin);
  if (failures) fprintf(stderr, "%d of %d cases failed in REF\n", failures, ncases);
  return failures ? 1 : 0;
}
