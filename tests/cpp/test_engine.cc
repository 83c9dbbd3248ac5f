// The engine form of the kernel core: bconv2d_prepare / bconv2d_run with caller-owned workspace
// and thread hooks, packed activation tensors (pack_bits / unpack_bits), packed input, bit output
// with BatchNorm folded into thresholds, and two convolutions chained on packed bits. Oracles:
// bconv2d_reference (a direct float loop) followed by the float formula written out here, and
// bit-by-bit index arithmetic for the layouts; never the code under test.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <cstring>
#include <sstream>
#include <thread>

#include "bconv2d/bconv2d.h"
#include "bconv2d/output_kernels.h"
#include "bitpack/bit_tensor.h"
#include "test_util.h"
#include "tiny_test.h"

// Every operator new of the test process is counted, so that a test can check that the run
// functions allocate nothing (engine_run_allocates_nothing).
static std::atomic<int64_t> g_allocations{0};
// GCC 12 takes free() of memory from a replaced operator new for a mismatch once both are
// inlined into a caller (-Wmismatched-new-delete); here they are the matching pair by definition.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

using bmx::BConv2DShape;
using bmx::BitTensorLayout;
using bmx::word_t;

BConv2DShape make(int64_t batch, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k,
                  int64_t stride, int64_t pad, int64_t groups, int pad_value) {
  BConv2DShape s;
  s.batch = batch;
  s.in_channels = c;
  s.in_h = h;
  s.in_w = w;
  s.out_channels = o;
  s.kernel_h = s.kernel_w = k;
  s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = pad;
  s.groups = groups;
  s.pad_value = pad_value;
  return s;
}

std::string describe(const BConv2DShape& s) {
  std::ostringstream os;
  os << "batch=" << s.batch << " C=" << s.in_channels << " " << s.in_h << "x" << s.in_w
     << " O=" << s.out_channels << " k=" << s.kernel_h << "x" << s.kernel_w
     << " stride=" << s.stride_h << " pad=" << s.pad_h << " groups=" << s.groups
     << " pad_value=" << s.pad_value;
  return os.str();
}

// Hooks: one that runs the tasks one after another in reverse order (a worker that runs last
// finds no work left), and one that starts a std::thread per task.
void serial_hook(void*, int n, void (*task)(void*, int), void* context) {
  for (int i = n - 1; i >= 0; --i) task(context, i);
}
void thread_hook(void* user, int n, void (*task)(void*, int), void* context) {
  ++*static_cast<int*>(user);
  std::vector<std::thread> pool;
  for (int i = 0; i < n; ++i) pool.emplace_back(task, context, i);
  for (std::thread& t : pool) t.join();
}

// A workspace with canaries before and after, deliberately misaligned by `skew` bytes.
struct Workspace {
  std::vector<unsigned char> raw;
  int64_t size, skew;
  Workspace(int64_t bytes, int64_t skew_bytes) : raw(bytes + 128 + skew_bytes, 0xA5), size(bytes),
                                                 skew(skew_bytes) {}
  void* get() { return raw.data() + 64 + skew; }
  bool intact() const {
    for (int64_t i = 0; i < 64 + skew; ++i)
      if (raw[i] != 0xA5) return false;
    for (size_t i = 64 + skew + size; i < raw.size(); ++i)
      if (raw[i] != 0xA5) return false;
    return true;
  }
};

struct Data {
  std::vector<float> x, w, scale, bias;
  std::vector<word_t> packed_w;
};
Data make_data(const BConv2DShape& s, std::mt19937_64& rng) {
  Data d;
  d.x = tiny::random_floats(rng, s.batch * s.in_channels * s.in_h * s.in_w);
  d.w = tiny::random_floats(rng, s.out_channels * s.group_in() * s.kernel_h * s.kernel_w);
  d.scale = tiny::random_floats(rng, s.out_channels);
  d.bias = tiny::random_floats(rng, s.out_channels);
  for (float& v : d.scale) v *= 0.37f;
  d.packed_w.resize(bmx::bconv2d_packed_weight_words(s));
  bmx::pack_conv_weights(s, d.w.data(), d.packed_w.data());
  return d;
}

// Float prepare/run against the reference on every path, three ways of threading: OpenMP (or
// one thread), a serial hook, a std::thread hook with one block of images per phase pair.
void check_float_run(const BConv2DShape& s, std::mt19937_64& rng) {
  Data d = make_data(s, rng);
  const int64_t out_size = s.batch * s.out_channels * s.out_h() * s.out_w();
  std::vector<float> want(out_size);
  bmx::bconv2d_reference(s, d.x.data(), d.w.data(), d.scale.data(), d.bias.data(), want.data());
  for (bmx::Path path : tiny::paths_under_test()) {
    for (int mode = 0; mode < 3; ++mode) {
      bmx::BConv2DOptions o;
      o.path = path;
      o.max_threads = mode == 0 ? 2 : 3;
      o.exact_threads = true;
      // mode 2: every image in its own block, i.e. two phases per image through the hook
      if (mode == 2) o.pack_budget_words = 1;
      bmx::BConv2DPlan plan;
      const std::string err =
          bmx::bconv2d_prepare(s, d.packed_w.data(), d.scale.data(), d.bias.data(), o, &plan);
      CHECK(err.empty()) << err;
      if (!err.empty()) return;
      int calls = 0;
      bmx::ThreadHook hook;
      hook.parallel_for = mode == 1 ? serial_hook : thread_hook;
      hook.user = &calls;
      hook.num_threads = 3;
      Workspace ws(plan.workspace_bytes(), mode);
      std::vector<float> got(out_size + 1, 777.0f);
      const char* run_err =
          bmx::bconv2d_run(plan, d.x.data(), got.data(), ws.get(), mode == 0 ? nullptr : &hook);
      CHECK(run_err == nullptr) << run_err;
      CHECK(std::memcmp(got.data(), want.data(), out_size * sizeof(float)) == 0)
          << bmx::path_name(path) << " mode " << mode << " " << describe(s);
      CHECK(got[out_size] == 777.0f) << "wrote past the output";
      CHECK(ws.intact()) << "wrote outside the workspace " << describe(s);
      if (mode == 2) {
        CHECK(calls >= 1) << "the thread hook was never called";
      }
      RETURN_IF_FAILED();
    }
  }
}

