// Tests of the model file readers (src/model_file.cc).
//
//   test_model_file CASES_DIR
//
// CASES_DIR is written by make_model_file_cases.py: files MXNet itself saved, each with a
// NAME.expect that records what MXNet's own loader and Python's json module read from them.
// The readers must read the same; hand-made hostile inputs below must give a message, never a
// crash (run_tests.sh runs this program as a separate process, so a crash fails the run).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "model_file.h"

namespace {

int g_failures = 0;
int g_checks = 0;

#define EXPECT(cond, what)                                                         \
  do {                                                                             \
    ++g_checks;                                                                    \
    if (!(cond)) {                                                                 \
      ++g_failures;                                                                \
      std::printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #cond,              \
                  std::string(what).c_str());                                      \
    }                                                                              \
  } while (0)

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string hex(const std::string& s) {
  if (s.empty()) return "-";
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string fnv1a64(const std::vector<uint8_t>& data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : data) h = (h ^ b) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

bool exists(const std::string& path) {
  std::ifstream f(path);
  return f.good();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) lines.push_back(line);
  return lines;
}

// ------------------------------------------------------------------ files written by MXNet
// Compares what the readers read from the case's files with its .expect lines.
void check_case(const std::string& dir, const std::string& name) {
  std::vector<std::string> expect = lines_of(dir + "/" + name + ".expect");
  std::string prefix = dir + "/" + name;
  if (exists(dir + "/" + name + ".path")) {
    std::vector<std::string> p = lines_of(dir + "/" + name + ".path");
    prefix = p.empty() ? prefix : p[0];
  }
  std::string params_path = exists(prefix + ".params") ? prefix + ".params" : prefix + "-0001.params";
  std::string symbol_path = prefix + "-symbol.json";

  // The symbol part of the expectation.
  bmxrt::SymbolFile sym;
  bool has_symbol = exists(symbol_path);
  if (has_symbol) {
    std::vector<uint8_t> text;
    EXPECT(bmxrt::read_file(symbol_path, &text).empty(), symbol_path);
    std::string err = bmxrt::parse_symbol_json(reinterpret_cast<const char*>(text.data()),
                                               text.size(), &sym);
    EXPECT(err.empty(), name + ": " + err);
  }
  std::vector<bmxrt::Tensor> tensors;
  std::string params_error = "(no params file)";
  if (exists(params_path)) {
    std::vector<uint8_t> bytes;
    EXPECT(bmxrt::read_file(params_path, &bytes).empty(), params_path);
    params_error = bmxrt::parse_params(bytes.data(), bytes.size(), &tensors);
  }

  size_t node = 0, array = 0;
  int64_t current = -1;  // the node whose attr/input lines follow
  size_t attr_index = 0, input_index = 0;
  std::vector<std::pair<std::string, std::string>> attrs;  // of the current node, sorted
  bool params_expected = false;
  for (const std::string& line : expect) {
    std::istringstream in(line);
    std::string kind;
    in >> kind;
    if (kind == "error") {
      std::string phrase;
      std::getline(in >> std::ws, phrase);
      EXPECT(!params_error.empty() && contains(params_error, phrase),
             name + ": expected an error with '" + phrase + "', got '" + params_error + "'");
      EXPECT(tensors.empty(), name + ": no arrays after an error");
      params_expected = true;
    } else if (kind == "array") {
      params_expected = true;
      std::string name_hex;
      int aux, dtype, ndim;
      size_t nbytes;
      std::string digest;
      in >> name_hex >> aux >> dtype >> ndim;
      std::vector<int64_t> shape(static_cast<size_t>(ndim));
      for (auto& d : shape) in >> d;
      in >> nbytes >> digest;
      EXPECT(params_error.empty(), name + ": " + params_error);
      if (!params_error.empty() || array >= tensors.size()) {
        EXPECT(array < tensors.size(), name + ": fewer arrays than MXNet reads");
        ++array;
        continue;
      }
      const bmxrt::Tensor& t = tensors[array++];
      std::string where = name + " array " + std::to_string(array - 1) + " '" + t.name + "'";
      EXPECT(hex(t.name) == name_hex, where + ": name");
      EXPECT(t.aux == (aux != 0), where + ": aux");
      EXPECT(t.dtype == dtype, where + ": dtype " + std::to_string(t.dtype));
      EXPECT(t.shape == shape, where + ": shape");
      EXPECT(t.data.size() == nbytes, where + ": byte count");
      EXPECT(fnv1a64(t.data) == digest, where + ": data differ from MXNet's");
    } else if (kind == "nodes") {
      size_t n;
      in >> n;
      EXPECT(sym.nodes.size() == n, name + ": node count " + std::to_string(sym.nodes.size()));
      if (sym.nodes.size() != n) return;
    } else if (kind == "node") {
      std::string op_hex, name_hex;
      size_t nattrs, ninputs;
      in >> op_hex >> name_hex >> nattrs >> ninputs;
      current = static_cast<int64_t>(node);
      const bmxrt::Node& n = sym.nodes[node++];
      std::string where = name + " node " + std::to_string(current) + " '" + n.name + "'";
      EXPECT(hex(n.op) == op_hex, where + ": op " + n.op);
      EXPECT(hex(n.name) == name_hex, where + ": name");
      EXPECT(n.attrs.size() == nattrs, where + ": attribute count");
      EXPECT(n.inputs.size() == ninputs, where + ": input count");
      attrs.assign(n.attrs.begin(), n.attrs.end());  // std::map: sorted by key like .expect
      attr_index = input_index = 0;
    } else if (kind == "attr") {
      std::string key_hex, value_hex;
      in >> key_hex >> value_hex;
      const bmxrt::Node& n = sym.nodes[static_cast<size_t>(current)];
      if (attr_index < attrs.size()) {
        EXPECT(hex(attrs[attr_index].first) == key_hex, name + " " + n.name + ": attribute key");
        EXPECT(hex(attrs[attr_index].second) == value_hex,
               name + " " + n.name + ": value of " + attrs[attr_index].first);
      }
      ++attr_index;
    } else if (kind == "input") {
      int64_t src, out;
      in >> src >> out;
      const bmxrt::Node& n = sym.nodes[static_cast<size_t>(current)];
      if (input_index < n.inputs.size()) {
        EXPECT(n.inputs[input_index].node == src && n.inputs[input_index].output == out,
               name + " " + n.name + ": input " + std::to_string(input_index));
      }
      ++input_index;
    } else if (kind == "arg_nodes") {
      size_t n;
      in >> n;
      std::vector<int64_t> want(n);
      for (auto& a : want) in >> a;
      EXPECT(sym.arg_nodes == want, name + ": arg_nodes");
    } else if (kind == "heads") {
      size_t n;
      in >> n;
      EXPECT(sym.heads.size() == n, name + ": head count");
      for (size_t i = 0; i < n && i < sym.heads.size(); ++i) {
        int64_t a, b;
        in >> a >> b;
        EXPECT(sym.heads[i].node == a && sym.heads[i].output == b, name + ": head");
      }
    }
  }
  if (params_expected || exists(params_path)) {
    if (params_error.empty()) {
      EXPECT(array == tensors.size(), name + ": the reader found " +
                                          std::to_string(tensors.size()) + " arrays, MXNet " +
                                          std::to_string(array));
    }
  }
  EXPECT(node == sym.nodes.size(), name + ": node lines");
  std::printf("case %-16s %zu nodes, %zu arrays\n", name.c_str(), sym.nodes.size(),
              tensors.size());
}

