// Binary 2-D convolution: sign-pack the input into padded planes of words, copy the im2col
// words of a panel of output pixels straight into the BGEMM kernel's panel layout, xor-popcount
// GEMM, then the vectorised output transform with the exact border correction
// (output_kernels.h), or the thresholds of bit output (bitout/sign_thresholds.h). The maths is in
// output_transform.h.
//
// Data layout:
//   input   NCHW floats, or already packed (ActivationFormat::kBits)
//   packed  [image][group][word][Hp][Wp]: for every image, group and word i of a pixel's channel
//           bits (channels 64i .. 64i+63 of the group) one plane of words, the input inside a
//           frame of pad words (the encoding of pad_value, 0 for pad_value 0): the public
//           BitTensorLayout, which is why a packed input is read in place
//   weights [out_channels][kernel_h][kernel_w][words_for(group_in)]  (pack_conv_weights)
//   panel   [K = taps * words][nr]: K-word k of the im2col rows of nr consecutive output pixels,
//           tap-major and word-minor, the same order as a weight row, so weight rows are used as
//           the GEMM's A operand in place.
// With the frame in place, the im2col words of a run of output pixels of one output row, for one
// tap and word, are consecutive words of one plane (stride_w apart): building a panel is a few
// memcpy's, with no bounds checks and no per-pixel index arithmetic. For a 1x1 kernel with
// stride 1 (or any kernel whose output rows tile the padded rows) a whole panel is one run.
//
// Prepare (once): validation, layout, kernel choice, border classes and the correction table,
// bit-output thresholds, the row blocks and chunks the GEMM tasks take, the workspace size.
// Run (every call), per block of images, two phases of worker tasks (run_workers in
// threading.h): the packing (planes x blocks of rows; skipped for a packed input), then
// (panel of output pixels, chunk of output channels) tasks. A task builds its panel in its
// worker's slice of the workspace, which stays in L1 while the output channels stream over it
// 64 at a time (GEMM into an L1 block of counts, then the output transform writes the block's
// floats or bits). The run allocates nothing.
#include "bconv2d/bconv2d.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bconv2d/output_kernels.h"
#include "bconv2d/plan.h"
#include "bitpack/bit_tensor.h"
#include "bgemm/bgemm.h"
#include "bitpack/bitpack.h"
#include "threading.h"

