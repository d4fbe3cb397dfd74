/* Generic int8 kernels with their geometry and quantization passed at run time
 * (--optimize size): one copy serves every layer of an operator type.  Same
 * arithmetic as the per-layer kernels (TFLite Micro's reference kernels).
 * p[] holds the integers listed at each kernel; x/y layouts through element
 * strides (n, h, w, c), so NCHW and NHWC both work. */

/* p: N H W C O KH KW Cg OH OW Og sh sw dh dw pt pl in_off out_off lo hi
 *    per_channel xn xh xw xc yn yh yw yc */
EDGEC_KERNEL void edgec_ref_conv(const int8_t* x, int8_t* y, const int8_t* w, const int32_t* bias,
                                 const int32_t* mult, const int8_t* shift, const int32_t* p)
{
  const int N = p[0], H = p[1], W = p[2], O = p[4], KH = p[5], KW = p[6], Cg = p[7];
  const int OH = p[8], OW = p[9], Og = p[10], sh = p[11], sw = p[12], dh = p[13], dw = p[14];
  const int pt = p[15], pl = p[16], in_off = p[17], out_off = p[18], lo = p[19], hi = p[20];
  const int pc = p[21];
  for (int b = 0; b < N; ++b) {
    for (int oy = 0; oy < OH; ++oy) {
      for (int ox = 0; ox < OW; ++ox) {
        for (int oc = 0; oc < O; ++oc) {
          const int ic0 = (oc / Og) * Cg;
          int32_t acc = bias ? bias[oc] : 0;
          for (int ky = 0; ky < KH; ++ky) {
            const int iy = oy * sh - pt + ky * dh;
            if (iy < 0 || iy >= H) continue;
            for (int kx = 0; kx < KW; ++kx) {
              const int ix = ox * sw - pl + kx * dw;
              if (ix < 0 || ix >= W) continue;
              {
                const int8_t* xp = x + b * p[22] + iy * p[23] + ix * p[24] + ic0 * p[25];
                const int8_t* wp = w + ((oc * KH + ky) * KW + kx) * Cg;
                for (int ic = 0; ic < Cg; ++ic) {
                  acc += ((int32_t)xp[ic * p[25]] + in_off) * (int32_t)wp[ic];
                }
              }
            }
          }
          acc = edgec_mbqm(acc, mult[pc ? oc : 0], shift[pc ? oc : 0]) + out_off;
          acc = acc < lo ? lo : acc;
          acc = acc > hi ? hi : acc;
          y[b * p[26] + oy * p[27] + ox * p[28] + oc * p[29]] = (int8_t)acc;
        }
      }
    }
  }
}

/* p: M N K in_off w_off out_off lo hi per_channel */
EDGEC_KERNEL void edgec_ref_fc(const int8_t* x, int8_t* y, const int8_t* w, const int32_t* bias,
                               const int32_t* mult, const int8_t* shift, const int32_t* p)
{
  const int M = p[0], N = p[1], K = p[2], in_off = p[3], w_off = p[4], out_off = p[5];
  const int lo = p[6], hi = p[7], pc = p[8];
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      int32_t acc = bias ? bias[n] : 0;
      for (int k = 0; k < K; ++k) {
        acc += ((int32_t)x[m * K + k] + in_off) * ((int32_t)w[n * K + k] + w_off);
      }
      acc = edgec_mbqm(acc, mult[pc ? n : 0], shift[pc ? n : 0]) + out_off;
      acc = acc < lo ? lo : acc;
      acc = acc > hi ? hi : acc;
      y[m * N + n] = (int8_t)acc;
    }
  }
}

/* p: N C H W OH OW kh kw sh sw dh dw pt pl is_max count_include_pad Hp Wp lo hi
 *    xn xh xw xc yn yh yw yc */
EDGEC_KERNEL void edgec_ref_pool(const int8_t* x, int8_t* y, const int32_t* p)
{
  const int N = p[0], C = p[1], H = p[2], W = p[3], OH = p[4], OW = p[5], kh = p[6], kw = p[7];
  const int sh = p[8], sw = p[9], dh = p[10], dw = p[11], pt = p[12], pl = p[13];
  const int is_max = p[14], cip = p[15], Hp = p[16], Wp = p[17], lo = p[18], hi = p[19];
  for (int b = 0; b < N; ++b) {
    for (int oy = 0; oy < OH; ++oy) {
      for (int ox = 0; ox < OW; ++ox) {
        for (int c = 0; c < C; ++c) {
          const int8_t* xp = x + b * p[20] + c * p[23];
          int32_t acc = is_max ? -128 : 0;
          int cnt = 0;
          for (int ky = 0; ky < kh; ++ky) {
            const int iy = oy * sh - pt + ky * dh;
            for (int kx = 0; kx < kw; ++kx) {
              const int ix = ox * sw - pl + kx * dw;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                if (!is_max && cip && iy < Hp - pt && ix < Wp - pl) ++cnt;
                continue;
              }
              {
                const int32_t v = xp[iy * p[21] + ix * p[22]];
                if (is_max) {
                  acc = v > acc ? v : acc;
                } else {
                  acc += v;
                  ++cnt;
                }
              }
            }
          }
          if (!is_max) {
            if (cnt == 0) cnt = 1;
            acc = acc > 0 ? (acc + cnt / 2) / cnt : (acc - cnt / 2) / cnt;
          }
          acc = acc < lo ? lo : acc;
          acc = acc > hi ? hi : acc;
          y[b * p[24] + oy * p[25] + ox * p[26] + c * p[27]] = (int8_t)acc;
        }
      }
    }
  }
}

/* Quantized ADD / SUB of same-shaped tensors.
 * p: n in1_off in2_off left_shift m1 s1 m2 s2 mo so out_off lo hi is_sub */
EDGEC_KERNEL void edgec_ref_add(const int8_t* a, const int8_t* b, int8_t* y, const int32_t* p)
{
  for (int i = 0; i < p[0]; ++i) {
    const int32_t s1 = edgec_mbqm(((int32_t)a[i] + p[1]) * (1 << p[3]), p[4], p[5]);
    const int32_t s2 = edgec_mbqm(((int32_t)b[i] + p[2]) * (1 << p[3]), p[6], p[7]);
    const uint32_t raw = p[13] ? (uint32_t)s1 - (uint32_t)s2 : (uint32_t)s1 + (uint32_t)s2;
    int32_t acc = edgec_mbqm((int32_t)raw, p[8], p[9]) + p[10];
    acc = acc < p[11] ? p[11] : acc;
    acc = acc > p[12] ? p[12] : acc;
    y[i] = (int8_t)acc;
  }
}
