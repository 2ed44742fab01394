/* Subsequence DTW of one query against many reference segments: humdex.classical.dtw's kernel in C.
 *
 * The same arithmetic, operation for operation, as the numba kernel in dtw_numba.py (its
 * reference): float32 inputs, float64 costs; r - q in float32 first, as numba types it; min/max
 * as Python's (the first argument unless the second compares strictly less/greater); round half
 * to even for np.round. Compiled without FMA contraction (-ffp-contract=off) so every product is rounded
 * before its sum, as numba's LLVM code does: the results are equal to the bit
 * (tests/test_matcher.py). Loaded by humdex.classical.native with ctypes: no numba at search time.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static inline double pymin(double a, double b) { return b < a ? b : a; }
static inline double pymax(double a, double b) { return b > a ? b : a; }

static inline double local_cost(float q, float w, float r, double key, double octave_penalty,
                                double cap) {
    double d = fabs((double)(r - q) - key);
    double o = fabs(d - 12.0) + octave_penalty;
    d = pymin(d, o);
    d = pymin(d, cap);
    return (double)w * d;
}

/* rint (round half to even, the default rounding mode) without a call into libm: for 0 <= a < 2^52,
 * (a + 2^52) - 2^52 rounds a as the FPU does; larger values are integers already. */
static inline double round_even(double x) {
    const double big = 4503599627370496.0; /* 2^52 */
    double a = fabs(x);
    if (!(a < big)) return x; /* NaN too */
    return copysign((a + big) - big, x);
}

static inline double residual(float q, float w, float r, double key, double limit) {
    double d = (double)(r - q) - key;
    d -= 12.0 * round_even(d / 12.0);
    return (double)w * pymin(pymax(d, -limit), limit);
}

/* The local costs and residuals of one query frame against every reference frame. */
static void frame_costs(float q, float w, const float *ref, int64_t m, double key,
                        double octave_penalty, double cost_cap, double *cost, double *resid) {
    for (int64_t j = 0; j < m; j++) {
        cost[j] = local_cost(q, w, ref[j], key, octave_penalty, cost_cap);
        resid[j] = residual(q, w, ref[j], key, 2.0);
    }
}

/* One segment; work holds 10 * m doubles (3 cost rows, 3 residual rows, the local costs and
 * residuals of two query frames), iwork 3 * m (start rows). Each query frame's local costs are
 * computed once per row and kept for the next row's two-frames step: the same values the numba
 * kernel computes twice. */
static void subsequence(const float *query, const float *weights, int64_t n, const float *ref,
                        int64_t m, double key, int64_t start_max, double octave_penalty,
                        double cost_cap, double *work, int64_t *iwork, double *cost_out,
                        int64_t *start_out, int64_t *end_out, double *resid_out) {
    const double inf = INFINITY;
    double *prev2 = work, *prev = work + m, *cur = work + 2 * m;
    double *e_prev2 = work + 3 * m, *e_prev = work + 4 * m, *e_cur = work + 5 * m;
    double *c_prev = work + 6 * m, *c_cur = work + 7 * m;  /* local costs of frames i-1, i */
    double *r_prev = work + 8 * m, *r_cur = work + 9 * m;  /* their residuals */
    int64_t *s_prev2 = iwork, *s_prev = iwork + m, *s_cur = iwork + 2 * m;
    for (int64_t j = 0; j < m; j++) {
        prev2[j] = inf; prev[j] = inf; cur[j] = inf;
        s_prev2[j] = -1; s_prev[j] = -1; s_cur[j] = -1;
        e_prev2[j] = 0.0; e_prev[j] = 0.0; e_cur[j] = 0.0;
    }
    int64_t first = start_max < m ? start_max : m;
    frame_costs(query[0], weights[0], ref, m, key, octave_penalty, cost_cap, c_cur, r_cur);
    for (int64_t j = 0; j < first; j++) {
        prev[j] = c_cur[j];
        s_prev[j] = j;
        e_prev[j] = r_cur[j];
    }
    for (int64_t i = 1; i < n; i++) {
        double *t = c_prev; c_prev = c_cur; c_cur = t;
        t = r_prev; r_prev = r_cur; r_cur = t;
        frame_costs(query[i], weights[i], ref, m, key, octave_penalty, cost_cap, c_cur, r_cur);
        for (int64_t j = 0; j < m; j++) {
            double best = inf;
            int64_t start = -1;
            double resid = 0.0;
            if (j >= 1) {
                if (prev[j - 1] < best) {
                    best = prev[j - 1];
                    start = s_prev[j - 1];
                    resid = e_prev[j - 1];
                }
                if (i >= 2 && prev2[j - 1] < inf) {
                    double v = prev2[j - 1] + c_prev[j];
                    if (v < best) {
                        best = v;
                        start = s_prev2[j - 1];
                        resid = e_prev2[j - 1] + r_prev[j];
                    }
                }
            }
            if (j >= 2 && prev[j - 2] < best) {
                best = prev[j - 2];
                start = s_prev[j - 2];
                resid = e_prev[j - 2];
            }
            if (start >= 0) {
                cur[j] = best + c_cur[j];
                e_cur[j] = resid + r_cur[j];
            } else {
                cur[j] = inf;
            }
            s_cur[j] = start;
        }
        t = prev2; prev2 = prev; prev = cur; cur = t;
        int64_t *ts = s_prev2; s_prev2 = s_prev; s_prev = s_cur; s_cur = ts;
        t = e_prev2; e_prev2 = e_prev; e_prev = e_cur; e_cur = t;
    }
    double best = inf;
    int64_t end = -1;
    for (int64_t j = 0; j < m; j++) {
        if (prev[j] < best) {
            best = prev[j];
            end = j;
        }
    }
    if (end < 0) {
        *cost_out = inf; *start_out = -1; *end_out = -1; *resid_out = 0.0;
        return;
    }
    *cost_out = best; *start_out = s_prev[end]; *end_out = end; *resid_out = e_prev[end];
}

