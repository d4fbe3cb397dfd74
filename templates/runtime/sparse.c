/* Sparse weights: index of the lowest set bit of a non-zero word. */
static inline int edgec_ctz32(uint32_t x)
{
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctz(x);
#else
  int n = 0;
  while (!(x & 1u)) {
    x >>= 1;
    ++n;
  }
  return n;
#endif
}
