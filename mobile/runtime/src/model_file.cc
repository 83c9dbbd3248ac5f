// Readers of MXNet's symbol json and NDArray list file (see model_file.h).
//
// Both readers treat their input as hostile: every read is bounds-checked against the bytes
// left, every size read from the file is compared with what the rest of the file can hold before
// anything is allocated, and json nesting is limited to kMaxJsonDepth. Nothing throws: a failed
// allocation is caught at the public entry points and reported as a message.
//
// Formats, as MXNet 1.9.1 writes and reads them:
//  * symbol json (nnvm's graph json, src/nnvm/legacy_json_util.cc and nnvm's graph_json.cc):
//      {"nodes": [{"op": "Convolution", "name": "conv0", "attrs": {"kernel": "(3, 3)"},
//                  "inputs": [[0, 0, 0], [1, 0, 0]]}, ...],
//       "arg_nodes": [0, 1], "node_row_ptr": [...], "heads": [[5, 0, 0]],
//       "attrs": {"mxnet_version": ["int", 10901]}}
//    Files from MXNet < 1.0 (BMXNet v1) name the node attributes "attr" (or "param"); input and
//    head entries are [node, output] or [node, output, version].
//  * NDArray list (src/ndarray/ndarray.cc, NDArray::Save of a list), all little-endian:
//      uint64 0x112, uint64 reserved, uint64 array count, the arrays, uint64 name count, names
//      (uint64 length + bytes each; mx.nd.save of a dict writes "arg:NAME" / "aux:NAME").
//    One array:
//      V2 (uint32 0xF993fac9; legacy shape semantics) and V3 (0xF993faca; np-shape semantics):
//        int32 storage type (0 = dense), int32 ndim, int64 dims[ndim], int32 dev_type,
//        int32 dev_id, int32 dtype, data. In V2 ndim 0 and zero dims mean "no shape" (MXNet
//        loads such a record as an uninitialised array and reads no data after it); in V3
//        ndim -1 / dim -1 mean unknown, ndim 0 is a scalar and zero dims are empty arrays.
//      V1 (uint32 0xF993fac8): int32 ndim, int64 dims, then context, dtype and data as above.
//      Before V1 the first uint32 is ndim itself and the dims are uint32 (BMXNet v1 files).
#include "model_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <set>
#include <type_traits>
#include <utility>

namespace bmxrt {
namespace {

// Runs `body` (which returns a message), turning an allocation failure or any other standard
// exception into a message, so that nothing escapes to the C API above.
template <typename Body>
std::string guarded(const char* what, Body&& body) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return std::string(what) + ": out of memory";
  } catch (const std::exception& e) {
    return std::string(what) + ": " + e.what();
  }
#else
  (void)what;
  return body();
#endif
}

