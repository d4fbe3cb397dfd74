/* GridSample helpers: reflect a coordinate into [lo, hi]; Keys cubic weights (a = -0.75). */
static inline double edgec_gs_reflect(double x, double lo, double hi)
{
  const double rng = hi - lo;
  if (x < lo) {
    const double dx = lo - x;
    const int k = (int)(dx / rng);
    const double r = dx - k * rng;
    return k % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const int k = (int)(dx / rng);
    const double r = dx - k * rng;
    return k % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

static inline double edgec_gs_keys(double x)
{
  const double a = -0.75;
  x = fabs(x);
  if (x <= 1) return (a + 2) * x * x * x - (a + 3) * x * x + 1;
  if (x < 2) return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
  return 0;
}

static inline void edgec_gs_cubic(double t, double* w)
{
  w[0] = edgec_gs_keys(t + 1);
  w[1] = edgec_gs_keys(t);
  w[2] = edgec_gs_keys(1 - t);
  w[3] = edgec_gs_keys(2 - t);
}
