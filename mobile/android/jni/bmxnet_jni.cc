// libbmxnet_jni: the native half of org.bmxnet.BmxnetModel, on the runtime's public C API only
// (bmxnet/runtime.h).
//
// One Java BmxnetModel owns one native Handle: one bmx_model and one bmx_predictor made from it.
// The Java class serialises every call on a handle (synchronized), as the C header requires of a
// predictor; this file adds no locking of its own. Runtime failures become a thrown
// org.bmxnet.BmxnetException(status name, bmx_last_error()); nothing here crashes on bad input:
// Java checks the arguments it can (lengths, closed models), the runtime checks the rest.
#include <jni.h>

#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "bmxnet/runtime.h"

namespace {

struct Handle {
  bmx_model* model = nullptr;
  bmx_predictor* predictor = nullptr;
  size_t output_count = 0;
};

void free_handle(Handle* h) {
  if (!h) return;
  bmx_predictor_free(h->predictor);
  bmx_model_free(h->model);
  delete h;
}

// Throws BmxnetException(status, message) into Java (the caller returns right after).
void throw_bmx(JNIEnv* env, const char* status, const std::string& message) {
  jclass cls = env->FindClass("org/bmxnet/BmxnetException");
  if (!cls) return;  // NoClassDefFoundError pending
  jmethodID ctor = env->GetMethodID(cls, "<init>", "(Ljava/lang/String;Ljava/lang/String;)V");
  if (!ctor) return;
  jstring js = env->NewStringUTF(status);
  jstring jm = env->NewStringUTF(message.c_str());
  if (!js || !jm) return;  // OutOfMemoryError pending
  jobject ex = env->NewObject(cls, ctor, js, jm);
  if (ex) env->Throw(static_cast<jthrowable>(ex));
}

bool check(JNIEnv* env, bmx_status status) {
  if (status == BMX_OK) return true;
  throw_bmx(env, bmx_status_name(status), bmx_last_error());
  return false;
}

void throw_java(JNIEnv* env, const char* cls_name, const char* message) {
  jclass cls = env->FindClass(cls_name);
  if (cls) env->ThrowNew(cls, message);
}

// A java String as UTF-8 (empty with an exception pending when it cannot be read).
bool utf8(JNIEnv* env, jstring s, std::string* out) {
  const char* c = env->GetStringUTFChars(s, nullptr);
  if (!c) return false;
  out->assign(c);
  env->ReleaseStringUTFChars(s, c);
  return true;
}

// Options for one data input: its name and shape, threads, kernel path. nullptr on failure
// (exception pending).
bmx_options* make_options(JNIEnv* env, jstring input_name, jintArray shape, jint num_threads,
                          jstring kernel_path) {
  std::string name, path;
  if (!utf8(env, input_name, &name) || !utf8(env, kernel_path, &path)) return nullptr;
  const jsize ndim = env->GetArrayLength(shape);
  std::vector<jint> dims32(static_cast<size_t>(ndim));
  env->GetIntArrayRegion(shape, 0, ndim, dims32.data());
  std::vector<int64_t> dims(dims32.begin(), dims32.end());
  bmx_options* options = nullptr;
  if (!check(env, bmx_options_create(&options))) return nullptr;
  if (!check(env, bmx_options_set_input_shape(options, name.c_str(), static_cast<int>(ndim),
                                              dims.data())) ||
      !check(env, bmx_options_set_num_threads(options, num_threads)) ||
      !check(env, bmx_options_set_kernel_path(options, path.c_str()))) {
    bmx_options_free(options);
    return nullptr;
  }
  return options;
}

size_t output_element_count(const bmx_model* model) {
  int ndim = 0;
  const int64_t* dims = nullptr;
  if (bmx_model_output_shape(model, 0, &ndim, &dims) != BMX_OK) return 0;
  size_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= static_cast<size_t>(dims[i]);
  return n;
}

// Takes a freshly loaded model: checks it has one input and at least one output, makes its
// predictor; returns the handle as a jlong (0 with an exception pending).
jlong adopt(JNIEnv* env, bmx_model* model) {
  if (bmx_model_num_inputs(model) != 1 || bmx_model_num_outputs(model) < 1) {
    throw_bmx(env, "BMX_ERROR_INVALID_ARGUMENT",
              "BmxnetModel runs models with exactly one data input; this one has " +
                  std::to_string(bmx_model_num_inputs(model)) +
                  " (use the C API, bmxnet/runtime.h, for several inputs)");
    bmx_model_free(model);
    return 0;
  }
  Handle* h = new (std::nothrow) Handle;
  if (!h) {
    bmx_model_free(model);
    throw_java(env, "java/lang/OutOfMemoryError", "BmxnetModel: native handle");
    return 0;
  }
  h->model = model;
  if (!check(env, bmx_predictor_create(model, &h->predictor))) {
    free_handle(h);
    return 0;
  }
  h->output_count = output_element_count(model);
  return static_cast<jlong>(reinterpret_cast<intptr_t>(h));
}

Handle* handle(jlong value) { return reinterpret_cast<Handle*>(static_cast<intptr_t>(value)); }

}  // namespace