// A prefix of a valid file must always be refused with a message; every single-byte change
// must be refused or read, never crash (the process would die).
void check_damage(const std::string& path, size_t max_positions) {
  std::vector<uint8_t> bytes;
  EXPECT(bmxrt::read_file(path, &bytes).empty(), path);
  std::vector<bmxrt::Tensor> tensors;
  size_t step = bytes.size() > max_positions ? bytes.size() / max_positions : 1;
  int refused = 0;
  for (size_t n = 0; n < bytes.size(); n += step) {
    std::string err = bmxrt::parse_params(bytes.data(), n, &tensors);
    EXPECT(!err.empty(), path + ": prefix of " + std::to_string(n) + " bytes accepted");
    EXPECT(tensors.empty(), "no arrays after an error");
    refused += !err.empty();
  }
  for (size_t i = 0; i < bytes.size(); i += step) {
    std::vector<uint8_t> copy = bytes;
    for (uint8_t v : {uint8_t{0}, uint8_t{0xFF}, uint8_t{0x7F}, uint8_t{0x80}}) {
      copy[i] = v;
      std::string err = bmxrt::parse_params(copy.data(), copy.size(), &tensors);
      EXPECT(err.empty() || !err.empty(), "");
    }
  }
  std::printf("damage %s: %d prefixes refused\n", path.c_str(), refused);
}