TEST(engine_plan_run_fixed_shapes) {
  std::mt19937_64 rng(tiny::g_seed + 100);
  const BConv2DShape shapes[] = {
      make(1, 1, 1, 1, 1, 1, 1, 0, 1, 0),      make(1, 64, 7, 7, 8, 1, 1, 0, 1, 0),
      make(2, 65, 6, 5, 70, 1, 2, 0, 1, 0),    make(1, 3, 9, 9, 4, 3, 1, 1, 1, 0),
      make(1, 3, 9, 9, 4, 3, 1, 1, 1, 1),      make(1, 3, 9, 9, 4, 3, 1, 1, 1, -1),
      make(2, 128, 7, 7, 130, 3, 2, 1, 1, 0),  make(1, 8, 4, 4, 8, 3, 1, 1, 4, 0),
      make(3, 130, 5, 6, 14, 2, 2, 1, 2, 1),   make(1, 256, 14, 14, 40, 3, 1, 1, 1, 0),
      make(2, 100, 11, 13, 66, 5, 1, 2, 2, 0),
  };
  for (const BConv2DShape& s : shapes) {
    check_float_run(s, rng);
    RETURN_IF_FAILED();
  }
}

TEST(engine_plan_run_random_shapes) {
  std::mt19937_64 rng(tiny::g_seed + 101);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  int64_t done = 0;
  while (done < std::max<int64_t>(10, tiny::g_random_shapes / 20)) {
    BConv2DShape s = make(pick(1, 3), 0, pick(1, 11), pick(1, 11), 0, pick(1, 3), pick(1, 2),
                          pick(0, 2), std::vector<int64_t>{1, 1, 2, 3}[pick(0, 3)],
                          static_cast<int>(pick(-1, 1)));
    s.in_channels = std::vector<int64_t>{1, 3, 33, 64, 65, 100}[pick(0, 5)] * s.groups;
    s.out_channels = pick(1, 70) * s.groups;
    if (!bmx::bconv2d_check(s).empty()) continue;
    check_float_run(s, rng);
    ++done;
    RETURN_IF_FAILED();
  }
}

// pack_bits / unpack_bits against per-bit index arithmetic (frame, groups, unused bits).
TEST(engine_bit_tensor_layout) {
  std::mt19937_64 rng(tiny::g_seed + 102);
  for (int64_t cg : {1, 5, 63, 64, 65, 130})
    for (int pad_value : {-1, 0, 1}) {
      BitTensorLayout l;
      l.batch = 2;
      l.groups = 2;
      l.channels = 2 * cg;
      l.height = 3;
      l.width = 5;
      l.pad_h = 1;
      l.pad_w = 2;
      l.padded_h = 6;  // 1 above, 2 below
      l.padded_w = 8;  // 2 left, 1 right
      l.pad_value = pad_value;
      CHECK(bmx::bit_layout_check(l).empty()) << bmx::bit_layout_check(l);
      const int64_t n = l.batch * l.channels * l.height * l.width;
      std::vector<float> x = tiny::random_floats(rng, n);
      for (bmx::Path path : tiny::paths_under_test()) {
        std::vector<word_t> packed(l.total_words() + 1, 0x5A5A5A5A5A5A5A5Aull);
        bmx::pack_bits_with_path(path, l, x.data(), packed.data(), nullptr);
        CHECK(packed[l.total_words()] == 0x5A5A5A5A5A5A5A5Aull) << "wrote past the tensor";
        const int64_t wpp = bmx::words_for(cg);
        for (int64_t b = 0; b < 2; ++b)
          for (int64_t g = 0; g < 2; ++g)
            for (int64_t i = 0; i < wpp; ++i)
              for (int64_t yp = 0; yp < 6; ++yp)
                for (int64_t xp = 0; xp < 8; ++xp) {
                  const word_t got = packed[(((b * 2 + g) * wpp + i) * 6 + yp) * 8 + xp];
                  const bool inside = yp >= 1 && yp < 4 && xp >= 2 && xp < 7;
                  word_t want = 0;
                  for (int64_t j = 0; j < 64 && i * 64 + j < cg; ++j) {
                    const int64_t c = g * cg + i * 64 + j;
                    bool bit = pad_value == 1;
                    if (inside)
                      bit = x[((b * l.channels + c) * 3 + yp - 1) * 5 + xp - 2] >= 0.0f;
                    if (bit) want |= word_t{1} << j;
                  }
                  CHECK(got == want) << bmx::path_name(path) << " cg=" << cg << " pad_value="
                                     << pad_value << " b=" << b << " g=" << g << " word " << i
                                     << " at " << yp << "," << xp;
                }
        RETURN_IF_FAILED();
      }
      std::vector<word_t> packed(l.total_words());
      bmx::pack_bits(l, x.data(), packed.data());
      std::vector<float> back(n);
      bmx::unpack_bits(l, packed.data(), back.data());
      for (int64_t k = 0; k < n; ++k) CHECK(back[k] == (x[k] >= 0.0f ? 1.0f : -1.0f)) << k;
      RETURN_IF_FAILED();
    }
  BitTensorLayout bad = bmx::plain_bit_layout(1, 6, 3, 3);
  bad.groups = 4;
  CHECK(bmx::bit_layout_check(bad).find("groups") != std::string::npos);
  bad = bmx::plain_bit_layout(1, 6, 3, 3);
  bad.padded_w = 2;
  CHECK(bmx::bit_layout_check(bad).find("planes") != std::string::npos);
}

