// libFuzzer target for the operators' attribute parser (operators/mxnet/common.cc: AttrReader and
// QuantParams::parse), built with clang -fsanitize=fuzzer,address by `make fuzz` (see
// tests/fuzz/build_attrs_fuzz.sh). Every MXNet json attribute of a Q-layer reaches this code
// as a string, so any byte sequence must end in a value or an OpError, never in a crash, an
// out-of-bounds read, an uncaught exception of another type or a hang.
//
// Input: "key=value" lines (the last line may lack its newline); values are raw bytes. Each
// known key is read with every accessor (integer, size, real, boolean, tuples of 1..4), so a value
// written for one kind of parameter is also tried as every other kind.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common.h"

namespace {

const char* const kKeys[] = {"kernel", "stride", "pad", "dilate", "num_filter", "num_group",
                             "num_hidden", "no_bias", "flatten", "act_bit", "weight_bit",
                             "scaling_mode", "grad_cancel", "binarized_weights_only",
                             "pad_value", "act_grad", "swish_beta", "backward_only",
                             "in_channels", "in_units", "layout"};

template <typename F>
void expect_op_error(F&& f) {
  try {
    f();
  } catch (const bmx_mx::OpError&) {
    // the documented refusal
  }
  // Anything else (std::out_of_range, std::bad_alloc, ...) propagates: libFuzzer reports it.
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bmx_mx::Attrs attrs;
  std::string text(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    size_t eq = line.find('=');
    if (eq != std::string::npos) attrs[line.substr(0, eq)] = line.substr(eq + 1);
    pos = end + 1;
  }
  const bmx_mx::AttrReader r(attrs);
  // Keys the input does not give take the default path (no parsing): read only those given,
  // each with every accessor (an exception per refusal is the costly part of an execution).
  for (const char* key : kKeys) {
    if (!attrs.count(key)) continue;
    expect_op_error([&] { r.integer(key, 1); });
    expect_op_error([&] { r.real(key, 1.0); });
    expect_op_error([&] { r.boolean(key, false); });
    expect_op_error([&] { r.str(key, ""); });
    expect_op_error([&] { r.size(key, 1, 0); });
    expect_op_error([&] { r.required_size(key, 1); });
    expect_op_error([&] { r.tuple(key, 1, 0, 1); });
    expect_op_error([&] { r.tuple(key, 2, 0, 0); });
    expect_op_error([&] { r.required_tuple(key, 4, 1); });
  }
  expect_op_error([&] { r.reject_unknown({"kernel", "num_filter", "act_bit"}); });
  expect_op_error([&] { bmx_mx::QuantParams::parse(r, true); });
  expect_op_error([&] { bmx_mx::QuantParams::parse(r, false); });
  return 0;
}