// ---------------------------------------------------------------------- hand-made params
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& i32(int32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& i64(int64_t v) { return raw(&v, 8); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& raw(const void* p, size_t n) {
    // little-endian hosts only (the runtime's targets); written byte by byte to say so
    const uint8_t* q = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) b.push_back(q[i]);
    return *this;
  }
  Bytes& header(uint64_t count) { return u64(0x112).u64(0).u64(count); }
  // A V2 dense record with the given dims and `data_bytes` bytes of data.
  Bytes& v2(std::vector<int64_t> dims, int32_t dtype, size_t data_bytes, int32_t dev = 1) {
    u32(0xF993fac9).i32(0).i32(static_cast<int32_t>(dims.size()));
    for (int64_t d : dims) i64(d);
    i32(dev).i32(0).i32(dtype);
    b.insert(b.end(), data_bytes, 0x3c);
    return *this;
  }
};

std::string params_error(const Bytes& bytes) {
  std::vector<bmxrt::Tensor> t;
  std::string err = bmxrt::parse_params(bytes.b.data(), bytes.b.size(), &t);
  EXPECT(err.empty() == !t.empty() || err.empty(), "arrays returned with an error");
  return err;
}

void expect_params_error(const Bytes& bytes, const std::string& phrase, const char* what) {
  std::string err = params_error(bytes);
  EXPECT(contains(err, phrase), std::string(what) + ": got '" + err + "'");
}

void test_hostile_params() {
  Bytes ok;
  ok.header(1).v2({2, 3}, 0, 24).u64(1).str("arg:w");
  EXPECT(params_error(ok).empty(), params_error(ok));

  expect_params_error(Bytes().u64(0x113).u64(0).u64(0).u64(0), "not an MXNet NDArray file",
                      "list magic");
  expect_params_error(Bytes().u64(0x112), "header is truncated", "short header");
  expect_params_error(Bytes().header(uint64_t{1} << 60), "more than its", "huge count");
  expect_params_error(Bytes().header(1).v2({int64_t{1} << 62, int64_t{1} << 62}, 0, 0)
                          .u64(1).str("a"),
                      "needs more bytes", "huge shape");
  expect_params_error(Bytes().header(1).v2({int64_t{1} << 31, 4}, 0, 64).u64(1).str("a"),
                      "needs more bytes", "shape larger than the data");
  expect_params_error(Bytes().header(1).v2({2, -3}, 0, 24).u64(1).str("a"), "(negative)",
                      "negative dim");
  expect_params_error(Bytes().header(1).v2({2, 0}, 0, 0).u64(1).str("a"), "is 0",
                      "zero dim in V2");
  expect_params_error(Bytes().header(1).v2({2}, 12, 4).u64(1).str("a"), "dtype code 12",
                      "unknown dtype");
  expect_params_error(Bytes().header(1).v2({2}, -1, 4).u64(1).str("a"), "dtype code -1",
                      "negative dtype");
  expect_params_error(Bytes().header(1).v2({2}, 0, 8, 9).u64(1).str("a"), "device type 9",
                      "device type");
  Bytes ndim;
  ndim.header(1).u32(0xF993fac9).i32(0).i32(1000).u64(0).u64(0).u64(0);
  expect_params_error(ndim, "number of dimensions 1000", "ndim");
  Bytes neg_ndim;
  neg_ndim.header(1).u32(0xF993faca).i32(0).i32(-7).u64(0).u64(0).u64(0);
  expect_params_error(neg_ndim, "number of dimensions -7", "negative ndim");
  Bytes unknown;
  unknown.header(1).u32(0xF993faca).i32(0).i32(-1).u64(0).u64(0).u64(0);
  expect_params_error(unknown, "unknown", "V3 ndim -1");
  Bytes garbage_magic;
  garbage_magic.header(1).u32(0xdeadbeef).u64(0).u64(0).u64(0);
  expect_params_error(garbage_magic, "no NDArray record magic", "record magic");
  expect_params_error(Bytes().header(1).v2({2}, 0, 8).u64(2).str("a").str("b"),
                      "1 arrays but 2 names", "name count");
  expect_params_error(Bytes().header(2).v2({2}, 0, 8).v2({1}, 0, 4).u64(2).str("arg:x")
                          .str("aux:x"),
                      "used by arrays 0 and 1", "duplicate names");
  expect_params_error(Bytes().header(1).v2({2}, 0, 8).u64(1).str("arg:"), "invalid name",
                      "empty name");
  expect_params_error(Bytes().header(1).v2({2}, 0, 8).u64(1).u64(uint64_t{1} << 62),
                      "ends inside name", "huge name length");
  Bytes trailing = ok;
  trailing.u32(0);
  expect_params_error(trailing, "4 bytes after the last name", "trailing bytes");
  Bytes sparse;
  sparse.header(1).u32(0xF993fac9).i32(1).u64(0).u64(0).u64(0);
  expect_params_error(sparse, "row_sparse storage", "sparse");
  // NULL with a size is refused; NULL with 0 bytes is an empty file.
  std::vector<bmxrt::Tensor> t;
  EXPECT(!bmxrt::parse_params(nullptr, 10, &t).empty(), "NULL params");
  EXPECT(!bmxrt::parse_params(nullptr, 0, &t).empty(), "empty params");
}

