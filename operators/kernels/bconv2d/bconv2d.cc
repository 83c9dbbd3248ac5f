// Binary 2-D convolution: sign-pack the input into padded planes of words, copy the im2col
// words of a panel of output pixels straight into the BGEMM kernel's panel layout, xor-popcount
// GEMM, then the vectorised output transform with the exact border correction
// (output_kernels.h). The maths is in output_transform.h.
//
// Data layout per call:
//   input   NCHW floats
//   packed  [image][group][word][Hp][Wp]: for every image, group and word i of a pixel's channel
//           bits (channels 64i .. 64i+63 of the group) one plane of words, the input inside a
//           frame of pad words (the encoding of pad_value, 0 for pad_value 0)
//   weights [out_channels][kernel_h][kernel_w][words_for(group_in)]  (pack_conv_weights)
//   panel   [K = taps * words][nr]: K-word k of the im2col rows of nr consecutive output pixels,
//           tap-major and word-minor, the same order as a weight row, so weight rows are used as
//           the GEMM's A operand in place.
// With the frame in place, the im2col words of a run of output pixels of one output row, for one
// tap and word, are consecutive words of one plane (stride_w apart): building a panel is a few
// memcpy's, with no bounds checks and no per-pixel index arithmetic. For a 1x1 kernel with
// stride 1 (or any kernel whose output rows tile the padded rows) a whole panel is one run.
//
// Work, in one parallel region: the border correction table (once per call), then per block of
// images the packing (planes x blocks of rows), then (image, group, panel of output pixels[,
// chunk of output channels]) tasks. A task builds its panel in a per-thread buffer that stays in
// L1 while the output channels stream over it 64 at a time (GEMM into an L1 block of counts,
// then the output transform writes the block's floats). All buffers are per-thread scratch
// reused from call to call (threading.h); only a few small tables are allocated per call.
#include "bconv2d/bconv2d.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bconv2d/output_kernels.h"
#include "bgemm/bgemm.h"
#include "bitpack/bitpack.h"
#include "threading.h"