/* subsequence DTW of a single segment (dtw_numba.subsequence_dtw); returns 0, or -1 without memory. */
int humdex_subsequence_dtw(const float *query, const float *weights, int64_t n, const float *ref,
                           int64_t m, double key, int64_t start_max, double octave_penalty,
                           double cost_cap, double *cost, int64_t *start, int64_t *end,
                           double *resid) {
    int64_t size = m > 0 ? m : 1;
    double *work = malloc(sizeof(double) * 10 * size);
    int64_t *iwork = malloc(sizeof(int64_t) * 3 * size);
    if (!work || !iwork) {
        free(work); free(iwork);
        return -1;
    }
    if (n == 0) {  /* numba's kernel reads query[0] before its loops: undefined there; none here */
        *cost = INFINITY; *start = -1; *end = -1; *resid = 0.0;
    } else {
        subsequence(query, weights, n, ref, m, key, start_max, octave_penalty, cost_cap, work,
                    iwork, cost, start, end, resid);
    }
    free(work); free(iwork);
    return 0;
}

/* dtw_numba.batch_subsequence_dtw: keys is (count, n_keys) row-major. Returns 0; -1 without memory;
 * -2 where the weights sum to 0 and a path was found (numba's ZeroDivisionError). */
int humdex_batch_subsequence_dtw(const float *query, const float *weights, int64_t n,
                                 const float *refs, const int64_t *ref_offsets, const double *keys,
                                 int64_t count, int64_t n_keys, const int64_t *start_max,
                                 double octave_penalty, double cost_cap, int64_t refine,
                                 double *costs, int64_t *starts, int64_t *ends, double *best_key) {
    int64_t longest = 1;
    for (int64_t k = 0; k < count; k++) {
        int64_t m = ref_offsets[k + 1] - ref_offsets[k];
        if (m > longest) longest = m;
    }
    double *work = malloc(sizeof(double) * 10 * longest);
    int64_t *iwork = malloc(sizeof(int64_t) * 3 * longest);
    if (!work || !iwork) {
        free(work); free(iwork);
        return -1;
    }
    float total_w = 0.0f;  /* numba sums a float32 array in float32, in order */
    for (int64_t i = 0; i < n; i++) total_w += weights[i];
    for (int64_t k = 0; k < count; k++) {
        costs[k] = INFINITY; starts[k] = -1; ends[k] = -1; best_key[k] = 0.0;
    }
    for (int64_t k = 0; k < count; k++) {
        const float *seg = refs + ref_offsets[k];
        int64_t m = ref_offsets[k + 1] - ref_offsets[k];
        double shift = 0.0;
        for (int64_t t = 0; t < n_keys + refine; t++) {
            double key = t < n_keys ? keys[k * n_keys + t] : best_key[k] + shift;
            double c, resid;
            int64_t s, e;
            if (n == 0) {
                c = INFINITY; s = -1; e = -1; resid = 0.0;
            } else {
                subsequence(query, weights, n, seg, m, key, start_max[k], octave_penalty, cost_cap,
                            work, iwork, &c, &s, &e, &resid);
            }
            if (c < costs[k]) {
                costs[k] = c;
                starts[k] = s;
                ends[k] = e;
                best_key[k] = key;
                if (total_w == 0.0f) {  /* numba raises ZeroDivisionError here */
                    free(work); free(iwork);
                    return -2;
                }
                shift = resid / (double)total_w;
            }
        }
    }
    free(work); free(iwork);
    return 0;
}