std::string quoted(const std::string& s) {
  // Names come from the file: keep messages one line and bounded.
  std::string out = "'";
  size_t n = 0;
  for (unsigned char c : s) {
    if (++n > 80) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

// ========================================================================================= json
// A pull parser over the text: the caller asks for the value it expects (object, array, string,
// integer) or skips a value it does not need, so no generic tree is built and memory stays
// proportional to what the symbol keeps.
class JsonReader {
 public:
  JsonReader(const char* text, size_t size) : begin_(text), p_(text), end_(text + size) {}

  bool failed() const { return !error_.empty(); }

  // Records the first error, at the current position.
  bool fail(const std::string& message) {
    if (error_.empty()) error_ = message, error_pos_ = p_;
    return false;
  }

  // "symbol json, line L, column C: message".
  std::string error() const {
    int64_t line = 1, column = 1;
    for (const char* q = begin_; q < error_pos_ && q < end_; ++q) {
      if (*q == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return "symbol json, line " + std::to_string(line) + ", column " + std::to_string(column) +
           ": " + error_;
  }

  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  // The next non-space character, or 0 at the end.
  char peek() {
    skip_space();
    return p_ < end_ ? *p_ : '\0';
  }

  bool at_end() {
    skip_space();
    return p_ == end_;
  }

  bool expect(char c, const char* context) {
    if (peek() != c) {
      std::string found = p_ < end_ ? std::string("'") + *p_ + "'" : std::string("the end");
      return fail(std::string("expected '") + c + "' " + context + ", found " + found);
    }
    ++p_;
    return true;
  }

  // Reads an object; for each member calls member(key), which must read the value.
  template <typename Member>
  bool read_object(int depth, const char* context, Member&& member) {
    if (depth > kMaxJsonDepth) return fail(nesting_message());
    if (!expect('{', (std::string("to start ") + context).c_str())) return false;
    if (peek() == '}') return ++p_, true;
    for (;;) {
      std::string key;
      if (peek() != '"') return fail(std::string("expected a string key in ") + context);
      if (!read_string(&key)) return false;
      if (!expect(':', "after an object key")) return false;
      if (!member(key)) return false;
      char c = peek();
      if (c == ',') {
        ++p_;
        continue;
      }
      if (c == '}') return ++p_, true;
      return fail(std::string("expected ',' or '}' in ") + context);
    }
  }

  // Reads an array; for each element calls element(index), which must read the value.
  template <typename Element>
  bool read_array(int depth, const char* context, Element&& element) {
    if (depth > kMaxJsonDepth) return fail(nesting_message());
    if (!expect('[', (std::string("to start ") + context).c_str())) return false;
    if (peek() == ']') return ++p_, true;
    for (int64_t index = 0;; ++index) {
      if (!element(index)) return false;
      char c = peek();
      if (c == ',') {
        ++p_;
        continue;
      }
      if (c == ']') return ++p_, true;
      return fail(std::string("expected ',' or ']' in ") + context);
    }
  }

  bool read_string(std::string* out) {
    out->clear();
    if (peek() != '"') return fail("expected a string");
    ++p_;
    for (;;) {
      if (p_ >= end_) return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') return ++p_, true;
      if (c < 0x20) return fail("control character in a string (write it as \\u00XX)");
      if (c == '\\') {
        if (!read_escape(out)) return false;
      } else if (c < 0x80) {
        out->push_back(static_cast<char>(c));
        ++p_;
      } else if (!copy_utf8(out)) {
        return false;
      }
    }
  }

  // A json number that is an integer (no fraction or exponent) within int64.
  bool read_int(int64_t* out, const char* what) {
    skip_space();
    const char* start = p_;
    bool negative = false;
    if (p_ < end_ && *p_ == '-') negative = true, ++p_;
    if (p_ >= end_ || *p_ < '0' || *p_ > '9') {
      p_ = start;
      return fail(std::string(what) + " must be an integer");
    }
    if (*p_ == '0' && p_ + 1 < end_ && p_[1] >= '0' && p_[1] <= '9') {
      return fail("a number has a leading zero");
    }
    // Accumulate negatively so that INT64_MIN fits.
    int64_t value = 0;
    const int64_t min = std::numeric_limits<int64_t>::min();
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      int digit = *p_ - '0';
      if (value < (min + digit) / 10) {
        p_ = start;
        return fail(std::string(what) + " is out of the 64-bit integer range");
      }
      value = value * 10 - digit;
      ++p_;
    }
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) {
      p_ = start;
      return fail(std::string(what) + " must be an integer, not a fraction");
    }
    if (!negative) {
      if (value == min) {
        p_ = start;
        return fail(std::string(what) + " is out of the 64-bit integer range");
      }
      value = -value;
    }
    *out = value;
    return true;
  }

  // Checks and skips any json value (for fields the runtime does not use).
  bool skip_value(int depth) {
    switch (peek()) {
      case '{':
        return read_object(depth, "an object", [&](const std::string&) {
          return skip_value(depth + 1);
        });
      case '[':
        return read_array(depth, "an array", [&](int64_t) { return skip_value(depth + 1); });
      case '"': {
        std::string ignored;
        return read_string(&ignored);
      }
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return skip_number();
    }
  }

 private:
  static std::string nesting_message() {
    return "json nested deeper than " + std::to_string(kMaxJsonDepth) +
           " levels (MXNet never writes that; the file is damaged)";
  }

  bool literal(const char* word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) {
      return fail("invalid json value");
    }
    p_ += n;
    return true;
  }

  // json number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  bool skip_number() {
    auto digits = [&]() {
      const char* s = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      return p_ > s;
    };
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else if (!digits()) {
      return fail("invalid json value");
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return fail("invalid number: no digits after '.'");
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return fail("invalid number: no digits in the exponent");
    }
    return true;
  }

  static void append_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool read_hex4(uint32_t* out) {
    if (end_ - p_ < 4) return fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = p_[i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return fail("invalid \\u escape (four hex digits expected)");
      }
    }
    p_ += 4;
    *out = v;
    return true;
  }

  // At a backslash inside a string.
  bool read_escape(std::string* out) {
    if (end_ - p_ < 2) return fail("unterminated string");
    char c = p_[1];
    p_ += 2;
    switch (c) {
      case '"': out->push_back('"'); return true;
      case '\\': out->push_back('\\'); return true;
      case '/': out->push_back('/'); return true;
      case 'b': out->push_back('\b'); return true;
      case 'f': out->push_back('\f'); return true;
      case 'n': out->push_back('\n'); return true;
      case 'r': out->push_back('\r'); return true;
      case 't': out->push_back('\t'); return true;
      case 'u': break;
      default:
        p_ -= 2;
        return fail(std::string("invalid escape '\\") + c + "' in a string");
    }
    uint32_t cp;
    if (!read_hex4(&cp)) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate: a low one must follow
      uint32_t low;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
        return fail("unpaired UTF-16 surrogate in a \\u escape");
      }
      p_ += 2;
      if (!read_hex4(&low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return fail("unpaired UTF-16 surrogate in a \\u escape");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return fail("unpaired UTF-16 surrogate in a \\u escape");
    }
    // Names and attribute values end up as C strings (the C API, MXNet's own C API): a NUL
    // would silently cut them.
    if (cp == 0) return fail("\\u0000 in a string (names and attributes cannot contain NUL)");
    append_utf8(cp, out);
    return true;
  }

  // Copies one multi-byte UTF-8 sequence, refusing malformed ones (json text is UTF-8).
  bool copy_utf8(std::string* out) {
    unsigned char c = static_cast<unsigned char>(*p_);
    int extra;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return fail("invalid UTF-8 in a string");
    }
    if (end_ - p_ <= extra) return fail("invalid UTF-8 in a string");
    for (int i = 1; i <= extra; ++i) {
      unsigned char d = static_cast<unsigned char>(p_[i]);
      if ((d & 0xC0) != 0x80) return fail("invalid UTF-8 in a string");
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return fail("invalid UTF-8 in a string");
    }
    out->append(p_, static_cast<size_t>(extra + 1));
    p_ += extra + 1;
    return true;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  std::string error_;
  const char* error_pos_ = nullptr;
};

