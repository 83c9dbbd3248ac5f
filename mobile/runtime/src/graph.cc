// The compiler: nodes in file order (MXNet writes them topologically sorted) become steps,
// element-wise layers are fused behind the layer before them where that changes no value, and a
// static memory plan gives every activation an arena offset that it shares with activations whose
// lifetimes do not overlap.
#include "graph.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

#include "builder.h"

namespace bmxrt {

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << (s.size() == 1 ? ",)" : ")");
  return o.str();
}

int64_t num_elements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error(BMX_ERROR_FORMAT, "negative dimension in shape " + shape_str(s));
    if (d != 0 && n > kMaxElements / d) {
      throw Error(BMX_ERROR_FORMAT, "shape " + shape_str(s) + " has more than 2^31 - 1 "
                  "elements, the largest tensor the runtime (and MXNet) handles");
    }
    n *= d;
  }
  return n;
}

namespace {

constexpr size_t kMaxPostOps = 8;
constexpr int64_t kAlign = 64;

}  // namespace

void Step::finish(const RunContext& ctx) const {
  if (post.empty()) return;
  const Shape& s = (*ctx.values)[output].shape;
  const int64_t channels = s.size() >= 2 ? s[1] : 1;
  const int64_t rows = s.empty() ? 1 : s[0] * channels;
  const int64_t plane = rows ? num_elements(s) / rows : 0;
  const float* tensors[kMaxPostOps] = {};
  for (size_t k = 0; k < post.ops.size(); ++k) {
    if (post.ops[k].value >= 0) tensors[k] = ctx.data(post.ops[k].value);
  }
  float* y = ctx.data(output);
  const int tasks = ctx.parallel->tasks_for(rows * plane * static_cast<int64_t>(post.ops.size()));
  auto task = [&](int i) {
    post.apply(y, tensors, channels, plane, part_begin(rows, tasks, i),
               part_begin(rows, tasks, i + 1));
  };
  ctx.parallel->run(tasks, task);
}

// ------------------------------------------------------------------------------------------
class Compiler {
 public:
  Compiler(const SymbolFile& symbol, std::vector<Tensor> params, const Options& options)
      : sym_(symbol), params_(std::move(params)), options_(options), model_(new Model) {}

  std::unique_ptr<Model> run();

  // state the Builder reads and changes
  const SymbolFile& sym_;
  std::vector<Tensor> params_;
  const Options& options_;
  std::unique_ptr<Model> model_;
  std::map<std::string, size_t> param_index_;
  std::vector<int> node_value_;       // value of output 0 of each node (-1: none yet)
  std::vector<int64_t> entry_uses_;   // consumers of output 0 of each node (heads included)
  std::vector<int64_t> value_uses_;   // consumers of each value, not counting fused nodes
  std::vector<bool> pinned_;          // values that an alias also shows (never fused into)
  std::vector<bool> is_label_;        // null nodes used only as a loss layer's label

  int new_value(const Shape& shape, int storage, const float* constant, int producer);
  int param_value(int64_t node);
  void resolve_path();
  void find_inputs();
  void compile_nodes();
  void collect_outputs();
  void plan_memory();
  void describe();
};

int Compiler::new_value(const Shape& shape, int storage, const float* constant, int producer) {
  Value v;
  v.shape = shape;
  v.storage = storage;
  v.constant = constant;
  v.producer = producer;
  model_->values.push_back(v);
  value_uses_.push_back(0);
  pinned_.push_back(false);
  return static_cast<int>(model_->values.size()) - 1;
}

int Compiler::param_value(int64_t node) {
  if (node_value_[node] >= 0) return node_value_[node];
  const Tensor& t = params_[param_index_.at(sym_.nodes[node].name)];
  const std::string who = "parameter '" + t.name + "'";
  if (t.dtype != kFloat32) {
    throw Error(BMX_ERROR_UNSUPPORTED, who + " is " + dtype_name(t.dtype) + " where an operator "
                "reads it as float32 data; only float32 arrays can be layer inputs");
  }
  std::vector<float> data(static_cast<size_t>(num_elements(t.shape)));
  if (!data.empty()) std::memcpy(data.data(), t.data.data(), data.size() * sizeof(float));
  model_->constants.push_back(std::move(data));
  const int v = new_value(t.shape, -1, model_->constants.back().data(), -1);
  node_value_[node] = v;
  value_uses_[v] = entry_uses_[node];
  return v;
}

