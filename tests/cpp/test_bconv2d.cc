// bconv2d on every path against bconv2d_reference (a direct float loop with signs, independent of
// packing), exact equality, on fixed awkward shapes and >= 1000 random ones.
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "bconv2d/bconv2d.h"
#include "test_util.h"
#include "tiny_test.h"

namespace {

std::string describe(const bmx::BConv2DShape& s) {
  std::ostringstream os;
  os << "batch=" << s.batch << " C=" << s.in_channels << " " << s.in_h << "x" << s.in_w
     << " O=" << s.out_channels << " k=" << s.kernel_h << "x" << s.kernel_w
     << " stride=" << s.stride_h << "x" << s.stride_w << " pad=" << s.pad_h << "x" << s.pad_w
     << " dil=" << s.dilate_h << "x" << s.dilate_w << " groups=" << s.groups
     << " pad_value=" << s.pad_value;
  return os.str();
}

// Runs the shape on every path (with and without scale/bias as asked) and compares bytes.
void check_shape(const bmx::BConv2DShape& s, std::mt19937_64& rng, bool use_scale, bool use_bias,
                 int threads, int64_t pack_budget_words = bmx::BConv2DOptions().pack_budget_words) {
  const int64_t in_size = s.batch * s.in_channels * s.in_h * s.in_w;
  const int64_t w_size = s.out_channels * s.group_in() * s.kernel_h * s.kernel_w;
  const int64_t out_size = s.batch * s.out_channels * s.out_h() * s.out_w();
  std::vector<float> x = tiny::random_floats(rng, in_size);
  std::vector<float> w = tiny::random_floats(rng, w_size);
  std::vector<float> scale = tiny::random_floats(rng, s.out_channels);
  std::vector<float> bias = tiny::random_floats(rng, s.out_channels);
  for (float& v : scale) v *= 0.37f;  // not a power of two: rounding of the product matters
  const float* sp = use_scale ? scale.data() : nullptr;
  const float* bp = use_bias ? bias.data() : nullptr;

  std::vector<float> want(out_size);
  bmx::bconv2d_reference(s, x.data(), w.data(), sp, bp, want.data());
  std::vector<uint64_t> packed(bmx::bconv2d_packed_weight_words(s));
  bmx::pack_conv_weights(s, w.data(), packed.data());

  for (bmx::Path path : tiny::paths_under_test()) {
    std::vector<float> got(out_size + 1, 12345.0f);
    bmx::BConv2DOptions options;
    options.pack_budget_words = pack_budget_words;
    options.exact_threads = true;  // the threaded split even on tiny shapes
    bmx::bconv2d_with_path(path, s, x.data(), packed.data(), sp, bp, got.data(), threads, options);
    const bool same = std::memcmp(got.data(), want.data(), out_size * sizeof(float)) == 0;
    CHECK(same) << bmx::path_name(path) << " " << describe(s) << " scale=" << use_scale
                << " bias=" << use_bias << " threads=" << threads
                << " pack_budget_words=" << pack_budget_words;
    if (!same) {
      for (int64_t i = 0; i < out_size; ++i)
        if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
          std::cerr << "  first difference at " << i << ": " << got[i] << " vs " << want[i] << "\n";
          break;
        }
    }
    CHECK(got[out_size] == 12345.0f) << "wrote past the output";
  }
}

bmx::BConv2DShape make(int64_t batch, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh,
                       int64_t kw, int64_t stride, int64_t pad, int64_t dil, int64_t groups,
                       int pad_value) {
  bmx::BConv2DShape s;
  s.batch = batch;
  s.in_channels = c;
  s.in_h = h;
  s.in_w = w;
  s.out_channels = o;
  s.kernel_h = kh;
  s.kernel_w = kw;
  s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = pad;
  s.dilate_h = s.dilate_w = dil;
  s.groups = groups;
  s.pad_value = pad_value;
  return s;
}

}  // namespace

TEST(bconv2d_pack_weights_layout) {
  std::mt19937_64 rng(tiny::g_seed + 20);
  for (int64_t cg : {1, 3, 63, 64, 65, 130}) {
    bmx::BConv2DShape s = make(1, 2 * cg, 5, 5, 6, 3, 2, 1, 1, 1, 2, 0);
    std::vector<float> w = tiny::random_floats(rng, s.out_channels * cg * 3 * 2);
    const int64_t wpp = bmx::words_for(cg);
    CHECK(bmx::bconv2d_packed_weight_words(s) == 6 * 3 * 2 * wpp);
    std::vector<uint64_t> p(bmx::bconv2d_packed_weight_words(s), 0xFFFF);
    bmx::pack_conv_weights(s, w.data(), p.data());
    for (int64_t o = 0; o < 6; ++o)
      for (int64_t ky = 0; ky < 3; ++ky)
        for (int64_t kx = 0; kx < 2; ++kx)
          for (int64_t i = 0; i < wpp * 64; ++i) {
            const bool bit = (p[((o * 3 + ky) * 2 + kx) * wpp + i / 64] >> (i % 64)) & 1;
            const bool want = i < cg && w[((o * cg + i) * 3 + ky) * 2 + kx] >= 0.0f;
            CHECK(bit == want) << "cg=" << cg << " o=" << o << " tap " << ky << "," << kx << " bit "
                               << i;
          }
    RETURN_IF_FAILED();
  }
}

