/* One compiled form of templates/runtime/dsp_s8.c (see dsp_forms.h). */
#include "rt_runtime.h"
#include "qmath.c"
#include "dsp_s8.c"
#include "dsp_forms.h"

static int32_t f_sxtb16(int32_t x) { return edgec_sxtb16(x); }
static int32_t f_sxtb16_r8(int32_t x) { return edgec_sxtb16_r8(x); }
static int32_t f_smlad(int32_t a, int32_t b, int32_t acc) { return edgec_smlad(a, b, acc); }
static int32_t f_smlabt(int32_t a, int32_t b, int32_t acc) { return edgec_smlabt(a, b, acc); }
static int32_t f_smlatb(int32_t a, int32_t b, int32_t acc) { return edgec_smlatb(a, b, acc); }
static int32_t f_sxtab16(int32_t acc, int32_t x) { return edgec_sxtab16(acc, x); }
static int32_t f_sxtab16_r8(int32_t acc, int32_t x) { return edgec_sxtab16_r8(acc, x); }
static int32_t f_pkhbt(int32_t lo, int32_t hi) { return edgec_pkhbt(lo, hi); }
static int32_t f_sadd16(int32_t a, int32_t b) { return edgec_sadd16(a, b); }
static int32_t f_rq(int32_t acc, int32_t m, int32_t h, int32_t s) { return edgec_rq(acc, m, h, s); }
static int32_t f_clamp8(int32_t v, int lo, int hi) { return edgec_clamp8(v, lo, hi); }

static void f_mac2x2(const int32_t* px, const int8_t* pw, int n4, int32_t* acc)
{
  edgec_mac2x2(px, pw, n4, acc);
}

static void f_mac1x4(const int8_t* px, const int8_t* pw, int n4, int32_t* acc)
{
  edgec_mac1x4(px, pw, n4, acc);
}

static void f_rq_row1(const int32_t* acc, int n, int8_t* y, int32_t b, int32_t m, int32_t h, int32_t s)
{
  edgec_rq_row(acc, n, y, 1, b, m, h, s, 0, -128, 127);
}

static void f_fc(const int8_t* x, int8_t* y, const int8_t* w, const int32_t* bias, const int32_t* rqm,
                 const int8_t* rqs, int32_t hk, int M, int N, int K, int zp, int lo, int hi)
{
  edgec_dsp_fc(x, y, w, bias, rqm, rqs, hk, M, N, K, zp, lo, hi);
}

const rt_dsp_form RT_FORM = {
  EDGEC_DSP_ASM, f_sxtb16, f_sxtb16_r8, f_smlad, f_smlabt, f_smlatb, f_sxtab16, f_sxtab16_r8,
  f_pkhbt, f_sadd16, f_rq, f_clamp8, f_mac2x2, f_mac1x4, f_rq_row1, f_fc,
};