extern "C" {

JNIEXPORT jstring JNICALL Java_org_bmxnet_BmxnetModel_nativeVersion(JNIEnv* env, jclass) {
  return env->NewStringUTF(bmx_version());
}

JNIEXPORT jlong JNICALL Java_org_bmxnet_BmxnetModel_nativeLoadFiles(
    JNIEnv* env, jclass, jstring symbol_path, jstring params_path, jstring input_name,
    jintArray shape, jint num_threads, jstring kernel_path) {
  std::string symbol, params;
  if (!utf8(env, symbol_path, &symbol) || !utf8(env, params_path, &params)) return 0;
  bmx_options* options = make_options(env, input_name, shape, num_threads, kernel_path);
  if (!options) return 0;
  bmx_model* model = nullptr;
  const bmx_status status = bmx_model_load_files(symbol.c_str(), params.c_str(), options, &model);
  bmx_options_free(options);
  if (!check(env, status)) return 0;
  return adopt(env, model);
}

JNIEXPORT jlong JNICALL Java_org_bmxnet_BmxnetModel_nativeLoadBuffers(
    JNIEnv* env, jclass, jbyteArray symbol_json, jbyteArray params, jstring input_name,
    jintArray shape, jint num_threads, jstring kernel_path) {
  bmx_options* options = make_options(env, input_name, shape, num_threads, kernel_path);
  if (!options) return 0;
  const jsize symbol_size = env->GetArrayLength(symbol_json);
  const jsize params_size = env->GetArrayLength(params);
  // The runtime copies what it keeps, and calls back into nothing: the arrays are pinned only
  // for the load itself.
  void* sym = env->GetPrimitiveArrayCritical(symbol_json, nullptr);
  void* par = sym ? env->GetPrimitiveArrayCritical(params, nullptr) : nullptr;
  bmx_model* model = nullptr;
  bmx_status status = BMX_ERROR_OUT_OF_MEMORY;
  if (sym && par) {
    status = bmx_model_load_buffers(static_cast<const char*>(sym), static_cast<size_t>(symbol_size),
                                    par, static_cast<size_t>(params_size), options, &model);
  }
  if (par) env->ReleasePrimitiveArrayCritical(params, par, JNI_ABORT);
  if (sym) env->ReleasePrimitiveArrayCritical(symbol_json, sym, JNI_ABORT);
  bmx_options_free(options);
  if (!sym || !par) return 0;  // OutOfMemoryError pending
  if (!check(env, status)) return 0;
  return adopt(env, model);
}

JNIEXPORT void JNICALL Java_org_bmxnet_BmxnetModel_nativeFree(JNIEnv*, jclass, jlong h) {
  free_handle(handle(h));
}

// Shape of input (output = false) or output `index`; null with an exception pending on failure.
JNIEXPORT jintArray JNICALL Java_org_bmxnet_BmxnetModel_nativeShape(JNIEnv* env, jclass, jlong h,
                                                                    jboolean output, jint index) {
  int ndim = 0;
  const int64_t* dims = nullptr;
  const bmx_model* model = handle(h)->model;
  if (!check(env, output ? bmx_model_output_shape(model, index, &ndim, &dims)
                         : bmx_model_input_shape(model, index, &ndim, &dims)))
    return nullptr;
  for (int i = 0; i < ndim; ++i) {
    if (dims[i] > INT32_MAX) {
      throw_bmx(env, "BMX_ERROR_INVALID_ARGUMENT",
                "a dimension of this model's shape is above 2^31 - 1, more than a Java array "
                "holds; use a smaller input shape");
      return nullptr;
    }
  }
  std::vector<jint> out(dims, dims + ndim);
  jintArray arr = env->NewIntArray(ndim);
  if (arr) env->SetIntArrayRegion(arr, 0, ndim, out.data());
  return arr;
}

JNIEXPORT jint JNICALL Java_org_bmxnet_BmxnetModel_nativeNumOutputs(JNIEnv*, jclass, jlong h) {
  return bmx_model_num_outputs(handle(h)->model);
}

JNIEXPORT jstring JNICALL Java_org_bmxnet_BmxnetModel_nativeName(JNIEnv* env, jclass, jlong h,
                                                                jboolean output, jint index) {
  const bmx_model* model = handle(h)->model;
  const char* name = output ? bmx_model_output_name(model, index)
                            : bmx_model_input_name(model, index);
  return env->NewStringUTF(name ? name : "");
}

// Input 0 in, forward, output 0 out (Java checked the input's length first, for a clearer
// message; the runtime checks it again).
JNIEXPORT jfloatArray JNICALL Java_org_bmxnet_BmxnetModel_nativeRun(JNIEnv* env, jclass,
                                                                   jlong h, jfloatArray input) {
  Handle* hd = handle(h);
  // the array's own length: the runtime refuses any other than the input's element count
  const size_t count = static_cast<size_t>(env->GetArrayLength(input));
  void* in = env->GetPrimitiveArrayCritical(input, nullptr);
  if (!in) return nullptr;
  const bmx_status set = bmx_predictor_set_input(hd->predictor, 0, static_cast<const float*>(in),
                                                 count);
  env->ReleasePrimitiveArrayCritical(input, in, JNI_ABORT);
  // forward outside the critical region: the garbage collector may run meanwhile
  if (!check(env, set) || !check(env, bmx_predictor_forward(hd->predictor))) return nullptr;
  jfloatArray result = env->NewFloatArray(static_cast<jsize>(hd->output_count));
  if (!result) return nullptr;
  void* out = env->GetPrimitiveArrayCritical(result, nullptr);
  if (!out) return nullptr;
  const bmx_status got = bmx_predictor_get_output(hd->predictor, 0, static_cast<float*>(out),
                                                  hd->output_count);
  env->ReleasePrimitiveArrayCritical(result, out, 0);
  if (!check(env, got)) return nullptr;
  return result;
}

}  // extern "C"
