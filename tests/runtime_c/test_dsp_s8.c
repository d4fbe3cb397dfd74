/* templates/runtime/dsp_s8.c: the DSP-extension primitives against the Arm
 * architecture's definitions of SXTB16, SMLAD, ... (computed in Python), the
 * requantization edgec_rq against TFLite's MultiplyByQuantizedMultiplier, and
 * FULLY_CONNECTED (edgec_dsp_fc) against numpy + edgec.ir.qmath: the portable C
 * form everywhere; with -DRT_DSP_ASM (a core with the DSP extension at -O2) the
 * inline-assembly form as well, and both forms compared with each other on random
 * inputs of the inner loops (edgec_mac2x2, edgec_mac1x4, edgec_rq_row, edgec_dsp_fc). */
#include "rt_test.h"
#include "dsp_forms.h"
#include "vectors.h"

static void check_form(const char* name, const rt_dsp_form* f)
{
  static int8_t y[FC_Y_MAX];
  rt_puts(name);
  rt_puts("\n");
  for (int i = 0; i < PRIM_N; ++i) {
    const int32_t a = (int32_t)prim_a[i], b = (int32_t)prim_b[i], c = (int32_t)prim_c[i];
    RT_EQ("sxtb16", i, f->sxtb16(a), (int32_t)want_sxtb16[i]);
    RT_EQ("sxtb16_r8", i, f->sxtb16_r8(a), (int32_t)want_sxtb16_r8[i]);
    RT_EQ("smlad", i, f->smlad(a, b, c), (int32_t)want_smlad[i]);
    RT_EQ("smlabt", i, f->smlabt(a, b, c), (int32_t)want_smlabt[i]);
    RT_EQ("smlatb", i, f->smlatb(a, b, c), (int32_t)want_smlatb[i]);
    RT_EQ("sxtab16", i, f->sxtab16(c, a), (int32_t)want_sxtab16[i]);
    RT_EQ("sxtab16_r8", i, f->sxtab16_r8(c, a), (int32_t)want_sxtab16_r8[i]);
    RT_EQ("pkhbt", i, f->pkhbt(a, b), (int32_t)want_pkhbt[i]);
    RT_EQ("sadd16", i, f->sadd16(a, b), (int32_t)want_sadd16[i]);
  }
  for (int i = 0; i < RQ_N; ++i)
    RT_EQ("rq", i, f->rq(rq_acc[i], rq_m[i], rq_h[i], rq_s[i]), rq_want[i]);
  for (int i = 0; i < CLAMP_N; ++i)
    RT_EQ("clamp8", i, f->clamp8(clamp_v[i], clamp_lo[i], clamp_hi[i]), clamp_want[i]);
  for (int c = 0; c < FC_N; ++c) {
    const int32_t* p = fc_cases[c];
    memset(y, 0x55, sizeof y);
    f->fc(fc_x + p[0], y, fc_w + p[1], fc_b + p[2], fc_m + p[3], fc_s + p[4], p[6], p[7], p[8], p[9],
          p[10], p[11], p[12]);
    for (int i = 0; i < p[7] * p[8]; ++i) {
      if (!RT_EQ("dsp_fc", c * 100000 + i, y[i], fc_want[p[5] + i])) break;
    }
  }
}

#ifdef RT_DSP_ASM
/* The inline assembly against the portable C on random data (any bytes: both forms
 * must agree bit for bit, wrapping included). */