void Compiler::resolve_path() {
  const std::string& name = options_.kernel_path;
  if (name == "auto") {
    model_->path = bmx::active_path();
    return;
  }
  const unsigned usable = bmx::cpu_supported_paths();
  std::string available;
  for (unsigned bit = 1; bit <= 16; bit <<= 1) {
    const bmx::Path p = static_cast<bmx::Path>(bit);
    if (!(usable & bit)) continue;
    if (name == bmx::path_name(p)) {
      model_->path = p;
      return;
    }
    available += std::string(available.empty() ? "" : ", ") + bmx::path_name(p);
  }
  throw Error(BMX_ERROR_UNSUPPORTED, "kernel path '" + name + "' is not available in this build "
              "on this CPU; use \"auto\" or one of: " + available);
}

namespace {

// Loss layers whose input 1 is a label (ignored in inference).
bool is_loss(const std::string& op) {
  return op == "SoftmaxOutput" || op == "LinearRegressionOutput" ||
         op == "LogisticRegressionOutput" || op == "MAERegressionOutput" || op == "SVMOutput";
}

bool shape_known(const Shape& s) {
  if (s.empty()) return false;
  for (int64_t d : s) {
    if (d < 1) return false;
  }
  return true;
}

}  // namespace

void Compiler::find_inputs() {
  const size_t n = sym_.nodes.size();
  std::vector<int> data_uses(n, 0), label_uses(n, 0);
  for (const Node& node : sym_.nodes) {
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int64_t src = node.inputs[i].node;
      (i == 1 && is_loss(node.op) ? label_uses : data_uses)[src]++;
    }
  }
  for (const NodeEntry& h : sym_.heads) data_uses[h.node]++;
  is_label_.assign(n, false);
  std::set<std::string> used_options;
  for (size_t i = 0; i < n; ++i) {
    const Node& node = sym_.nodes[i];
    if (node.op != "null" || param_index_.count(node.name)) continue;
    if (data_uses[i] == 0) {
      is_label_[i] = label_uses[i] > 0;
      continue;
    }
    Shape shape;
    auto opt = options_.input_shapes.find(node.name);
    if (opt != options_.input_shapes.end()) {
      shape = opt->second;
      used_options.insert(node.name);
    } else if (node.attrs.count("__shape__")) {
      const std::string& text = node.attrs.at("__shape__");
      const std::string err = parse_int_tuple(text, &shape);
      for (int64_t d : err.empty() ? shape : Shape()) {
        if (d < 0) {  // 0 is MXNet's "unknown"; a negative size is a damaged file
          throw Error(BMX_ERROR_FORMAT, "input '" + node.name + "' has __shape__ " + text +
                      " with a negative dimension; fix the json, or set the shape with "
                      "bmx_options_set_input_shape");
        }
      }
      if (!err.empty() || !shape_known(shape)) shape.clear();
    }
    if (!shape_known(shape)) {
      throw Error(BMX_ERROR_INVALID_ARGUMENT,
                  "input '" + node.name + "' has no shape: the files do not record it; set it "
                  "with bmx_options_set_input_shape(options, \"" + node.name + "\", ndim, dims)");
    }
    num_elements(shape);
    Storage st;
    st.bytes = num_elements(shape) * 4;
    model_->storages.push_back(st);
    const int v = new_value(shape, static_cast<int>(model_->storages.size()) - 1, nullptr, -1);
    node_value_[i] = v;
    value_uses_[v] = entry_uses_[i];
    model_->input_names.push_back(node.name);
    model_->input_values.push_back(v);
  }
  for (const auto& kv : options_.input_shapes) {
    if (used_options.count(kv.first)) continue;
    std::string names;
    for (const std::string& s : model_->input_names) names += (names.empty() ? "" : ", ") + s;
    throw Error(BMX_ERROR_INVALID_ARGUMENT, "an input shape was set for '" + kv.first +
                "', which is no data input of the model; its inputs are: " + names);
  }
  if (model_->input_values.empty()) {
    throw Error(BMX_ERROR_UNSUPPORTED, "the model has no data input (every variable has a "
                "tensor in the params file)");
  }
}