// "node 12 'conv0'" (the name when it has been read).
std::string node_label(int64_t index, const std::string& name) {
  std::string s = "node " + std::to_string(index);
  if (!name.empty()) s += " " + quoted(name);
  return s;
}

// An entry [node, output] or [node, output, version].
bool read_entry(JsonReader* r, int depth, const char* context, NodeEntry* entry) {
  int64_t fields[3] = {0, 0, 0};
  int64_t count = 0;
  bool ok = r->read_array(depth, context, [&](int64_t i) {
    if (i >= 3) return r->fail(std::string(context) + " has more than 3 numbers");
    count = i + 1;
    return r->read_int(&fields[i], context);
  });
  if (!ok) return false;
  if (count < 2) {
    return r->fail(std::string(context) + " must be [node, output] or [node, output, version]");
  }
  if (fields[1] < 0 || fields[1] > std::numeric_limits<int32_t>::max()) {
    return r->fail(std::string(context) + ": output index " + std::to_string(fields[1]) +
                   " is out of range");
  }
  entry->node = fields[0];
  entry->output = fields[1];
  return true;
}

// Reads a node attribute dictionary into `attrs` (merging "attrs", "attr" and "param").
bool read_attrs(JsonReader* r, int depth, const std::string& node,
                std::map<std::string, std::string>* attrs) {
  return r->read_object(depth, "node attributes", [&](const std::string& key) {
    std::string value;
    if (r->peek() != '"') {
      return r->fail(node + ": attribute " + quoted(key) +
                     " must be a string (MXNet writes every attribute value as a string)");
    }
    if (!r->read_string(&value)) return false;
    auto it = attrs->find(key);
    if (it != attrs->end() && it->second != value) {
      return r->fail(node + ": attribute " + quoted(key) + " is given twice with different values");
    }
    (*attrs)[key] = std::move(value);
    return true;
  });
}