namespace bmx {

namespace {

// Every size of a BConv2DShape is below 2^31, so sums and products of two sizes fit int64.
constexpr int64_t kMaxSize = (int64_t{1} << 31) - 1;
// Words of the packed, padded input of one image (16 GiB): the most bconv2d will allocate.
constexpr int64_t kMaxImageWords = int64_t{1} << 31;

// Extent of the padded input along one axis (see "1. Layout" in bconv2d_prepare): the input
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

constexpr int64_t kCorrBlock = 64;  // output channels per block of the correction table
constexpr int64_t kRowBlock = 64;   // output channels per GEMM call + output transform

int64_t round64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

// corr[o * ldcorr + class] (see output_transform.h) for the classes of yranges x xranges.
// Blocks of output channels are independent: with more than one thread they are shared out
// (the MXNet operators prepare on every call, where this table is a good part of a small layer's
// time; the runtime prepares once).
void build_correction(const BConv2DPlan::Data& d, const std::vector<TapRange>& yranges,
                      const std::vector<TapRange>& xranges, int32_t* corr) {
  const int64_t O = d.s.out_channels, T = d.T, kh = d.s.kernel_h, kw = d.s.kernel_w;
  const int64_t ny = static_cast<int64_t>(yranges.size()), nx = d.nx, ldcorr = d.ldcorr;
  const int64_t nblocks = (O + kCorrBlock - 1) / kCorrBlock;
  TaskCounter counter(nblocks);
  auto worker = [&](int) {
    std::vector<int32_t> tmp((2 * T + 1) * kCorrBlock);
    // Per block of output channels: the popcounts of all (channel, tap) weight runs, then for each
    // class the sum over the taps outside its rectangle, with the channels in the innermost loops
    // so that they vectorise.
    for (int64_t blk; counter.next(&blk);) {
      const int64_t o0 = blk * kCorrBlock;
      const int64_t no = std::min(kCorrBlock, O - o0);
      int32_t* pc = tmp.data();  // [no][T], then [T][kCorrBlock], then the sums
      int32_t* pt = pc + T * kCorrBlock;
      int32_t* sum = pt + T * kCorrBlock;
      d.ok->popcount_runs(d.packed_w + o0 * T * d.wpp, no * T, d.wpp, pc);
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
          const int32_t off = outside * static_cast<int32_t>(d.cg);
          int32_t* dst = corr + o0 * ldcorr + yc * nx + xc;
          for (int64_t o = 0; o < no; ++o) dst[o * ldcorr] = 2 * sum[o] - off;
        }
    }
  };
  run_workers(nullptr, static_cast<int>(std::min<int64_t>(d.threads, nblocks)), worker);
}

// The row blocks and chunks of the GEMM tasks. Float output: per group, `want` chunks of
// output channels (split_rows: multiples of 4 rows, so that small feature maps still give every
// thread work), each cut into blocks of kRowBlock. Bit output: one block per word of the output
// layout, and per group the blocks dealt into as many chunks as split_rows asks for.
std::string build_row_blocks(BConv2DPlan::Data& d, int64_t panels) {
  const RowSplit split = split_rows(d.mg, d.G * panels, d.threads);
  if (d.options.output_format == ActivationFormat::kFloat) {
    for (int64_t g = 0; g < d.G; ++g)
      for (int64_t m0 = 0; m0 < d.mg; m0 += split.rows) {
        const int64_t m1 = std::min(d.mg, m0 + split.rows);
        RowChunk c{g, static_cast<int64_t>(d.blocks.size()), 0};
        for (int64_t r = m0; r < m1; r += kRowBlock)
          d.blocks.push_back(RowBlock{g * d.mg + r, std::min(kRowBlock, m1 - r), -1});
        c.rb_end = static_cast<int64_t>(d.blocks.size());
        d.chunks.push_back(c);
      }
    return std::string();
  }
  const BitTensorLayout& L = d.out_layout;
  const int64_t cgo = L.group_channels(), wppo = L.words_per_group();
  for (int64_t g = 0; g < d.G; ++g) {
    const int64_t first = static_cast<int64_t>(d.blocks.size());
    for (int64_t o = g * d.mg; o < (g + 1) * d.mg;) {
      const int64_t go = o / cgo, i = (o % cgo) / kWordBits;
      const int64_t w0 = go * cgo + i * kWordBits, w1 = std::min(w0 + kWordBits, (go + 1) * cgo);
      if (w0 < g * d.mg || w1 > (g + 1) * d.mg)
        return "bit output: output channels " + std::to_string(w0) + ".." +
               std::to_string(w1 - 1) + " share one word of the output layout but lie in "
               "different groups of the convolution; use an output layout with groups = 1 or "
               "whose words do not straddle the convolution's groups";
      d.blocks.push_back(RowBlock{w0, w1 - w0, go * wppo + i});
      o = w1;
    }
    const int64_t nb = static_cast<int64_t>(d.blocks.size()) - first;
    const int64_t nchunks = std::min(nb, split.chunks);
    for (int64_t c = 0; c < nchunks; ++c)
      d.chunks.push_back(RowChunk{g, first + nb * c / nchunks, first + nb * (c + 1) / nchunks});
  }
  return std::string();
}

}  // namespace

