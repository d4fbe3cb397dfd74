/* templates/runtime/ref_s8.c: the generic int8 kernels of --optimize size (CONV_2D with
 * groups and dilation, FULLY_CONNECTED, MAX/AVERAGE pooling, ADD/SUB) on random layers,
 * NHWC and NCHW, against numpy with edgec.ir.qmath's requantization (TFLite Micro's
 * reference arithmetic).  vectors.h (tests/test_runtime_c.py) holds each case's
 * parameter block p[], offsets into the pooled arrays (-1: none, e.g. no bias) and
 * its expected output. */
#include "rt_test.h"
#include "qmath.c"
#include "ref_s8.c"

typedef struct {
  int32_t p[32];
  int32_t x, w, b, m, s, a2; /* offsets of the inputs into the pooled arrays, -1: none */
  int32_t want, n;           /* the expected output: offset and element count */
} rt_case;

#include "vectors.h"

static int8_t y[Y_MAX];

static void check(const char* what, int c, const rt_case* k)
{
  for (int i = 0; i < k->n; ++i) {
    if (!RT_EQ(what, c * 100000 + i, y[i], want[k->want + i])) break;
  }
}

int main(void)
{
  for (int c = 0; c < CONV_N; ++c) {
    const rt_case* k = &conv_cases[c];
    memset(y, 0x55, sizeof y);
    edgec_ref_conv(x8 + k->x, y, w8 + k->w, k->b < 0 ? NULL : b32 + k->b, m32 + k->m, s8 + k->s, k->p);
    check("conv", c, k);
  }
  for (int c = 0; c < FC_N; ++c) {
    const rt_case* k = &fc_cases[c];
    memset(y, 0x55, sizeof y);
    edgec_ref_fc(x8 + k->x, y, w8 + k->w, k->b < 0 ? NULL : b32 + k->b, m32 + k->m, s8 + k->s, k->p);
    check("fc", c, k);
  }
  for (int c = 0; c < POOL_N; ++c) {
    const rt_case* k = &pool_cases[c];
    memset(y, 0x55, sizeof y);
    edgec_ref_pool(x8 + k->x, y, k->p);
    check("pool", c, k);
  }
  for (int c = 0; c < ADD_N; ++c) {
    const rt_case* k = &add_cases[c];
    memset(y, 0x55, sizeof y);
    edgec_ref_add(x8 + k->x, x8 + k->a2, y, k->p);
    check("add", c, k);
  }
  return rt_finish();
}