bool read_node(JsonReader* r, int64_t index, Node* node) {
  bool has_op = false, has_name = false, has_inputs = false;
  std::set<std::string> seen;
  bool ok = r->read_object(3, "a node", [&](const std::string& key) {
    if (!seen.insert(key).second) {
      return r->fail(node_label(index, node->name) + ": key " + quoted(key) + " appears twice");
    }
    if (key == "op") {
      has_op = true;
      if (!r->read_string(&node->op)) return false;
      if (node->op.empty()) return r->fail(node_label(index, node->name) + ": empty \"op\"");
      return true;
    }
    if (key == "name") {
      has_name = true;
      return r->read_string(&node->name);
    }
    if (key == "attrs" || key == "attr" || key == "param") {
      return read_attrs(r, 4, node_label(index, node->name), &node->attrs);
    }
    if (key == "inputs") {
      has_inputs = true;
      return r->read_array(4, "node inputs", [&](int64_t) {
        NodeEntry e;
        if (!read_entry(r, 5, "an input entry", &e)) return false;
        if (e.node < 0 || e.node >= index) {
          return r->fail(node_label(index, node->name) + ": input " +
                         std::to_string(node->inputs.size()) + " refers to node " +
                         std::to_string(e.node) +
                         ", which is not an earlier node (MXNet writes nodes in topological "
                         "order; the graph has a cycle or the file is damaged)");
        }
        node->inputs.push_back(e);
        return true;
      });
    }
    // Other keys (control_deps, subgraphs, backward_source_id of old files) carry nothing the
    // runtime runs; an operator that would need them is refused by the compiler.
    return r->skip_value(4);
  });
  if (!ok) return false;
  if (!has_op || !has_name || !has_inputs) {
    const char* missing = !has_op ? "op" : !has_name ? "name" : "inputs";
    return r->fail(node_label(index, node->name) + " has no \"" + missing + "\"");
  }
  if (node->op == "null" && !node->inputs.empty()) {
    return r->fail(node_label(index, node->name) + ": a variable (op \"null\") has inputs");
  }
  return true;
}

}  // namespace

