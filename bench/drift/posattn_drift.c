/* posattn-drift -- precision studies: how far bf16/fp16/fp32 attention drifts from fp64, where
 * and why (docs/precision.md reports the findings and the commands that made every figure).
 *
 *   posattn-drift [--exp a,b,c] [--full] [--backend ref|emu|cuda] [--out DIR] [--seed N]
 *                 [--max-len N] [--rows N] [--draws N] [--kv-max-len N] [--kv-draws N]
 *                 [--sink-weight W]
 *                 [--outlier-pairs N] [--outlier-gain G] [--activations DIR [--rope-base B]]
 *                 [--no-plot]
 *
 * a  RoPE relative-position violation against the shift s (up to 2^20), per q/k spectrum
 * b  attention output error against fp64 as the context grows (sampled query rows), sink variants
 * c  where to rotate K: logit error against position for caches and in-kernel rotation
 * d  a quantised KV cache (fp8 e4m3 / e5m2, bf16): decode output and LSE error against fp64 as
 *    the context grows to 128k, with and without RoPE
 * Each experiment writes DIR/<name>.csv, .json, and .png (gnuplot; CSV/JSON only, with a
 * message, when gnuplot is missing). --backend emu|cuda makes the kernels produce experiment b's
 * outputs (a and c are logit-level studies and always use the emulation).
 *
 * Default run: 2-2.5 minutes of CPU (215-267 s wall on 2 shared cores). --full: denser grids,
 * more samples. --activations: a, b, c on a model's captured q, k, v (drift.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "drift.h"
#include "posattn.h"
#ifdef POSATTN_DRIFT_GPU_REF64
#include "gpu_ref64.h"
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_progress(void *user, const char *line) {
  double t0 = *(const double *)user;
  fprintf(stderr, "[%6.1f s] %s\n", now_s() - t0, line);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: posattn-drift [--exp a,b,c] [--full] [--backend ref|emu|cuda] [--out DIR]\n"
          "                     [--seed N] [--max-len N] [--rows N] [--draws N]\n"
          "                     [--kv-max-len N] [--kv-draws N]\n"
          "                     [--sink-weight W] [--outlier-pairs N] [--outlier-gain G]\n"
          "                     [--activations DIR [--rope-base B]] [--no-plot]\n"
          "  --exp       experiments to run (default a,b,c)\n"
          "  --full      denser grids and more samples (minutes longer)\n"
          "  --backend   who computes experiment b's low-precision outputs: ref = the emulation\n"
          "              (default), emu = the EMU kernels, cuda = the GPU kernels\n"
          "  --out       output directory (default drift-out)\n"
          "  --max-len   experiment b's longest sequence (default 65536; 4096 with emu)\n"
          "  --rows      experiment b's sampled query rows per length (default 20; 4 with emu;\n"
          "              32 with --full); each row is one draw of the medians and bands\n"
          "  --draws     experiment a's draws (q and 64 keys) per point (default 20; 64 with\n"
          "              --full)\n"
          "  --kv-max-len  experiment d's longest context (default 131072)\n"
          "  --kv-draws  experiment d's query draws per point (default 20; 32 with --full)\n"
          "  --sink-weight  experiment b, variant sinkfix: the sink's fp64 weight (default 0.5)\n"
          "  --outlier-pairs, --outlier-gain  experiment a's spectra low/high: how many RoPE\n"
          "              pairs (default 4) get their q, k components multiplied by what (default 8)\n"
          "  --activations  run a, b, c on q, k, v captured from a model: DIR/q.npy [T,Hq,D],\n"
          "              k.npy and v.npy [T,Hkv,D] (float32/16/64, before RoPE), positions.npy [T]\n"
          "              (int32/64); see docs/precision.md \"Real activations\"\n"
          "  --rope-base    the model's RoPE base for --activations (default 10000)\n"
          "  --no-plot   CSV and JSON only\n");
}

/* ---- output ------------------------------------------------------------------------------------ */

static int series_list(const pa_drift_table *t, const char *names[], int cap) {
  int n = 0;
  for (size_t r = 0; r < t->nrows; ++r) {
    int seen = 0;
    for (int i = 0; i < n && !seen; ++i) seen = strcmp(names[i], t->series[r]) == 0;
    if (!seen && n < cap) names[n++] = t->series[r];
  }
  return n;
}

static void put_num(FILE *f, double v, int json) {
  if (isnan(v)) fputs(json ? "null" : "nan", f);
  else fprintf(f, "%.9g", v);
}

