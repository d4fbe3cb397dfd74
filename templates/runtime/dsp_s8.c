/* int8 kernels for the Arm DSP extension (ARMv7E-M / ARMv8-M mainline: SMLAD,
 * SXTB16, SMLAL, SSAT).  Written for edgec (not derived from other libraries).
 *
 * Compiled with GCC for a core with the DSP extension and optimization on, the
 * inner loops are inline assembly; anywhere else (another compiler, -O0, a
 * host build for tests) the same kernels run on portable C versions of the
 * instructions, with identical results.
 *
 * Conventions shared with edgec/ops/dsp.py, which prepares the constants:
 * - activations NHWC int8; the input offset (-zero point) is folded into the
 *   bias at compile time wherever every tap reads a real or zero-point value;
 * - requantization per output channel o from M = rqm[o] and S = rqs[o] + 1:
 *     out = ((acc * M + H * 2^32 + 2^30 - [acc < 0] * 2^31) >> 32) >> S
 *   which equals TFLite's MultiplyByQuantizedMultiplier (double rounding)
 *   for multipliers M > 2^30 (or 0) and right shifts >= 2, with the output
 *   zero point folded into H (see dsp.py, requant_table).  H = hk << (S - 1)
 *   with hk = 1 + 2 * zero point (1 when not folded), one per layer, so flash
 *   holds 5 bytes a channel (edgec_rq_ch, once per channel where it is read);
 * - "q15 pairs": four int8 values x0..x3 of a row become the two words
 *   (x0, x2) and (x1, x3) of 16-bit lanes (SXTB16 and SXTB16 ROR #8), which
 *   matches the same unpacking of the weights. */

#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP)
#define EDGEC_DSP_NATIVE 1
#else
#define EDGEC_DSP_NATIVE 0
#endif
#if EDGEC_DSP_NATIVE && defined(__OPTIMIZE__)
#define EDGEC_DSP_ASM 1
#else
#define EDGEC_DSP_ASM 0
#endif