std::string parse_symbol_json(const char* text, size_t size, SymbolFile* out) {
  return guarded("symbol json", [&]() -> std::string {
    *out = SymbolFile();
    if (text == nullptr && size > 0) return "symbol json: no text (NULL pointer)";
    JsonReader r(text, size);
    bool has_nodes = false, has_args = false, has_heads = false;
    std::set<std::string> seen;
    bool ok = r.read_object(1, "the symbol (a json object, as in the -symbol.json files MXNet writes)", [&](const std::string& key) {
      if (!seen.insert(key).second) return r.fail("key " + quoted(key) + " appears twice");
      if (key == "nodes") {
        has_nodes = true;
        return r.read_array(2, "\"nodes\"", [&](int64_t index) {
          if (index >= kMaxNodes) {
            return r.fail("more than " + std::to_string(kMaxNodes) + " nodes");
          }
          out->nodes.emplace_back();
          return read_node(&r, index, &out->nodes.back());
        });
      }
      if (key == "arg_nodes") {
        has_args = true;
        return r.read_array(2, "\"arg_nodes\"", [&](int64_t) {
          int64_t v;
          if (!r.read_int(&v, "an arg_nodes entry")) return false;
          out->arg_nodes.push_back(v);
          return true;
        });
      }
      if (key == "heads") {
        has_heads = true;
        return r.read_array(2, "\"heads\"", [&](int64_t) {
          NodeEntry e;
          if (!read_entry(&r, 3, "a heads entry", &e)) return false;
          out->heads.push_back(e);
          return true;
        });
      }
      // node_row_ptr and the graph attributes (mxnet_version) are not needed.
      return r.skip_value(2);
    });
    if (ok && !r.at_end()) r.fail("text after the end of the json object");
    if (ok && !r.failed()) {
      if (!has_nodes || !has_args || !has_heads) {
        r.fail(std::string("the symbol has no \"") +
               (!has_nodes ? "nodes" : !has_args ? "arg_nodes" : "heads") +
               "\" (is this an MXNet -symbol.json file?)");
      }
    }
    if (r.failed()) {
      *out = SymbolFile();
      return r.error();
    }
    // Cross-references, now that every node is known.
    const int64_t n = static_cast<int64_t>(out->nodes.size());
    std::string error;
    if (n == 0) error = "symbol json: the graph has no nodes";
    for (size_t i = 0; error.empty() && i < out->arg_nodes.size(); ++i) {
      int64_t a = out->arg_nodes[i];
      if (a < 0 || a >= n) {
        error = "symbol json: arg_nodes entry " + std::to_string(i) + " is " + std::to_string(a) +
                ", but there are " + std::to_string(n) + " nodes";
      } else if (out->nodes[a].op != "null") {
        error = "symbol json: arg_nodes entry " + std::to_string(i) + " names " +
                node_label(a, out->nodes[a].name) + ", which is an operator (" +
                out->nodes[a].op + "), not a variable";
      }
    }
    if (error.empty() && out->heads.empty()) error = "symbol json: the graph has no outputs (heads)";
    for (size_t i = 0; error.empty() && i < out->heads.size(); ++i) {
      int64_t h = out->heads[i].node;
      if (h < 0 || h >= n) {
        error = "symbol json: heads entry " + std::to_string(i) + " refers to node " +
                std::to_string(h) + ", but there are " + std::to_string(n) + " nodes";
      }
    }
    if (!error.empty()) *out = SymbolFile();
    return error;
  });
}

// ======================================================================================= params
namespace {

constexpr uint64_t kNDArrayListMagic = 0x112;
constexpr uint32_t kNDArrayV1Magic = 0xF993fac8;
constexpr uint32_t kNDArrayV2Magic = 0xF993fac9;
constexpr uint32_t kNDArrayV3Magic = 0xF993faca;
// More dimensions than any model uses; a larger count is damage, and keeping it small bounds
// the work per record.
constexpr int64_t kMaxNdim = 32;
// The smallest record: a pre-V1 1-d array of one uint8 (4 + 4 + 8 + 4 + 1 bytes).
constexpr uint64_t kMinRecordBytes = 21;

// Little-endian reads that never pass the end.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t remaining() const { return size_ - pos_; }
  size_t pos() const { return pos_; }

  template <typename T>
  bool read(T* out) {
    static_assert(std::is_integral<T>::value, "integers only");
    if (remaining() < sizeof(T)) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{data_[pos_ + i]} << (8 * i);
    pos_ += sizeof(T);
    *out = static_cast<T>(v);
    return true;
  }

