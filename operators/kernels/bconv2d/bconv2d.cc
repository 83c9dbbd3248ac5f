// Binary 2-D convolution: sign-pack the input channel-minor, im2col over packed words straight
// into the BGEMM kernel's panel layout, xor-popcount GEMM, output transform with the exact
// border correction. The maths is in output_transform.h.
//
// Data layout per call:
//   input   NCHW floats
//   packed  [batch][in_h * in_w][groups][words_for(group_in)]   (channel-minor, "NHWC words")
//   weights [out_channels][kernel_h][kernel_w][words_for(group_in)]  (pack_conv_weights)
//   panel   [K = taps * words][nr]: K-word k of the im2col rows of nr consecutive output pixels,
//           tap-major and word-minor, the same order as a weight row, so weight rows are used as
//           the GEMM's A operand in place.
// Work is split over (image, group, panel of nr output pixels[, chunk of output channels]); each
// task builds its panel in a per-thread buffer that stays in L1/L2 while all output channels of
// the group stream over it.
#include "bconv2d/bconv2d.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "bconv2d/output_transform.h"
#include "bgemm/bgemm.h"
#include "bitpack/bitpack.h"
#include "threading.h"

namespace bmx {

std::string bconv2d_check(const BConv2DShape& s) {
  auto bad = [](const std::string& what) { return "bmx::bconv2d: " + what; };
  if (s.batch < 0) return bad("batch is " + std::to_string(s.batch) + "; it must be >= 0");
  if (s.in_channels < 1 || s.out_channels < 1)
    return bad("in_channels (" + std::to_string(s.in_channels) + ") and out_channels (" +
               std::to_string(s.out_channels) + ") must be >= 1");
  if (s.in_h < 1 || s.in_w < 1) return bad("in_h and in_w must be >= 1");
  if (s.kernel_h < 1 || s.kernel_w < 1) return bad("kernel_h and kernel_w must be >= 1");
  if (s.stride_h < 1 || s.stride_w < 1) return bad("stride_h and stride_w must be >= 1");
  if (s.dilate_h < 1 || s.dilate_w < 1) return bad("dilate_h and dilate_w must be >= 1");
  if (s.pad_h < 0 || s.pad_w < 0) return bad("pad_h and pad_w must be >= 0");
  if (s.groups < 1) return bad("groups must be >= 1");
  if (s.in_channels % s.groups != 0 || s.out_channels % s.groups != 0)
    return bad("in_channels (" + std::to_string(s.in_channels) + ") and out_channels (" +
               std::to_string(s.out_channels) + ") must both be divisible by groups (" +
               std::to_string(s.groups) + ")");
  if (s.pad_value != 0 && s.pad_value != 1 && s.pad_value != -1)
    return bad("pad_value is " + std::to_string(s.pad_value) + "; use 0, +1 or -1");
  if (s.out_h() < 1 || s.out_w() < 1)
    return bad("the kernel (with dilation) is larger than the padded input: output would be " +
               std::to_string(s.out_h()) + "x" + std::to_string(s.out_w()) +
               "; use more padding or a smaller kernel");
  if (s.kernel_h * s.kernel_w * s.group_in() >= (int64_t{1} << 30))
    return bad("receptive field (kernel_h * kernel_w * group_in) is too large (>= 2^30 bits)");
  return std::string();
}

int64_t bconv2d_packed_weight_words(const BConv2DShape& s) {
  return s.out_channels * s.kernel_h * s.kernel_w * words_for(s.group_in());
}

void pack_conv_weights(const BConv2DShape& s, const float* w, word_t* packed) {
  const int64_t cg = s.group_in(), kh = s.kernel_h, kw = s.kernel_w, wpp = words_for(cg);
  for (int64_t o = 0; o < s.out_channels; ++o)
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) {
        word_t* dst = packed + ((o * kh + ky) * kw + kx) * wpp;
        for (int64_t i = 0; i < wpp; ++i) dst[i] = 0;
        for (int64_t c = 0; c < cg; ++c)
          if (w[((o * cg + c) * kh + ky) * kw + kx] >= 0.0f)
            dst[c / kWordBits] |= word_t{1} << (c % kWordBits);
      }
}

