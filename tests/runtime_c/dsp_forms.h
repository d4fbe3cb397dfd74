/* dsp_forms.h: templates/runtime/dsp_s8.c's primitives and kernels as one table of
 * functions per compiled form.  dsp_forms.c, compiled with -DRT_FORM=<name>, defines
 * the table <name>: rt_dsp_port (portable C: a host, or a core built without the DSP
 * extension) and, on a core with it at -O2, rt_dsp_asm (inline assembly). */
#ifndef DSP_FORMS_H
#define DSP_FORMS_H

#include <stdint.h>

typedef struct {
  int is_asm; /* EDGEC_DSP_ASM of the form */
  int32_t (*sxtb16)(int32_t x);
  int32_t (*sxtb16_r8)(int32_t x);
  int32_t (*smlad)(int32_t a, int32_t b, int32_t acc);
  int32_t (*smlabt)(int32_t a, int32_t b, int32_t acc);
  int32_t (*smlatb)(int32_t a, int32_t b, int32_t acc);
  int32_t (*sxtab16)(int32_t acc, int32_t x);
  int32_t (*sxtab16_r8)(int32_t acc, int32_t x);
  int32_t (*pkhbt)(int32_t lo, int32_t hi);
  int32_t (*sadd16)(int32_t a, int32_t b);
  int32_t (*rq)(int32_t acc, int32_t m, int32_t h, int32_t s);
  int32_t (*clamp8)(int32_t v, int lo, int hi);
  void (*mac2x2)(const int32_t* px, const int8_t* pw, int n4, int32_t* acc);
  void (*mac1x4)(const int8_t* px, const int8_t* pw, int n4, int32_t* acc);
  /* edgec_rq_row with the stride 1, zero point 0 and full range of its assembly path */
  void (*rq_row1)(const int32_t* acc, int n, int8_t* y, int32_t b, int32_t m, int32_t h, int32_t s);
  void (*fc)(const int8_t* x, int8_t* y, const int8_t* w, const int32_t* bias, const int32_t* rqm,
             const int8_t* rqs, int32_t hk, int M, int N, int K, int zp, int lo, int hi);
} rt_dsp_form;

extern const rt_dsp_form rt_dsp_port;
extern const rt_dsp_form rt_dsp_asm;

#endif /* DSP_FORMS_H */