void Compiler::compile_nodes() {
  for (size_t i = 0; i < sym_.nodes.size(); ++i) {
    const Node& node = sym_.nodes[i];
    if (node.op == "null") continue;
    Builder b(this, static_cast<int>(i));
    for (const NodeEntry& e : node.inputs) {
      if (e.output != 0) {
        b.unsupported("reads output " + std::to_string(e.output) + " of node " +
                      std::to_string(e.node) + " ('" + sym_.nodes[e.node].name +
                      "'); the runtime runs only the first output of an operator");
      }
    }
    OpCompileFn fn = find_op(node.op);
    if (!fn) {
      b.unsupported("operator '" + node.op + "' is not supported by the runtime; it runs " +
                    supported_ops());
    }
    fn(b);
    if (node_value_[i] < 0) throw Error(BMX_ERROR_INTERNAL, b.where("no output was made"));
  }
}

void Compiler::collect_outputs() {
  for (const NodeEntry& h : sym_.heads) {
    if (h.output != 0) {
      throw Error(BMX_ERROR_UNSUPPORTED, "graph output " + std::to_string(h.output) + " of node '" +
                  sym_.nodes[h.node].name + "': the runtime runs only the first output of an "
                  "operator");
    }
    int v = node_value_[h.node];
    if (v < 0 && sym_.nodes[h.node].op == "null") v = param_value(h.node);
    if (v < 0) {
      throw Error(BMX_ERROR_UNSUPPORTED, "graph output '" + sym_.nodes[h.node].name +
                  "' is a label variable, which the runtime does not compute");
    }
    model_->output_values.push_back(v);
    const Node& node = sym_.nodes[h.node];
    model_->output_names.push_back(node.op == "null" ? node.name : node.name + "_output");
  }
}

// Lifetimes in step indices, then greedy placement: the largest buffers first, each at the
// lowest 64-byte aligned offset where it overlaps no placed buffer that is live at the same time.
void Compiler::plan_memory() {
  Model& m = *model_;
  const int end = static_cast<int>(m.steps.size());
  for (Storage& s : m.storages) {
    s.first = end;
    s.last = -1;
  }
  for (int v : m.input_values) m.storages[m.values[v].storage].first = -1;
  for (int k = 0; k < end; ++k) {
    const Step& step = *m.steps[k];
    Storage& out = m.storages[m.values[step.output].storage];
    out.first = std::min(out.first, k);
    out.last = std::max(out.last, k);
    for (int v : step.inputs) {
      if (m.values[v].storage >= 0) {
        Storage& in = m.storages[m.values[v].storage];
        in.last = std::max(in.last, k);
      }
    }
  }
  // Outputs are read after the run; inputs stay intact so that forward() can run again on the
  // inputs set last.
  for (int v : m.output_values) {
    if (m.values[v].storage >= 0) m.storages[m.values[v].storage].last = end;
  }
  for (int v : m.input_values) m.storages[m.values[v].storage].last = end;
  std::vector<size_t> order(m.storages.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return m.storages[a].bytes > m.storages[b].bytes; });
  std::vector<size_t> placed;
  m.arena_bytes = 0;
  for (size_t idx : order) {
    Storage& s = m.storages[idx];
    if (s.last < s.first) s.last = s.first;  // written, never read: still needs room
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t p : placed) {
      const Storage& o = m.storages[p];
      if (o.first <= s.last && s.first <= o.last) busy.emplace_back(o.offset, o.offset + o.bytes);
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& r : busy) {
      if (offset + s.bytes <= r.first) break;
      offset = std::max(offset, (r.second + kAlign - 1) / kAlign * kAlign);
    }
    s.offset = offset;
    m.arena_bytes = std::max(m.arena_bytes, offset + s.bytes);
    placed.push_back(idx);
  }
  m.arena_bytes = (m.arena_bytes + kAlign - 1) / kAlign * kAlign;
  m.workspace_floats = 0;
  for (const auto& step : m.steps) {
    m.workspace_floats = std::max(m.workspace_floats, step->workspace_floats());
  }
}

