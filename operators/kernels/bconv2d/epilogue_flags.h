// The output transform's compile-time choices (scale? bias?), shared by the output_<isa>.cc
// files. Everything is in an unnamed namespace: each ISA file compiles its own copy with its own
// flags and nothing is shared at link time (the ODR rule of dispatch.h).
#ifndef BMXNET_KERNELS_BCONV2D_EPILOGUE_FLAGS_H_
#define BMXNET_KERNELS_BCONV2D_EPILOGUE_FLAGS_H_

namespace bmx {
namespace {

template <bool B>
struct Flag {
  static constexpr bool value = B;
};

// Calls f(Flag<scale != nullptr>{}, Flag<bias != nullptr>{}), so that the loops f instantiates
// test the flags at compile time instead of once per element.
template <typename F>
void with_scale_bias(const float* scale, const float* bias, F&& f) {
  if (scale != nullptr && bias != nullptr)
    f(Flag<true>{}, Flag<true>{});
  else if (scale != nullptr)
    f(Flag<true>{}, Flag<false>{});
  else if (bias != nullptr)
    f(Flag<false>{}, Flag<true>{});
  else
    f(Flag<false>{}, Flag<false>{});
}

}  // namespace
}  // namespace bmx

#endif  // BMXNET_KERNELS_BCONV2D_EPILOGUE_FLAGS_H_