namespace {

// Range [lo, hi) of kernel taps along one axis that land inside the input for output index o.
struct TapRange {
  int64_t lo, hi;
};
std::vector<TapRange> tap_ranges(int64_t out, int64_t in, int64_t k, int64_t stride, int64_t pad,
                                 int64_t dilate) {
  std::vector<TapRange> r(out);
  for (int64_t y = 0; y < out; ++y) {
    int64_t lo = k, hi = 0;
    for (int64_t t = 0; t < k; ++t) {
      const int64_t i = y * stride - pad + t * dilate;
      if (i >= 0 && i < in) {
        lo = std::min(lo, t);
        hi = t + 1;
      }
    }
    r[y] = lo < hi ? TapRange{lo, hi} : TapRange{0, 0};
  }
  return r;
}

// Maps each output index to a class of equal tap ranges; class 0 is the full range [0, k).
std::vector<int> classify(const std::vector<TapRange>& ranges, int64_t k,
                          std::vector<TapRange>* distinct) {
  distinct->assign(1, TapRange{0, k});
  std::vector<int> cls(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    size_t c = 0;
    while (c < distinct->size() &&
           ((*distinct)[c].lo != ranges[i].lo || (*distinct)[c].hi != ranges[i].hi))
      ++c;
    if (c == distinct->size()) distinct->push_back(ranges[i]);
    cls[i] = static_cast<int>(c);
  }
  return cls;
}

}  // namespace

void bconv2d_with_path(Path path, const BConv2DShape& s, const float* input, const word_t* packed_w,
                       const float* scale, const float* bias, float* output, int num_threads) {
  const std::string err = bconv2d_check(s);
  if (!err.empty()) throw std::invalid_argument(err);
  if (s.batch == 0) return;

  const int64_t G = s.groups, cg = s.group_in(), mg = s.group_out(), wpp = words_for(cg);
  const int64_t H = s.in_h, W = s.in_w, HW = H * W, OH = s.out_h(), OW = s.out_w(), P = OH * OW;
  const int64_t kh = s.kernel_h, kw = s.kernel_w, T = kh * kw, K = T * wpp, nbits = T * cg;
  const int threads = resolve_threads(num_threads);

  // 1. Sign-pack the input, channel-minor, per group.
  const BitpackKernels& bp = bitpack_for_path(path);
  AlignedBuffer<word_t> packed(s.batch * HW * G * wpp);
  {
    const int64_t chunk = 512;
    const int64_t chunks = (HW + chunk - 1) / chunk;
    const int64_t tasks = s.batch * G * chunks;
    word_t* pk = packed.get();
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t c = t % chunks, bg = t / chunks, g = bg % G, b = bg / G;
      const int64_t p0 = c * chunk, np = std::min(chunk, HW - p0);
      bp.pack_channels(input + (b * s.in_channels + g * cg) * HW + p0, cg, HW, np,
                       pk + ((b * HW + p0) * G + g) * wpp, G * wpp);
    }
  }

  // 2. Border taps: the word written for them, and (pad_value 0) the exact correction tables.
  std::vector<word_t> pad_word(wpp, 0);
  if (s.pad_value == 1) {
    for (int64_t i = 0; i < wpp; ++i) pad_word[i] = ~word_t{0};
    if (cg % kWordBits) pad_word[wpp - 1] = (word_t{1} << (cg % kWordBits)) - 1;
  }
  // Output rows (columns) whose kernel rows (columns) are not all inside the input come in a few
  // distinct tap ranges; a border pixel's class is its (row range, column range) pair.
  std::vector<TapRange> yranges, xranges;
  const std::vector<int> ycls =
      classify(tap_ranges(OH, H, kh, s.stride_h, s.pad_h, s.dilate_h), kh, &yranges);
  const std::vector<int> xcls =
      classify(tap_ranges(OW, W, kw, s.stride_w, s.pad_w, s.dilate_w), kw, &xranges);
  const int64_t ny = static_cast<int64_t>(yranges.size()),
                nx = static_cast<int64_t>(xranges.size());
  const bool correct = s.pad_value == 0 && ny * nx > 1;
  // corr[yc * nx + xc][o] = sum of S(o, t) over the taps t outside the input for that class
  // (class 0 x 0 is the interior: 0), with S(o, t) = 2 popcount(W[o][t]) - cg. The popcounts of
  // all (output channel, tap) word runs are one GEMV against a zero vector, done by the path's
  // own kernel; the sums run over o in the innermost loop so that they vectorise.
  const int64_t ncls = ny * nx, O = s.out_channels;
  std::vector<int32_t> corr(correct ? ncls * O : 0, 0);
  if (correct) {
    std::vector<int32_t> pc(O * T), St(T * O);
    std::vector<word_t> zeros(wpp, 0);
    const BGemmKernel& gemv = select_bgemm_kernel(path, O * T, 1, wpp);
    bgemm_with_kernel(gemv, O * T, 1, wpp, packed_w, wpp, zeros.data(), wpp, pc.data(), 1, threads);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t t = 0; t < T; ++t) St[t * O + o] = 2 * pc[o * T + t] - static_cast<int32_t>(cg);
    for (int64_t yc = 0; yc < ny; ++yc)
      for (int64_t xc = 0; xc < nx; ++xc) {
        int32_t* c = corr.data() + (yc * nx + xc) * O;
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx) {
            if (ky >= yranges[yc].lo && ky < yranges[yc].hi && kx >= xranges[xc].lo &&
                kx < xranges[xc].hi)
              continue;  // inside the input
            const int32_t* st = St.data() + (ky * kw + kx) * O;
            for (int64_t o = 0; o < O; ++o) c[o] += st[o];
          }
      }
  }

  // 3. GEMM per (image, group, panel of output pixels, chunk of output channels).
  const BGemmKernel& kernel = select_bgemm_kernel(path, mg, P, K);
  const int nr = kernel.nr;
  const int64_t panels = (P + nr - 1) / nr;
  const int64_t col_tasks = s.batch * G * panels;
  const RowSplit split = split_rows(mg, col_tasks, threads);
  const int64_t tasks = col_tasks * split.chunks;
  const bool direct = T == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
  const word_t* pk = packed.get();
  // Where word k of the im2col row of panel column j goes.
  const int64_t kstride = kernel.row_panel ? 1 : nr, jstride = kernel.row_panel ? K : 1;