// ------------------------------------------------------------------------ hand-made json
std::string json_error(const std::string& text, bmxrt::SymbolFile* sym = nullptr) {
  bmxrt::SymbolFile local;
  bmxrt::SymbolFile* out = sym ? sym : &local;
  return bmxrt::parse_symbol_json(text.data(), text.size(), out);
}

void expect_json_error(const std::string& text, const std::string& phrase, const char* what) {
  bmxrt::SymbolFile sym;
  std::string err = json_error(text, &sym);
  EXPECT(contains(err, phrase), std::string(what) + ": got '" + err + "'");
  EXPECT(sym.nodes.empty(), std::string(what) + ": nodes left after an error");
}

// A graph data -> op, with `extra` spliced into the op node and `tail` into the top object.
std::string graph(const std::string& extra = "", const std::string& tail = "",
                  const std::string& inputs = "[[0, 0, 0]]") {
  return "{\"nodes\": [{\"op\": \"null\", \"name\": \"data\", \"inputs\": []}, "
         "{\"op\": \"relu\", \"name\": \"r\", \"inputs\": " + inputs + extra + "}], "
         "\"arg_nodes\": [0], \"heads\": [[1, 0]]" + tail + "}";
}

void test_json() {
  bmxrt::SymbolFile sym;
  EXPECT(json_error(graph(), &sym).empty(), json_error(graph()));
  EXPECT(sym.nodes.size() == 2 && sym.nodes[1].inputs.size() == 1, "small graph");

  // Escapes: the expected UTF-8 bytes are written out by hand.
  std::string esc = graph(", \"attrs\": {\"k\": \"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\"}");
  EXPECT(json_error(esc, &sym).empty(), json_error(esc));
  EXPECT(sym.nodes.size() == 2 &&
             sym.nodes[1].attrs["k"] == "\xc3\xa9\xf0\x9f\x98\x80\"\\/\b\f\n\r\t",
         "escapes decoded");
  // Old files: "attr" and "param" merge with "attrs".
  std::string merged = graph(", \"attr\": {\"a\": \"1\"}, \"param\": {\"b\": \"2\"}");
  EXPECT(json_error(merged, &sym).empty() && sym.nodes[1].attrs.size() == 2, "attr + param");
  // Extra fields and values the runtime does not use are skipped.
  std::string extra = graph(", \"control_deps\": [], \"x\": {\"y\": [1.5e3, -0, true, null]}",
                            ", \"node_row_ptr\": [0, 1, 2], \"attrs\": {\"mxnet_version\": "
                            "[\"int\", 10901]}");
  EXPECT(json_error(extra).empty(), json_error(extra));

  // Depth: the top object is level 1; 63 more levels are allowed, 64 are not.
  std::string deep63 = graph("", ", \"z\": " + std::string(63, '[') + std::string(63, ']'));
  std::string deep64 = graph("", ", \"z\": " + std::string(64, '[') + std::string(64, ']'));
  EXPECT(json_error(deep63).empty(), json_error(deep63));
  expect_json_error(deep64, "nested deeper than 64", "depth");
  expect_json_error("{\"a\": " + std::string(100000, '['), "nested deeper", "deep garbage");

  expect_json_error(graph("", "", "[[1, 0]]"), "not an earlier node", "self loop");
  expect_json_error(graph("", "", "[[5, 0]]"), "not an earlier node", "forward reference");
  expect_json_error(graph("", "", "[[-1, 0]]"), "not an earlier node", "negative node");
  expect_json_error(graph("", "", "[[0, -1]]"), "output index -1", "negative output");
  expect_json_error(graph("", "", "[[0]]"), "[node, output]", "short entry");
  expect_json_error(graph("", "", "[[0, 0, 0, 0]]"), "more than 3", "long entry");
  expect_json_error(graph("", "", "[[0.5, 0]]"), "not a fraction", "fraction");
  expect_json_error(graph("", "", "[[99999999999999999999, 0]]"), "64-bit", "overflow");
  expect_json_error(graph("", "", "[[00, 0]]"), "leading zero", "leading zero");
  expect_json_error(graph("", "", "[[\"0\", 0]]"), "must be an integer", "string index");
  expect_json_error(graph(", \"attrs\": {\"k\": 3}"), "must be a string", "number attribute");
  expect_json_error(graph(", \"attrs\": {\"k\": \"1\"}, \"attr\": {\"k\": \"2\"}"),
                    "twice with different values", "conflicting attributes");
  expect_json_error(graph(", \"name\": \"again\""), "appears twice", "duplicate key");
  expect_json_error(graph(", \"op\": \"\""), "appears twice", "duplicate op");
  expect_json_error(graph("", ", \"heads\": []"), "appears twice", "duplicate heads");
  expect_json_error(graph(", \"attrs\": {\"k\": \"\\x\"}"), "invalid escape", "bad escape");
  expect_json_error(graph(", \"attrs\": {\"k\": \"\\u12\"}"), "\\u escape", "short \\u");
  expect_json_error(graph(", \"attrs\": {\"k\": \"\\ud800\"}"), "surrogate", "lone high");
  expect_json_error(graph(", \"attrs\": {\"k\": \"\\udc00x\"}"), "surrogate", "lone low");
  expect_json_error(graph(", \"attrs\": {\"k\": \"\\u0000\"}"), "NUL", "NUL escape");
  expect_json_error(graph(", \"attrs\": {\"k\": \"a\tb\"}"), "control character", "raw tab");
  expect_json_error(graph(", \"attrs\": {\"k\": \"\xc3\"}"), "UTF-8", "cut UTF-8");
  expect_json_error(graph(", \"attrs\": {\"k\": \"\xc0\xaf\"}"), "UTF-8", "overlong UTF-8");
  expect_json_error(graph(", \"attrs\": {\"k\": \"\xed\xa0\x80\"}"), "UTF-8", "UTF-8 surrogate");
  expect_json_error(graph() + "x", "text after the end", "trailing text");
  expect_json_error(graph().substr(0, 60), "line 1", "truncated");
  expect_json_error("", "expected '{'", "empty text");
  expect_json_error("[]", "expected '{'", "not an object");
  expect_json_error("{\"nodes\": [], \"arg_nodes\": [], \"heads\": []}", "no nodes", "no nodes");
  expect_json_error("{\"nodes\": [{\"op\": \"null\", \"name\": \"d\", \"inputs\": []}], "
                    "\"arg_nodes\": [0], \"heads\": []}",
                    "no outputs", "no heads");
  expect_json_error("{\"nodes\": [{\"op\": \"null\", \"name\": \"d\", \"inputs\": []}], "
                    "\"heads\": [[0, 0]]}",
                    "no \"arg_nodes\"", "missing arg_nodes");
  expect_json_error("{\"nodes\": [{\"op\": \"null\", \"name\": \"d\"}], "
                    "\"arg_nodes\": [0], \"heads\": [[0, 0]]}",
                    "has no \"inputs\"", "missing inputs");
  expect_json_error(graph("", "", "[]").replace(graph("", "", "[]").find("\"arg_nodes\": [0]"),
                                                 16, "\"arg_nodes\": [1]"),
                    "which is an operator", "arg_nodes names an operator");
  expect_json_error(graph().replace(graph().find("\"arg_nodes\": [0]"), 16, "\"arg_nodes\": [7]"),
                    "but there are 2 nodes", "arg_nodes out of range");
  expect_json_error(graph().replace(graph().find("\"heads\": [[1, 0]]"), 17,
                                    "\"heads\": [[2, 0]]"),
                    "refers to node 2", "head out of range");
  expect_json_error("{\"nodes\": [{\"op\": \"null\", \"name\": \"d\", \"inputs\": [[0, 0]]}], "
                    "\"arg_nodes\": [0], \"heads\": [[0, 0]]}",
                    "not an earlier node", "variable with an input");
  expect_json_error(graph(", \"x\": tru"), "invalid json value", "bad literal");
  expect_json_error(graph(", \"x\": 1."), "no digits after", "bad number");
  EXPECT(!json_error(std::string("{\"nodes\"\0:", 11)).empty(), "NUL in the text");
}