namespace bmx {

namespace {

// Every size of a BConv2DShape is below 2^31, so sums and products of two sizes fit int64.
constexpr int64_t kMaxSize = (int64_t{1} << 31) - 1;
// Words of the packed, padded input of one image (16 GiB): the most bconv2d will allocate.
constexpr int64_t kMaxImageWords = int64_t{1} << 31;

// Extent of the padded input along one axis (see "1. Layout" in bconv2d_with_path): the input
// with its padding, or further where the integer division in out_h() lets the last taps run past
// it. Needs sizes <= kMaxSize and out >= 1: (out - 1) * stride <= in + 2 * pad, so no overflow.
int64_t padded_extent(int64_t in, int64_t pad, int64_t out, int64_t stride, int64_t k,
                      int64_t dilate) {
  return std::max(in + 2 * pad, (out - 1) * stride + (k - 1) * dilate + 1);
}

}  // namespace

std::string bconv2d_check(const BConv2DShape& s) {
  auto bad = [](const std::string& what) { return "bmx::bconv2d: " + what; };
  for (int64_t v : {s.batch, s.in_channels, s.in_h, s.in_w, s.out_channels, s.kernel_h,
                    s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilate_h, s.dilate_w,
                    s.groups}) {
    if (v > kMaxSize) return bad("a size is " + std::to_string(v) + "; every size must be < 2^31");
  }
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
  if (s.kernel_h * s.kernel_w >= (int64_t{1} << 30) ||
      s.kernel_h * s.kernel_w * s.group_in() >= (int64_t{1} << 30))
    return bad("receptive field (kernel_h * kernel_w * group_in) is too large (>= 2^30 bits)");
  const int64_t hp = padded_extent(s.in_h, s.pad_h, s.out_h(), s.stride_h, s.kernel_h, s.dilate_h);
  const int64_t wp = padded_extent(s.in_w, s.pad_w, s.out_w(), s.stride_w, s.kernel_w, s.dilate_w);
  const int64_t words = s.groups * words_for(s.group_in());  // < 2^31 * 2: fits
  if (hp > kMaxImageWords / wp || hp * wp > kMaxImageWords / words)
    return bad("the padded input of one image (" + std::to_string(hp) + "x" + std::to_string(wp) +
               " pixels of " + std::to_string(words) + " words) is too large (> 2^31 words); "
               "use less padding");
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
std::vector<int32_t> classify(const std::vector<TapRange>& ranges, int64_t k,
                              std::vector<TapRange>* distinct) {
  distinct->assign(1, TapRange{0, k});
  std::vector<int32_t> cls(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    size_t c = 0;
    while (c < distinct->size() &&
           ((*distinct)[c].lo != ranges[i].lo || (*distinct)[c].hi != ranges[i].hi))
      ++c;
    if (c == distinct->size()) distinct->push_back(ranges[i]);
    cls[i] = static_cast<int32_t>(c);
  }
  return cls;
}

// Copies len words, src with stride sstride, dst with stride dstride.
inline void copy_words(const word_t* src, int64_t sstride, word_t* dst, int64_t dstride,
                       int64_t len) {
  if (sstride == 1 && dstride == 1) {
    std::memcpy(dst, src, static_cast<size_t>(len) * sizeof(word_t));
    return;
  }
  for (int64_t x = 0; x < len; ++x) dst[x * dstride] = src[x * sstride];
}

constexpr int64_t kCorrBlock = 64;           // output channels per block of the correction table
constexpr int64_t kRowBlock = 64;            // output channels per GEMM call + output transform

// Scratch memory reused across calls (see ScratchBuffer): the packed input of the calling thread,
// and per thread the panel, the counts and the panel's border classes.
thread_local ScratchBuffer<word_t> t_packed;
thread_local ScratchBuffer<int32_t> t_corr;
thread_local ScratchBuffer<int32_t> t_corr_tmp;
thread_local ScratchBuffer<word_t> t_panel;
thread_local ScratchBuffer<int32_t> t_counts;
thread_local ScratchBuffer<int32_t> t_cls;

}  // namespace

void bconv2d_with_path(Path path, const BConv2DShape& s, const float* input, const word_t* packed_w,
                       const float* scale, const float* bias, float* output, int num_threads,
                       const BConv2DOptions& options) {
  const std::string err = bconv2d_check(s);
  if (!err.empty()) throw std::invalid_argument(err);
  if (s.batch == 0) return;

  const int64_t G = s.groups, cg = s.group_in(), mg = s.group_out(), wpp = words_for(cg);
  const int64_t H = s.in_h, W = s.in_w, HW = H * W, OH = s.out_h(), OW = s.out_w(), P = OH * OW;
  const int64_t kh = s.kernel_h, kw = s.kernel_w, T = kh * kw, K = T * wpp, nbits = T * cg;
  const int64_t sh = s.stride_h, sw = s.stride_w, dh = s.dilate_h, dw = s.dilate_w;
  const int64_t O = s.out_channels;
  // Rough single-thread cost: the GEMM at ~17 word xor-popcounts per ns, reading the input and
  // writing the output at ~8 floats per ns.
  const double work_ns =
      static_cast<double>(s.batch) * O * P * K / 17.0 +
      static_cast<double>(s.batch) * (s.in_channels * HW + O * P) / 8.0;
  const int threads = options.exact_threads ? resolve_threads(num_threads)
                                            : useful_threads(resolve_threads(num_threads), work_ns);
  const BitpackKernels& bp = bitpack_for_path(path);
  const OutputKernels& ok = output_kernels_for_path(path);

  // 1. Layout of the packed input: per (image, group, word i of a pixel) one plane of Hp x Wp
  // words, the input's signs inside a frame of pad words: pad_h / pad_w before, and after it as
  // much as the last taps read (pad_h / pad_w, or more where the integer division in out_h()
  // lets a kernel larger than the padded input run past it). Every im2col word of every output
  // pixel is then a plain load from a plane (no bounds checks), and a row of output pixels
  // reads a run of consecutive words (stride_w apart) per tap and word.
  const int64_t Hp = padded_extent(H, s.pad_h, OH, sh, kh, dh);
  const int64_t Wp = padded_extent(W, s.pad_w, OW, sw, kw, dw);
  const int64_t plane = Hp * Wp;
  const int64_t image_words = G * wpp * plane;
  const int64_t block_images =
      std::max<int64_t>(1, std::min(s.batch, options.pack_budget_words / image_words));
  const BGemmKernel& kernel = select_bgemm_kernel(path, mg, block_images * P, K);
  word_t pad_word_last = 0;  // pad word: all ones over the real channel bits for +1, else 0
  if (s.pad_value == 1)
    pad_word_last = cg % kWordBits ? (word_t{1} << (cg % kWordBits)) - 1 : ~word_t{0};
  auto pad_word = [&](int64_t i) {
    return s.pad_value != 1 ? word_t{0} : i + 1 < wpp ? ~word_t{0} : pad_word_last;
  };
  // Input rows some tap reads (a 1x1 convolution with stride 2 reads every other row only).
  std::vector<char> row_used(H, 0);
  for (int64_t oy = 0; oy < OH; ++oy)
    for (int64_t ky = 0; ky < kh; ++ky) {
      const int64_t iy = oy * sh - s.pad_h + ky * dh;
      if (iy >= 0 && iy < H) row_used[iy] = 1;
    }

  // 2. Border correction (pad_value 0, see output_transform.h): output rows (columns) fall in a
  // few classes of equal in-bounds kernel-row (column) range; a pixel's class is the pair, and
  // class 0 is the interior. corr[o * ldcorr + class] = sum of S(o, t) over the taps t outside
  // the class's rectangle, S(o, t) = 2 popcount(W[o][t]) - cg.
  std::vector<TapRange> yranges, xranges;
  const std::vector<int32_t> ycls =
      classify(tap_ranges(OH, H, kh, sh, s.pad_h, dh), kh, &yranges);
  const std::vector<int32_t> xcls =
      classify(tap_ranges(OW, W, kw, sw, s.pad_w, dw), kw, &xranges);
  const int64_t ny = static_cast<int64_t>(yranges.size()),
                nx = static_cast<int64_t>(xranges.size()), ncls = ny * nx;
  const bool correct = s.pad_value == 0 && ncls > 1;
  const int64_t ldcorr = ncls <= 16 ? 16 : ncls;
  int32_t* corr = correct ? t_corr.get(O * ldcorr) : nullptr;  // [O][ldcorr]

  // 3. GEMM tasks: (group, panel of output pixels, chunk of output channels) per block of images.
  // Panels run over the output pixels of all images of the block one after another (a panel may
  // end in one image and go on in the next, which wastes no lanes on small feature maps such as
  // 7x7 in a batch) and are balanced: ceil(pixels / nr) of them, of equal width rounded up to
  // whole vectors of 8 columns.
  const int nr = kernel.nr;
  auto panel_width = [&](int64_t pixels) {
    const int64_t count = (pixels + nr - 1) / nr;
    const int64_t width = (pixels + count - 1) / count;
    return nr % 8 == 0 ? std::min<int64_t>(nr, (width + 7) / 8 * 8) : width;
  };
  const int64_t full_width = panel_width(block_images * P);
  const RowSplit split =
      split_rows(mg, G * ((block_images * P + full_width - 1) / full_width), threads);
  const int64_t kstride = kernel.row_panel ? 1 : nr, jstride = kernel.row_panel ? K : 1;
  // Output rows are contiguous runs of input words in the padded planes when stride_w = 1 and
  // every padded column is an output column: then a panel is one run per tap and word.
  const bool flat = sh == 1 && sw == 1 && OW == Wp;
  // Pack tasks: (image, group, word) planes, each cut into 4 * threads blocks of padded rows
  // when there are too few planes to go round.
  const int64_t planes = block_images * G * wpp;
  const int64_t row_block = planes >= 4 * threads ? Hp : (Hp + 4 * threads - 1) / (4 * threads);

  word_t* packed = t_packed.get(block_images * image_words);
  const bool parallel = threads > 1;

#pragma omp parallel num_threads(threads) if (parallel)
  {
    if (correct) {
      // Per block of output channels: the popcounts of all (channel, tap) weight runs, then
      // for each class the sum over the taps outside its rectangle, with the channels in the
      // innermost loops so that they vectorise.
#pragma omp for schedule(static)
      for (int64_t o0 = 0; o0 < O; o0 += kCorrBlock) {
        const int64_t no = std::min(kCorrBlock, O - o0);
        int32_t* pc = t_corr_tmp.get((2 * T + 1) * kCorrBlock);  // [no][T], [T][kCorrBlock], sum
        int32_t* pt = pc + T * kCorrBlock;
        int32_t* sum = pt + T * kCorrBlock;
        ok.popcount_runs(packed_w + o0 * T * wpp, no * T, wpp, pc);
        for (int64_t o = 0; o < no; ++o)
          for (int64_t t = 0; t < T; ++t) pt[t * kCorrBlock + o] = pc[o * T + t];
        for (int64_t yc = 0; yc < ny; ++yc)
          for (int64_t xc = 0; xc < nx; ++xc) {
            const TapRange yr = yranges[yc], xr = xranges[xc];
            int32_t outside = 0;
            for (int64_t o = 0; o < no; ++o) sum[o] = 0;
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                if (ky >= yr.lo && ky < yr.hi && kx >= xr.lo && kx < xr.hi) continue;
                ++outside;
                const int32_t* src = pt + (ky * kw + kx) * kCorrBlock;
                for (int64_t o = 0; o < no; ++o) sum[o] += src[o];
              }
            // sum over the outside taps of S = 2 popcount - cg
            const int32_t off = outside * static_cast<int32_t>(cg);
            int32_t* dst = corr + o0 * ldcorr + yc * nx + xc;
            for (int64_t o = 0; o < no; ++o) dst[o * ldcorr] = 2 * sum[o] - off;
          }
        for (int64_t o = 0; o < no; ++o)
          for (int64_t c = ncls; c < ldcorr; ++c) corr[(o0 + o) * ldcorr + c] = 0;
      }
    }

    for (int64_t b0 = 0; b0 < s.batch; b0 += block_images) {
      const int64_t nimg = std::min(block_images, s.batch - b0);

      // Sign-pack the images of this block into their padded planes.
      const int64_t row_blocks = (Hp + row_block - 1) / row_block;
      const int64_t pack_tasks = nimg * G * wpp * row_blocks;
#pragma omp for schedule(static)
      for (int64_t t = 0; t < pack_tasks; ++t) {
        const int64_t rb = t % row_blocks, pl = t / row_blocks;  // pl = (image, group, word)
        const int64_t i = pl % wpp, bg = pl / wpp, g = bg % G, b = b0 + bg / G;
        const int64_t nc = std::min<int64_t>(kWordBits, cg - i * kWordBits);
        const word_t pw = pad_word(i);
        word_t* dst_plane = packed + pl * plane;
        const float* src = input + (b * s.in_channels + g * cg + i * kWordBits) * HW;
        for (int64_t yp = rb * row_block; yp < std::min(Hp, (rb + 1) * row_block); ++yp) {
          word_t* row = dst_plane + yp * Wp;
          const int64_t iy = yp - s.pad_h;
          if (iy < 0 || iy >= H) {
            for (int64_t x = 0; x < Wp; ++x) row[x] = pw;
            continue;
          }
          for (int64_t x = 0; x < s.pad_w; ++x) row[x] = pw;
          for (int64_t x = s.pad_w + W; x < Wp; ++x) row[x] = pw;
          if (row_used[iy]) bp.pack_channels(src + iy * W, nc, HW, W, row + s.pad_w, 1);
        }
      }

      // GEMM, border correction and output transform per panel.
      const int64_t pixels = nimg * P, pwidth = panel_width(pixels);
      const int64_t npanels = (pixels + pwidth - 1) / pwidth;
      const int64_t tasks = G * npanels * split.chunks;
#pragma omp for schedule(dynamic)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t chunk = t % split.chunks, rest = t / split.chunks;
        const int64_t p = rest % npanels, g = rest / npanels;
        const int64_t n0 = p * pwidth, n = std::min(pwidth, pixels - n0);
        word_t* panel = t_panel.get(K * nr);
        int32_t* cls = correct ? t_cls.get(nr) : nullptr;
        bool border = false;

        // im2col of block pixels n0 .. n0+n-1 into the panel, a run of output pixels of one
        // output row (or of several rows of one image when flat) at a time.
        for (int64_t j = 0; j < n;) {
          const int64_t bl = (n0 + j) / P, q = (n0 + j) % P, oy = q / OW, ox = q % OW;
          const int64_t len = flat ? std::min(n - j, P - q) : std::min(n - j, OW - ox);
          const word_t* img = packed + (bl * G + g) * wpp * plane;
          for (int64_t ky = 0; ky < kh; ++ky) {
            const int64_t row0 = (oy * sh + ky * dh) * Wp + ox * sw;
            for (int64_t kx = 0; kx < kw; ++kx) {
              const word_t* src = img + row0 + kx * dw;
              word_t* dst = panel + (ky * kw + kx) * wpp * kstride + j * jstride;
              for (int64_t i = 0; i < wpp; ++i)
                copy_words(src + i * plane, sw, dst + i * kstride, jstride, len);
            }
          }
          if (correct) {
            for (int64_t u = 0, y = oy, x = ox; u < len; ++u) {
              const int32_t c = ycls[y] * static_cast<int32_t>(nx) + xcls[x];
              cls[j + u] = c;
              border |= c != 0;
              if (++x == OW) x = 0, ++y;
            }
          }
          j += len;
        }
        if (!kernel.row_panel && n < nr)
          for (int64_t k = 0; k < K; ++k)
            for (int64_t j = n; j < nr; ++j) panel[k * nr + j] = 0;

        const int64_t m_begin = chunk * split.rows, m_end = std::min(mg, m_begin + split.rows);
        int32_t* counts = t_counts.get(kRowBlock * nr);
        for (int64_t m0 = m_begin; m0 < m_end; m0 += kRowBlock) {
          const int64_t rows = std::min(kRowBlock, m_end - m0), o0 = g * mg + m0;
          kernel.run(rows, K, packed_w + o0 * K, K, panel, static_cast<int>(n), counts, nr);
          OutputBlock ob;
          ob.ldc = nr;
          ob.rows = rows;
          ob.nbits = static_cast<int32_t>(nbits);
          ob.corr = border ? corr + o0 * ldcorr : nullptr;
          ob.ldcorr = ldcorr;
          ob.scale = scale != nullptr ? scale + o0 : nullptr;
          ob.bias = bias != nullptr ? bias + o0 : nullptr;
          ob.ldo = P;
          // One output block per image the panel touches.
          for (int64_t j = 0; j < n;) {
            const int64_t b = b0 + (n0 + j) / P, q = (n0 + j) % P, len = std::min(n - j, P - q);
            ob.counts = counts + j;
            ob.n = len;
            ob.cls = border ? cls + j : nullptr;
            ob.out = output + (b * O + o0) * P + q;
            ok.block(ob);
            j += len;
          }
        }
      }
    }
  }
}

void bconv2d(const BConv2DShape& s, const float* input, const word_t* packed_w, const float* scale,
             const float* bias, float* output, int num_threads) {
  bconv2d_with_path(active_path(), s, input, packed_w, scale, bias, output, num_threads);
}

}  // namespace bmx