  bool bytes(size_t n, const uint8_t** out) {
    if (remaining() < n) return false;
    *out = data_ + pos_;
    pos_ += n;
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

const char* stype_name(int32_t stype) {
  switch (stype) {
    case 1: return "row_sparse";
    case 2: return "csr";
    default: return "unknown";
  }
}

// Reads one NDArray record into `t` (shape, dtype, data); "" or a message without prefix.
std::string read_record(ByteReader* in, Tensor* t) {
  const std::string truncated = "the file ends inside it (truncated file: copy or save it again)";
  uint32_t magic;
  if (!in->read(&magic)) return truncated;
  enum { kPreV1, kV1, kV2, kV3 } version;
  if (magic == kNDArrayV2Magic) {
    version = kV2;
  } else if (magic == kNDArrayV3Magic) {
    version = kV3;
  } else if (magic == kNDArrayV1Magic) {
    version = kV1;
  } else {
    version = kPreV1;  // the magic is the number of dimensions
  }
  if (version == kV2 || version == kV3) {
    int32_t stype;
    if (!in->read(&stype)) return truncated;
    if (stype != 0) {
      return "it has " + std::string(stype_name(stype)) + " storage (type " +
             std::to_string(stype) +
             "); the runtime reads dense arrays only: save it with .tostype('default')";
    }
  }
  int64_t ndim;
  if (version == kPreV1) {
    ndim = magic;
    if (ndim < 1 || ndim > kMaxNdim) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), "it starts with 0x%08x, which is no NDArray record magic",
                    static_cast<unsigned>(magic));
      return std::string(buf) + " (damaged file, or not an MXNet .params file)";
    }
  } else {
    int32_t n;
    if (!in->read(&n)) return truncated;
    ndim = n;
    if (version == kV3 && ndim == -1) {
      return "its shape is unknown (ndim -1: an uninitialised array); save initialised "
             "parameters";
    }
    if (ndim == 0 && version != kV3) {
      return "it has no shape (ndim 0): an uninitialised array, or a 0-d array saved outside "
             "np-shape mode, which MXNet itself cannot load back; save it with at least one "
             "dimension";
    }
    if (ndim < 0 || ndim > kMaxNdim) {
      return "its number of dimensions " + std::to_string(ndim) + " is out of range [" +
             (version == kV3 ? "0" : "1") + ", " + std::to_string(kMaxNdim) + "]";
    }
  }
  t->shape.assign(static_cast<size_t>(ndim), 0);
  for (int64_t d = 0; d < ndim; ++d) {
    int64_t dim;
    if (version == kPreV1) {
      uint32_t u;
      if (!in->read(&u)) return truncated;
      dim = u;
    } else if (!in->read(&dim)) {
      return truncated;
    }
    if (dim < 0) {
      return "dimension " + std::to_string(d) + " is " + std::to_string(dim) +
             (version == kV3 && dim == -1 ? " (unknown: an uninitialised array)" : " (negative)");
    }
    if (dim == 0 && version != kV3) {
      return "dimension " + std::to_string(d) +
             " is 0, which this record version means as unknown (MXNet loads it as an "
             "uninitialised array)";
    }
    t->shape[static_cast<size_t>(d)] = dim;
  }
  int32_t dev_type, dev_id, dtype;
  if (!in->read(&dev_type) || !in->read(&dev_id)) return truncated;
  // kCPU, kGPU, kCPUPinned, kCPUShared: the data is written from a CPU copy in every case.
  if (dev_type != 1 && dev_type != 2 && dev_type != 3 && dev_type != 5) {
    return "its device type " + std::to_string(dev_type) +
           " is not one MXNet writes (1 cpu, 2 gpu, 3 cpu_pinned, 5 cpu_shared): damaged file";
  }
  if (!in->read(&dtype)) return truncated;
  const size_t elem = dtype_size(dtype);
  if (elem == 0) {
    return "its dtype code " + std::to_string(dtype) +
           " is not one the runtime reads (float32, float64, float16, uint8, int32, int8, "
           "int64, bool): cast the parameter before saving";
  }
  t->dtype = dtype;
  // prod(shape) * elem must fit in what is left of the file; checked by division, so that no
  // product overflows before the comparison.
  const uint64_t left = in->remaining();
  uint64_t bytes = elem;
  for (int64_t dim : t->shape) {
    uint64_t u = static_cast<uint64_t>(dim);
    if (u != 0 && bytes > left / u) {
      std::string shape;
      for (size_t i = 0; i < t->shape.size(); ++i) {
        shape += (i ? ", " : "") + std::to_string(t->shape[i]);
      }
      return "its shape (" + shape + ") of " + dtype_name(dtype) +
             " needs more bytes than the file has left (" + std::to_string(left) +
             "): truncated or damaged file";
    }
    bytes *= u;
  }
  const uint8_t* p;
  if (!in->bytes(static_cast<size_t>(bytes), &p)) return truncated;
  t->data.assign(p, p + bytes);
  return "";
}

}  // namespace