static int write_csv(const char *path, const pa_drift_table *t) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs("series", f);
  for (int c = 0; c < t->ncols; ++c) fprintf(f, ",%s", t->cols[c]);
  fputc('\n', f);
  for (size_t r = 0; r < t->nrows; ++r) {
    fputs(t->series[r], f);
    for (int c = 0; c < t->ncols; ++c) {
      fputc(',', f);
      put_num(f, t->val[r * (size_t)t->ncols + c], 0);
    }
    fputc('\n', f);
  }
  return fclose(f);
}

static int write_json(const char *path, const pa_drift_table *t, const char *opts_json,
                      double seconds) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  time_t now = time(NULL);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  fprintf(f, "{\n  \"experiment\": \"%s\",\n  \"tool\": \"posattn-drift\",\n", t->name);
  fprintf(f, "  \"posattn_version\": \"%s\",\n  \"date\": \"%s\",\n", posattn_version_string(), date);
  fprintf(f, "  \"seconds\": %.1f,\n  \"options\": %s,\n  \"columns\": [\"series\"", seconds,
          opts_json);
  for (int c = 0; c < t->ncols; ++c) fprintf(f, ", \"%s\"", t->cols[c]);
  fputs("],\n  \"rows\": [\n", f);
  for (size_t r = 0; r < t->nrows; ++r) {
    fprintf(f, "    {\"series\": \"%s\"", t->series[r]);
    for (int c = 0; c < t->ncols; ++c) {
      fprintf(f, ", \"%s\": ", t->cols[c]);
      put_num(f, t->val[r * (size_t)t->ncols + c], 1);
    }
    fprintf(f, "}%s\n", r + 1 < t->nrows ? "," : "");
  }
  fputs("  ]\n}\n", f);
  return fclose(f);
}

/* gnuplot data: one block per series (gnuplot `index`), numeric columns only */
static int write_dat(const char *path, const pa_drift_table *t, const char *names[], int ns) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  for (int s = 0; s < ns; ++s) {
    fprintf(f, "# %s\n", names[s]);
    for (size_t r = 0; r < t->nrows; ++r) {
      if (strcmp(t->series[r], names[s]) != 0) continue;
      for (int c = 0; c < t->ncols; ++c) {
        if (c) fputc(' ', f);
        put_num(f, t->val[r * (size_t)t->ncols + c], 0);
      }
      fputc('\n', f);
    }
    fputs("\n\n", f);
  }
  return fclose(f);
}

/* one panel: column `col` (1-based in the .dat) of every series whose name contains `filter`;
 * with band > 0, columns band and band + 1 (10 % and 90 %) drawn as a shaded band */
static void gp_panel(FILE *g, const char *dat, const char *names[], int ns, const char *filter,
                     int col, int band, const char *title, const char *xlabel, const char *ylabel,
                     int logy) {
  fprintf(g, "set title \"%s\"\nset xlabel \"%s\"\nset ylabel \"%s\"\n", title, xlabel, ylabel);
  fprintf(g, "set logscale x 2\nset format x \"2^{%%L}\"\n%s\n",
          logy ? "set logscale y\nset format y \"%.0e\"" : "unset logscale y\nset format y \"%.2f\"");
  fputs("plot ", g);
  int first = 1;
  for (int s = 0; s < ns; ++s) {
    if (filter && !strstr(names[s], filter)) continue;
    if (band > 0) /* zeros cannot sit on a log axis: drop them (the CSV keeps them) */
      fprintf(g, "%s'%s' index %d using 1:($%d>0?$%d:1/0):($%d>0?$%d:1/0) with filledcurves "
                 "fs transparent solid 0.15 lc %d notitle",
              first ? "" : ", \\\n     ", dat, s, band, band, band + 1, band + 1, s + 1);
    fprintf(g, "%s'%s' index %d using 1:($%d>0?$%d:1/0) with linespoints lc %d title \"%s\"",
            first && band <= 0 ? "" : ", \\\n     ", dat, s, col, col, s + 1, names[s]);
    first = 0;
  }
  fputc('\n', g);
}