// A convolution reading a packed input gives what it gives on the floats.
TEST(engine_packed_input) {
  std::mt19937_64 rng(tiny::g_seed + 103);
  const BConv2DShape shapes[] = {
      make(2, 65, 7, 6, 9, 3, 1, 1, 1, 0),   make(1, 130, 5, 5, 20, 3, 2, 1, 2, 1),
      make(3, 64, 6, 6, 9, 1, 1, 0, 1, -1),  make(1, 3, 8, 8, 5, 5, 1, 2, 1, 0),
      make(1, 8, 4, 4, 8, 3, 1, 1, 4, -1),
  };
  for (const BConv2DShape& s : shapes) {
    Data d = make_data(s, rng);
    const int64_t out_size = s.batch * s.out_channels * s.out_h() * s.out_w();
    std::vector<float> want(out_size);
    bmx::bconv2d_reference(s, d.x.data(), d.w.data(), d.scale.data(), nullptr, want.data());
    for (bmx::Path path : tiny::paths_under_test()) {
      bmx::BConv2DOptions o;
      o.path = path;
      o.input_format = bmx::ActivationFormat::kBits;
      o.max_threads = 2;
      o.exact_threads = true;
      bmx::BConv2DPlan plan;
      const std::string err =
          bmx::bconv2d_prepare(s, d.packed_w.data(), d.scale.data(), nullptr, o, &plan);
      CHECK(err.empty()) << err;
      if (!err.empty()) return;
      std::vector<word_t> xb(plan.input_layout().total_words());
      bmx::pack_bits(plan.input_layout(), d.x.data(), xb.data());
      std::vector<float> got(out_size);
      Workspace ws(plan.workspace_bytes(), 8);
      CHECK(bmx::bconv2d_run(plan, xb.data(), got.data(), ws.get()) == nullptr);
      CHECK(got == want) << bmx::path_name(path) << " " << describe(s);
      CHECK(ws.intact());
      // A float input to a plan that wants bits is refused with a message, not run.
      const char* msg = bmx::bconv2d_run(plan, d.x.data(), got.data(), ws.get());
      CHECK(msg != nullptr && std::string(msg).find("input_format") != std::string::npos);
      RETURN_IF_FAILED();
    }
  }
}

// The float formula the bit output must reproduce, written out independently:
// BatchNorm(float output) >= 0, with MXNet's operation order.
struct Bn {
  std::vector<float> gamma, beta, mean, var;
  float eps = 1e-3f;
  bool fix_gamma = false;
};
bool want_bit(float v, const Bn* bn, int64_t o) {
  if (bn != nullptr) {
    const float g = bn->fix_gamma ? 1.0f : bn->gamma[o];
    const float factor = g / std::sqrt(bn->var[o] + bn->eps);
    const float centered = v - bn->mean[o];
    const float scaled = centered * factor;
    v = scaled + bn->beta[o];
  }
  return v >= 0.0f;
}

// BatchNorm parameters that hit the corners: negative and zero gamma, means at exact ties with
// reachable outputs, tiny variances, and fix_gamma.
Bn awkward_bn(int64_t O, int64_t nbits, const std::vector<float>& scale, std::mt19937_64& rng,
              bool fix_gamma) {
  Bn bn;
  bn.fix_gamma = fix_gamma;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int64_t> dot(-nbits, nbits);
  for (int64_t o = 0; o < O; ++o) {
    const int kind = static_cast<int>(o % 5);
    bn.gamma.push_back(kind == 0 ? 0.0f : kind == 1 ? -0.75f * (1 + u(rng)) : 1.3f * u(rng));
    // The mean equals the float output of some dot (a tie: v - mean = 0 exactly).
    bn.mean.push_back(kind == 3 ? u(rng) : static_cast<float>(dot(rng)) * scale[o]);
    bn.beta.push_back(kind == 2 ? 0.0f : kind == 4 ? u(rng) * 0.01f : 0.0f);
    bn.var.push_back(kind == 4 ? 1e-7f : 0.5f + u(rng) * 0.4f);
  }
  return bn;
}

// The expected packed output: the reference float output of conv s, then the formula, packed
// into layout l bit by bit.
std::vector<word_t> expected_bits(const BConv2DShape& s, const Data& d, const float* scale,
                                  const float* bias, const Bn* bn, const BitTensorLayout& l,
                                  std::vector<float>* signs) {
  const int64_t OH = s.out_h(), OW = s.out_w(), O = s.out_channels;
  std::vector<float> ref(s.batch * O * OH * OW);
  bmx::bconv2d_reference(s, d.x.data(), d.w.data(), scale, bias, ref.data());
  std::vector<word_t> want(l.total_words(), 0);
  signs->assign(ref.size(), 0.0f);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t y = 0; y < OH; ++y)
        for (int64_t x = 0; x < OW; ++x) {
          const int64_t k = ((b * O + o) * OH + y) * OW + x;
          const bool bit = want_bit(ref[k], bn, o);
          (*signs)[k] = bit ? 1.0f : -1.0f;
          if (bit) want[l.word_index(b, o, y, x)] |= word_t{1} << ((o % l.group_channels()) % 64);
        }
  return want;
}

