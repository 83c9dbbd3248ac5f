// Readers of the two files a model is made of, bounds-checked for hostile input:
//   * MXNet's symbol json (PREFIX-symbol.json: {"nodes": [...], "arg_nodes": [...],
//     "heads": [...], "attrs": {...}}), and
//   * MXNet's NDArray list file (PREFIX-NNNN.params: the format of mx.nd.save of a dict).
// Nothing here knows operators: the compiler (graph.h) interprets nodes and attributes.
// Every function returns "" on success, else one message naming the problem; no exceptions
// escape, no input makes them read out of bounds, allocate without limit or recurse without
// limit.
#ifndef BMXNET_RUNTIME_MODEL_FILE_H_
#define BMXNET_RUNTIME_MODEL_FILE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bmxrt {

// ---------------------------------------------------------------------------------- symbol json
struct NodeEntry {
  int64_t node = 0;   // index into SymbolFile::nodes (always < the index of the consumer)
  int64_t output = 0; // which output of that node (>= 0)
};

struct Node {
  std::string op;    // "null" for variables (data and parameters)
  std::string name;
  // "attrs" (MXNet >= 1.x), "attr" or "param" (older files) merged, values as written
  // (e.g. "(3, 3)", "True", "64"). Hidden attributes such as "__shape__" are kept.
  std::map<std::string, std::string> attrs;
  std::vector<NodeEntry> inputs;
};

struct SymbolFile {
  std::vector<Node> nodes;        // in file order, which MXNet writes topologically sorted
  std::vector<int64_t> arg_nodes; // indices of the "null" nodes, as written
  std::vector<NodeEntry> heads;   // the graph's outputs
};

// Parses and checks the json text: valid json (depth-limited), the fields above with the right
// types, every input and head referring to an earlier node (so the graph is acyclic), every
// arg_nodes entry a "null" node. Limits: at most kMaxNodes nodes, kMaxJsonDepth nesting.
constexpr int64_t kMaxNodes = 1 << 20;
constexpr int kMaxJsonDepth = 64;
std::string parse_symbol_json(const char* text, size_t size, SymbolFile* out);

// ------------------------------------------------------------------------------- params file
// dtype codes of MXNet's NDArray file (mshadow type flags).
enum DType : int32_t {
  kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kUint8 = 3, kInt32 = 4, kInt8 = 5, kInt64 = 6,
  kBool = 7
};
size_t dtype_size(int32_t dtype);  // 0 for an unknown code
const char* dtype_name(int32_t dtype);

struct Tensor {
  std::string name;            // without the "arg:" / "aux:" prefix
  bool aux = false;            // written with "aux:" (BatchNorm moving statistics)
  int32_t dtype = kFloat32;
  std::vector<int64_t> shape;  // every dim >= 0; product fits the data
  std::vector<uint8_t> data;   // little-endian elements, size = prod(shape) * dtype_size(dtype)
};

// Parses the bytes of a .params file: the list magic 0x112, the NDArray records (V2 magic
// 0xF993fac9 / V3 0xF993faca with dense storage, and the legacy V1 records MXNet still reads),
// then the names. Refuses sparse storage, unknown dtypes, negative or overflowing shapes,
// truncation, trailing garbage, a name count that differs from the array count and duplicate
// names, naming the offending array.
std::string parse_params(const uint8_t* data, size_t size, std::vector<Tensor>* out);

// Reads a whole file into memory (at most kMaxFileBytes).
constexpr int64_t kMaxFileBytes = int64_t{4} << 30;
std::string read_file(const std::string& path, std::vector<uint8_t>* out);

// "(1, 3, 224, 224)" / "[64, 3]" / "64" -> dims; "" or a message. Used for attribute values.
std::string parse_int_tuple(const std::string& text, std::vector<int64_t>* out);

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_MODEL_FILE_H_