void test_int_tuple() {
  struct Case {
    const char* text;
    std::vector<int64_t> dims;
  };
  const Case good[] = {
      {"(1, 3, 224, 224)", {1, 3, 224, 224}}, {"[64, 3]", {64, 3}}, {"64", {64}},
      {"(64,)", {64}}, {"()", {}}, {"[]", {}}, {" ( -1 , 2L ) ", {-1, 2}},
      {"(9223372036854775807, -9223372036854775808)", {INT64_MAX, INT64_MIN}},
  };
  for (const Case& c : good) {
    std::vector<int64_t> dims;
    std::string err = bmxrt::parse_int_tuple(c.text, &dims);
    EXPECT(err.empty() && dims == c.dims, std::string(c.text) + ": " + err);
  }
  for (const char* bad : {"", "(", "(1", "(1,,2)", "(1 2)", "(None, 3)", "3.5", "(3]", "x",
                          "(9223372036854775808)", "1)", "(,)", "True"}) {
    std::vector<int64_t> dims = {7};
    std::string err = bmxrt::parse_int_tuple(bad, &dims);
    EXPECT(contains(err, "not an integer or a tuple"), std::string(bad) + ": '" + err + "'");
    EXPECT(dims.empty(), std::string(bad) + ": dims left after an error");
  }
}

