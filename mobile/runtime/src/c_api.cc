// The C API (include/bmxnet/runtime.h) over the compiler (graph.h): every entry point runs its
// body inside guard(), which turns errors into a status and the thread's last error message, so
// no exception crosses the C boundary.
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>

#include "bmxnet/runtime.h"
#include "graph.h"
#include "model_file.h"
#include "parallel.h"

struct bmx_options {
  bmxrt::Options options;
};

struct bmx_model {
  std::unique_ptr<bmxrt::Model> model;
};

struct bmx_predictor {
  const bmx_model* owner = nullptr;
  std::unique_ptr<uint8_t[]> arena_raw, workspace_raw;
  uint8_t* arena = nullptr;
  float* workspace = nullptr;
  std::unique_ptr<bmxrt::ThreadPool> pool;
  std::unique_ptr<bmxrt::Parallel> parallel;
  bmx::ThreadHook kernel_hook;
  bool use_kernel_hook = false;
};

namespace {

thread_local std::string g_last_error;

#define BMX_STR2(x) #x
#define BMX_STR(x) BMX_STR2(x)
constexpr const char* kVersion =
    BMX_STR(BMX_VERSION_MAJOR) "." BMX_STR(BMX_VERSION_MINOR) "." BMX_STR(BMX_VERSION_PATCH);

template <typename F>
bmx_status guard(F&& f) {
  g_last_error.clear();
  try {
    f();
    return BMX_OK;
  } catch (const bmxrt::Error& e) {
    g_last_error = e.what();
    return e.status;
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
    return BMX_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    g_last_error = std::string("internal error: ") + e.what() + " (please report it)";
    return BMX_ERROR_INTERNAL;
  } catch (...) {
    g_last_error = "internal error: unknown exception (please report it)";
    return BMX_ERROR_INTERNAL;
  }
}

[[noreturn]] void invalid(const std::string& why) {
  throw bmxrt::Error(BMX_ERROR_INVALID_ARGUMENT, why);
}

void need(const void* p, const char* name) {
  if (!p) invalid(std::string(name) + " is NULL");
}

// A 64-byte aligned block of at least `bytes` bytes (zeroed: a fresh predictor reads zeros).
uint8_t* aligned_block(int64_t bytes, std::unique_ptr<uint8_t[]>* raw) {
  raw->reset(new uint8_t[static_cast<size_t>(bytes) + 64]());
  const uintptr_t p = reinterpret_cast<uintptr_t>(raw->get());
  return reinterpret_cast<uint8_t*>((p + 63) & ~uintptr_t{63});
}

void load(const char* json, size_t json_size, const uint8_t* params, size_t params_size,
          const bmx_options* options, bmx_model** out, const std::string& json_name,
          const std::string& params_name) {
  bmxrt::SymbolFile symbol;
  std::string err = bmxrt::parse_symbol_json(json, json_size, &symbol);
  if (!err.empty()) throw bmxrt::Error(BMX_ERROR_FORMAT, json_name + ": " + err);
  std::vector<bmxrt::Tensor> tensors;
  err = bmxrt::parse_params(params, params_size, &tensors);
  if (!err.empty()) throw bmxrt::Error(BMX_ERROR_FORMAT, params_name + ": " + err);
  bmxrt::Options opts = options ? options->options : bmxrt::Options();
  if (opts.num_threads <= 0) {
    const unsigned cores = std::thread::hardware_concurrency();
    opts.num_threads = cores ? static_cast<int>(cores) : 1;
  }
  std::unique_ptr<bmx_model> m(new bmx_model);
  m->model = bmxrt::compile(symbol, std::move(tensors), opts);
  *out = m.release();
}

const bmxrt::Model& model_of(const bmx_model* m) {
  need(m, "model");
  return *m->model;
}

}  // namespace