void Compiler::describe() {
  const Model& m = *model_;
  std::ostringstream o;
  auto where = [&](int v) {
    const Value& val = m.values[v];
    if (val.storage < 0) return std::string("const");
    return "@" + std::to_string(m.storages[val.storage].offset);
  };
  for (size_t k = 0; k < m.steps.size(); ++k) {
    const Step& s = *m.steps[k];
    o << k << ": " << s.op << " '" << s.name << "'";
    for (const std::string& f : s.fused) o << " + " << f;
    o << " in=";
    for (size_t i = 0; i < s.inputs.size(); ++i) {
      o << (i ? "," : "") << shape_str(m.values[s.inputs[i]].shape) << where(s.inputs[i]);
    }
    o << " out=" << shape_str(m.values[s.output].shape) << where(s.output)
      << " kernel=" << s.kernel() << "\n";
  }
  o << "arena_bytes=" << m.arena_bytes << " workspace_bytes=" << m.workspace_floats * 4
    << " threads=" << m.num_threads << " path=" << bmx::path_name(m.path) << "\n";
  model_->description = o.str();
}

std::unique_ptr<Model> Compiler::run() {
  model_->num_threads = options_.num_threads;
  model_->hook = options_.hook;
  model_->hook_user = options_.hook_user;
  resolve_path();
  for (size_t i = 0; i < params_.size(); ++i) param_index_[params_[i].name] = i;
  const size_t n = sym_.nodes.size();
  node_value_.assign(n, -1);
  entry_uses_.assign(n, 0);
  for (const Node& node : sym_.nodes) {
    for (const NodeEntry& e : node.inputs) entry_uses_[e.node]++;
  }
  for (const NodeEntry& h : sym_.heads) entry_uses_[h.node]++;
  find_inputs();
  compile_nodes();
  collect_outputs();
  plan_memory();
  describe();
  return std::move(model_);
}

std::unique_ptr<Model> compile(const SymbolFile& symbol, std::vector<Tensor> params,
                               const Options& options) {
  if (symbol.heads.empty()) throw Error(BMX_ERROR_FORMAT, "the symbol json has no outputs");
  Compiler c(symbol, std::move(params), options);
  return c.run();
}

// ------------------------------------------------------------------------------------------
// Builder
// ------------------------------------------------------------------------------------------
namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool parse_int(const std::string& s, int64_t* out) {
  std::string t = trim(s);
  if (t.size() > 1 && t.back() == 'L') t.pop_back();  // "3L" in Python 2 era files
  if (t.empty() || t.size() > 20) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(t.c_str(), &end, 10);
  if (errno != 0 || end != t.c_str() + t.size()) return false;
  *out = v;
  return true;
}

}  // namespace

const Node& Builder::node() const { return c_->sym_.nodes[index_]; }

std::string Builder::where(const std::string& why) const {
  return "node " + std::to_string(index_) + " '" + node().name + "' (" + node().op + "): " + why;
}

void Builder::unsupported(const std::string& why) const {
  throw Error(BMX_ERROR_UNSUPPORTED, where(why));
}

void Builder::bad(const std::string& why) const { throw Error(BMX_ERROR_FORMAT, where(why)); }

bool Builder::has(const std::string& key) const {
  auto it = node().attrs.find(key);
  return it != node().attrs.end() && trim(it->second) != "None";
}

std::string Builder::str(const std::string& key, const std::string& def) const {
  return has(key) ? trim(node().attrs.at(key)) : def;
}