void test_read_file(const std::string& dir) {
  std::vector<uint8_t> bytes = {1};
  std::string err = bmxrt::read_file(dir + "/no-such-file.params", &bytes);
  EXPECT(contains(err, "cannot open") && contains(err, "no-such-file"), err);
  EXPECT(bytes.empty(), "no bytes after an error");
  err = bmxrt::read_file(dir, &bytes);  // a folder opens but cannot be read
  EXPECT(!err.empty(), "reading a folder: " + err);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CASES_DIR (written by make_model_file_cases.py)\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  for (const char* name : {"dtypes", "np_shape", "legacy", "list", "csr", "zerod_v2",
                           "empty_list", "escapes", "binarized_lenet"}) {
    EXPECT(exists(dir + "/" + name + ".expect"), std::string("missing case ") + name);
    check_case(dir, name);
  }
  if (exists(dir + "/bmxnet_v1.expect")) {
    check_case(dir, "bmxnet_v1");
  } else {
    std::printf("case bmxnet_v1: skipped (../shared/bmxnet_legacy not present)\n");
  }
  check_damage(dir + "/dtypes.params", 100000);
  check_damage(dir + "/binarized_lenet-0001.params", 2000);
  test_hostile_params();
  test_json();
  test_int_tuple();
  test_read_file(dir);
  std::printf("%s: %d checks, %d failures\n", g_failures ? "FAILED" : "OK", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