// Compares the pixels of two packed tensors (the frame is checked separately).
bool same_pixels(const BitTensorLayout& l, const std::vector<word_t>& a,
                 const std::vector<word_t>& b) {
  for (int64_t n = 0; n < l.batch; ++n)
    for (int64_t c = 0; c < l.channels; c += 1)
      for (int64_t y = 0; y < l.height; ++y)
        for (int64_t x = 0; x < l.width; ++x) {
          const int64_t i = l.word_index(n, c, y, x);
          if (a[i] != b[i]) return false;
        }
  return true;
}

TEST(engine_bit_output) {
  std::mt19937_64 rng(tiny::g_seed + 104);
  const BConv2DShape shapes[] = {
      make(2, 65, 7, 6, 9, 3, 1, 1, 1, 0),    make(1, 64, 9, 9, 130, 3, 2, 1, 1, 0),
      make(3, 64, 6, 6, 64, 1, 1, 0, 1, -1),  make(1, 3, 8, 8, 70, 5, 1, 2, 1, 1),
      make(1, 8, 4, 4, 128, 3, 1, 1, 2, 0),   make(2, 40, 5, 7, 1, 3, 1, 1, 1, 0),
  };
  for (const BConv2DShape& s : shapes) {
    const int64_t O = s.out_channels, nbits = s.group_in() * s.kernel_h * s.kernel_w;
    for (int variant = 0; variant < 4; ++variant) {
      Data d = make_data(s, rng);
      // variant 0: scale+bias+BN; 1: BN with fix_gamma, no scale; 2: scale and bias only (ties
      // at bias = -dot*scale); 3: no scale, bias, BN (plain sign of the dot).
      const bool use_scale = variant == 0 || variant == 2, use_bias = variant == 0 || variant == 2;
      if (variant == 2)
        for (int64_t o = 0; o < O; o += 2) d.bias[o] = -static_cast<float>(o % 7) * d.scale[o];
      const float* sp = use_scale ? d.scale.data() : nullptr;
      const float* bp = use_bias ? d.bias.data() : nullptr;
      std::vector<float> ones(O, 1.0f);
      Bn bn = awkward_bn(O, nbits, use_scale ? d.scale : ones, rng, variant == 1);
      const Bn* bnp = variant <= 1 ? &bn : nullptr;
      bmx::BatchNormParams params;
      params.gamma = bn.gamma.data();
      params.beta = bn.beta.data();
      params.moving_mean = bn.mean.data();
      params.moving_var = bn.var.data();
      params.eps = bn.eps;
      params.fix_gamma = bn.fix_gamma;
      // Output layouts: plain, and one with groups, a frame and pad_value +1 (the input layout of
      // a following 3x3 convolution with groups).
      std::vector<BitTensorLayout> layouts{bmx::plain_bit_layout(s.batch, O, s.out_h(), s.out_w())};
      if (O % 2 == 0 && (O / 2) % 64 == 0) {
        BitTensorLayout l = layouts[0];
        l.groups = 2;
        l.pad_h = l.pad_w = 1;
        l.padded_h = l.height + 3;
        l.padded_w = l.width + 2;
        l.pad_value = 1;
        layouts.push_back(l);
      }
      for (const BitTensorLayout& layout : layouts) {
        std::vector<float> signs;
        const std::vector<word_t> want = expected_bits(s, d, sp, bp, bnp, layout, &signs);
        for (bmx::Path path : tiny::paths_under_test()) {
          bmx::BConv2DOptions o;
          o.path = path;
          o.output_format = bmx::ActivationFormat::kBits;
          o.output_layout = layout;
          o.batch_norm = bnp != nullptr ? &params : nullptr;
          o.max_threads = 3;
          o.exact_threads = true;
          bmx::BConv2DPlan plan;
          const std::string err = bmx::bconv2d_prepare(s, d.packed_w.data(), sp, bp, o, &plan);
          CHECK(err.empty()) << err;
          if (!err.empty()) return;
          CHECK(plan.table_channels() == 0) << "the formula is monotonic: no lookup tables";
          std::vector<word_t> got(layout.total_words() + 1, 0x3C3C3C3C3C3C3C3Cull);
          Workspace ws(plan.workspace_bytes(), 24);
          CHECK(bmx::bconv2d_run(plan, d.x.data(), got.data(), ws.get()) == nullptr);
          CHECK(same_pixels(layout, got, want))
              << bmx::path_name(path) << " variant " << variant << " groups " << layout.groups
              << " " << describe(s);
          CHECK(got[layout.total_words()] == 0x3C3C3C3C3C3C3C3Cull) << "wrote past the output";
          // The frame holds pad_value's words, as pack_bits writes them.
          std::vector<float> back(signs.size());
          std::vector<word_t> repacked(layout.total_words());
          bmx::unpack_bits(layout, got.data(), back.data());
          bmx::pack_bits(layout, back.data(), repacked.data());
          CHECK(std::equal(repacked.begin(), repacked.end(), got.begin())) << "frame";
          CHECK(ws.intact());
          RETURN_IF_FAILED();
        }
      }
    }
  }
}

// A formula that is not monotonic in dot (here: the dot is a multiple of 3) falls back to
// per-channel lookup tables and is still exact.
bool every_third(const void* user, int64_t channel, int64_t dot) {
  (void)user;
  return (dot + channel) % 3 == 0;
}

