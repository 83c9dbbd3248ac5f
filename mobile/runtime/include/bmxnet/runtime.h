/* bmxnet runtime: the one public header of the standalone 1-bit inference engine.
 *
 * It runs the files `model_converter` writes (binarized_PREFIX-symbol.json and
 * binarized_PREFIX-NNNN.params) without MXNet, on the kernels MXNet's Q-operators use
 * (operators/kernels/). Plain C (C99 and C++), so that Java (JNI), Swift and Python (Cython) bind
 * it directly. The shape of the API follows MXNet's own c_predict_api.h (MXPredCreate,
 * MXPredSetInput, MXPredForward, MXPredGetOutput), with the model and the per-thread state apart:
 *
 *   bmx_model      the files, read, checked and compiled once for one input shape (BatchNorm folded,
 *                  layers fused, weights packed, a static memory plan). Immutable after creation:
 *                  any number of threads may use one model at the same time.
 *   bmx_predictor  the working memory of one inference at a time (activation arena, workspace,
 *                  inputs, outputs) for one model. Not thread-safe: use one predictor per thread
 *                  (they share the model's weights), or serialise the calls to it.
 *
 * Ownership: every bmx_*_create / bmx_model_load_* call that returns BMX_OK hands the caller one
 * object, which the caller frees with the matching bmx_*_free (NULL is allowed there and does
 * nothing). A model must outlive every predictor made from it. Buffers passed in are only read
 * during the call (the runtime keeps copies of what it needs); pointers handed out (names,
 * shapes, bmx_last_error) stay valid as documented at each call.
 *
 * Errors: every call that can fail returns a bmx_status; on any status other than BMX_OK,
 * bmx_last_error() returns one message that names the problem and the fix, e.g.
 *   "node 12 'stage1_conv0' (Pooling): pool_type 'lp' is not supported by the runtime".
 * No C++ exception and no standard-library type crosses this header; a malformed or hostile file
 * gives BMX_ERROR_FORMAT, never a crash. On failure nothing is half-created: *out is set to NULL.
 */
#ifndef BMXNET_RUNTIME_H_
#define BMXNET_RUNTIME_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define BMX_API __declspec(dllexport)
#elif defined(__GNUC__)
#define BMX_API __attribute__((visibility("default")))
#else
#define BMX_API
#endif

#define BMX_VERSION_MAJOR 0
#define BMX_VERSION_MINOR 1
#define BMX_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library actually linked (compare with the macros above). */
BMX_API const char* bmx_version(void);

typedef enum bmx_status {
  BMX_OK = 0,
  BMX_ERROR_INVALID_ARGUMENT = 1, /* a NULL pointer, an index or size out of range, a bad option */
  BMX_ERROR_IO = 2,               /* a file cannot be opened or read */
  BMX_ERROR_FORMAT = 3,           /* a file is not a valid MXNet symbol json / NDArray params file */
  BMX_ERROR_UNSUPPORTED = 4,      /* a valid model uses an operator or attribute the runtime lacks */
  BMX_ERROR_OUT_OF_MEMORY = 5,
  BMX_ERROR_INTERNAL = 6          /* a bug in the runtime: please report it with the message */
} bmx_status;

/* The message of the last failed call on this thread ("" when none). Valid until the next call
 * into the runtime on the same thread. */
BMX_API const char* bmx_last_error(void);
/* A short constant name for a status ("BMX_ERROR_FORMAT"). */
BMX_API const char* bmx_status_name(bmx_status status);

/* ------------------------------------------------------------------------------------------ */
/* Options: how a model is compiled and run.                                                   */
/* ------------------------------------------------------------------------------------------ */
typedef struct bmx_options bmx_options;

/* Caller-owned threads. The runtime splits a layer into `num_tasks` independent tasks and calls
 * the hook once per layer; the hook must call task(task_context, i) exactly once for every i in
 * [0, num_tasks), on any threads, and return only when all have returned. Without a hook the
 * runtime uses its own threads (a small pool, or OpenMP where the build has it). */
