// libFuzzer target on the whole loader: bytes -> (symbol json, params) -> bmx_model_load_buffers,
// and, when the model loads, one forward pass on zeros through a predictor.
//
// Input layout (what make_seeds.py writes): a little-endian uint32 h, then n = h & 0xFFFFFF bytes
// of symbol json, then the params file bytes to the end. An n larger than what follows takes all
// of it as json (so that every mutation still reaches the parsers). The top byte picks the kernel
// path (bits 0-1: auto, reference, scalar, avx2; the seeds have 0), so that mutations reach
// every path's prepare and run code. The data shape comes from the `__shape__` attribute of the
// data variable, which the seeds carry and the mutations change.
//
// Every status is acceptable except BMX_ERROR_INTERNAL (a bug by the runtime's own account);
// a failed call must leave a message and a NULL object. Crashes, sanitizer reports, leaks and
// those two checks are the findings.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bmxnet/runtime.h"

namespace {

// LOADER_FUZZ_VERBOSE=1 prints what each input did (run.sh uses it to check that the seeds load).
const bool g_verbose = std::getenv("LOADER_FUZZ_VERBOSE") != nullptr;

[[noreturn]] void finding(const char* what, bmx_status status) {
  std::fprintf(stderr, "loader_fuzz: %s: %s: %s\n", what, bmx_status_name(status),
               bmx_last_error());
  std::abort();
}

// A failed call: a status other than INTERNAL, a message, and nothing handed out.
void check_failure(const char* what, bmx_status status, const void* out) {
  if (status == BMX_ERROR_INTERNAL) finding(what, status);
  if (out != nullptr) finding("an object handed out with an error status", status);
  if (bmx_last_error()[0] == '\0') finding("an error status without a message", status);
}

void run(const bmx_model* model) {
  bmx_predictor* predictor = nullptr;
  bmx_status s = bmx_predictor_create(model, &predictor);
  if (s != BMX_OK) {
    if (g_verbose) std::fprintf(stderr, "loader_fuzz: predictor: %s\n", bmx_last_error());
    check_failure("bmx_predictor_create", s, predictor);
    return;
  }
  for (int i = 0; i < bmx_model_num_inputs(model); ++i) {
    int ndim = 0;
    const int64_t* dims = nullptr;
    s = bmx_model_input_shape(model, i, &ndim, &dims);
    if (s != BMX_OK) finding("bmx_model_input_shape of a loaded model", s);
    size_t count = 1;
    for (int d = 0; d < ndim; ++d) count *= static_cast<size_t>(dims[d]);
    std::vector<float> zeros(count, 0.0f);
    s = bmx_predictor_set_input(predictor, i, zeros.data(), count);
    if (s != BMX_OK) finding("bmx_predictor_set_input with the model's own shape", s);
  }
  s = bmx_predictor_forward(predictor);
  if (g_verbose) std::fprintf(stderr, "loader_fuzz: forward: %s\n", bmx_status_name(s));
  if (s != BMX_OK) {
    check_failure("bmx_predictor_forward", s, nullptr);
  } else {
    for (int i = 0; i < bmx_model_num_outputs(model); ++i) {
      int ndim = 0;
      const int64_t* dims = nullptr;
      s = bmx_model_output_shape(model, i, &ndim, &dims);
      if (s != BMX_OK) finding("bmx_model_output_shape of a loaded model", s);
      size_t count = 1;
      for (int d = 0; d < ndim; ++d) count *= static_cast<size_t>(dims[d]);
      std::vector<float> out(count);
      s = bmx_predictor_get_output(predictor, i, out.data(), count);
      if (s != BMX_OK) finding("bmx_predictor_get_output with the model's own shape", s);
    }
  }
  bmx_predictor_free(predictor);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint32_t n = 0;
  if (size >= 4) {
    n = static_cast<uint32_t>(data[0]) | static_cast<uint32_t>(data[1]) << 8 |
        static_cast<uint32_t>(data[2]) << 16 | static_cast<uint32_t>(data[3]) << 24;
    data += 4;
    size -= 4;
  }
  static const char* const kPaths[4] = {"auto", "reference", "scalar", "avx2"};
  const char* path = kPaths[(n >> 24) & 3];
  n &= 0xFFFFFFu;
  const size_t json_size = n < size ? n : size;
  // Copies, so that AddressSanitizer sees any read past either buffer.
  std::vector<char> json(data, data + json_size);
  std::vector<uint8_t> params(data + json_size, data + size);

  bmx_options* options = nullptr;
  bmx_status s = bmx_options_create(&options);
  if (s != BMX_OK) finding("bmx_options_create", s);
  s = bmx_options_set_kernel_path(options, path);
  if (s != BMX_OK) finding("bmx_options_set_kernel_path with a documented name", s);
  bmx_model* model = nullptr;
  s = bmx_model_load_buffers(json.data(), json.size(), params.data(), params.size(), options,
                             &model);
  bmx_options_free(options);
  if (g_verbose) {
    std::fprintf(stderr, "loader_fuzz: load (kernel path %s): %s%s%s\n", path,
                 bmx_status_name(s), s == BMX_OK ? "" : ": ", s == BMX_OK ? "" : bmx_last_error());
  }
  if (s != BMX_OK) {
    check_failure("bmx_model_load_buffers", s, model);
    return 0;
  }
  // What a loaded model hands out must be readable.
  (void)std::strlen(bmx_model_describe(model));
  for (int i = 0; i < bmx_model_num_inputs(model); ++i) {
    (void)std::strlen(bmx_model_input_name(model, i));
  }
  for (int i = 0; i < bmx_model_num_outputs(model); ++i) {
    (void)std::strlen(bmx_model_output_name(model, i));
  }
  run(model);
  bmx_model_free(model);
  return 0;
}