int64_t Builder::integer(const std::string& key, int64_t def) const {
  if (!has(key)) return def;
  int64_t v;
  if (!parse_int(node().attrs.at(key), &v)) {
    bad("parameter '" + key + "' = '" + node().attrs.at(key) + "': expected an integer");
  }
  return v;
}

int64_t Builder::size(const std::string& key, int64_t def, int64_t lo) const {
  if (!has(key)) return def;
  const int64_t v = integer(key, def);
  if (v < lo || v > kMaxElements) {
    bad("parameter '" + key + "' = " + std::to_string(v) + ": must be between " +
        std::to_string(lo) + " and 2147483647");
  }
  return v;
}

int64_t Builder::required_size(const std::string& key, int64_t lo) const {
  if (!has(key)) bad("parameter '" + key + "' is required");
  return size(key, 0, lo);
}

double Builder::real(const std::string& key, double def) const {
  if (!has(key)) return def;
  const std::string t = trim(node().attrs.at(key));
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(v)) {
    bad("parameter '" + key + "' = '" + t + "': expected a finite number");
  }
  return v;
}

bool Builder::boolean(const std::string& key, bool def) const {
  if (!has(key)) return def;
  const std::string t = trim(node().attrs.at(key));
  if (t == "True" || t == "true" || t == "1") return true;
  if (t == "False" || t == "false" || t == "0") return false;
  bad("parameter '" + key + "' = '" + t + "': expected True or False");
}

std::vector<int64_t> Builder::tuple(const std::string& key, size_t n, int64_t def, int64_t lo,
                                    bool exact) const {
  if (!has(key)) return std::vector<int64_t>(n, def);
  std::vector<int64_t> v;
  const std::string err = parse_int_tuple(node().attrs.at(key), &v);
  if (!err.empty()) bad("parameter '" + key + "': " + err);
  if (v.size() == 1 && n > 1 && !exact) v.assign(n, v[0]);
  if (v.size() != n) {
    unsupported("parameter '" + key + "' = '" + node().attrs.at(key) + "': expected " +
                std::to_string(n) + " values (the runtime runs 2-D layers)");
  }
  for (int64_t x : v) {
    if (x < lo || x > kMaxElements) {
      bad("parameter '" + key + "' = '" + node().attrs.at(key) + "': each value must be between " +
          std::to_string(lo) + " and 2147483647");
    }
  }
  return v;
}

void Builder::only_attrs(const std::set<std::string>& allowed) const {
  for (const auto& kv : node().attrs) {
    if (kv.first.rfind("__", 0) == 0 || allowed.count(kv.first)) continue;
    std::string names;
    for (const std::string& a : allowed) names += " " + a;
    unsupported("parameter '" + kv.first + "' is not supported by the runtime; it knows:" + names);
  }
}

void Builder::expect_value(const std::string& key, const std::set<std::string>& values) const {
  if (!has(key)) return;
  const std::string v = str(key, "");
  if (values.count(v)) return;
  std::string names;
  for (const std::string& a : values) names += " '" + a + "'";
  unsupported("parameter '" + key + "' = '" + v + "' is not supported by the runtime; it runs" +
              names);
}

int Builder::num_inputs() const { return static_cast<int>(node().inputs.size()); }

void Builder::expect_inputs(int lo, int hi) const {
  const int n = num_inputs();
  if (n < lo || n > hi) {
    bad("has " + std::to_string(n) + " inputs, the operator takes " +
        (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)));
  }
}

bool Builder::is_param(int i) const {
  const Node& src = c_->sym_.nodes[node().inputs.at(i).node];
  return src.op == "null" && c_->param_index_.count(src.name);
}

const Tensor& Builder::param(int i) const {
  const Node& src = c_->sym_.nodes[node().inputs.at(i).node];
  auto it = c_->param_index_.find(src.name);
  if (src.op != "null" || it == c_->param_index_.end()) {
    unsupported("input " + std::to_string(i) + " ('" + src.name + "') must be a parameter "
                "from the params file, not a computed value");
  }
  return c_->params_[it->second];
}