typedef void (*bmx_task_fn)(void* task_context, int task_index);
typedef void (*bmx_parallel_for_fn)(void* user_data, int num_tasks, bmx_task_fn task,
                                    void* task_context);

BMX_API bmx_status bmx_options_create(bmx_options** out);
BMX_API void bmx_options_free(bmx_options* options);
/* The shape of one input (required for every data input; e.g. "data", 4, {1, 3, 224, 224}).
 * The files do not record the data shape; weights' shapes come from the params file. */
BMX_API bmx_status bmx_options_set_input_shape(bmx_options* options, const char* name, int ndim,
                                               const int64_t* dims);
/* Threads per inference (default 1; <= 0: the number of cores). */
BMX_API bmx_status bmx_options_set_num_threads(bmx_options* options, int num_threads);
/* Kernel path: "auto" (default: the best this CPU supports), "reference", "scalar", "avx2",
 * "avx512", "neon". A path this build or CPU cannot run is BMX_ERROR_UNSUPPORTED at load. */
BMX_API bmx_status bmx_options_set_kernel_path(bmx_options* options, const char* path);
BMX_API bmx_status bmx_options_set_parallel_for(bmx_options* options, bmx_parallel_for_fn hook,
                                                void* user_data);

/* ------------------------------------------------------------------------------------------ */
/* Model: loaded, checked and compiled once.                                                   */
/* ------------------------------------------------------------------------------------------ */
typedef struct bmx_model bmx_model;

/* From the two files model_converter writes. `options` may be NULL only for models whose data
 * shape can be read from the json (a `__shape__` on the data variable); otherwise set the shape. */
BMX_API bmx_status bmx_model_load_files(const char* symbol_json_path, const char* params_path,
                                        const bmx_options* options, bmx_model** out);
/* The same from memory (e.g. an Android asset or an iOS bundle resource read by the app). */
BMX_API bmx_status bmx_model_load_buffers(const char* symbol_json, size_t symbol_json_size,
                                          const void* params, size_t params_size,
                                          const bmx_options* options, bmx_model** out);
BMX_API void bmx_model_free(bmx_model* model);

BMX_API int bmx_model_num_inputs(const bmx_model* model);
BMX_API int bmx_model_num_outputs(const bmx_model* model);
/* Name of input/output `index` (NULL when out of range); valid as long as the model. */
BMX_API const char* bmx_model_input_name(const bmx_model* model, int index);
BMX_API const char* bmx_model_output_name(const bmx_model* model, int index);
/* Shape of input/output `index`: *ndim and *dims (valid as long as the model). */
BMX_API bmx_status bmx_model_input_shape(const bmx_model* model, int index, int* ndim,
                                         const int64_t** dims);
BMX_API bmx_status bmx_model_output_shape(const bmx_model* model, int index, int* ndim,
                                          const int64_t** dims);
/* The compiled plan as text, one step per line (operator, fused parts, shapes, kernel path,
 * buffer offsets), then the arena size. Valid as long as the model. */
BMX_API const char* bmx_model_describe(const bmx_model* model);
/* Bytes of the activation arena a predictor allocates (the static memory plan's size). */
BMX_API size_t bmx_model_arena_bytes(const bmx_model* model);

/* ------------------------------------------------------------------------------------------ */
/* Predictor: runs the model, one inference at a time.                                         */
/* ------------------------------------------------------------------------------------------ */
typedef struct bmx_predictor bmx_predictor;

BMX_API bmx_status bmx_predictor_create(const bmx_model* model, bmx_predictor** out);
BMX_API void bmx_predictor_free(bmx_predictor* predictor);
/* Copies `count` floats (must equal the input's element count) into input `index`. */
BMX_API bmx_status bmx_predictor_set_input(bmx_predictor* predictor, int index,
                                           const float* data, size_t count);
/* Runs the model on the inputs set last. Allocates nothing. */
BMX_API bmx_status bmx_predictor_forward(bmx_predictor* predictor);
/* Copies output `index` (`count` must equal its element count) into `data`. */
BMX_API bmx_status bmx_predictor_get_output(const bmx_predictor* predictor, int index,
                                            float* data, size_t count);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BMXNET_RUNTIME_H_ */