std::string bconv2d_prepare(const BConv2DShape& s, const word_t* packed_w, const float* scale,
                            const float* bias, const BConv2DOptions& options, BConv2DPlan* plan) {
  plan->data_.reset();
  std::string err = bconv2d_check(s);
  if (!err.empty()) return err;
  if (packed_w == nullptr) return "bmx::bconv2d_prepare: packed_w is null; pass packed weights";
  auto d = std::make_shared<BConv2DPlan::Data>();
  d->s = s;
  d->options = options;
  d->options.output_layout = BitTensorLayout();
  d->options.batch_norm = nullptr;
  d->options.sign_formula = nullptr;
  d->options.sign_user = nullptr;
  d->path = options.path == Path::kNone ? active_path() : options.path;
  if ((bits(d->path) & compiled_paths()) == 0 || (bits(d->path) & (bits(d->path) - 1)) != 0)
    return std::string("bmx::bconv2d_prepare: path ") + path_name(d->path) +
           " is not built in; use Path::kNone (the active path)";
  d->packed_w = packed_w;
  const bool float_out = options.output_format == ActivationFormat::kFloat;
  d->scale = float_out ? scale : nullptr;
  d->bias = float_out ? bias : nullptr;
  d->bp = &bitpack_for_path(d->path);
  d->ok = &output_kernels_for_path(d->path);

  const int64_t G = s.groups, cg = s.group_in(), mg = s.group_out(), wpp = words_for(cg);
  const int64_t H = s.in_h, W = s.in_w, HW = H * W, OH = s.out_h(), OW = s.out_w(), P = OH * OW;
  const int64_t kh = s.kernel_h, kw = s.kernel_w, T = kh * kw, K = T * wpp;
  const int64_t sh = s.stride_h, sw = s.stride_w, dh = s.dilate_h, dw = s.dilate_w;
  const int64_t O = s.out_channels;
  d->G = G, d->cg = cg, d->mg = mg, d->wpp = wpp, d->OH = OH, d->OW = OW, d->P = P, d->T = T;
  d->K = K, d->nbits = T * cg;
  // Rough single-thread cost: the GEMM at ~17 word xor-popcounts per ns, reading the input and
  // writing the output at ~8 floats per ns.
  const double work_ns = static_cast<double>(s.batch) * O * P * K / 17.0 +
                         static_cast<double>(s.batch) * (s.in_channels * HW + O * P) / 8.0;
  const int max_threads = plan_threads(options.max_threads);
  d->threads = options.exact_threads ? max_threads : useful_threads(max_threads, work_ns);

  // 1. Layout of the packed input: per (image, group, word i of a pixel) one plane of Hp x Wp
  // words, the input's signs inside a frame of pad words: pad_h / pad_w before, and after it as
  // much as the last taps read (pad_h / pad_w, or more where the integer division in out_h()
  // lets a kernel larger than the padded input run past it). Every im2col word of every output
  // pixel is then a plain load from a plane (no bounds checks), and a row of output pixels
  // reads a run of consecutive words (stride_w apart) per tap and word.
  BitTensorLayout& in = d->in_layout;
  in.batch = s.batch, in.channels = s.in_channels, in.height = H, in.width = W;
  in.groups = G, in.pad_h = s.pad_h, in.pad_w = s.pad_w, in.pad_value = s.pad_value;
  in.padded_h = padded_extent(H, s.pad_h, OH, sh, kh, dh);
  in.padded_w = padded_extent(W, s.pad_w, OW, sw, kw, dw);
  const int64_t image_words = in.image_words(), Wp = in.padded_w;
  d->block_images =
      options.input_format == ActivationFormat::kBits
          ? std::max<int64_t>(1, s.batch)
          : std::max<int64_t>(1, std::min(s.batch, options.pack_budget_words / image_words));
  d->kernel = &select_bgemm_kernel(d->path, mg, d->block_images * P, K);
  // Input rows some tap reads (a 1x1 convolution with stride 2 reads every other row only).
  d->row_used.assign(H, 0);
  for (int64_t oy = 0; oy < OH; ++oy)
    for (int64_t ky = 0; ky < kh; ++ky) {
      const int64_t iy = oy * sh - s.pad_h + ky * dh;
      if (iy >= 0 && iy < H) d->row_used[iy] = 1;
    }
  // Output rows are contiguous runs of input words in the padded planes when stride_w = 1 and
  // every padded column is an output column: then a panel is one run per tap and word.
  d->flat = sh == 1 && sw == 1 && OW == Wp;

  // Bit output: where the bits go, and the thresholds.
  if (!float_out) {
    d->out_layout = options.output_layout.batch == 0 ? plain_bit_layout(s.batch, O, OH, OW)
                                                     : options.output_layout;
    const BitTensorLayout& L = d->out_layout;
    err = bit_layout_check(L);
    if (!err.empty()) return "bmx::bconv2d_prepare: output_layout: " + err;
    if (L.batch != s.batch || L.channels != O || L.height != OH || L.width != OW)
      return "bmx::bconv2d_prepare: output_layout is " + std::to_string(L.batch) + "x" +
             std::to_string(L.channels) + "x" + std::to_string(L.height) + "x" +
             std::to_string(L.width) + " but the convolution's output is " +
             std::to_string(s.batch) + "x" + std::to_string(O) + "x" + std::to_string(OH) + "x" +
             std::to_string(OW) + "; make them equal";
    err = make_sign_thresholds(O, d->nbits, scale, bias, options.batch_norm,
                               options.sign_formula, options.sign_user, &d->thresholds);
    if (!err.empty()) return "bmx::bconv2d_prepare: " + err;
  }

  // 2. Border correction (pad_value 0, see output_transform.h): output rows (columns) fall in a
  // few classes of equal in-bounds kernel-row (column) range; a pixel's class is the pair, and
  // class 0 is the interior. corr[o * ldcorr + class] = sum of S(o, t) over the taps t outside
  // the class's rectangle, S(o, t) = 2 popcount(W[o][t]) - cg.
  std::vector<TapRange> yranges, xranges;
  d->ycls = classify(tap_ranges(OH, H, kh, sh, s.pad_h, dh), kh, &yranges);
  d->xcls = classify(tap_ranges(OW, W, kw, sw, s.pad_w, dw), kw, &xranges);
  d->nx = static_cast<int64_t>(xranges.size());
  const int64_t ncls = static_cast<int64_t>(yranges.size()) * d->nx;
  d->correct = s.pad_value == 0 && ncls > 1;
  d->ldcorr = ncls <= 16 ? 16 : ncls;
  if (d->correct) {
    d->corr.assign(O * d->ldcorr, 0);
    build_correction(*d, yranges, xranges, d->corr.data());
  }

  // 3. GEMM tasks: (panel of output pixels, chunk of output channels) per block of images.
  // Panels run over the output pixels of all images of the block one after another (a panel may
  // end in one image and go on in the next, which wastes no lanes on small feature maps such as
  // 7x7 in a batch) and are balanced: ceil(pixels / nr) of them, of equal width rounded up to
  // whole vectors of 8 columns (panel_width in bconv2d_run).
  const int64_t nr = d->kernel->nr, full_pixels = d->block_images * P;
  const int64_t count = (full_pixels + nr - 1) / nr, width = (full_pixels + count - 1) / count;
  d->full_width = nr % 8 == 0 ? std::min<int64_t>(nr, (width + 7) / 8 * 8) : width;
  err = build_row_blocks(*d, (full_pixels + d->full_width - 1) / d->full_width);
  if (!err.empty()) return "bmx::bconv2d_prepare: " + err;

  // 4. Workspace.
  d->packed_bytes = options.input_format == ActivationFormat::kBits
                        ? 0
                        : round64(d->block_images * image_words * 8);
  d->counts_offset = round64(K * nr * 8);
  d->cls_offset = d->counts_offset + round64(kRowBlock * nr * 4);
  d->bits_offset = d->cls_offset + round64(nr * 4);
  d->worker_bytes = d->bits_offset + (float_out ? 0 : round64(nr * 8));
  plan->data_ = std::move(d);
  return std::string();
}