static void asm_vs_portable(void)
{
  static int32_t px[64];
  static int8_t pw[256];
  static int8_t x[4 * 64], w[16 * 64], ya[4 * 16], yp[4 * 16];
  static int32_t bias[16], rqm[16];
  static int8_t rqs[16];
  int32_t aa[4], ap[4];
  RT_EQ("rt_dsp_asm.is_asm", 0, rt_dsp_asm.is_asm, 1);
  RT_EQ("rt_dsp_port.is_asm", 0, rt_dsp_port.is_asm, 0);
  for (int t = 0; t < 200; ++t) {
    const int n4 = 1 + (int)(rt_rand() % 8);
    for (int i = 0; i < 4 * n4; ++i) px[i] = (int32_t)rt_rand();
    for (int i = 0; i < 16 * n4; ++i) pw[i] = (int8_t)rt_rand();
    for (int j = 0; j < 4; ++j) aa[j] = ap[j] = (int32_t)rt_rand();
    rt_dsp_asm.mac2x2(px, pw, n4, aa);
    rt_dsp_port.mac2x2(px, pw, n4, ap);
    for (int j = 0; j < 4; ++j) RT_EQ("mac2x2 asm/port", t * 4 + j, aa[j], ap[j]);
    for (int j = 0; j < 4; ++j) aa[j] = ap[j] = (int32_t)rt_rand();
    rt_dsp_asm.mac1x4((const int8_t*)px, pw, n4, aa);
    rt_dsp_port.mac1x4((const int8_t*)px, pw, n4, ap);
    for (int j = 0; j < 4; ++j) RT_EQ("mac1x4 asm/port", t * 4 + j, aa[j], ap[j]);
  }
  for (int t = 0; t < 200; ++t) {
    /* a requantization of requant_table's form: M in (2^30, 2^31), S in 1..22, H = hk << (S - 1) */
    const int n = 1 + (int)(rt_rand() % 16);
    const int32_t m = (int32_t)(0x40000001u + rt_rand() % 0x3FFFFFFFu);
    const int32_t s = 1 + (int32_t)(rt_rand() % 22);
    const int32_t hk = 1 + 2 * ((int32_t)(rt_rand() % 256) - 128);
    const int32_t h = (int32_t)((uint32_t)hk << (s - 1));
    const int32_t b = (int32_t)(rt_rand() % 2000001u) - 1000000;
    for (int i = 0; i < n; ++i) {
      const int32_t v = (int32_t)(rt_rand() >> (2 + rt_rand() % 30));
      px[i] = (rt_rand() & 1u) ? -v : v;
    }
    rt_dsp_asm.rq_row1(px, n, ya, b, m, h, s);
    rt_dsp_port.rq_row1(px, n, yp, b, m, h, s);
    for (int i = 0; i < n; ++i) RT_EQ("rq_row asm/port", t * 16 + i, ya[i], yp[i]);
  }
  for (int t = 0; t < 100; ++t) {
    const int M = 1 + (int)(rt_rand() % 4), N = 1 + (int)(rt_rand() % 16), K = 4 * (1 + (int)(rt_rand() % 16));
    const int hk = 1 + 2 * ((int)(rt_rand() % 256) - 128);
    const int lo = -128 + (int)(rt_rand() % 64), hi = 127 - (int)(rt_rand() % 64);
    for (int i = 0; i < M * K; ++i) x[i] = (int8_t)rt_rand();
    for (int i = 0; i < 16 * K; ++i) w[i] = (int8_t)rt_rand();
    for (int i = 0; i < 16; ++i) {
      bias[i] = (int32_t)(rt_rand() % 200001u) - 100000;
      rqm[i] = (int32_t)(0x40000001u + rt_rand() % 0x3FFFFFFFu);
      rqs[i] = (int8_t)(rt_rand() % 16);
    }
    memset(ya, 0, sizeof ya);
    memset(yp, 1, sizeof yp);
    rt_dsp_asm.fc(x, ya, w, bias, rqm, rqs, hk, M, N, K, 0, lo, hi);
    rt_dsp_port.fc(x, yp, w, bias, rqm, rqs, hk, M, N, K, 0, lo, hi);
    for (int i = 0; i < M * N; ++i) RT_EQ("dsp_fc asm/port", t * 64 + i, ya[i], yp[i]);
  }
}
#endif

int main(void)
{
  check_form("portable C", &rt_dsp_port);
#ifdef RT_DSP_ASM
  check_form("inline assembly", &rt_dsp_asm);
  asm_vs_portable();
#endif
  return rt_finish();
}