size_t dtype_size(int32_t dtype) {
  switch (dtype) {
    case kFloat32: return 4;
    case kFloat64: return 8;
    case kFloat16: return 2;
    case kUint8: return 1;
    case kInt32: return 4;
    case kInt8: return 1;
    case kInt64: return 8;
    case kBool: return 1;
    default: return 0;
  }
}

const char* dtype_name(int32_t dtype) {
  switch (dtype) {
    case kFloat32: return "float32";
    case kFloat64: return "float64";
    case kFloat16: return "float16";
    case kUint8: return "uint8";
    case kInt32: return "int32";
    case kInt8: return "int8";
    case kInt64: return "int64";
    case kBool: return "bool";
    default: return "unknown";
  }
}

std::string parse_params(const uint8_t* data, size_t size, std::vector<Tensor>* out) {
  return guarded("params file", [&]() -> std::string {
    out->clear();
    if (data == nullptr && size > 0) return "params file: no data (NULL pointer)";
    const std::string fail = "params file: ";
    ByteReader in(data, size);
    uint64_t magic, reserved, count;
    if (!in.read(&magic) || magic != kNDArrayListMagic) {
      return fail +
             "not an MXNet NDArray file (it does not start with the list magic 0x112); give the "
             "-NNNN.params file that mx.nd.save, export or model_converter wrote";
    }
    if (!in.read(&reserved) || !in.read(&count)) {
      return fail + "the header is truncated (copy or save the file again)";
    }
    if (count > in.remaining() / kMinRecordBytes) {
      return fail + "it claims " + std::to_string(count) + " arrays, more than its " +
             std::to_string(size) + " bytes can hold: damaged file";
    }
    std::vector<Tensor> tensors(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) {
      std::string error = read_record(&in, &tensors[i]);
      if (!error.empty()) {
        return fail + "array " + std::to_string(i) + " of " + std::to_string(count) + " (at byte " +
               std::to_string(in.pos()) + "): " + error;
      }
    }
    uint64_t names;
    if (!in.read(&names)) {
      return fail + "the file ends before the array names (truncated file: copy or save it again)";
    }
    if (names != count) {
      if (names == 0) {
        return fail + "the arrays have no names (saved from a list, not a dict); save the "
                      "parameters as a dict {'arg:NAME': array, 'aux:NAME': array}";
      }
      return fail + std::to_string(count) + " arrays but " + std::to_string(names) +
             " names: damaged file";
    }
    std::map<std::string, uint64_t> index;
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t length;
      const uint8_t* p;
      if (!in.read(&length) || length > in.remaining() || !in.bytes(length, &p)) {
        return fail + "the file ends inside name " + std::to_string(i) +
               " (truncated file: copy or save it again)";
      }
      std::string full(reinterpret_cast<const char*>(p), static_cast<size_t>(length));
      Tensor& t = tensors[i];
      if (full.compare(0, 4, "arg:") == 0) {
        t.name = full.substr(4);
      } else if (full.compare(0, 4, "aux:") == 0) {
        t.name = full.substr(4);
        t.aux = true;
      } else {
        t.name = full;  // Gluon's save_parameters writes names without a prefix
      }
      if (t.name.empty() || t.name.find('\0') != std::string::npos) {
        return fail + "array " + std::to_string(i) + " has an invalid name " + quoted(full) +
               " (empty, or with a NUL character)";
      }
      auto inserted = index.emplace(t.name, i);
      if (!inserted.second) {
        return fail + "the name " + quoted(t.name) + " is used by arrays " +
               std::to_string(inserted.first->second) + " and " + std::to_string(i) +
               "; each parameter must appear once";
      }
    }
    if (in.remaining() != 0) {
      return fail + std::to_string(in.remaining()) +
             " bytes after the last name (damaged file, or two files joined)";
    }
    *out = std::move(tensors);
    return "";
  });
}