#pragma omp parallel num_threads(threads) if (threads > 1 && tasks > 1)
  {
    AlignedBuffer<word_t> panel_buf(K * nr);
    AlignedBuffer<int32_t> counts(split.rows * nr);
    std::vector<int> border(nr), border_cls(nr);  // panel columns that are border pixels
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t chunk = t % split.chunks, rest = t / split.chunks;
      const int64_t p = rest % panels, bg = rest / panels, g = bg % G, b = bg / G;
      const int64_t n0 = p * nr;
      const int n = static_cast<int>(std::min<int64_t>(nr, P - n0));
      word_t* panel = panel_buf.get();

      // im2col of pixels n0 .. n0+n-1 into the panel.
      if (direct) {
        // 1x1, stride 1, no padding: the im2col row of a pixel is its packed input word run.
        pack_panel(kernel, K, pk + ((b * HW + n0) * G + g) * wpp, G * wpp, n, panel);
      } else {
        for (int j = 0; j < nr; ++j) {
          if (j >= n) {
            if (!kernel.row_panel)
              for (int64_t k = 0; k < K; ++k) panel[k * nr + j] = 0;
            continue;
          }
          const int64_t oy = (n0 + j) / OW, ox = (n0 + j) % OW;
          for (int64_t ky = 0; ky < kh; ++ky) {
            const int64_t iy = oy * s.stride_h - s.pad_h + ky * s.dilate_h;
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t ix = ox * s.stride_w - s.pad_w + kx * s.dilate_w;
              word_t* dst = panel + (ky * kw + kx) * wpp * kstride + j * jstride;
              const word_t* src = (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                      ? pk + ((b * HW + iy * W + ix) * G + g) * wpp
                                      : pad_word.data();
              for (int64_t i = 0; i < wpp; ++i) dst[i * kstride] = src[i];
            }
          }
        }
      }

      const int64_t m0 = chunk * split.rows, rows = std::min(mg, m0 + split.rows) - m0;
      kernel.run(rows, K, packed_w + (g * mg + m0) * K, K, panel, n, counts.get(), nr);

      // Output transform (+ border correction): integer dot products first (the correction
      // only for the border pixels of the panel), then one vectorisable float pass per row.
      int nborder = 0;
      if (correct) {
        for (int j = 0; j < n; ++j) {
          const int cls = static_cast<int>(ycls[(n0 + j) / OW] * nx + xcls[(n0 + j) % OW]);
          if (cls == 0) continue;
          border[nborder] = j;
          border_cls[nborder] = cls;
          ++nborder;
        }
      }
      int32_t* dots = counts.get();  // counts become dot products in place
      for (int64_t r = 0; r < rows; ++r)
        for (int j = 0; j < n; ++j)
          dots[r * nr + j] = static_cast<int32_t>(nbits) - 2 * dots[r * nr + j];
      for (int i = 0; i < nborder; ++i) {
        const int32_t* c = corr.data() + border_cls[i] * O + g * mg + m0;
        int32_t* d = dots + border[i];
        for (int64_t r = 0; r < rows; ++r) d[r * nr] += c[r];
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t o = g * mg + m0 + r;
        write_output(dots + r * nr, n, scale, bias, o, output + (b * s.out_channels + o) * P + n0);
      }
    }
  }
}

void bconv2d(const BConv2DShape& s, const float* input, const word_t* packed_w, const float* scale,
             const float* bias, float* output, int num_threads) {
  bconv2d_with_path(active_path(), s, input, packed_w, scale, bias, output, num_threads);
}

}  // namespace bmx