TEST(engine_bit_output_lookup_table) {
  std::mt19937_64 rng(tiny::g_seed + 105);
  const BConv2DShape s = make(2, 70, 6, 7, 66, 3, 1, 1, 1, 0);
  Data d = make_data(s, rng);
  std::vector<float> ref(s.batch * 66 * 36 / 36 * s.out_h() * s.out_w());
  bmx::bconv2d_reference(s, d.x.data(), d.w.data(), nullptr, nullptr, ref.data());
  const BitTensorLayout l = bmx::plain_bit_layout(s.batch, 66, s.out_h(), s.out_w());
  std::vector<word_t> want(l.total_words(), 0);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t o = 0; o < 66; ++o)
      for (int64_t y = 0; y < s.out_h(); ++y)
        for (int64_t x = 0; x < s.out_w(); ++x) {
          const int64_t dot =
              static_cast<int64_t>(ref[((b * 66 + o) * s.out_h() + y) * s.out_w() + x]);
          if ((dot + o) % 3 == 0) want[l.word_index(b, o, y, x)] |= word_t{1} << (o % 64);
        }
  for (bmx::Path path : tiny::paths_under_test()) {
    bmx::BConv2DOptions o;
    o.path = path;
    o.output_format = bmx::ActivationFormat::kBits;
    o.sign_formula = every_third;
    bmx::BConv2DPlan plan;
    CHECK(bmx::bconv2d_prepare(s, d.packed_w.data(), nullptr, nullptr, o, &plan).empty());
    CHECK(plan.table_channels() == 66);
    std::vector<word_t> got(l.total_words());
    Workspace ws(plan.workspace_bytes(), 0);
    CHECK(bmx::bconv2d_run(plan, d.x.data(), got.data(), ws.get()) == nullptr);
    CHECK(got == want) << bmx::path_name(path);
  }
}

// conv1 (bit output, BatchNorm folded) -> packed bits in conv2's input layout -> conv2 equals
// the float emulation: reference conv1, BatchNorm, sign, reference conv2.
TEST(engine_chained_convolutions) {
  std::mt19937_64 rng(tiny::g_seed + 106);
  struct Pair {
    BConv2DShape a, b;
  };
  const Pair pairs[] = {
      {make(2, 65, 9, 9, 64, 3, 1, 1, 1, 0), make(2, 64, 9, 9, 70, 3, 1, 1, 1, 0)},
      {make(1, 32, 8, 8, 128, 3, 2, 1, 1, -1), make(1, 128, 4, 4, 30, 3, 1, 1, 2, 1)},
      {make(1, 3, 7, 7, 100, 1, 1, 0, 1, 0), make(1, 100, 7, 7, 20, 5, 2, 2, 1, 0)},
      {make(3, 16, 5, 5, 128, 3, 1, 1, 2, 0), make(3, 128, 5, 5, 64, 3, 1, 1, 2, 0)},
      // 100 channels: the +1 frame covers 36 bits of the second word; groups on both sides
      {make(2, 30, 6, 6, 100, 3, 1, 1, 1, 0), make(2, 100, 6, 6, 50, 3, 1, 1, 2, 1)},
      {make(1, 20, 7, 5, 100, 1, 1, 0, 1, 1), make(1, 100, 7, 5, 9, 3, 2, 1, 1, -1)},
  };
  for (const Pair& pr : pairs) {
    const BConv2DShape& sa = pr.a;
    const BConv2DShape& sb = pr.b;
    Data da = make_data(sa, rng), db = make_data(sb, rng);
    const int64_t nbits = sa.group_in() * sa.kernel_h * sa.kernel_w;
    Bn bn = awkward_bn(sa.out_channels, nbits, da.scale, rng, false);
    bmx::BatchNormParams params;
    params.gamma = bn.gamma.data();
    params.beta = bn.beta.data();
    params.moving_mean = bn.mean.data();
    params.moving_var = bn.var.data();
    params.eps = bn.eps;
    params.fix_gamma = false;
    // The float emulation.
    std::vector<float> signs;
    expected_bits(sa, da, da.scale.data(), da.bias.data(), &bn,
                  bmx::plain_bit_layout(sa.batch, sa.out_channels, sa.out_h(), sa.out_w()),
                  &signs);
    const int64_t out_size = sb.batch * sb.out_channels * sb.out_h() * sb.out_w();
    std::vector<float> want(out_size);
    bmx::bconv2d_reference(sb, signs.data(), db.w.data(), db.scale.data(), db.bias.data(),
                           want.data());
    for (bmx::Path path : tiny::paths_under_test()) {
      bmx::BConv2DOptions ob;
      ob.path = path;
      ob.input_format = bmx::ActivationFormat::kBits;
      ob.max_threads = 2;
      bmx::BConv2DPlan pb, pa;
      CHECK(bmx::bconv2d_prepare(sb, db.packed_w.data(), db.scale.data(), db.bias.data(), ob, &pb)
                .empty());
      bmx::BConv2DOptions oa;
      oa.path = path;
      oa.output_format = bmx::ActivationFormat::kBits;
      oa.output_layout = pb.input_layout();
      oa.batch_norm = &params;
      oa.max_threads = 2;
      const std::string err =
          bmx::bconv2d_prepare(sa, da.packed_w.data(), da.scale.data(), da.bias.data(), oa, &pa);
      CHECK(err.empty()) << err;
      if (!err.empty()) return;
      // One workspace serves both (they run one after the other).
      Workspace ws(std::max(pa.workspace_bytes(), pb.workspace_bytes()), 0);
      std::vector<word_t> mid(pb.input_layout().total_words(), 0x1234);
      std::vector<float> got(out_size);
      CHECK(bmx::bconv2d_run(pa, da.x.data(), mid.data(), ws.get()) == nullptr);
      CHECK(bmx::bconv2d_run(pb, mid.data(), got.data(), ws.get()) == nullptr);
      CHECK(got == want) << bmx::path_name(path) << " " << describe(sa) << " -> "
                         << describe(sb);
      RETURN_IF_FAILED();
    }
  }
}