const BConv2DShape& BConv2DPlan::shape() const { return data_->s; }
const BConv2DOptions& BConv2DPlan::options() const { return data_->options; }
const BitTensorLayout& BConv2DPlan::input_layout() const { return data_->in_layout; }
const BitTensorLayout& BConv2DPlan::output_layout() const { return data_->out_layout; }
int BConv2DPlan::max_threads() const { return data_->threads; }
int64_t BConv2DPlan::workspace_bytes() const {
  return data_->packed_bytes + data_->threads * data_->worker_bytes + 64;
}
Path BConv2DPlan::path() const { return data_->path; }
const char* BConv2DPlan::kernel_name() const { return data_->kernel->name; }
int64_t BConv2DPlan::table_channels() const { return data_->thresholds.table_channels; }

namespace {

const char* run_plan(const BConv2DPlan& plan, const float* input_f, const word_t* input_b,
                     float* output_f, word_t* output_b, void* workspace, const ThreadHook* hook) {
  if (!plan.valid()) return "bmx::bconv2d_run: the plan is not prepared (bconv2d_prepare failed?)";
  const BConv2DPlan::Data& d = *plan.data_;
  const BConv2DShape& s = d.s;
  if ((input_b != nullptr) != (d.options.input_format == ActivationFormat::kBits))
    return "bmx::bconv2d_run: the input's type does not match the plan's input_format (float* "
           "for kFloat, word_t* for kBits)";
  if ((output_b != nullptr) != (d.options.output_format == ActivationFormat::kBits))
    return "bmx::bconv2d_run: the output's type does not match the plan's output_format (float* "
           "for kFloat, word_t* for kBits)";
  if (workspace == nullptr) return "bmx::bconv2d_run: workspace is null; pass workspace_bytes()";
  if (s.batch == 0) return nullptr;

  int workers = d.threads;
  if (hook != nullptr && hook->parallel_for != nullptr)
    workers = std::max(1, std::min(workers, hook->num_threads));
  unsigned char* base = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(workspace) + 63) & ~uintptr_t{63});
  word_t* packed = reinterpret_cast<word_t*>(base);
  unsigned char* worker_base = base + d.packed_bytes;

  const BitTensorLayout& in = d.in_layout;
  const BitTensorLayout& out = d.out_layout;
  const int64_t G = d.G, wpp = d.wpp, P = d.P, OW = d.OW, K = d.K, O = s.out_channels;
  const int64_t kh = s.kernel_h, kw = s.kernel_w, sh = s.stride_h, sw = s.stride_w;
  const int64_t dh = s.dilate_h, dw = s.dilate_w, Wp = in.padded_w, plane = in.plane_words();
  const int64_t image_words = in.image_words(), image_floats = s.in_channels * s.in_h * s.in_w;
  const int nr = d.kernel->nr;
  const int64_t kstride = d.kernel->row_panel ? 1 : nr, jstride = d.kernel->row_panel ? K : 1;
  const int64_t nchunks = static_cast<int64_t>(d.chunks.size());
  auto panel_width = [&](int64_t pixels) {
    const int64_t count = (pixels + nr - 1) / nr;
    const int64_t width = (pixels + count - 1) / count;
    return nr % 8 == 0 ? std::min<int64_t>(nr, (width + 7) / 8 * 8) : width;
  };
  // Pack tasks: (image, group, word) planes, each cut into 4 * workers blocks of padded rows
  // when there are too few planes to go round.
  const int64_t Hp = in.padded_h;
  const int64_t row_block = d.block_images * G * wpp >= 4 * workers
                                ? Hp
                                : (Hp + 4 * workers - 1) / (4 * workers);
  const int64_t row_blocks = (Hp + row_block - 1) / row_block;
  if (output_b != nullptr) write_frame(out, 0, s.batch, output_b);

  // Phases: per block of images the packing (float input only), then the GEMM tasks.
  const bool pack_phase = input_f != nullptr;
  const int64_t per_block = pack_phase ? 2 : 1;
  const int64_t nblocks = (s.batch + d.block_images - 1) / d.block_images;
  auto block_pixels = [&](int64_t blk) {
    return std::min(d.block_images, s.batch - blk * d.block_images) * P;
  };
  auto phase_tasks = [&](int64_t phase) -> int64_t {
    const int64_t blk = phase / per_block, nimg = block_pixels(blk) / P;
    if (pack_phase && phase % per_block == 0) return nimg * G * wpp * row_blocks;
    const int64_t pixels = block_pixels(blk), pwidth = panel_width(pixels);
    return (pixels + pwidth - 1) / pwidth * nchunks;
  };
  PhaseCounters counters;
  counters.get(0).reset(phase_tasks(0));
  auto phase_fn = [&](int64_t phase, int w) {
    if (phase + 1 < nblocks * per_block) counters.prepare_next(phase, w, phase_tasks(phase + 1));
    TaskCounter& counter = counters.get(phase);
    const int64_t b0 = phase / per_block * d.block_images;
    if (pack_phase && phase % per_block == 0) {
      // Sign-pack the images of this block into their padded planes.
      for (int64_t t; counter.next(&t);) {
        const int64_t rb = t % row_blocks, pl = t / row_blocks;  // pl = (image, group, word)
        const int64_t i = pl % wpp, bg = pl / wpp, g = bg % G, b = b0 + bg / G;
        pack_plane_rows(in, *d.bp, input_f + b * image_floats, g, i, rb * row_block,
                        std::min(Hp, (rb + 1) * row_block), d.row_used.data(),
                        packed + pl * plane);
      }
      return;
    }
    const word_t* images = input_b != nullptr ? input_b + b0 * image_words : packed;
    // GEMM, border correction and output transform per panel.
    const int64_t pixels = block_pixels(phase / per_block), pwidth = panel_width(pixels);
    unsigned char* mine = worker_base + w * d.worker_bytes;
    word_t* panel = reinterpret_cast<word_t*>(mine);
    int32_t* counts = reinterpret_cast<int32_t*>(mine + d.counts_offset);
    int32_t* cls = reinterpret_cast<int32_t*>(mine + d.cls_offset);
    word_t* bits_buf = reinterpret_cast<word_t*>(mine + d.bits_offset);
    int64_t built_panel = -1, built_group = -1;
    for (int64_t t; counter.next(&t);) {
      const RowChunk& chunk = d.chunks[t % nchunks];
      const int64_t p = t / nchunks, g = chunk.g;
      const int64_t n0 = p * pwidth, n = std::min(pwidth, pixels - n0);
      bool border = false;
      if (built_panel != p || built_group != g) {
        // im2col of block pixels n0 .. n0+n-1 into the panel, a run of output pixels of one
        // output row (or of several rows of one image when flat) at a time.
        for (int64_t j = 0; j < n;) {
          const int64_t bl = (n0 + j) / P, q = (n0 + j) % P, oy = q / OW, ox = q % OW;
          const int64_t len = d.flat ? std::min(n - j, P - q) : std::min(n - j, OW - ox);
          const word_t* img = images + (bl * G + g) * wpp * plane;
          for (int64_t ky = 0; ky < kh; ++ky) {
            const int64_t row0 = (oy * sh + ky * dh) * Wp + ox * sw;
            for (int64_t kx = 0; kx < kw; ++kx) {
              const word_t* src = img + row0 + kx * dw;
              word_t* dst = panel + (ky * kw + kx) * wpp * kstride + j * jstride;
              for (int64_t i = 0; i < wpp; ++i)
                copy_words(src + i * plane, sw, dst + i * kstride, jstride, len);
            }
          }
          if (d.correct) {
            for (int64_t u = 0, y = oy, x = ox; u < len; ++u) {
              cls[j + u] = d.ycls[y] * static_cast<int32_t>(d.nx) + d.xcls[x];
              if (++x == OW) x = 0, ++y;
            }
          }
          j += len;
        }
        if (!d.kernel->row_panel && n < nr)
          for (int64_t k = 0; k < K; ++k)
            for (int64_t j = n; j < nr; ++j) panel[k * nr + j] = 0;
        built_panel = p;
        built_group = g;
      }
      if (d.correct)
        for (int64_t j = 0; j < n && !border; ++j) border = cls[j] != 0;

      for (int64_t rb = chunk.rb_begin; rb < chunk.rb_end; ++rb) {
        const RowBlock& blk = d.blocks[rb];
        const int64_t o0 = blk.o0, rows = blk.rows;
        d.kernel->run(rows, K, d.packed_w + o0 * K, K, panel, static_cast<int>(n), counts, nr);
        if (output_f != nullptr) {
          OutputBlock ob;
          ob.ldc = nr;
          ob.rows = rows;
          ob.nbits = static_cast<int32_t>(d.nbits);
          ob.corr = border ? d.corr.data() + o0 * d.ldcorr : nullptr;
          ob.ldcorr = d.ldcorr;
          ob.scale = d.scale != nullptr ? d.scale + o0 : nullptr;
          ob.bias = d.bias != nullptr ? d.bias + o0 : nullptr;
          ob.ldo = P;
          // One output block per image the panel touches.
          for (int64_t j = 0; j < n;) {
            const int64_t b = b0 + (n0 + j) / P, q = (n0 + j) % P, len = std::min(n - j, P - q);
            ob.counts = counts + j;
            ob.n = len;
            ob.cls = border ? cls + j : nullptr;
            ob.out = output_f + (b * O + o0) * P + q;
            d.ok->block(ob);
            j += len;
          }
          continue;
        }
        BitsBlock bb;
        bb.counts = counts;
        bb.ldc = nr;
        bb.rows = rows;
        bb.n = n;
        bb.nbits = static_cast<int32_t>(d.nbits);
        bb.corr = border ? d.corr.data() + o0 * d.ldcorr : nullptr;
        bb.ldcorr = d.ldcorr;
        bb.cls = border ? cls : nullptr;
        set_thresholds(d.thresholds, o0, &bb);
        bb.out = bits_buf;
        d.ok->bits(bb);
        // The panel's words go to their pixels in the output planes of word blk.dest_plane.
        const int64_t planes_out = out.groups * out.words_per_group();
        for (int64_t j = 0; j < n;) {
          const int64_t b = b0 + (n0 + j) / P, q = (n0 + j) % P, oy = q / OW, ox = q % OW;
          const int64_t len = std::min(n - j, OW - ox);
          word_t* dst = output_b + (b * planes_out + blk.dest_plane) * out.plane_words() +
                        (oy + out.pad_h) * out.padded_w + ox + out.pad_w;
          for (int64_t u = 0; u < len; ++u) dst[u] = bits_buf[j + u];
          j += len;
        }
      }
    }
  };
  run_phases(hook, workers, nblocks * per_block, phase_fn);
  return nullptr;
}