std::vector<float> Builder::floats(int i, const Shape& shape, const char* what) const {
  const Tensor& t = param(i);
  if (t.dtype != kFloat32) {
    bad(std::string(what) + " '" + t.name + "' is " + dtype_name(t.dtype) +
        ", expected float32");
  }
  if (t.shape != shape) {
    bad(std::string(what) + " '" + t.name + "' has shape " + shape_str(t.shape) +
        " but the layer needs " + shape_str(shape) + ": the params file does not belong to "
        "this symbol (or this input shape)");
  }
  std::vector<float> out(static_cast<size_t>(num_elements(shape)));
  if (!out.empty()) std::memcpy(out.data(), t.data.data(), out.size() * sizeof(float));
  return out;
}

int Builder::value(int i) const {
  const int64_t src = node().inputs.at(i).node;
  int v = c_->node_value_[src];
  if (v >= 0) return v;
  if (is_param(i)) return c_->param_value(src);
  if (c_->is_label_[src]) {
    unsupported("input " + std::to_string(i) + " is the label variable '" +
                c_->sym_.nodes[src].name + "', which only a loss layer may read");
  }
  throw Error(BMX_ERROR_INTERNAL, where("input " + std::to_string(i) + " has no value"));
}

const Value& Builder::c_value(int v) const { return c_->model_->values[v]; }

Step* Builder::emit(std::unique_ptr<Step> step, const Shape& shape) {
  Model& m = *c_->model_;
  Storage st;
  st.bytes = num_elements(shape) * 4;
  m.storages.push_back(st);
  step->node = index_;
  step->op = node().op;
  step->name = node().name;
  const int producer = static_cast<int>(m.steps.size());
  step->output = c_->new_value(shape, static_cast<int>(m.storages.size()) - 1, nullptr, producer);
  c_->node_value_[index_] = step->output;
  c_->value_uses_[step->output] = c_->entry_uses_[index_];
  m.steps.push_back(std::move(step));
  return m.steps.back().get();
}

void Builder::alias(int i, const Shape& shape) {
  const int src = value(i);
  const Value& from = c_value(src);
  if (num_elements(shape) != num_elements(from.shape)) {
    bad("output shape " + shape_str(shape) + " has another element count than the input " +
        shape_str(from.shape));
  }
  c_->pinned_[src] = true;
  // The alias keeps the source's producer, so that ready_before() orders it correctly; being
  // pinned, it is never fused into.
  const int v = c_->new_value(shape, from.storage, from.constant, from.producer);
  c_->pinned_[v] = true;
  c_->node_value_[index_] = v;
  c_->value_uses_[v] = c_->entry_uses_[index_];
}

Step* Builder::fusable_producer(int i) const {
  const int v = value(i);
  const Value& val = c_value(v);
  if (val.producer < 0 || c_->pinned_[v] || c_->value_uses_[v] != 1) return nullptr;
  Step* step = c_->model_->steps[val.producer].get();
  if (step->output != v || !step->takes_post_ops()) return nullptr;
  if (step->post.ops.size() >= kMaxPostOps) return nullptr;
  return step;
}

void Builder::fused_into(Step* step, const std::string& what) {
  c_->node_value_[index_] = step->output;
  c_->value_uses_[step->output] += c_->entry_uses_[index_] - 1;
  step->fused.push_back(node().op + " '" + node().name + "'" + (what.empty() ? "" : " " + what));
}

bool Builder::ready_before(int v, const Step* step) const {
  const Value& val = c_value(v);
  if (val.producer < 0) return true;  // an input or a constant (or an alias of one)
  const auto& steps = c_->model_->steps;
  for (size_t k = 0; k < steps.size(); ++k) {
    if (steps[k].get() == step) return val.producer < static_cast<int>(k);
  }
  return false;
}

bmx::Path Builder::path() const { return c_->model_->path; }

int Builder::num_threads() const { return c_->model_->num_threads; }

}  // namespace bmxrt