TEST(bconv2d_fixed_shapes) {
  std::mt19937_64 rng(tiny::g_seed + 21);
  const bmx::BConv2DShape shapes[] = {
      make(1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0),       // smallest
      make(1, 64, 7, 7, 8, 1, 1, 1, 0, 1, 1, 0),      // 1x1 direct
      make(2, 65, 6, 5, 9, 1, 1, 1, 0, 1, 1, 0),      // 1x1 direct, 2 words, batch 2
      make(1, 130, 5, 7, 5, 1, 1, 2, 0, 1, 1, 0),     // 1x1 stride 2
      make(1, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1, 0),       // 3x3 pad 1, zero padding
      make(1, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1, 1),       // ... +1 padding
      make(1, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1, -1),      // ... -1 padding
      make(1, 63, 8, 8, 7, 5, 5, 1, 2, 1, 1, 0),      // 5x5 pad 2
      make(2, 128, 7, 7, 16, 3, 3, 2, 1, 1, 1, 0),    // stride 2
      make(1, 32, 10, 10, 8, 3, 3, 1, 2, 2, 1, 0),    // dilation 2
      make(1, 8, 4, 4, 8, 3, 3, 1, 1, 1, 4, 0),       // groups 4
      make(1, 8, 4, 4, 8, 3, 3, 1, 1, 1, 8, 1),       // depthwise-like, 1 channel per group
      make(1, 2, 2, 2, 3, 5, 5, 1, 2, 1, 1, 0),       // kernel larger than the input
      make(1, 2, 1, 1, 3, 3, 3, 1, 2, 2, 1, 0),       // every tap but one in the border
      make(3, 5, 11, 13, 81, 3, 1, 3, 1, 1, 1, 0),    // non-square kernel, stride 3, 81 outputs
      make(1, 256, 14, 14, 32, 3, 3, 1, 1, 1, 1, 0),  // a ResNet-like layer (fewer outputs)
      make(2, 65, 9, 9, 130, 7, 7, 1, 3, 1, 1, 0),    // 49 border classes, 3 blocks of outputs
      make(1, 64, 30, 30, 8, 3, 3, 1, 1, 1, 1, 0),    // 28 panels over 30-pixel rows
      make(2, 63, 3, 20, 5, 1, 1, 1, 0, 1, 1, 0),     // 1x1: panels span output rows
      make(1, 1, 17, 3, 70, 1, 3, 1, 1, 1, 1, -1),    // 1 channel, 1x3, pad -1
      make(3, 130, 5, 6, 14, 2, 2, 2, 1, 1, 2, 1),    // 2x2 stride 2, groups 2, pad +1
  };
  for (const bmx::BConv2DShape& s : shapes) {
    check_shape(s, rng, true, true, 1);
    check_shape(s, rng, false, false, 2);
    check_shape(s, rng, true, false, 3);
    check_shape(s, rng, false, true, 0);
    RETURN_IF_FAILED();
  }
  // Rectangular stride/pad/dilation that differ per axis.
  bmx::BConv2DShape s = make(2, 33, 9, 12, 6, 3, 5, 1, 1, 1, 1, 0);
  s.stride_w = 2;
  s.pad_h = 2;
  s.dilate_w = 2;
  check_shape(s, rng, true, true, 2);
}

// The packed input is built in blocks of images when a batch would not fit the packing budget;
// a tiny budget puts every image in its own block.
TEST(bconv2d_image_blocks) {
  std::mt19937_64 rng(tiny::g_seed + 24);
  const bmx::BConv2DShape shapes[] = {
      make(3, 65, 7, 9, 12, 3, 3, 1, 1, 1, 1, 0),
      make(2, 8, 5, 5, 8, 3, 3, 2, 1, 1, 4, 1),
      make(3, 64, 6, 6, 9, 1, 1, 1, 0, 1, 1, -1),
  };
  for (const bmx::BConv2DShape& s : shapes) {
    for (int64_t budget : {int64_t{1}, int64_t{200}, int64_t{1000}}) {
      check_shape(s, rng, true, true, 1, budget);
      check_shape(s, rng, false, true, 2, budget);
      RETURN_IF_FAILED();
    }
  }
}