// Workspace of the convenience entry points: per calling thread, reused across calls.
thread_local ScratchBuffer<unsigned char> t_workspace;

}  // namespace

const char* bconv2d_run(const BConv2DPlan& plan, const float* input, float* output,
                        void* workspace, const ThreadHook* hook) {
  return run_plan(plan, input, nullptr, output, nullptr, workspace, hook);
}
const char* bconv2d_run(const BConv2DPlan& plan, const word_t* input, float* output,
                        void* workspace, const ThreadHook* hook) {
  return run_plan(plan, nullptr, input, output, nullptr, workspace, hook);
}
const char* bconv2d_run(const BConv2DPlan& plan, const float* input, word_t* output,
                        void* workspace, const ThreadHook* hook) {
  return run_plan(plan, input, nullptr, nullptr, output, workspace, hook);
}
const char* bconv2d_run(const BConv2DPlan& plan, const word_t* input, word_t* output,
                        void* workspace, const ThreadHook* hook) {
  return run_plan(plan, nullptr, input, nullptr, output, workspace, hook);
}

void bconv2d_with_path(Path path, const BConv2DShape& s, const float* input, const word_t* packed_w,
                       const float* scale, const float* bias, float* output, int num_threads,
                       const BConv2DOptions& options) {
  BConv2DOptions o = options;
  o.path = path;
  o.max_threads = num_threads;
  o.input_format = o.output_format = ActivationFormat::kFloat;
  BConv2DPlan plan;
  const std::string err = bconv2d_prepare(s, packed_w, scale, bias, o, &plan);
  if (!err.empty()) throw std::invalid_argument(err);
  const char* run_err = bconv2d_run(plan, input, output, t_workspace.get(plan.workspace_bytes()));
  if (run_err != nullptr) throw std::invalid_argument(run_err);
}

void bconv2d(const BConv2DShape& s, const float* input, const word_t* packed_w, const float* scale,
             const float* bias, float* output, int num_threads) {
  bconv2d_with_path(active_path(), s, input, packed_w, scale, bias, output, num_threads);
}

}  // namespace bmx