static int plot(const char *dir, const pa_drift_table *t) {
  const char *names[64];
  int ns = series_list(t, names, 64);
  char dat[1024], gp[1024], png[1024];
  snprintf(dat, sizeof dat, "%s/%s.dat", dir, t->name);
  snprintf(gp, sizeof gp, "%s/%s.gp", dir, t->name);
  snprintf(png, sizeof png, "%s/%s.png", dir, t->name);
  if (write_dat(dat, t, names, ns) != 0) return -1;
  FILE *g = fopen(gp, "w");
  if (!g) return -1;
  fprintf(g, "set terminal pngcairo size 1400,1000 font \",10\"\nset output '%s'\n", png);
  fputs("set key left top font \",8\"\nset grid\n", g);
  if (strcmp(t->name, "a_rope_shift") == 0 && strncmp(t->series[0], "real/", 5) == 0) {
    fputs("set multiplot layout 1,1 title \"RoPE relative-position violation on the activations: "
          "max over 64 keys, median and 10-90 % band over draws\"\n", g);
    gp_panel(g, dat, names, ns, NULL, 2, 3, "real q, k", "shift s", "max |dlogit|", 1);
  } else if (strcmp(t->name, "a_rope_shift") == 0) {
    fputs("set multiplot layout 3,1 title \"RoPE relative-position violation: positions (m,n) "
          "vs (m+s,n+s), d=128, base 1e4; max over 64 keys, median and 10-90 % band over "
          "draws\"\n", g);
    gp_panel(g, dat, names, ns, "iso/", 2, 3, "isotropic q, k", "shift s", "max |dlogit|", 1);
    gp_panel(g, dat, names, ns, "low/", 2, 3, "outlier pairs: the slowest (--outlier-pairs, --outlier-gain)", "shift s",
             "max |dlogit|", 1);
    gp_panel(g, dat, names, ns, "high/", 2, 3, "outlier pairs: the fastest", "shift s",
             "max |dlogit|", 1);
  } else if (strcmp(t->name, "b_context_growth") == 0) {
    fputs("set multiplot layout 3,2 title \"bf16 tensor-core attention vs fp64 on the same bf16 "
          "inputs (sampled rows near the end), d=128; median and 10-90 % band over rows\"\n", g);
    static const char *const panels[][2] = {
        {"/plain", "NRMSE, no sink token"},
        {"/sink0", "NRMSE, sink = token 0 at position 0"},
        {"/sinkoff", "NRMSE, sink = token 0 at position 65536"},
        {"/sinkmid", "NRMSE, sink = token len/2, token 0 ordinary"},
        {"/sinkfix", "NRMSE, sink at 0 with its fp64 weight held fixed"}};
    for (int i = 0; i < 5; ++i)
      gp_panel(g, dat, names, ns, panels[i][0], 2, 3, panels[i][1], "sequence length", "NRMSE", 1);
    int has_share = 0; /* kernel backends cannot report per-key weights */
    for (size_t r = 0; r < t->nrows; ++r) has_share |= !isnan(t->val[r * (size_t)t->ncols + 5]);
    if (has_share)
      gp_panel(g, dat, names, ns, "rope-exact/sink", 6, 7,
               "RoPE exact: the sink's share of the weight error (normalised weights)",
               "sequence length", "share", 0);
    else
      gp_panel(g, dat, names, ns, "/sink", 12, 13, "sink token's fp64 attention weight",
               "sequence length", "weight", 0);
  } else if (strcmp(t->name, "d_kv_cache") == 0) {
    fputs("set multiplot layout 2,2 title \"Quantised KV cache vs fp64 (everything else fp64): "
          "decode of the newest token over the whole context, d=128; FP8 with a per-tensor amax "
          "scale; median and 10-90 % band over query draws\"\n", g);
    gp_panel(g, dat, names, ns, "/nope/", 2, 3, "output NRMSE, no RoPE", "context length", "NRMSE", 1);
    gp_panel(g, dat, names, ns, "/rope/", 2, 3, "output NRMSE, RoPE (K rotated, then stored)",
             "context length", "NRMSE", 1);
    gp_panel(g, dat, names, ns, "/nope/", 5, 6, "|LSE error|, no RoPE", "context length", "|dLSE|", 1);
    gp_panel(g, dat, names, ns, "/rope/", 5, 6, "|LSE error|, RoPE", "context length", "|dLSE|", 1);
  } else {
    fputs("set multiplot layout 2,1 title \"Where to rotate K: logit error vs fp64 (same rounded "
          "inputs), d=128, base 1e4\"\n", g);
    gp_panel(g, dat, names, ns, NULL, 2, 3, "|logit error|: median and 10-90 % band over draws",
             "key position", "|err|", 1);
    gp_panel(g, dat, names, ns, NULL, 6, 0, "max |logit error|", "key position", "max |err|", 1);
  }
  fputs("unset multiplot\n", g);
  fclose(g);
  char cmd[2200];
  snprintf(cmd, sizeof cmd, "gnuplot '%s'", gp);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- main --------------------------------------------------------------------------------------- */

static int parse_int(const char *s, long lo, long hi, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

int main(int argc, char **argv) {
  const char *exps = "a,b,c", *out = "drift-out", *backend = "ref";
  int full = 0, noplot = 0;
  long seed = 20241118, max_len = 0, rows = 0, draws = 0, kv_max_len = 0, kv_draws = 0;
  long pairs = 4;
  double sink_weight = 0.5, gain = 8.0, rope_base = 10000.0;
  const char *acts_dir = NULL;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    int ok = 1;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--full") == 0) full = 1;
    else if (strcmp(a, "--no-plot") == 0) noplot = 1;
    else if (!val) ok = 0;
    else if (strcmp(a, "--exp") == 0) exps = argv[++i];
    else if (strcmp(a, "--out") == 0) out = argv[++i];
    else if (strcmp(a, "--backend") == 0) backend = argv[++i];
    else if (strcmp(a, "--seed") == 0) ok = parse_int(argv[++i], 0, 0x7fffffffL, &seed);
    else if (strcmp(a, "--max-len") == 0) ok = parse_int(argv[++i], 1024, 1L << 22, &max_len);
    else if (strcmp(a, "--rows") == 0) ok = parse_int(argv[++i], 1, 4096, &rows);
    else if (strcmp(a, "--draws") == 0) ok = parse_int(argv[++i], 1, 4096, &draws);
    else if (strcmp(a, "--kv-max-len") == 0) ok = parse_int(argv[++i], 1024, 1L << 21, &kv_max_len);
    else if (strcmp(a, "--kv-draws") == 0) ok = parse_int(argv[++i], 1, 4096, &kv_draws);
    else if (strcmp(a, "--outlier-pairs") == 0) ok = parse_int(argv[++i], 0, 64, &pairs);
    else if (strcmp(a, "--activations") == 0) acts_dir = argv[++i];
    else if (strcmp(a, "--rope-base") == 0) {
      char *end = NULL;
      rope_base = strtod(argv[++i], &end);
      ok = *end == '\0' && rope_base > 1;
    } else if (strcmp(a, "--sink-weight") == 0 || strcmp(a, "--outlier-gain") == 0) {
      char *end = NULL;
      double x = strtod(argv[++i], &end);
      int w = a[2] == 's';
      ok = *end == '\0' && x > 0 && (!w || x < 1);
      *(w ? &sink_weight : &gain) = x;
    }
    else ok = 0;
    if (!ok) {
      fprintf(stderr, "posattn-drift: bad or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  pa_drift_opts o;
  pa_drift_opts_init(&o);
  o.full = full;
  o.seed = (uint64_t)seed;
  if (strcmp(backend, "ref") == 0) o.backend = POSATTN_BACKEND_REF;
  else if (strcmp(backend, "emu") == 0) o.backend = POSATTN_BACKEND_EMU;
  else if (strcmp(backend, "cuda") == 0) o.backend = POSATTN_BACKEND_CUDA;
  else {
    fprintf(stderr, "posattn-drift: --backend must be ref, emu or cuda (got '%s')\n", backend);
    return 2;
  }
  if (o.backend != POSATTN_BACKEND_REF) {
    char why[256] = "";
    if (posattn_backend_available(o.backend, why, sizeof why) != POSATTN_STATUS_SUCCESS) {
      fprintf(stderr, "posattn-drift: --backend %s is unavailable here: %s\n", backend, why);
      if (o.backend == POSATTN_BACKEND_CUDA)
        fprintf(stderr, "posattn-drift: --backend cuda needs a GPU for the kernels and for the "
                        "fp64 GPU reference (cuBLAS); see docs/precision.md\n");
      return 2;
    }
    if (o.backend == POSATTN_BACKEND_EMU) {
      o.b_max_len = 4096; /* the emulator runs one fiber per thread: keep it bounded */
      o.b_rows = 4;
    }
  }
  if (o.backend == POSATTN_BACKEND_CUDA) {
#ifdef POSATTN_DRIFT_GPU_REF64
    o.gold_row = pa_gpu_ref64_row; /* fp64 answers on the GPU, not on the CPU */
#else
    fprintf(stderr, "posattn-drift: this build has no fp64 GPU reference (CUDA disabled)\n");
    return 2;
#endif
  }
  if (full) o.b_rows = 32;
  if (max_len) o.b_max_len = (int32_t)max_len;
  if (rows) o.b_rows = (int32_t)rows;
  if (draws) o.a_draws = (int32_t)draws;
  if (full) o.d_draws = 32;
  if (kv_max_len) o.d_max_len = (int32_t)kv_max_len;
  if (kv_draws) o.d_draws = (int32_t)kv_draws;
  o.b_sink_weight = sink_weight;
  o.a_pairs = (int32_t)pairs;
  o.a_gain = gain;
  if (mkdir(out, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "posattn-drift: cannot create %s: %s\n", out, strerror(errno));
    return 1;
  }
  pa_drift_acts acts;
  if (acts_dir) {
    char amsg[1024] = "";
    posattn_status ast = pa_drift_acts_load(acts_dir, &acts, amsg, sizeof amsg);
    if (ast != POSATTN_STATUS_SUCCESS) {
      fprintf(stderr, "posattn-drift: --activations: %s: %s\n", posattn_status_string(ast), amsg);
      return 2;
    }
    acts.rope_base = rope_base;
    o.acts = &acts;
    printf("activations %s: T=%d Hq=%d Hkv=%d D=%d, RoPE base %g\n", acts_dir, (int)acts.T,
           (int)acts.hq, (int)acts.hkv, (int)acts.d, rope_base);
  }
  int can_plot = !noplot && system("command -v gnuplot >/dev/null 2>&1") == 0;
  if (!noplot && !can_plot)
    fprintf(stderr, "posattn-drift: gnuplot not found: writing CSV and JSON only (install it, "
                    "e.g. apt-get install gnuplot-nox, to get the PNG plots)\n");
  char opts_json[2048];
  snprintf(opts_json, sizeof opts_json,
           "{\"full\": %d, \"seed\": %ld, \"backend\": \"%s\", \"b_max_len\": %d, \"b_rows\": %d, "
           "\"b_sink_weight\": %g, \"a_draws\": %d, \"a_outlier_pairs\": %d, "
           "\"a_outlier_gain\": %g, \"d_max_len\": %d, \"d_draws\": %d, \"activations\": %s%s%s, "
           "\"rope_base\": %g}",
           full, seed, backend, (int)o.b_max_len, (int)o.b_rows, o.b_sink_weight,
           (int)(full ? 64 : o.a_draws), (int)o.a_pairs, o.a_gain, (int)o.d_max_len,
           (int)o.d_draws, acts_dir ? "\"" : "",
           acts_dir ? acts_dir : "null", acts_dir ? "\"" : "", acts_dir ? rope_base : 0.0);
  double t0 = now_s();
  o.progress = print_progress;
  o.user = &t0;
  int rc = 0;
  for (const char *e = exps; *e; ++e) {
    if (*e == ',') continue;
    pa_drift_table t;
    char msg[512] = "";
    posattn_status st;
    double t1 = now_s();
    if (*e == 'a') st = pa_drift_exp_a(&o, &t, msg, sizeof msg);
    else if (*e == 'b') st = pa_drift_exp_b(&o, &t, msg, sizeof msg);
    else if (*e == 'c') st = pa_drift_exp_c(&o, &t, msg, sizeof msg);
    else if (*e == 'd') st = pa_drift_exp_d(&o, &t, msg, sizeof msg);
    else {
      fprintf(stderr, "posattn-drift: unknown experiment '%c' in --exp (a, b, c, d)\n", *e);
      return 2;
    }
    if (st != POSATTN_STATUS_SUCCESS) {
      fprintf(stderr, "posattn-drift: experiment %c failed: %s: %s\n", *e,
              posattn_status_string(st), msg);
      pa_drift_table_free(&t);
      rc = 1;
      continue;
    }
    double secs = now_s() - t1;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.csv", out, t.name);
    int werr = write_csv(path, &t);
    snprintf(path, sizeof path, "%s/%s.json", out, t.name);
    werr |= write_json(path, &t, opts_json, secs);
    if (werr) {
      fprintf(stderr, "posattn-drift: cannot write %s/%s.*\n", out, t.name);
      rc = 1;
    }
    /* one length per method: experiment b on activations has nothing to draw against length */
    int plot_it = can_plot && !(o.acts && *e == 'b');
    if (plot_it && plot(out, &t) != 0) {
      fprintf(stderr, "posattn-drift: gnuplot failed for %s (CSV and JSON are written)\n", t.name);
      rc = 1;
    }
    printf("%s: %zu rows in %.1f s -> %s/%s.{csv,json%s}\n", t.name, t.nrows, secs, out, t.name,
           plot_it ? ",png" : "");
    pa_drift_table_free(&t);
  }
  printf("total %.1f s\n", now_s() - t0);
  if (o.acts) pa_drift_acts_free(&acts);
  return rc;
}
