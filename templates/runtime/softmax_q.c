/* gemmlowp fixed-point exp and reciprocal, as TFLite Micro's int8 softmax. */
static inline int edgec_clz32(uint32_t x)
{
#if defined(__GNUC__) || defined(__clang__)
  return x ? __builtin_clz(x) : 32;
#else
  int n = 0;
  if (!x) return 32;
  while (!(x & 0x80000000u)) { x <<= 1; ++n; }
  return n;
#endif
}

static int32_t edgec_exp_on_interval(int32_t a)
{
  const int32_t constant_term = 1895147668;
  const int32_t constant_1_over_3 = 715827883;
  const int32_t x = a + (1 << 28);
  const int32_t x2 = edgec_srdhm(x, x);
  const int32_t x3 = edgec_srdhm(x2, x);
  const int32_t x4 = edgec_srdhm(x2, x2);
  const int32_t x4_over_4 = edgec_rdbypot(x4, 2);
  const int32_t t = edgec_rdbypot(edgec_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
  return constant_term + edgec_srdhm(constant_term, x + t);
}

/* exp of a FixedPoint<int32, 5> input <= 0, result FixedPoint<int32, 0> */
static int32_t edgec_exp_on_negative_values_5(int32_t a)
{
  const int32_t one_quarter = 1 << 24;
  const int32_t a_mod = (a & (one_quarter - 1)) - one_quarter;
  int32_t result = edgec_exp_on_interval(edgec_sat_shl(a_mod, 5));
  const int32_t remainder = a_mod - a;
  if (remainder & (1 << 24)) result = edgec_srdhm(result, 1672461947);
  if (remainder & (1 << 25)) result = edgec_srdhm(result, 1302514674);
  if (remainder & (1 << 26)) result = edgec_srdhm(result, 790015084);
  if (remainder & (1 << 27)) result = edgec_srdhm(result, 290630308);
  if (remainder & (1 << 28)) result = edgec_srdhm(result, 39332535);
  if (remainder & (1 << 29)) result = edgec_srdhm(result, 720401);
  if (remainder & (1 << 30)) result = edgec_srdhm(result, 242);
  return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), FixedPoint<int32, 0> */
static int32_t edgec_one_over_one_plus_x(int32_t a)
{
  const int64_t s = (int64_t)a + INT32_MAX;
  const int32_t half_den = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
  int32_t x = 1515870810 + edgec_srdhm(half_den, -1010580540);
  int i;
  for (i = 0; i < 3; ++i) {
    const int32_t hdx = edgec_srdhm(half_den, x);
    const int32_t one_minus = (1 << 29) - hdx;
    x = x + edgec_sat_shl(edgec_srdhm(x, one_minus), 2);
  }
  return edgec_sat_shl(x, 1);
}