TEST(engine_prepare_errors) {
  std::mt19937_64 rng(tiny::g_seed + 107);
  const BConv2DShape s = make(1, 8, 5, 5, 96, 3, 1, 1, 2, 0);  // 48 channels per group
  Data d = make_data(s, rng);
  bmx::BConv2DOptions o;
  o.output_format = bmx::ActivationFormat::kBits;
  bmx::BConv2DPlan plan;
  // The plain layout puts channels 0..63 in one word, across the convolution's two groups.
  std::string err = bmx::bconv2d_prepare(s, d.packed_w.data(), nullptr, nullptr, o, &plan);
  CHECK(err.find("groups") != std::string::npos) << err;
  CHECK(!plan.valid());
  o.output_layout = bmx::plain_bit_layout(1, 96, 5, 5);
  o.output_layout.groups = 2;
  err = bmx::bconv2d_prepare(s, d.packed_w.data(), nullptr, nullptr, o, &plan);
  CHECK(err.empty()) << err;
  o.output_layout.height = 4;
  o.output_layout.padded_h = 4;
  err = bmx::bconv2d_prepare(s, d.packed_w.data(), nullptr, nullptr, o, &plan);
  CHECK(err.find("output_layout") != std::string::npos) << err;
  bmx::BatchNormParams bn;  // no arrays
  o.output_layout = bmx::BitTensorLayout();
  o.output_layout = bmx::plain_bit_layout(1, 96, 5, 5);
  o.output_layout.groups = 2;
  o.batch_norm = &bn;
  err = bmx::bconv2d_prepare(s, d.packed_w.data(), nullptr, nullptr, o, &plan);
  CHECK(err.find("moving_mean") != std::string::npos) << err;
  err = bmx::bconv2d_prepare(s, nullptr, nullptr, nullptr, bmx::BConv2DOptions(), &plan);
  CHECK(err.find("packed_w") != std::string::npos) << err;
  BConv2DShape bad = s;
  bad.groups = 3;
  err = bmx::bconv2d_prepare(bad, d.packed_w.data(), nullptr, nullptr, bmx::BConv2DOptions(),
                             &plan);
  CHECK(err.find("groups") != std::string::npos) << err;
  CHECK(bmx::bconv2d_run(plan, d.x.data(), static_cast<float*>(nullptr), nullptr) != nullptr);
}

}  // namespace

namespace {

// Dense prepare/run on float rows against bdense_reference, with and without hooks; and bit
// output against the reference and the formula.
TEST(engine_dense_float_and_bits) {
  std::mt19937_64 rng(tiny::g_seed + 110);
  const int64_t sizes[][3] = {{1, 1, 1}, {1, 100, 70}, {3, 64, 128}, {9, 130, 65},
                              {2, 1000, 200}, {17, 65, 3}};
  for (const auto& sz : sizes) {
    const int64_t batch = sz[0], in = sz[1], hidden = sz[2];
    std::vector<float> x = tiny::random_floats(rng, batch * in),
                       w = tiny::random_floats(rng, hidden * in),
                       scale = tiny::random_floats(rng, hidden),
                       bias = tiny::random_floats(rng, hidden);
    std::vector<word_t> pw(hidden * bmx::words_for(in));
    bmx::pack_dense_weights(hidden, in, w.data(), pw.data());
    std::vector<float> want(batch * hidden);
    bmx::bdense_reference(batch, in, hidden, x.data(), w.data(), scale.data(), bias.data(),
                          want.data());
    Bn bn = awkward_bn(hidden, in, scale, rng, false);
    bmx::BatchNormParams params;
    params.gamma = bn.gamma.data();
    params.beta = bn.beta.data();
    params.moving_mean = bn.mean.data();
    params.moving_var = bn.var.data();
    params.eps = bn.eps;
    params.fix_gamma = false;
    const int64_t ow = bmx::words_for(hidden);
    std::vector<word_t> want_bits(batch * ow, 0);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t o = 0; o < hidden; ++o)
        if (want_bit(want[b * hidden + o], &bn, o))
          want_bits[b * ow + o / 64] |= word_t{1} << (o % 64);
    for (bmx::Path path : tiny::paths_under_test())
      for (int mode = 0; mode < 2; ++mode) {
        int calls = 0;
        bmx::ThreadHook hook;
        hook.parallel_for = thread_hook;
        hook.user = &calls;
        hook.num_threads = 3;
        bmx::BDenseOptions o;
        o.path = path;
        o.max_threads = 3;
        o.exact_threads = true;
        bmx::BDensePlan plan;
        CHECK(bmx::bdense_prepare(batch, in, hidden, pw.data(), scale.data(), bias.data(), o,
                                  &plan)
                  .empty());
        Workspace ws(plan.workspace_bytes(), 3);
        std::vector<float> got(batch * hidden + 1, 5.0f);
        CHECK(bmx::bdense_run(plan, x.data(), got.data(), ws.get(), mode ? &hook : nullptr) ==
              nullptr);
        CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0)
            << bmx::path_name(path) << " " << batch << "x" << in << "x" << hidden;
        CHECK(got[batch * hidden] == 5.0f);
        CHECK(ws.intact());
        o.output_format = bmx::ActivationFormat::kBits;
        o.batch_norm = &params;
        CHECK(bmx::bdense_prepare(batch, in, hidden, pw.data(), scale.data(), bias.data(), o,
                                  &plan)
                  .empty());
        Workspace wb(plan.workspace_bytes(), 5);
        std::vector<word_t> bits(batch * ow + 1, 77);
        CHECK(bmx::bdense_run(plan, x.data(), bits.data(), wb.get(), mode ? &hook : nullptr) ==
              nullptr);
        CHECK(std::equal(want_bits.begin(), want_bits.end(), bits.begin()))
            << "bits " << bmx::path_name(path) << " " << batch << "x" << in << "x" << hidden;
        CHECK(bits[batch * ow] == 77u);
        CHECK(wb.intact());
        RETURN_IF_FAILED();
      }
  }
}