std::string read_file(const std::string& path, std::vector<uint8_t>* out) {
  return guarded(path.c_str(), [&]() -> std::string {
    out->clear();
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
      return "cannot open " + quoted(path) + ": " + std::strerror(errno) +
             " (check the path and the permissions)";
    }
    // Read in chunks up to the limit rather than trusting a size query, which pipes and some
    // Android asset file descriptors do not answer.
    std::string error;
    const size_t chunk = size_t{1} << 20;
    for (;;) {
      size_t have = out->size();
      if (static_cast<uint64_t>(have) >= static_cast<uint64_t>(kMaxFileBytes)) {
        // One more byte means the file is over the limit.
        int c = std::fgetc(f);
        if (c != EOF) {
          error = quoted(path) + " is larger than " + std::to_string(kMaxFileBytes >> 30) +
                  " GiB, more than any model the runtime loads";
        }
        break;
      }
      size_t want = std::min<uint64_t>(chunk, static_cast<uint64_t>(kMaxFileBytes) - have);
      out->resize(have + want);
      size_t got = std::fread(out->data() + have, 1, want, f);
      out->resize(have + got);
      if (got < want) {
        if (std::ferror(f)) error = "error reading " + quoted(path) + ": " + std::strerror(errno);
        break;
      }
    }
    std::fclose(f);
    if (!error.empty()) {
      out->clear();
      out->shrink_to_fit();
    }
    return error;
  });
}

std::string parse_int_tuple(const std::string& text, std::vector<int64_t>* out) {
  return guarded("attribute", [&]() -> std::string {
    out->clear();
    std::vector<int64_t> dims;
    const std::string bad = quoted(text) + " is not an integer or a tuple of integers like (3, 3)";
    size_t i = 0, n = text.size();
    auto space = [&]() {
      while (i < n && (text[i] == ' ' || text[i] == '\t')) ++i;
    };
    // One integer; MXNet's tuple parser also accepts Python 2's long suffix "3L".
    auto integer = [&](int64_t* v) {
      space();
      bool negative = false;
      if (i < n && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
      if (i >= n || text[i] < '0' || text[i] > '9') return false;
      uint64_t magnitude = 0;
      const uint64_t limit = uint64_t{1} << 63;  // |INT64_MIN|
      while (i < n && text[i] >= '0' && text[i] <= '9') {
        magnitude = magnitude * 10 + static_cast<uint64_t>(text[i++] - '0');
        if (magnitude > limit) return false;
      }
      if (!negative && magnitude == limit) return false;
      if (i < n && text[i] == 'L') ++i;
      *v = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
      space();
      return true;
    };
    space();
    if (i < n && (text[i] == '(' || text[i] == '[')) {
      const char close = text[i] == '(' ? ')' : ']';
      ++i;
      space();
      if (i < n && text[i] == close) {
        ++i;
      } else {
        for (;;) {
          int64_t v;
          if (!integer(&v)) return bad;
          dims.push_back(v);
          if (i < n && text[i] == ',') {
            ++i;
            space();
            if (i < n && text[i] == close) {  // "(64,)"
              ++i;
              break;
            }
            continue;
          }
          if (i < n && text[i] == close) {
            ++i;
            break;
          }
          return bad;
        }
      }
    } else {
      int64_t v;
      if (!integer(&v)) return bad;
      dims.push_back(v);
    }
    space();
    if (i != n) return bad;
    *out = std::move(dims);
    return "";
  });
}

}  // namespace bmxrt
