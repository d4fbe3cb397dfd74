/* int8 kernels for Helium (the M-profile Vector Extension, Cortex-M55/M85),
 * written for edgec.  Requires GCC's arm_mve.h (gcc >= 10) and a core with
 * integer MVE; without them (another compiler or core) the same kernels run on
 * the portable fallbacks at the end (the DSP/plain arithmetic, identical
 * results).
 *
 * - CONV_2D / FULLY_CONNECTED: one row of x (a pixel's im2col patch or an FC
 *   row) against four output channels at a time, VMLADAVA over 16 int8 lanes
 *   (input offset folded into the bias; K padded to 16 with zero weights);
 * - DEPTHWISE_CONV_2D: four channels per vector, 32-bit lanes (VLDRB widening
 *   loads, VMLA), any kernel size, stride, dilation and padding;
 * - requantization of four channels at once: VQRDMULH is TFLite's
 *   SaturatingRoundingDoublingHighMul; VRSHL by -e rounds half up, so the
 *   round-half-away-from-zero of RoundingDivideByPOT is VRSHL(x - [x < 0], -e)
 *   (x - 1 saturating: only INT32_MIN is affected, with the same result). */

#if defined(__GNUC__) && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#define EDGEC_MVE 1
#else
#define EDGEC_MVE 0
#endif

/* y[0..n) = requantized acc[0..n) of channels with multipliers m, left shifts
 * l, right shifts -r (r <= 0), n <= 4 (tables padded to four). */
#if EDGEC_MVE
EDGEC_INLINE void edgec_mve_rq4(int32x4_t v, const int32_t* m, const int32_t* l, const int32_t* r,
                                int zp, int lo, int hi, int8_t* y, int n)
{
  const int32x4_t rs = vldrwq_s32(r);
  v = vshlq_s32(v, vldrwq_s32(l));
  v = vqrdmulhq_s32(v, vldrwq_s32(m));
  v = vqaddq_m_s32(v, v, vshrq_n_s32(v, 31), vcmpltq_n_s32(rs, 0));
  v = vrshlq_s32(v, rs);
  v = vaddq_n_s32(v, zp);
  v = vmaxq_s32(v, vdupq_n_s32(lo));
  v = vminq_s32(v, vdupq_n_s32(hi));
  if (n >= 4) {
    vstrbq_s32(y, v);
  } else {
    vstrbq_p_s32(y, v, vctp32q((uint32_t)n));
  }
}
#endif

/* Four output channels of one row: y[0..n) from x[0..K) and weights w (four
 * rows of K16 bytes, K16 = K rounded up to 16, zero padded). */
EDGEC_INLINE void edgec_mve_row4(const int8_t* x, int K, int K16, const int8_t* w, const int32_t* bias,
                                 const int32_t* m, const int32_t* l, const int32_t* r, int zp,
                                 int lo, int hi, int8_t* y, int n)
{
#if EDGEC_MVE
  int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
  const int8_t* w1 = w + K16;
  const int8_t* w2 = w1 + K16;
  const int8_t* w3 = w2 + K16;
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    const int8x16_t xv = vldrbq_s8(x + k);
    a0 = vmladavaq_s8(a0, xv, vldrbq_s8(w + k));
    a1 = vmladavaq_s8(a1, xv, vldrbq_s8(w1 + k));
    a2 = vmladavaq_s8(a2, xv, vldrbq_s8(w2 + k));
    a3 = vmladavaq_s8(a3, xv, vldrbq_s8(w3 + k));
  }
  if (k < K) {
    const int8x16_t xv = vldrbq_z_s8(x + k, vctp8q((uint32_t)(K - k)));
    a0 = vmladavaq_s8(a0, xv, vldrbq_s8(w + k));
    a1 = vmladavaq_s8(a1, xv, vldrbq_s8(w1 + k));
    a2 = vmladavaq_s8(a2, xv, vldrbq_s8(w2 + k));
    a3 = vmladavaq_s8(a3, xv, vldrbq_s8(w3 + k));
  }
  {
    int32x4_t v = vdupq_n_s32(a0);
    v = vsetq_lane_s32(a1, v, 1);
    v = vsetq_lane_s32(a2, v, 2);
    v = vsetq_lane_s32(a3, v, 3);
    edgec_mve_rq4(v, m, l, r, zp, lo, hi, y, n);
  }
#else
  (void)K16;
  for (int j = 0; j < n; ++j) {
    int32_t acc = bias[j];
    for (int k = 0; k < K; ++k) acc += (int32_t)x[k] * (int32_t)w[j * K16 + k];
    acc = edgec_mbqm(acc, m[j], l[j] + r[j]) + zp;
    acc = acc < lo ? lo : acc;
    y[j] = (int8_t)(acc > hi ? hi : acc);
  }
#endif
}

/* One row against all O channels (weights [O4][K16], tables padded to O4). */
EDGEC_INLINE void edgec_mve_row(const int8_t* x, int K, int K16, const int8_t* w, const int32_t* bias,
                                const int32_t* m, const int32_t* l, const int32_t* r, int zp,
                                int lo, int hi, int8_t* y, int O)
{
  for (int o = 0; o < O; o += 4) {
    edgec_mve_row4(x, K, K16, w + o * K16, bias + o, m + o, l + o, r + o, zp, lo, hi, y + o,
                   O - o < 4 ? O - o : 4);
  }
}