TEST(bconv2d_random_shapes) {
  std::mt19937_64 rng(tiny::g_seed + 22);
  const int64_t kChannels[] = {1, 2, 3, 5, 13, 31, 32, 33, 63, 64, 65, 127, 128, 130};
  const int64_t kKernels[] = {1, 1, 2, 3, 3, 5};
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  int64_t done = 0, macs = 0;
  while (done < tiny::g_random_shapes) {
    bmx::BConv2DShape s;
    s.groups = std::vector<int64_t>{1, 1, 2, 4}[pick(0, 3)];
    s.in_channels = kChannels[pick(0, 13)] * s.groups;
    s.out_channels = (pick(0, 3) == 0 ? kChannels[pick(0, 10)] : pick(1, 12)) * s.groups;
    s.kernel_h = kKernels[pick(0, 5)];
    s.kernel_w = pick(0, 2) == 0 ? kKernels[pick(0, 5)] : s.kernel_h;
    s.stride_h = pick(1, 3);
    s.stride_w = pick(0, 2) == 0 ? pick(1, 3) : s.stride_h;
    s.pad_h = pick(0, 2);
    s.pad_w = pick(0, 2) == 0 ? pick(0, 2) : s.pad_h;
    s.dilate_h = pick(1, 2);
    s.dilate_w = pick(0, 2) == 0 ? pick(1, 2) : s.dilate_h;
    s.in_h = pick(1, 13);
    s.in_w = pick(1, 13);
    s.batch = pick(1, 3);
    s.pad_value = static_cast<int>(pick(-1, 1));
    if (!bmx::bconv2d_check(s).empty()) continue;  // e.g. kernel larger than the padded input
    const int64_t cost =
        s.batch * s.out_channels * s.out_h() * s.out_w() * s.group_in() * s.kernel_h * s.kernel_w;
    if (cost > 2000000) continue;  // keep the float reference fast
    macs += cost;
    check_shape(s, rng, pick(0, 2) != 0, pick(0, 2) != 0, static_cast<int>(pick(1, 2)));
    ++done;
    RETURN_IF_FAILED();
  }
  std::cout << "  " << done << " random shapes, " << macs / 1000000 << " M reference MACs"
            << std::endl;
}

TEST(bconv2d_public_entry_point) {
  std::mt19937_64 rng(tiny::g_seed + 23);
  bmx::BConv2DShape s = make(2, 70, 6, 6, 10, 3, 3, 1, 1, 1, 1, 0);
  std::vector<float> x = tiny::random_floats(rng, 2 * 70 * 36),
                     w = tiny::random_floats(rng, 10 * 70 * 9);
  std::vector<float> want(2 * 10 * 36), got(2 * 10 * 36);
  std::vector<uint64_t> p(bmx::bconv2d_packed_weight_words(s));
  bmx::pack_conv_weights(s, w.data(), p.data());
  bmx::bconv2d_reference(s, x.data(), w.data(), nullptr, nullptr, want.data());
  bmx::bconv2d(s, x.data(), p.data(), nullptr, nullptr, got.data(), 0);
  CHECK(want == got);
  // Every output is an integer of the right parity: dot = 630 - 2 * count, minus the border.
  for (float v : want) CHECK(v == static_cast<float>(static_cast<int>(v)));
}

TEST(bconv2d_bad_shapes_throw) {
  auto throws = [](const bmx::BConv2DShape& s, const char* word) {
    const std::string msg = bmx::bconv2d_check(s);
    CHECK(msg.find(word) != std::string::npos) << "message '" << msg << "' should name " << word;
    bool thrown = false;
    float dummy = 0;
    uint64_t wdummy = 0;
    try {
      bmx::bconv2d(s, &dummy, &wdummy, nullptr, nullptr, &dummy, 1);
    } catch (const std::invalid_argument&) {
      thrown = true;
    }
    CHECK(thrown) << word;
  };
  bmx::BConv2DShape ok = make(1, 4, 5, 5, 4, 3, 3, 1, 1, 1, 2, 0);
  CHECK(bmx::bconv2d_check(ok).empty());
  bmx::BConv2DShape s = ok;
  s.in_channels = 5;
  throws(s, "groups");
  s = ok;
  s.out_channels = 3;
  throws(s, "groups");
  s = ok;
  s.pad_value = 2;
  throws(s, "pad_value");
  s = ok;
  s.stride_h = 0;
  throws(s, "stride");
  s = ok;
  s.pad_h = 0;
  s.kernel_h = 7;
  throws(s, "kernel");
  s = ok;
  s.in_channels = 0;
  throws(s, "in_channels");
  // Sizes whose products overflow: the padded input of one image, a dimension past 2^31.
  s = ok;
  s.pad_h = s.pad_w = 1 << 30;
  s.stride_h = s.stride_w = (1LL << 31) - 1;
  throws(s, "padded input");
  s = ok;
  s.in_h = 1LL << 31;
  throws(s, "2^31");
}