// conv (bit output, BatchNorm folded) -> dense on the packed output, for a plain layout and for
// one with groups and a frame: equals Flatten of the float emulation into the reference dense.
TEST(engine_conv_into_dense) {
  std::mt19937_64 rng(tiny::g_seed + 111);
  const BConv2DShape shapes[] = {make(2, 65, 7, 7, 70, 3, 1, 1, 1, 0),
                                 make(3, 16, 5, 4, 128, 3, 2, 1, 2, 0),
                                 make(1, 3, 6, 6, 64, 1, 1, 0, 1, 1)};
  for (const BConv2DShape& s : shapes) {
    Data d = make_data(s, rng);
    const int64_t O = s.out_channels, nbits = s.group_in() * s.kernel_h * s.kernel_w;
    Bn bn = awkward_bn(O, nbits, d.scale, rng, true);
    bmx::BatchNormParams params;
    params.beta = bn.beta.data();
    params.moving_mean = bn.mean.data();
    params.moving_var = bn.var.data();
    params.eps = bn.eps;
    params.fix_gamma = true;
    std::vector<float> signs;
    expected_bits(s, d, d.scale.data(), d.bias.data(), &bn,
                  bmx::plain_bit_layout(s.batch, O, s.out_h(), s.out_w()), &signs);
    const int64_t in_units = O * s.out_h() * s.out_w(), hidden = 37;
    std::vector<float> w = tiny::random_floats(rng, hidden * in_units),
                       dscale = tiny::random_floats(rng, hidden);
    std::vector<word_t> pw(hidden * bmx::words_for(in_units));
    bmx::pack_dense_weights(hidden, in_units, w.data(), pw.data());
    std::vector<float> want(s.batch * hidden);
    bmx::bdense_reference(s.batch, in_units, hidden, signs.data(), w.data(), dscale.data(),
                          nullptr, want.data());
    std::vector<BitTensorLayout> layouts{bmx::plain_bit_layout(s.batch, O, s.out_h(), s.out_w())};
    BitTensorLayout framed = layouts[0];
    framed.pad_h = 2;
    framed.pad_w = 1;
    framed.padded_h = framed.height + 3;
    framed.padded_w = framed.width + 2;
    framed.pad_value = 1;
    if (O % 128 == 0) framed.groups = 2;
    layouts.push_back(framed);
    for (const BitTensorLayout& layout : layouts)
      for (bmx::Path path : tiny::paths_under_test()) {
        bmx::BConv2DOptions oc;
        oc.path = path;
        oc.output_format = bmx::ActivationFormat::kBits;
        oc.output_layout = layout;
        oc.batch_norm = &params;
        bmx::BConv2DPlan pc;
        const std::string err =
            bmx::bconv2d_prepare(s, d.packed_w.data(), d.scale.data(), d.bias.data(), oc, &pc);
        CHECK(err.empty()) << err;
        bmx::BDenseOptions od;
        od.path = path;
        od.input_format = bmx::ActivationFormat::kBits;
        od.input_layout = layout;
        bmx::BDensePlan pd;
        const std::string err2 = bmx::bdense_prepare(s.batch, in_units, hidden, pw.data(),
                                                     dscale.data(), nullptr, od, &pd);
        CHECK(err2.empty()) << err2;
        if (!err.empty() || !err2.empty()) return;
        Workspace ws(std::max(pc.workspace_bytes(), pd.workspace_bytes()), 0);
        std::vector<word_t> mid(layout.total_words());
        std::vector<float> got(s.batch * hidden);
        CHECK(bmx::bconv2d_run(pc, d.x.data(), mid.data(), ws.get()) == nullptr);
        CHECK(bmx::bdense_run(pd, mid.data(), got.data(), ws.get()) == nullptr);
        CHECK(got == want) << bmx::path_name(path) << " groups " << layout.groups << " frame "
                           << layout.pad_h << " " << describe(s);
        RETURN_IF_FAILED();
      }
  }
  // A layout that does not hold in_units units is refused.
  std::vector<word_t> pw(4 * 2);
  bmx::BDenseOptions od;
  od.input_format = bmx::ActivationFormat::kBits;
  od.input_layout = bmx::plain_bit_layout(1, 10, 3, 3);
  bmx::BDensePlan pd;
  const std::string err = bmx::bdense_prepare(1, 100, 4, pw.data(), nullptr, nullptr, od, &pd);
  CHECK(err.find("input_layout") != std::string::npos) << err;
}

}  // namespace