/* CONV_2D, NHWC: per output pixel its im2col row (zero-point padded) or, for
 * a 1x1 kernel without padding, a copy of the input row, in scratch (K16
 * bytes, then O bytes): the pixel's input is read before its output is
 * written, so y may start where x does (O <= C).  With add, the result of a
 * fused ADD with skip (same shape as y, may be y). */
EDGEC_KERNEL void edgec_mve_conv(const int8_t* x, int8_t* y, int8_t* scratch, const int8_t* w,
                                 const int32_t* bias, const int32_t* m, const int32_t* l,
                                 const int32_t* r, int H, int W, int C, int OH, int OW, int O,
                                 int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl,
                                 int direct, int pad, int zp, int lo, int hi, const int8_t* skip,
                                 const edgec_add_t* add)
{
  const int K = KH * KW * C;
  const int K16 = (K + 15) & ~15;
  int8_t* const t = scratch + K16;
  for (int i = K; i < K16; ++i) scratch[i] = 0;
  for (int oy = 0; oy < OH; ++oy) {
    for (int ox = 0; ox < OW; ++ox) {
      const int p = oy * OW + ox;
      if (direct) {
        edgec_copy8(scratch, x + (oy * sh * W + ox * sw) * C, K);
      } else {
        edgec_im2col(x, scratch, oy, ox, H, W, C, KH, KW, sh, sw, dh, dw, pt, pl, (int8_t)pad);
      }
      if (add) {
        edgec_mve_row(scratch, K16, K16, w, bias, m, l, r, zp, lo, hi, t, O);
        for (int o = 0; o < O; ++o) {
          y[p * O + o] = (int8_t)edgec_add_one(t[o], skip[p * O + o], add->tv, add->ts, add->rq,
                                               add->fast, add->zp, add->lo, add->hi);
        }
      } else {
        edgec_mve_row(scratch, K16, K16, w, bias, m, l, r, zp, lo, hi, y + p * O, O);
      }
    }
  }
}

/* FULLY_CONNECTED: M rows of K (input offset folded into bias). */
EDGEC_KERNEL void edgec_mve_fc(const int8_t* x, int8_t* y, const int8_t* w, const int32_t* bias,
                               const int32_t* m, const int32_t* l, const int32_t* r, int M, int N,
                               int K, int zp, int lo, int hi)
{
  const int K16 = (K + 15) & ~15;
  for (int i = 0; i < M; ++i) {
    edgec_mve_row(x + i * K, K, K16, w, bias, m, l, r, zp, lo, hi, y + i * N, N);
  }
}

/* DEPTHWISE_CONV_2D, channel multiplier 1, NHWC, any geometry: four channels
 * per vector; w as [KH][KW][C4] (C4 = C rounded up to 4, zero padded). */
EDGEC_KERNEL void edgec_mve_dw(const int8_t* x, int8_t* y, const int8_t* w, const int32_t* bias,
                               const int32_t* m, const int32_t* l, const int32_t* r, int H, int W,
                               int C, int OH, int OW, int KH, int KW, int sh, int sw, int dh,
                               int dw, int pt, int pl, int in_off, int zp, int lo, int hi)
{
  const int C4 = (C + 3) & ~3;
  for (int oy = 0; oy < OH; ++oy) {
    for (int ox = 0; ox < OW; ++ox) {
      int8_t* yp = y + (oy * OW + ox) * C;
      for (int c = 0; c < C; c += 4) {
        const int n = C - c < 4 ? C - c : 4;
#if EDGEC_MVE
        const mve_pred16_t pr = vctp32q((uint32_t)n);
        int32x4_t acc = vldrwq_s32(bias + c);
        for (int ky = 0; ky < KH; ++ky) {
          const int iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= H) continue;
          for (int kx = 0; kx < KW; ++kx) {
            const int ix = ox * sw - pl + kx * dw;
            if (ix < 0 || ix >= W) continue;
            {
              const int32x4_t xv = vaddq_n_s32(vldrbq_z_s32(x + (iy * W + ix) * C + c, pr), in_off);
              acc = vaddq_s32(acc, vmulq_s32(xv, vldrbq_s32(w + (ky * KW + kx) * C4 + c)));
            }
          }
        }
        edgec_mve_rq4(acc, m + c, l + c, r + c, zp, lo, hi, yp + c, n);
#else
        for (int j = 0; j < n; ++j) {
          int32_t acc = bias[c + j];
          for (int ky = 0; ky < KH; ++ky) {
            const int iy = oy * sh - pt + ky * dh;
            if (iy < 0 || iy >= H) continue;
            for (int kx = 0; kx < KW; ++kx) {
              const int ix = ox * sw - pl + kx * dw;
              if (ix < 0 || ix >= W) continue;
              acc += ((int32_t)x[(iy * W + ix) * C + c + j] + in_off) *
                     (int32_t)w[(ky * KW + kx) * C4 + c + j];
            }
          }
          acc = edgec_mbqm(acc, m[c + j], l[c + j] + r[c + j]) + zp;
          acc = acc < lo ? lo : acc;
          yp[c + j] = (int8_t)(acc > hi ? hi : acc);
        }
#endif
      }
    }
  }
}
