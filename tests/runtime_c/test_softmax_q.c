/* templates/runtime/softmax_q.c: gemmlowp's fixed-point exp and reciprocal as TFLite
 * Micro's int8 softmax uses them, against edgec.ir.qmath (numpy). */
#include "rt_test.h"
#include "qmath.c"
#include "softmax_q.c"
#include "vectors.h"

int main(void)
{
  for (int i = 0; i < CLZ_N; ++i) RT_EQ("clz32", i, edgec_clz32(clz_x[i]), clz_want[i]);
  for (int i = 0; i < INTERVAL_N; ++i)
    RT_EQ("exp_on_interval", i, edgec_exp_on_interval(interval_a[i]), interval_want[i]);
  for (int i = 0; i < EXP5_N; ++i)
    RT_EQ("exp_on_negative_values_5", i, edgec_exp_on_negative_values_5(exp5_a[i]), exp5_want[i]);
  for (int i = 0; i < RECIP_N; ++i)
    RT_EQ("one_over_one_plus_x", i, edgec_one_over_one_plus_x(recip_a[i]), recip_want[i]);
  return rt_finish();
}