extern "C" {

const char* bmx_version(void) { return kVersion; }

const char* bmx_last_error(void) { return g_last_error.c_str(); }

const char* bmx_status_name(bmx_status status) {
  switch (status) {
    case BMX_OK: return "BMX_OK";
    case BMX_ERROR_INVALID_ARGUMENT: return "BMX_ERROR_INVALID_ARGUMENT";
    case BMX_ERROR_IO: return "BMX_ERROR_IO";
    case BMX_ERROR_FORMAT: return "BMX_ERROR_FORMAT";
    case BMX_ERROR_UNSUPPORTED: return "BMX_ERROR_UNSUPPORTED";
    case BMX_ERROR_OUT_OF_MEMORY: return "BMX_ERROR_OUT_OF_MEMORY";
    case BMX_ERROR_INTERNAL: return "BMX_ERROR_INTERNAL";
  }
  return "BMX_UNKNOWN_STATUS";
}

// ------------------------------------------------------------------------------------ options
bmx_status bmx_options_create(bmx_options** out) {
  if (out) *out = nullptr;
  return guard([&] {
    need(out, "out");
    *out = new bmx_options;
  });
}

void bmx_options_free(bmx_options* options) { delete options; }

bmx_status bmx_options_set_input_shape(bmx_options* options, const char* name, int ndim,
                                       const int64_t* dims) {
  return guard([&] {
    need(options, "options");
    need(name, "name");
    if (ndim < 1 || ndim > 8) invalid("ndim = " + std::to_string(ndim) + ": must be 1 to 8");
    need(dims, "dims");
    bmxrt::Shape shape(dims, dims + ndim);
    for (int64_t d : shape) {
      if (d < 1) {
        invalid("input '" + std::string(name) + "': dimension " + std::to_string(d) +
                " must be >= 1");
      }
    }
    try {
      bmxrt::num_elements(shape);
    } catch (const bmxrt::Error& e) {
      invalid(std::string("input '") + name + "': " + e.what());
    }
    options->options.input_shapes[name] = shape;
  });
}

bmx_status bmx_options_set_num_threads(bmx_options* options, int num_threads) {
  return guard([&] {
    need(options, "options");
    options->options.num_threads = num_threads;
  });
}

bmx_status bmx_options_set_kernel_path(bmx_options* options, const char* path) {
  return guard([&] {
    need(options, "options");
    need(path, "path");
    const std::string p = path;
    if (p != "auto" && p != "reference" && p != "scalar" && p != "avx2" && p != "avx512" &&
        p != "neon") {
      invalid("kernel path '" + p + "' is unknown; use auto, reference, scalar, avx2, avx512 "
              "or neon");
    }
    options->options.kernel_path = p;
  });
}

bmx_status bmx_options_set_parallel_for(bmx_options* options, bmx_parallel_for_fn hook,
                                        void* user_data) {
  return guard([&] {
    need(options, "options");
    options->options.hook = hook;
    options->options.hook_user = user_data;
  });
}

// -------------------------------------------------------------------------------------- model
bmx_status bmx_model_load_files(const char* symbol_json_path, const char* params_path,
                                const bmx_options* options, bmx_model** out) {
  if (out) *out = nullptr;
  return guard([&] {
    need(out, "out");
    need(symbol_json_path, "symbol_json_path");
    need(params_path, "params_path");
    std::vector<uint8_t> json, params;
    std::string err = bmxrt::read_file(symbol_json_path, &json);
    if (!err.empty()) throw bmxrt::Error(BMX_ERROR_IO, err);
    err = bmxrt::read_file(params_path, &params);
    if (!err.empty()) throw bmxrt::Error(BMX_ERROR_IO, err);
    load(reinterpret_cast<const char*>(json.data()), json.size(), params.data(), params.size(),
         options, out, symbol_json_path, params_path);
  });
}

bmx_status bmx_model_load_buffers(const char* symbol_json, size_t symbol_json_size,
                                  const void* params, size_t params_size,
                                  const bmx_options* options, bmx_model** out) {
  if (out) *out = nullptr;
  return guard([&] {
    need(out, "out");
    need(symbol_json, "symbol_json");
    need(params, "params");
    load(symbol_json, symbol_json_size, static_cast<const uint8_t*>(params), params_size,
         options, out, "symbol json", "params");
  });
}

void bmx_model_free(bmx_model* model) { delete model; }

int bmx_model_num_inputs(const bmx_model* model) {
  return model ? static_cast<int>(model->model->input_values.size()) : 0;
}

int bmx_model_num_outputs(const bmx_model* model) {
  return model ? static_cast<int>(model->model->output_values.size()) : 0;
}

const char* bmx_model_input_name(const bmx_model* model, int index) {
  if (!model || index < 0 || index >= bmx_model_num_inputs(model)) return nullptr;
  return model->model->input_names[index].c_str();
}

const char* bmx_model_output_name(const bmx_model* model, int index) {
  if (!model || index < 0 || index >= bmx_model_num_outputs(model)) return nullptr;
  return model->model->output_names[index].c_str();
}

namespace {

bmx_status value_shape(const bmx_model* model, int index, bool input, int* ndim,
                       const int64_t** dims) {
  return guard([&] {
    const bmxrt::Model& m = model_of(model);
    need(ndim, "ndim");
    need(dims, "dims");
    const std::vector<int>& values = input ? m.input_values : m.output_values;
    if (index < 0 || index >= static_cast<int>(values.size())) {
      invalid(std::string(input ? "input" : "output") + " index " + std::to_string(index) +
              " is out of range (the model has " + std::to_string(values.size()) + ")");
    }
    const bmxrt::Shape& s = m.values[values[index]].shape;
    *ndim = static_cast<int>(s.size());
    *dims = s.data();
  });
}

}  // namespace

bmx_status bmx_model_input_shape(const bmx_model* model, int index, int* ndim,
                                 const int64_t** dims) {
  return value_shape(model, index, true, ndim, dims);
}

bmx_status bmx_model_output_shape(const bmx_model* model, int index, int* ndim,
                                  const int64_t** dims) {
  return value_shape(model, index, false, ndim, dims);
}

const char* bmx_model_describe(const bmx_model* model) {
  return model ? model->model->description.c_str() : "";
}

size_t bmx_model_arena_bytes(const bmx_model* model) {
  return model ? static_cast<size_t>(model->model->arena_bytes) : 0;
}

// ---------------------------------------------------------------------------------- predictor
bmx_status bmx_predictor_create(const bmx_model* model, bmx_predictor** out) {
  if (out) *out = nullptr;
  return guard([&] {
    need(out, "out");
    const bmxrt::Model& m = model_of(model);
    std::unique_ptr<bmx_predictor> p(new bmx_predictor);
    p->owner = model;
    p->arena = aligned_block(m.arena_bytes, &p->arena_raw);
    p->workspace = reinterpret_cast<float*>(aligned_block(m.workspace_floats * 4,
                                                          &p->workspace_raw));
#ifndef _OPENMP
    if (m.num_threads > 1 && !m.hook) p->pool.reset(new bmxrt::ThreadPool(m.num_threads - 1));
#endif
    p->parallel.reset(new bmxrt::Parallel(m.num_threads, m.hook, m.hook_user, p->pool.get()));
    // The kernel core's runs take the same threads: the caller's hook, else our pool (builds
    // without OpenMP), else OpenMP inside the kernels.
    p->kernel_hook.num_threads = m.num_threads;
    if (m.hook) {
      p->kernel_hook.parallel_for = m.hook;
      p->kernel_hook.user = m.hook_user;
      p->use_kernel_hook = true;
    } else if (p->pool) {
      p->kernel_hook.parallel_for = [](void* pool, int n, void (*task)(void*, int), void* ctx) {
        static_cast<bmxrt::ThreadPool*>(pool)->run(n, task, ctx);
      };
      p->kernel_hook.user = p->pool.get();
      p->use_kernel_hook = true;
    }
    *out = p.release();
  });
}

void bmx_predictor_free(bmx_predictor* predictor) { delete predictor; }

namespace {

float* value_data(const bmx_predictor* p, int value) {
  const bmxrt::Model& m = *p->owner->model;
  const bmxrt::Value& v = m.values[value];
  if (v.storage < 0) return const_cast<float*>(v.constant);
  return reinterpret_cast<float*>(p->arena + m.storages[v.storage].offset);
}

// The value of input/output `index`, after checking the index and the element count.
int checked_value(const bmx_predictor* p, int index, bool input, size_t count) {
  need(p, "predictor");
  const bmxrt::Model& m = *p->owner->model;
  const std::vector<int>& values = input ? m.input_values : m.output_values;
  const char* what = input ? "input" : "output";
  if (index < 0 || index >= static_cast<int>(values.size())) {
    invalid(std::string(what) + " index " + std::to_string(index) + " is out of range (the "
            "model has " + std::to_string(values.size()) + ")");
  }
  const int64_t n = bmxrt::num_elements(m.values[values[index]].shape);
  if (count != static_cast<size_t>(n)) {
    invalid(std::string(what) + " " + std::to_string(index) + " has shape " +
            bmxrt::shape_str(m.values[values[index]].shape) + " = " + std::to_string(n) +
            " floats, but count is " + std::to_string(count));
  }
  return values[index];
}

}  // namespace

bmx_status bmx_predictor_set_input(bmx_predictor* predictor, int index, const float* data,
                                   size_t count) {
  return guard([&] {
    const int v = checked_value(predictor, index, true, count);
    need(data, "data");
    if (count) std::memcpy(value_data(predictor, v), data, count * sizeof(float));
  });
}

bmx_status bmx_predictor_forward(bmx_predictor* predictor) {
  return guard([&] {
    need(predictor, "predictor");
    const bmxrt::Model& m = *predictor->owner->model;
    bmxrt::RunContext ctx{predictor->arena,
                          predictor->workspace,
                          predictor->parallel.get(),
                          predictor->use_kernel_hook ? &predictor->kernel_hook : nullptr,
                          m.num_threads,
                          m.path,
                          &m.values,
                          &m.storages};
    for (const auto& step : m.steps) step->run(ctx);
  });
}

bmx_status bmx_predictor_get_output(const bmx_predictor* predictor, int index, float* data,
                                    size_t count) {
  return guard([&] {
    const int v = checked_value(predictor, index, false, count);
    need(data, "data");
    if (count) std::memcpy(data, value_data(predictor, v), count * sizeof(float));
  });
}

}  // extern "C"