#if EDGEC_DSP_NATIVE
static inline int32_t edgec_sxtb16(int32_t x)
{
  int32_t r;
  __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
  return r;
}
static inline int32_t edgec_sxtb16_r8(int32_t x)
{
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
static inline int32_t edgec_smlad(int32_t a, int32_t b, int32_t acc)
{
  int32_t r;
  __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
static inline int32_t edgec_smlabt(int32_t a, int32_t b, int32_t acc)
{
  int32_t r;
  __asm__("smlabt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
static inline int32_t edgec_smlatb(int32_t a, int32_t b, int32_t acc)
{
  int32_t r;
  __asm__("smlatb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
static inline int32_t edgec_sxtab16(int32_t acc, int32_t x)
{
  int32_t r;
  __asm__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(acc), "r"(x));
  return r;
}
static inline int32_t edgec_sxtab16_r8(int32_t acc, int32_t x)
{
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
  return r;
}
static inline int32_t edgec_pkhbt(int32_t lo, int32_t hi)
{
  int32_t r;
  __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
  return r;
}
static inline int32_t edgec_sadd16(int32_t a, int32_t b)
{
  int32_t r;
  __asm__("sadd16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
static inline int32_t edgec_rq(int32_t acc, int32_t m, int32_t h, int32_t s)
{
  uint32_t lo;
  int32_t hi;
  __asm__("asr %1, %2, #31\n\t"
          "adds %0, %3, %1, lsl #31\n\t"
          "adc %1, %4, %1\n\t"
          "smlal %0, %1, %2, %5"
          : "=&r"(lo), "=&r"(hi)
          : "r"(acc), "r"((uint32_t)0x40000000u), "r"(h), "r"(m)
          : "cc");
  (void)lo;
  return hi >> s;
}
#else
/* Portable versions: 16-bit lanes as two's complement, sums wrapping mod 2^32. */
static inline int32_t edgec_lane16(int32_t x, int hi)
{
  return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> (hi ? 16 : 0));
}
static inline int32_t edgec_pack16(int32_t lo, int32_t hi)
{
  return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
static inline int32_t edgec_sxtb16(int32_t x)
{
  return edgec_pack16((int8_t)(uint8_t)((uint32_t)x & 0xFFu), (int8_t)(uint8_t)(((uint32_t)x >> 16) & 0xFFu));
}
static inline int32_t edgec_sxtb16_r8(int32_t x)
{
  return edgec_sxtb16((int32_t)(((uint32_t)x >> 8) | ((uint32_t)x << 24)));
}
static inline int32_t edgec_smlad(int32_t a, int32_t b, int32_t acc)
{
  return (int32_t)((uint32_t)acc + (uint32_t)(edgec_lane16(a, 0) * edgec_lane16(b, 0)) +
                   (uint32_t)(edgec_lane16(a, 1) * edgec_lane16(b, 1)));
}
static inline int32_t edgec_smlabt(int32_t a, int32_t b, int32_t acc)
{
  return (int32_t)((uint32_t)acc + (uint32_t)(edgec_lane16(a, 0) * edgec_lane16(b, 1)));
}
static inline int32_t edgec_smlatb(int32_t a, int32_t b, int32_t acc)
{
  return (int32_t)((uint32_t)acc + (uint32_t)(edgec_lane16(a, 1) * edgec_lane16(b, 0)));
}
static inline int32_t edgec_sxtab16(int32_t acc, int32_t x)
{
  const int32_t s = edgec_sxtb16(x);
  return edgec_pack16(edgec_lane16(acc, 0) + edgec_lane16(s, 0), edgec_lane16(acc, 1) + edgec_lane16(s, 1));
}
static inline int32_t edgec_sxtab16_r8(int32_t acc, int32_t x)
{
  return edgec_sxtab16(acc, (int32_t)(((uint32_t)x >> 8) | ((uint32_t)x << 24)));
}
static inline int32_t edgec_pkhbt(int32_t lo, int32_t hi)
{
  return edgec_pack16(lo, hi);
}
static inline int32_t edgec_sadd16(int32_t a, int32_t b)
{
  return edgec_pack16(edgec_lane16(a, 0) + edgec_lane16(b, 0), edgec_lane16(a, 1) + edgec_lane16(b, 1));
}
static inline int32_t edgec_rq(int32_t acc, int32_t m, int32_t h, int32_t s)
{
  const int64_t t = (int64_t)acc * m + (int64_t)h * 4294967296LL + 1073741824LL -
                    (acc < 0 ? 2147483648LL : 0LL);
  return (int32_t)(t >> 32) >> s;
}
#endif

/* H and S of output channel o (see the conventions above). */
#define edgec_rq_ch(rqs, hk, o, h, s) \
  do { \
    const int32_t sm1_ = (rqs)[o]; \
    (h) = (int32_t)((uint32_t)(hk) << sm1_); \
    (s) = sm1_ + 1; \
  } while (0)

/* 32-bit load and store at any alignment (single LDR/STR on cores with
 * unaligned access, which every core with the DSP extension has). */
static inline int32_t edgec_ld32(const void* p)
{
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline void edgec_st32(void* p, int32_t v)
{
  memcpy(p, &v, 4);
}

/* Saturate to the int8 activation range [lo, hi]. */
static inline int32_t edgec_clamp8(int32_t v, int lo, int hi)
{
#if EDGEC_DSP_NATIVE
  if (lo == -128 && hi == 127) {
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
  }
#endif
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

/* A function of the 256 int8 values, index i = x + 128, tabulated at compile
 * time: t[i] when t is set, else a + ((i * b) >> k) + d[i] (a line plus an
 * int8 correction, exact for every i: 256 bytes of flash instead of 1 KB). */
typedef struct {
  const int32_t* t;
  const int8_t* d;
  int32_t a, b, k;
} edgec_lut_t;

EDGEC_INLINE int32_t edgec_lut(const edgec_lut_t* L, int32_t x)
{
  const int32_t i = x + 128;
  if (L->t) return L->t[i];
  return L->a + ((i * L->b) >> L->k) + L->d[i];
}

/* Quantized ADD / SUB of two int8 tensors of the same shape (TFLite Micro's
 * arithmetic): each input's rescaled value (x + offset) << 20 times its
 * multiplier is a function of the 256 possible int8 values (ta, tb:
 * edgec_lut_t; tb negated for SUB); the sum is requantized with
 * rq = {M, H, S} (see edgec_rq) when fast != 0, else with edgec_mbqm(sum, M, H)
 * (H the shift), plus zp. */
EDGEC_INLINE int32_t edgec_add_one(int32_t va, int32_t vb, const edgec_lut_t* ta,
                                    const edgec_lut_t* tb, const int32_t* rq, int fast, int zp,
                                    int lo, int hi)
{
  const int32_t raw = (int32_t)((uint32_t)edgec_lut(ta, va) + (uint32_t)edgec_lut(tb, vb));
  const int32_t r = fast ? edgec_rq(raw, rq[0], rq[1], rq[2]) : edgec_mbqm(raw, rq[0], (int)rq[1]);
  return edgec_clamp8(r + zp, lo, hi);
}

/* A quantized ADD fused into the kernel producing one of its inputs: the
 * produced int8 value v and the other input's value s give
 * clamp(rq(tv[v] + ts[s]) + zp) (edgec_add_one). */
typedef struct {
  const edgec_lut_t* tv;
  const edgec_lut_t* ts;
  const int32_t* rq;
  int32_t fast, zp, lo, hi;
} edgec_add_t;

/* n bytes from src to dst, a word at a time. */
EDGEC_INLINE void edgec_copy8(int8_t* dst, const int8_t* src, int n)
{
  int i = 0;
  for (; i + 4 <= n; i += 4) edgec_st32(dst + i, edgec_ld32(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

EDGEC_INLINE void edgec_fill8(int8_t* dst, int8_t v, int n)
{
  const int32_t w = (int32_t)((uint32_t)(uint8_t)v * 0x01010101u);
  int i = 0;
  for (; i + 4 <= n; i += 4) edgec_st32(dst + i, w);
  for (; i < n; ++i) dst[i] = v;
}

/* Two int8 rows of 4*n4 values -> q15 pairs, interleaved per group of four:
 * a(0,2) a(1,3) b(0,2) b(1,3). */
EDGEC_INLINE void edgec_q15x2(const int8_t* a, const int8_t* b, int32_t* d, int n4)
{
  for (int i = 0; i < n4; ++i) {
    const int32_t wa = edgec_ld32(a + 4 * i);
    const int32_t wb = edgec_ld32(b + 4 * i);
    d[0] = edgec_sxtb16(wa);
    d[1] = edgec_sxtb16_r8(wa);
    d[2] = edgec_sxtb16(wb);
    d[3] = edgec_sxtb16_r8(wb);
    d += 4;
  }
}

/* 2 pixels x 2 channels: a0 += xa.w0, a1 += xa.w1, b0 += xb.w0, b1 += xb.w1
 * over n4 groups of four; xq in q15 pairs (edgec_q15x2), w 8 bytes per group
 * (4 of channel 0, then 4 of channel 1). */
#if EDGEC_DSP_ASM
#define EDGEC_MAC_GROUP \
  "ldmia %[px]!, {r8, r9, r10, r11}\n\t" \
  "ldrd %[w0], %[w1], [%[pw]], #8\n\t" \
  "sxtb16 %[t], %[w0], ror #8\n\t" \
  "sxtb16 %[w0], %[w0]\n\t" \
  "smlad %[a0], r8, %[w0], %[a0]\n\t" \
  "smlad %[a0], r9, %[t], %[a0]\n\t" \
  "smlad %[b0], r10, %[w0], %[b0]\n\t" \
  "smlad %[b0], r11, %[t], %[b0]\n\t" \
  "sxtb16 %[t], %[w1], ror #8\n\t" \
  "sxtb16 %[w1], %[w1]\n\t" \
  "smlad %[a1], r8, %[w1], %[a1]\n\t" \
  "smlad %[a1], r9, %[t], %[a1]\n\t" \
  "smlad %[b1], r10, %[w1], %[b1]\n\t" \
  "smlad %[b1], r11, %[t], %[b1]\n\t"
#define EDGEC_MAC_OPERANDS \
  : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [px] "+r"(px), [pw] "+r"(pw), \
    [n] "+r"(n), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t) \
  : : "r8", "r9", "r10", "r11", "cc", "memory"
#endif

EDGEC_INLINE void edgec_mac2x2(const int32_t* px, const int8_t* pw, int n4, int32_t* acc)
{
  int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
#if EDGEC_DSP_ASM
  int32_t w0, w1, t;
  int n = n4 >> 1;
  if (n4 & 1) {
    __asm__ volatile(EDGEC_MAC_GROUP EDGEC_MAC_OPERANDS);
  }
  if (n > 0) {
    __asm__ volatile("1:\n\t" EDGEC_MAC_GROUP EDGEC_MAC_GROUP
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t" EDGEC_MAC_OPERANDS);
  }
#else
  for (int i = 0; i < n4; ++i) {
    const int32_t w0 = edgec_ld32(pw), w1 = edgec_ld32(pw + 4);
    const int32_t u0 = edgec_sxtb16(w0), v0 = edgec_sxtb16_r8(w0);
    const int32_t u1 = edgec_sxtb16(w1), v1 = edgec_sxtb16_r8(w1);
    a0 = edgec_smlad(px[0], u0, a0);
    a0 = edgec_smlad(px[1], v0, a0);
    b0 = edgec_smlad(px[2], u0, b0);
    b0 = edgec_smlad(px[3], v0, b0);
    a1 = edgec_smlad(px[0], u1, a1);
    a1 = edgec_smlad(px[1], v1, a1);
    b1 = edgec_smlad(px[2], u1, b1);
    b1 = edgec_smlad(px[3], v1, b1);
    px += 4;
    pw += 8;
  }
#endif
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = b0;
  acc[3] = b1;
}

/* Two pixels (q15 pairs xq, n4 groups) times all O output channels (weights
 * in channel pairs, see edgec_mac2x2; bias, rqm and rqs padded to an even count):
 * requantized into ya[0..O) and, unless yb is NULL, yb[0..O). */
EDGEC_INLINE void edgec_gemm2(const int32_t* xq, const int8_t* w, const int32_t* bias,
                               const int32_t* rqm, const int8_t* rqs, int32_t hk, int8_t* ya, int8_t* yb, int O, int n4,
                               int zp, int lo, int hi, const int8_t* sa, const int8_t* sb,
                               const edgec_add_t* add)
{
  for (int o = 0; o < O; o += 2) {
    int32_t acc[4];
    acc[0] = bias[o];
    acc[1] = bias[o + 1];
    acc[2] = acc[0];
    acc[3] = acc[1];
    edgec_mac2x2(xq, w, n4, acc);
    w += 8 * n4;
    {
      int32_t h, s;
      edgec_rq_ch(rqs, hk, o, h, s);
      int32_t va = edgec_clamp8(edgec_rq(acc[0], rqm[o], h, s) + zp, lo, hi);
      int32_t vb = edgec_clamp8(edgec_rq(acc[2], rqm[o], h, s) + zp, lo, hi);
      if (add) {
        va = edgec_add_one(va, sa[o], add->tv, add->ts, add->rq, add->fast, add->zp, add->lo, add->hi);
        if (yb) vb = edgec_add_one(vb, sb[o], add->tv, add->ts, add->rq, add->fast, add->zp, add->lo, add->hi);
      }
      ya[o] = (int8_t)va;
      if (yb) yb[o] = (int8_t)vb;
    }
    if (o + 1 < O) {
      int32_t h, s;
      edgec_rq_ch(rqs, hk, o + 1, h, s);
      int32_t va = edgec_clamp8(edgec_rq(acc[1], rqm[o + 1], h, s) + zp, lo, hi);
      int32_t vb = edgec_clamp8(edgec_rq(acc[3], rqm[o + 1], h, s) + zp, lo, hi);
      if (add) {
        va = edgec_add_one(va, sa[o + 1], add->tv, add->ts, add->rq, add->fast, add->zp, add->lo, add->hi);
        if (yb) vb = edgec_add_one(vb, sb[o + 1], add->tv, add->ts, add->rq, add->fast, add->zp, add->lo, add->hi);
      }
      ya[o + 1] = (int8_t)va;
      if (yb) yb[o + 1] = (int8_t)vb;
    }
  }
}

/* One im2col row: the patch of output pixel (oy, ox), NHWC, zero-point padded,
 * order (ky, kx, c) as the OHWI weights. */
EDGEC_INLINE void edgec_im2col(const int8_t* x, int8_t* d, int oy, int ox, int H, int W, int C,
                                int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl,
                                int8_t pad)
{
  for (int ky = 0; ky < KH; ++ky) {
    const int iy = oy * sh - pt + ky * dh;
    const int ix0 = ox * sw - pl;
    if (iy < 0 || iy >= H) {
      edgec_fill8(d, pad, KW * C);
    } else if (dw == 1 && ix0 >= 0 && ix0 + KW <= W) {
      edgec_copy8(d, x + (iy * W + ix0) * C, KW * C);
    } else {
      for (int kx = 0; kx < KW; ++kx) {
        const int ix = ix0 + kx * dw;
        if (ix < 0 || ix >= W) edgec_fill8(d + kx * C, pad, C);
        else edgec_copy8(d + kx * C, x + (iy * W + ix) * C, C);
      }
    }
    d += KW * C;
  }
}

/* CONV_2D, NHWC, any kernel/stride/dilation/padding: im2col of two output
 * pixels at a time into scratch, q15 pairs, then edgec_gemm2.
 * direct != 0 (1x1 kernel, no padding, C % 4 == 0): rows read in place.
 * Scratch: 24 * n4 bytes (16 * n4 when direct).  With add, the result of a
 * fused ADD with skip (same shape as y) is stored (skip may be y). */
EDGEC_KERNEL void edgec_dsp_conv(const int8_t* x, int8_t* y, int32_t* scratch, const int8_t* w,
                                 const int32_t* bias, const int32_t* rqm, const int8_t* rqs,
                                 int32_t hk, int H, int W, int C, int OH, int OW, int O, int KH, int KW, int sh, int sw, int dh,
                                 int dw, int pt, int pl, int direct, int pad, int zp, int lo, int hi,
                                 const int8_t* skip, const edgec_add_t* add)
{
  const int K = KH * KW * C;
  const int n4 = (K + 3) >> 2;
  int32_t* const xq = scratch;
  int8_t* const ca = (int8_t*)(scratch + 4 * n4);
  int8_t* const cb = ca + 4 * n4;
  const int P = OH * OW;
  int oy = 0, ox = 0;
  if (!direct) {
    for (int i = K; i < 4 * n4; ++i) {
      ca[i] = 0;
      cb[i] = 0;
    }
  }
  for (int p = 0; p < P; p += 2) {
    const int two = p + 1 < P;
    const int8_t* ra;
    const int8_t* rb;
    int oy2 = oy, ox2 = ox + 1;
    if (ox2 == OW) {
      ox2 = 0;
      ++oy2;
    }
    if (direct) {
      ra = x + (oy * sh * W + ox * sw) * C;
      rb = two ? x + (oy2 * sh * W + ox2 * sw) * C : ra;
    } else {
      edgec_im2col(x, ca, oy, ox, H, W, C, KH, KW, sh, sw, dh, dw, pt, pl, (int8_t)pad);
      if (two) edgec_im2col(x, cb, oy2, ox2, H, W, C, KH, KW, sh, sw, dh, dw, pt, pl, (int8_t)pad);
      ra = ca;
      rb = two ? cb : ca;
    }
    edgec_q15x2(ra, rb, xq, n4);
    edgec_gemm2(xq, w, bias, rqm, rqs, hk, y + p * O, two ? y + (p + 1) * O : (int8_t*)0, O, n4, zp, lo, hi,
                add ? skip + p * O : (const int8_t*)0, add && two ? skip + (p + 1) * O : (const int8_t*)0, add);
    if (two) {
      ox = ox2 + 1;
      oy = oy2;
    } else {
      ox = ox2;
      oy = oy2;
    }
    if (ox == OW) {
      ox = 0;
      ++oy;
    }
  }
}

/* FULLY_CONNECTED: y[m][n] = sum_k x[m][k] w[n][k] + bias[n] (input offset
 * folded into bias), four output channels per pass over x (weights in groups
 * of four channels: 4 bytes of each per group of four k). */
EDGEC_INLINE void edgec_mac1x4(const int8_t* px, const int8_t* pw, int n4, int32_t* acc)
{
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if EDGEC_DSP_ASM
#define EDGEC_MAC1X4_GROUP \
  "ldr %[x1], [%[px]], #4\n\t" \
  "ldmia %[pw]!, {r8, r9, r10, r11}\n\t" \
  "sxtb16 %[x0], %[x1]\n\t" \
  "sxtb16 %[x1], %[x1], ror #8\n\t" \
  "sxtb16 %[t], r8, ror #8\n\t" \
  "sxtb16 r8, r8\n\t" \
  "smlad %[a0], %[x0], r8, %[a0]\n\t" \
  "smlad %[a0], %[x1], %[t], %[a0]\n\t" \
  "sxtb16 %[t], r9, ror #8\n\t" \
  "sxtb16 r9, r9\n\t" \
  "smlad %[a1], %[x0], r9, %[a1]\n\t" \
  "smlad %[a1], %[x1], %[t], %[a1]\n\t" \
  "sxtb16 %[t], r10, ror #8\n\t" \
  "sxtb16 r10, r10\n\t" \
  "smlad %[a2], %[x0], r10, %[a2]\n\t" \
  "smlad %[a2], %[x1], %[t], %[a2]\n\t" \
  "sxtb16 %[t], r11, ror #8\n\t" \
  "sxtb16 r11, r11\n\t" \
  "smlad %[a3], %[x0], r11, %[a3]\n\t" \
  "smlad %[a3], %[x1], %[t], %[a3]\n\t"
  int32_t x0, x1, t;
  int n = n4 >> 1;
  if (n4 & 1) {
    __asm__ volatile(EDGEC_MAC1X4_GROUP
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [px] "+r"(px),
                       [pw] "+r"(pw), [x0] "=&r"(x0), [x1] "=&r"(x1), [t] "=&r"(t)
                     :
                     : "r8", "r9", "r10", "r11", "cc", "memory");
  }
  if (n > 0) {
    __asm__ volatile("1:\n\t" EDGEC_MAC1X4_GROUP EDGEC_MAC1X4_GROUP
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [px] "+r"(px),
                       [pw] "+r"(pw), [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [t] "=&r"(t)
                     :
                     : "r8", "r9", "r10", "r11", "cc", "memory");
  }
#else
  for (int i = 0; i < n4; ++i) {
    const int32_t xw = edgec_ld32(px);
    const int32_t x0 = edgec_sxtb16(xw), x1 = edgec_sxtb16_r8(xw);
    int32_t* a[4];
    a[0] = &a0;
    a[1] = &a1;
    a[2] = &a2;
    a[3] = &a3;
    for (int j = 0; j < 4; ++j) {
      const int32_t ww = edgec_ld32(pw + 4 * j);
      *a[j] = edgec_smlad(x0, edgec_sxtb16(ww), *a[j]);
      *a[j] = edgec_smlad(x1, edgec_sxtb16_r8(ww), *a[j]);
    }
    px += 4;
    pw += 16;
  }
#endif
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/* x: M rows of K (K % 4 == 0), w: ceil(N/4) groups of 4 channels x K; bias and
 * rqm, rqs padded to a multiple of four channels. */
EDGEC_KERNEL void edgec_dsp_fc(const int8_t* x, int8_t* y, const int8_t* w, const int32_t* bias,
                               const int32_t* rqm, const int8_t* rqs, int32_t hk, int M, int N, int K, int zp, int lo, int hi)
{
  const int n4 = K >> 2;
  for (int m = 0; m < M; ++m) {
    const int8_t* wp = w;
    for (int n = 0; n < N; n += 4) {
      int32_t acc[4];
      acc[0] = bias[n];
      acc[1] = bias[n + 1];
      acc[2] = bias[n + 2];
      acc[3] = bias[n + 3];
      edgec_mac1x4(x, wp, n4, acc);
      wp += 16 * n4;
      for (int j = 0; j < 4 && n + j < N; ++j) {
        int32_t h, s;
        edgec_rq_ch(rqs, hk, n + j, h, s);
        y[n + j] = (int8_t)edgec_clamp8(edgec_rq(acc[j], rqm[n + j], h, s) + zp, lo, hi);
      }
    }
    x += K;
    y += N;
  }
}

/* y[i * ys] = requantized acc[i] + b, i < n. */
EDGEC_INLINE void edgec_rq_row(const int32_t* acc, int n, int8_t* y, int ys, int32_t b, int32_t m,
                                int32_t h, int32_t s, int zp, int lo, int hi)
{
#if EDGEC_DSP_ASM
  if (__builtin_constant_p(ys) && ys > 0 && ys < 256 && zp == 0 && lo == -128 && hi == 127) {
    const int32_t* const end = acc + n;
    int32_t a, lw, hw;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[a], [%[p]], #4\n\t"
        "add %[a], %[a], %[b]\n\t"
        "asr %[hw], %[a], #31\n\t"
        "adds %[lw], %[k], %[hw], lsl #31\n\t"
        "adc %[hw], %[h], %[hw]\n\t"
        "smlal %[lw], %[hw], %[a], %[m]\n\t"
        "asr %[hw], %[hw], %[s]\n\t"
        "ssat %[hw], #8, %[hw]\n\t"
        "strb %[hw], [%[y]], %[ys]\n\t"
        "cmp %[p], %[e]\n\t"
        "bne 1b\n\t"
        : [p] "+r"(acc), [y] "+r"(y), [a] "=&r"(a), [lw] "=&r"(lw), [hw] "=&r"(hw)
        : [e] "r"(end), [b] "r"(b), [m] "r"(m), [h] "r"(h), [s] "r"(s),
          [k] "r"((uint32_t)0x40000000u), [ys] "i"(ys)
        : "cc", "memory");
    return;
  }
#endif
  for (int i = 0; i < n; ++i) {
    y[i * ys] = (int8_t)edgec_clamp8(edgec_rq(acc[i] + b, m, h, s) + zp, lo, hi);
  }
}

/* DEPTHWISE_CONV_2D 3x3, stride 1 or 2, channel multiplier 1, NHWC.
 * One channel at a time: its plane (with the input offset added, padding 0)
 * as 16-bit values in scratch (Hp x Wp, Wp even), then per output row two
 * horizontally adjacent outputs per step, each kernel row as SMLAD on pairs
 * of taps, raw sums into acc[] (scratch, OW rounded up to even), then the
 * row is requantized:
 * w[9*c + 3*ky + kx] int8 (flash: 9 bytes a channel); per channel the kernel
 * rows become the 16-bit pairs (w[ky][0], w[ky][1]) and (w[ky][1], w[ky][2]).
 * Reads channel c of x only before writing channel c of y: y may be x
 * (stride 1, same shape). */
EDGEC_KERNEL void edgec_dsp_dw3x3(const int8_t* x, int8_t* y, int16_t* plane, const int8_t* w,
                                  const int32_t* bias, const int32_t* rqm, const int8_t* rqs,
                                  int32_t hk, int H, int W, int C, int OH, int OW, int st, int pt, int pl, int Hp, int Wp,
                                  int in_off, int zp, int lo, int hi)
{
  const int32_t off2 = (int32_t)(((uint32_t)(uint16_t)(int16_t)in_off) * 0x00010001u);
  int32_t* const acc = (int32_t*)(plane + Hp * Wp);
  const int OWe = OW + (OW & 1);
  for (int i = 0; i < Hp * Wp; i += 2) edgec_st32(plane + i, 0);
  for (int c = 0; c < C; ++c) {
    /* the plane of channel c */
    for (int r = 0; r < H; ++r) {
      const int8_t* src = x + r * W * C + c;
      int16_t* dst = plane + (r + pt) * Wp + pl;
      int j = 0;
      if (pl & 1) {
        dst[0] = (int16_t)(src[0] + in_off);
        j = 1;
      }
      for (; j + 2 <= W; j += 2) {
        edgec_st32(dst + j, edgec_sadd16(edgec_pkhbt(src[j * C], src[(j + 1) * C]), off2));
      }
      if (j < W) dst[j] = (int16_t)(src[j * C] + in_off);
    }
    {
      const int8_t* k = w + 9 * c;
      const int32_t k0 = edgec_pkhbt(k[0], k[1]), k1 = edgec_pkhbt(k[1], k[2]);
      const int32_t k2 = edgec_pkhbt(k[3], k[4]), k3 = edgec_pkhbt(k[4], k[5]);
      const int32_t k4 = edgec_pkhbt(k[6], k[7]), k5 = edgec_pkhbt(k[7], k[8]);
      const int32_t b = bias[c];
      const int32_t m = rqm[c];
      int32_t h, s;
      edgec_rq_ch(rqs, hk, c, h, s);
      for (int oy = 0; oy < OH; ++oy) {
        const int16_t* q = plane + oy * st * Wp;
        int8_t* yo = y + oy * OW * C + c;
        int32_t* ap = acc;
        int32_t* const aend = acc + OWe;
        if (st == 1) {
#if EDGEC_DSP_ASM
          if (__builtin_constant_p(Wp) && 4 * Wp + 8 <= 1020) {
            register int32_t rk0 __asm__("r4") = k0, rk1 __asm__("r5") = k1, rk2 __asm__("r6") = k2;
            register int32_t rk3 __asm__("r8") = k3, rk4 __asm__("r9") = k4, rk5 __asm__("r10") = k5;
            int32_t u, v, a0, a1;
            __asm__ volatile(
                "1:\n\t"
                "ldrd %[u], %[v], [%[q]], #4\n\t"
                "smuad %[a0], %[u], %[k0]\n\t"
                "smultb %[a1], %[u], %[k0]\n\t"
                "smlabt %[a0], %[v], %[k1], %[a0]\n\t"
                "smlad %[a1], %[v], %[k1], %[a1]\n\t"
                "ldrd %[u], %[v], [%[q], %[r1]]\n\t"
                "smlad %[a0], %[u], %[k2], %[a0]\n\t"
                "smlatb %[a1], %[u], %[k2], %[a1]\n\t"
                "smlabt %[a0], %[v], %[k3], %[a0]\n\t"
                "smlad %[a1], %[v], %[k3], %[a1]\n\t"
                "ldrd %[u], %[v], [%[q], %[r2]]\n\t"
                "smlad %[a0], %[u], %[k4], %[a0]\n\t"
                "smlatb %[a1], %[u], %[k4], %[a1]\n\t"
                "smlabt %[a0], %[v], %[k5], %[a0]\n\t"
                "smlad %[a1], %[v], %[k5], %[a1]\n\t"
                "strd %[a0], %[a1], [%[ap]], #8\n\t"
                "cmp %[ap], %[ae]\n\t"
                "bne 1b\n\t"
                : [q] "+r"(q), [ap] "+r"(ap), [u] "=&r"(u), [v] "=&r"(v), [a0] "=&r"(a0), [a1] "=&r"(a1)
                : [ae] "r"(aend), [k0] "r"(rk0), [k1] "r"(rk1), [k2] "r"(rk2), [k3] "r"(rk3),
                  [k4] "r"(rk4), [k5] "r"(rk5), [r1] "i"(2 * Wp - 4), [r2] "i"(4 * Wp - 4)
                : "cc", "memory");
          } else
#endif
          do {
            int32_t u = edgec_ld32(q), v = edgec_ld32(q + 2);
            int32_t a0 = 0, a1 = 0;
            a0 = edgec_smlad(u, k0, a0);
            a0 = edgec_smlabt(v, k1, a0);
            a1 = edgec_smlatb(u, k0, a1);
            a1 = edgec_smlad(v, k1, a1);
            u = edgec_ld32(q + Wp);
            v = edgec_ld32(q + Wp + 2);
            a0 = edgec_smlad(u, k2, a0);
            a0 = edgec_smlabt(v, k3, a0);
            a1 = edgec_smlatb(u, k2, a1);
            a1 = edgec_smlad(v, k3, a1);
            u = edgec_ld32(q + 2 * Wp);
            v = edgec_ld32(q + 2 * Wp + 2);
            a0 = edgec_smlad(u, k4, a0);
            a0 = edgec_smlabt(v, k5, a0);
            a1 = edgec_smlatb(u, k4, a1);
            a1 = edgec_smlad(v, k5, a1);
            ap[0] = a0;
            ap[1] = a1;
            ap += 2;
            q += 2;
          } while (ap != aend);
        } else {
#if EDGEC_DSP_ASM
          if (__builtin_constant_p(Wp) && 4 * Wp + 8 <= 1020) {
            register int32_t rk0 __asm__("r4") = k0, rk1 __asm__("r5") = k1, rk2 __asm__("r6") = k2;
            register int32_t rk3 __asm__("r8") = k3, rk4 __asm__("r9") = k4, rk5 __asm__("r10") = k5;
            int32_t u, v, a0, a1;
            __asm__ volatile(
                "1:\n\t"
                "ldrd %[u], %[v], [%[q]], #8\n\t"
                "smuad %[a0], %[u], %[k0]\n\t"
                "smlabt %[a0], %[v], %[k1], %[a0]\n\t"
                "smuad %[a1], %[v], %[k0]\n\t"
                "ldr %[u], [%[q]]\n\t"
                "smlabt %[a1], %[u], %[k1], %[a1]\n\t"
                "ldrd %[u], %[v], [%[q], %[r1]]\n\t"
                "smlad %[a0], %[u], %[k2], %[a0]\n\t"
                "smlabt %[a0], %[v], %[k3], %[a0]\n\t"
                "smlad %[a1], %[v], %[k2], %[a1]\n\t"
                "ldr %[u], [%[q], %[r1b]]\n\t"
                "smlabt %[a1], %[u], %[k3], %[a1]\n\t"
                "ldrd %[u], %[v], [%[q], %[r2]]\n\t"
                "smlad %[a0], %[u], %[k4], %[a0]\n\t"
                "smlabt %[a0], %[v], %[k5], %[a0]\n\t"
                "smlad %[a1], %[v], %[k4], %[a1]\n\t"
                "ldr %[u], [%[q], %[r2b]]\n\t"
                "smlabt %[a1], %[u], %[k5], %[a1]\n\t"
                "strd %[a0], %[a1], [%[ap]], #8\n\t"
                "cmp %[ap], %[ae]\n\t"
                "bne 1b\n\t"
                : [q] "+r"(q), [ap] "+r"(ap), [u] "=&r"(u), [v] "=&r"(v), [a0] "=&r"(a0), [a1] "=&r"(a1)
                : [ae] "r"(aend), [k0] "r"(rk0), [k1] "r"(rk1), [k2] "r"(rk2), [k3] "r"(rk3),
                  [k4] "r"(rk4), [k5] "r"(rk5), [r1] "i"(2 * Wp - 8), [r2] "i"(4 * Wp - 8),
                  [r1b] "i"(2 * Wp), [r2b] "i"(4 * Wp)
                : "cc", "memory");
          } else
#endif
          do {
            int32_t u = edgec_ld32(q), v = edgec_ld32(q + 2), z = edgec_ld32(q + 4);
            int32_t a0 = 0, a1 = 0;
            a0 = edgec_smlad(u, k0, a0);
            a0 = edgec_smlabt(v, k1, a0);
            a1 = edgec_smlad(v, k0, a1);
            a1 = edgec_smlabt(z, k1, a1);
            u = edgec_ld32(q + Wp);
            v = edgec_ld32(q + Wp + 2);
            z = edgec_ld32(q + Wp + 4);
            a0 = edgec_smlad(u, k2, a0);
            a0 = edgec_smlabt(v, k3, a0);
            a1 = edgec_smlad(v, k2, a1);
            a1 = edgec_smlabt(z, k3, a1);
            u = edgec_ld32(q + 2 * Wp);
            v = edgec_ld32(q + 2 * Wp + 2);
            z = edgec_ld32(q + 2 * Wp + 4);
            a0 = edgec_smlad(u, k4, a0);
            a0 = edgec_smlabt(v, k5, a0);
            a1 = edgec_smlad(v, k4, a1);
            a1 = edgec_smlabt(z, k5, a1);
            ap[0] = a0;
            ap[1] = a1;
            ap += 2;
            q += 4;
          } while (ap != aend);
        }
        edgec_rq_row(acc, OW, yo, C, b, m, h, s, zp, lo, hi);
      }
    }
  }
}

/* Average pooling over the whole H x W plane (count = H * W <= 256), NHWC,
 * four channels at a time in 16-bit lanes (SXTAB16). */
EDGEC_KERNEL void edgec_dsp_global_avgpool(const int8_t* x, int8_t* y, int HW, int C, int lo, int hi)
{
  int c = 0;
  for (; c + 4 <= C; c += 4) {
    int32_t s02 = 0, s13 = 0;
    const int8_t* p = x + c;
    for (int i = 0; i < HW; ++i) {
      const int32_t v = edgec_ld32(p);
      s02 = edgec_sxtab16(s02, v);
      s13 = edgec_sxtab16_r8(s13, v);
      p += C;
    }
    {
      int32_t s[4];
      s[0] = (int16_t)(uint16_t)((uint32_t)s02 & 0xFFFFu);
      s[2] = (int16_t)(uint16_t)((uint32_t)s02 >> 16);
      s[1] = (int16_t)(uint16_t)((uint32_t)s13 & 0xFFFFu);
      s[3] = (int16_t)(uint16_t)((uint32_t)s13 >> 16);
      for (int j = 0; j < 4; ++j) {
        const int32_t a = s[j] > 0 ? (s[j] + HW / 2) / HW : (s[j] - HW / 2) / HW;
        y[c + j] = (int8_t)edgec_clamp8(a, lo, hi);
      }
    }
  }
  for (; c < C; ++c) {
    int32_t a = 0;
    for (int i = 0; i < HW; ++i) a += x[i * C + c];
    a = a > 0 ? (a + HW / 2) / HW : (a - HW / 2) / HW;
    y[c] = (int8_t)edgec_clamp8(a, lo, hi);
  }
}


EDGEC_KERNEL void edgec_add_s8(const int8_t* a, const int8_t* b, int8_t* y, int n,
                               const edgec_lut_t* ta, const edgec_lut_t* tb, const int32_t* rq,
                               int fast, int zp, int lo, int hi)
{
  for (int i = 0; i < n; ++i) y[i] = (int8_t)edgec_add_one(a[i], b[i], ta, tb, rq, fast, zp, lo, hi);
}