namespace {

// OutputKernels::bits of every path against output_bits_reference on random blocks: rows 1..64,
// awkward column counts, with and without the border correction (16-entry and wider tables),
// flips, thresholds at the extremes and lookup-table rows.
TEST(engine_output_bits_kernels) {
  std::mt19937_64 rng(tiny::g_seed + 112);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int iter = 0; iter < 300; ++iter) {
    const int64_t rows = iter < 64 ? iter + 1 : pick(1, 64), n = pick(1, 70);
    const int64_t ldc = n + pick(0, 5), nbits = pick(1, 700);
    const int64_t ldcorr = pick(0, 1) ? 16 : pick(17, 40);
    std::vector<int32_t> counts(rows * ldc), corr(rows * ldcorr), cls(n), thr(rows);
    std::vector<uint8_t> flip(rows);
    std::vector<int64_t> table_offset(rows, -1);
    std::vector<word_t> table;
    for (int32_t& c : counts) c = static_cast<int32_t>(pick(0, nbits));
    for (int32_t& c : corr) c = static_cast<int32_t>(pick(-nbits / 2, nbits / 2) * 2);
    for (int32_t& c : cls) c = static_cast<int32_t>(pick(0, ldcorr - 1));
    const bool use_tables = iter % 3 == 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int kind = static_cast<int>(pick(0, 5));
      const int32_t nb = static_cast<int32_t>(nbits);
      thr[r] = kind == 0   ? -2 * nb
               : kind == 1 ? 2 * nb + 1
                           : static_cast<int32_t>(pick(-nbits, nbits));
      flip[r] = static_cast<uint8_t>(pick(0, 1));
      if (use_tables && kind == 5) {
        thr[r] = INT32_MAX;
        flip[r] = 0;
        table_offset[r] = static_cast<int64_t>(table.size());
        // dots reach nbits + the correction: a table over [-2 nbits, 2 nbits]
        for (int64_t w = 0; w < bmx::words_for(4 * nbits + 1); ++w) table.push_back(rng());
      }
    }
    bmx::BitsBlock b;
    b.counts = counts.data();
    b.ldc = ldc;
    b.rows = rows;
    b.n = n;
    b.nbits = static_cast<int32_t>(nbits);
    b.corr = corr.data();
    b.ldcorr = ldcorr;
    b.cls = iter % 2 ? cls.data() : nullptr;
    b.threshold = thr.data();
    b.flip = flip.data();
    b.table_offset = use_tables ? table_offset.data() : nullptr;
    b.table = table.data();
    b.table_bias = 2 * nbits;
    std::vector<word_t> want(n);
    b.out = want.data();
    bmx::output_bits_reference(b);
    for (bmx::Path path : tiny::paths_under_test()) {
      std::vector<word_t> got(n + 1, 0x77);
      b.out = got.data();
      bmx::output_kernels_for_path(path).bits(b);
      CHECK(std::equal(want.begin(), want.end(), got.begin()))
          << bmx::path_name(path) << " rows=" << rows << " n=" << n << " cls=" << (iter % 2)
          << " ldcorr=" << ldcorr << " tables=" << use_tables;
      CHECK(got[n] == 0x77u) << "wrote past the block";
    }
    RETURN_IF_FAILED();
  }
}

}  // namespace

namespace {

// Prepare allocates (the plan); the runs, floats or bits, conv or dense, with or without a hook,
// allocate nothing.
TEST(engine_run_allocates_nothing) {
  std::mt19937_64 rng(tiny::g_seed + 113);
  const BConv2DShape s = make(2, 70, 9, 9, 64, 3, 1, 1, 1, 0);
  Data d = make_data(s, rng);
  bmx::BConv2DPlan pf, pb;
  bmx::BConv2DOptions o;
  o.max_threads = 2;
  const int64_t at_prepare = g_allocations.load();
  CHECK(bmx::bconv2d_prepare(s, d.packed_w.data(), d.scale.data(), nullptr, o, &pf).empty());
  CHECK(g_allocations.load() > at_prepare) << "the counter counts (prepare allocates the plan)";
  o.output_format = bmx::ActivationFormat::kBits;
  CHECK(bmx::bconv2d_prepare(s, d.packed_w.data(), d.scale.data(), nullptr, o, &pb).empty());
  const int64_t in_units = 64 * 81;
  std::vector<word_t> pw(5 * bmx::words_for(in_units), 0x1234567);
  bmx::BDenseOptions od;
  od.input_format = bmx::ActivationFormat::kBits;
  od.input_layout = pb.output_layout();
  bmx::BDensePlan pd;
  CHECK(bmx::bdense_prepare(2, in_units, 5, pw.data(), nullptr, nullptr, od, &pd).empty());
  std::vector<unsigned char> ws(std::max(
      {pf.workspace_bytes(), pb.workspace_bytes(), pd.workspace_bytes()}));
  std::vector<float> y(2 * 64 * 81), yd(10);
  std::vector<word_t> bits(pb.output_layout().total_words());
  bmx::ThreadHook hook;
  hook.parallel_for = serial_hook;
  hook.num_threads = 2;
  const int64_t before = g_allocations.load();
  const bmx::ThreadHook* hooks[] = {nullptr, &hook};
  for (const bmx::ThreadHook* h : hooks) {
    CHECK(bmx::bconv2d_run(pf, d.x.data(), y.data(), ws.data(), h) == nullptr);
    CHECK(bmx::bconv2d_run(pb, d.x.data(), bits.data(), ws.data(), h) == nullptr);
    CHECK(bmx::bdense_run(pd, bits.data(), yd.data(), ws.data(), h) == nullptr);
  }
  CHECK(g_allocations.load() == before) << g_allocations.load() - before << " allocations";
}

}  // namespace
