#include "common.h"

#include <cctype>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <sstream>

#include "quantize.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace bmx_mx {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool parse_int(const std::string& s, int64_t* out) {
  std::string t = trim(s);
  if (t.size() > 1 && t.back() == 'L') t.pop_back();  // "3L" from old Python 2 json files
  if (t.empty()) return false;
  size_t pos = 0;
  try {
    *out = std::stoll(t, &pos);
  } catch (const std::exception&) {
    return false;
  }
  return pos == t.size();
}

}  // namespace

void AttrReader::bad(const std::string& key, const std::string& why) const {
  auto it = attrs_.find(key);
  std::ostringstream msg;
  msg << "parameter '" << key << "'";
  if (it != attrs_.end()) msg << " = '" << it->second << "'";
  msg << ": " << why;
  throw OpError(msg.str());
}

std::string AttrReader::str(const std::string& key, const std::string& def) const {
  return has(key) ? trim(attrs_.at(key)) : def;
}

int64_t AttrReader::integer(const std::string& key, int64_t def) const {
  if (!has(key)) return def;
  int64_t v;
  if (!parse_int(attrs_.at(key), &v)) bad(key, "expected an integer");
  return v;
}

namespace {

// "must be between 1 and 2147483647 (...)" for lo = 1.
std::string size_range(int64_t lo) {
  return "must be between " + std::to_string(lo) + " and " + std::to_string(kMaxElements) +
         " (2^31 - 1, the largest tensor dimension)";
}

}  // namespace

int64_t AttrReader::size(const std::string& key, int64_t def, int64_t lo) const {
  if (!has(key)) return def;
  const int64_t v = integer(key, def);
  if (v < lo || v > kMaxElements) bad(key, size_range(lo));
  return v;
}

int64_t AttrReader::required_size(const std::string& key, int64_t lo) const {
  if (!has(key)) bad(key, "is required");
  return size(key, 0, lo);
}

double AttrReader::real(const std::string& key, double def) const {
  if (!has(key)) return def;
  const std::string t = trim(attrs_.at(key));
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(t, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (t.empty() || pos != t.size() || !std::isfinite(v)) bad(key, "expected a finite number");
  return v;
}

bool AttrReader::boolean(const std::string& key, bool def) const {
  if (!has(key)) return def;
  const std::string t = trim(attrs_.at(key));
  if (t == "True" || t == "true" || t == "1") return true;
  if (t == "False" || t == "false" || t == "0") return false;
  bad(key, "expected True or False");
}

std::vector<int64_t> AttrReader::tuple(const std::string& key, size_t n, int64_t def,
                                       int64_t lo) const {
  if (!has(key)) return std::vector<int64_t>(n, def);
  std::string t = trim(attrs_.at(key));
  if (!t.empty() && (t.front() == '(' || t.front() == '[')) {
    const char close = t.front() == '(' ? ')' : ']';
    if (t.back() != close) bad(key, "unbalanced brackets");
    t = t.substr(1, t.size() - 2);
  }
  std::vector<int64_t> v;
  std::stringstream ss(t);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (trim(item).empty()) continue;  // "(3,)"
    int64_t x;
    if (!parse_int(item, &x)) bad(key, "expected integers like (3, 3)");
    if (x < lo || x > kMaxElements) bad(key, "each value " + size_range(lo));
    v.push_back(x);
  }
  if (v.size() == 1 && n > 1) v.assign(n, v[0]);
  if (v.size() != n) {
    std::ostringstream why;
    why << "expected " << n << " values (2-D operators take (h, w)), got " << v.size();
    bad(key, why.str());
  }
  return v;
}

std::vector<int64_t> AttrReader::required_tuple(const std::string& key, size_t n,
                                                int64_t lo) const {
  if (!has(key)) bad(key, "is required");
  return tuple(key, n, 0, lo);
}

void AttrReader::reject_unknown(const std::set<std::string>& allowed) const {
  for (const auto& kv : attrs_) {
    if (kv.first.rfind("__", 0) == 0 || allowed.count(kv.first)) continue;
    std::ostringstream msg;
    msg << "unknown parameter '" << kv.first << "'; allowed parameters are:";
    for (const auto& a : allowed) msg << " " << a;
    throw OpError(msg.str());
  }
}

const std::set<std::string>& QuantParams::attr_names() {
  static const std::set<std::string> names = {"act_bit", "weight_bit", "scaling_mode",
                                              "grad_cancel", "binarized_weights_only",
                                              "pad_value", "act_grad", "swish_beta"};
  return names;
}

QuantParams QuantParams::parse(const AttrReader& r, bool with_weights) {
  QuantParams p;
  auto bits = [&](const char* key) {
    const int64_t b = r.integer(key, 1);
    if (b < 1 || b > 32) {
      throw OpError(std::string("parameter '") + key + "' = " + std::to_string(b) +
                    ": must be in [1, 32] (1 = binary, 2..31 = k-bit, 32 = full precision)");
    }
    return static_cast<int>(b);
  };
  p.act_bit = bits("act_bit");
  p.weight_bit = bits("weight_bit");
  p.grad_cancel = static_cast<float>(r.real("grad_cancel", 1.0));
  if (p.grad_cancel < 0.f) throw OpError("parameter 'grad_cancel' must be >= 0");
  const std::string mode = r.str("scaling_mode", "none");
  if (mode != "none" && mode != "forward") {
    throw OpError("parameter 'scaling_mode' = '" + mode +
                  "': allowed values are 'none' and 'forward'");
  }
  p.scaling = mode == "forward";
  p.binarized_weights_only = r.boolean("binarized_weights_only", false);
  const int64_t pv = r.integer("pad_value", 0);
  if (pv != 0 && pv != 1 && pv != -1) {
    throw OpError("parameter 'pad_value' = " + std::to_string(pv) +
                  ": allowed values are 0 (zero padding), 1 and -1");
  }
  p.pad_value = static_cast<int>(pv);
  if (p.pad_value != 0 && p.act_bit != 1) {
    throw OpError("parameter 'pad_value' = " + std::to_string(pv) +
                  " needs act_bit = 1 (only binary inputs can be padded with +1/-1); "
                  "use pad_value=0");
  }
  const std::string grad = r.str("act_grad", "ste");
  if (grad == "ste") {
    p.act_grad = ActGrad::kSte;
  } else if (grad == "approx_sign") {
    p.act_grad = ActGrad::kApproxSign;
  } else if (grad == "swish_sign") {
    p.act_grad = ActGrad::kSwishSign;
  } else {
    throw OpError("parameter 'act_grad' = '" + grad +
                  "': allowed values are 'ste', 'approx_sign' and 'swish_sign'");
  }
  if (p.act_grad != ActGrad::kSte && p.act_bit != 1) {
    throw OpError("parameter 'act_grad' = '" + grad + "' needs act_bit = 1 (it is the gradient "
                  "of sign); use act_grad='ste' for k-bit inputs");
  }
  p.swish_beta = static_cast<float>(r.real("swish_beta", 5.0));
  if (with_weights && p.binarized_weights_only && (p.act_bit != 1 || p.weight_bit != 1)) {
    throw OpError("binarized_weights_only=True needs act_bit=1 and weight_bit=1 (packed weights "
                  "are 1-bit); convert only 1-bit layers with model_converter");
  }
  return p;
}

namespace {

template <typename T, typename Print>
std::string format_shape(const std::vector<T>& s, Print print) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) o << ", ";
    print(o, s[i]);
  }
  if (s.size() == 1) o << ",";
  o << ")";
  return o.str();
}

}  // namespace

std::string shape_str(const std::vector<unsigned>& s) {
  return format_shape(s, [](std::ostream& o, unsigned d) {
    if (d == kUnknownDim) o << "?"; else o << d;
  });
}

std::string shape_str(const Shape& s) {
  return format_shape(s, [](std::ostream& o, int64_t d) { o << d; });
}

Shape known_shape(const std::vector<unsigned>& s, const char* what) {
  if (s.empty() || std::any_of(s.begin(), s.end(), [](unsigned d) { return d == kUnknownDim; })) {
    throw OpError(std::string(what) + " has the shape " + (s.empty() ? "?" : shape_str(s)) +
                  ", which is not fully known; give every dimension of the " + what +
                  " (under MXNet's legacy shapes a 0 also reads as unknown, so a zero-size batch "
                  "needs mx.util.set_np_shape(True))");
  }
  return Shape(s.begin(), s.end());
}

std::vector<unsigned> to_infer(const Shape& s) {
  std::vector<unsigned> out;
  for (int64_t d : s) {
    if (d < 0 || d > kMaxElements) throw OpError("internal: dimension out of range in " +
                                                 shape_str(s));
    out.push_back(static_cast<unsigned>(d));
  }
  return out;
}

int64_t elements(const Shape& s, const std::string& what) {
  const auto too_large = [&] {
    throw OpError(what + " " + shape_str(s) + " is too large: more than " +
                  std::to_string(kMaxElements) + " (2^31 - 1) elements, the most one MXNet "
                  "tensor holds; use a smaller batch or smaller sizes");
  };
  for (int64_t d : s) {
    if (d < 0) throw OpError(what + " has a negative dimension: " + shape_str(s));
    if (d > kMaxElements) too_large();
  }
  if (std::find(s.begin(), s.end(), 0) != s.end()) return 0;
  int64_t n = 1;
  for (int64_t d : s) {
    n *= d;  // both factors <= 2^31 - 1: no overflow
    if (n > kMaxElements) too_large();
  }
  return n;
}

void infer_weighted_types(bool packed_weights, std::vector<int>* in, std::vector<int>* out) {
  if (in->at(0) != -1 && in->at(0) != mxnet::ext::kFloat32) {
    throw OpError("data must be float32; cast the input with .astype('float32')");
  }
  in->at(0) = mxnet::ext::kFloat32;
  const int wtype = packed_weights ? mxnet::ext::kInt64 : mxnet::ext::kFloat32;
  if (in->at(1) != -1 && in->at(1) != wtype) {
    throw OpError(packed_weights
                      ? "binarized_weights_only=True needs packed int64 weights as written by "
                        "model_converter"
                      : "weight must be float32 (packed int64 weights need "
                        "binarized_weights_only=True)");
  }
  in->at(1) = wtype;
  for (size_t i = 2; i < in->size(); ++i) in->at(i) = mxnet::ext::kFloat32;
  out->at(0) = mxnet::ext::kFloat32;
}

namespace {

[[noreturn]] void wrong_shape(const char* name, const std::string& have, const Shape& want,
                              const Shape& data) {
  throw OpError(std::string(name) + " has shape " + have + " but " + shape_str(want) +
                " is needed for data " + shape_str(data) + " with these parameters");
}

}  // namespace

void expect_shape(std::vector<std::vector<unsigned>>* in, size_t idx, const Shape& want,
                  const char* name, const Shape& data) {
  auto& have = in->at(idx);
  if (!have.empty()) {  // empty: ndim unknown
    bool differs = have.size() != want.size();
    for (size_t i = 0; !differs && i < have.size(); ++i) {
      differs = !dim_unknown(have[i]) && static_cast<int64_t>(have[i]) != want[i];
    }
    if (differs) wrong_shape(name, shape_str(have), want, data);
  }
  have = to_infer(want);
}

void expect_tensor(const MXTensor& t, const Shape& want, const char* name, const Shape& data) {
  if (t.shape != want) wrong_shape(name, shape_str(t.shape), want, data);
}

void check_packed_tail(const uint64_t* packed, int64_t runs, int64_t words, int64_t bits,
                       const std::string& inputs) {
  const int64_t used = bits % 64;
  if (used == 0) return;  // the last word is full
  const uint64_t tail = ~((uint64_t{1} << used) - 1);
  for (int64_t r = 0; r < runs; ++r) {
    if (packed[(r + 1) * words - 1] & tail) {
      throw OpError("the packed weights were made for a layer with more inputs: bits past the " +
                    std::to_string(bits) + " " + inputs + " are set in run " +
                    std::to_string(r) + "; the data, in_channels / in_units and num_group must "
                    "be those of the converted layer (re-convert the model with model_converter)");
    }
  }
}

const float* ChannelScale::of(bool scaling, MXTensor& w, int64_t channels) {
  if (!scaling) return nullptr;
  scale_.resize(static_cast<size_t>(channels));
  bmx::mean_abs_rows(w.data<float>(), channels, w.size() / channels, scale_.data());
  return scale_.data();
}

namespace {

// The layer cache (common.h). Entry: the weights in the kernel's layout, what the weights of a
// call are compared with, and the plans made on them.
enum class LayerKind { kConv, kDense };

struct ConvSlot {
  bmx::BConv2DShape shape;
  const float* bias;
  int threads;
  bmx::Path path;
  bmx::BConv2DPlan plan;
};

struct DenseSlot {
  int64_t rows;
  const float* bias;
  int threads;
  bmx::Path path;
  bmx::BDensePlan plan;
};

constexpr size_t kMaxPlansPerEntry = 8;
constexpr size_t kMaxCacheBytes = size_t{256} << 20;
constexpr size_t kMaxCacheEntries = 1024;

// What a call's weights are compared with (common.h):
//   kSigns       latent weights without scaling: their sign bits in MXNet's order;
//   kSignsScale  latent weights with scaling_mode='forward': the sign bits and each output
//                channel's mean |W| (what the kernel reads), made in one pass over the weights;
//   kPacked      the converter's words, and the weight_scale input when there is one.
enum class Compare { kSigns, kSignsScale, kPacked };

struct Entry {
  LayerKind kind;
  Compare compare;
  std::vector<int64_t> geometry;  // conv: O, C per group, kh, kw, groups; dense: O, in_units
  const void* array;              // where the weights were: found first, replaced when changed
  std::vector<uint64_t> packed;   // the kernel's layout (plans point into it)
  std::vector<uint64_t> signs;    // kSigns, kSignsScale: the weights' sign bits
  std::vector<float> scale;       // empty without scaling (plans point into it)
  std::mutex mu;                  // guards the slots below
  std::vector<ConvSlot> conv;
  std::vector<DenseSlot> dense;

  bool same_layer(LayerKind k, Compare c, const std::vector<int64_t>& g) const {
    return kind == k && compare == c && geometry == g;
  }
  size_t bytes() const {
    return (packed.size() + signs.size()) * sizeof(uint64_t) + scale.size() * sizeof(float);
  }
};

// The weights of one call in the form entries keep (latent weights: reduced into buffers of
// the calling thread).
struct Fingerprint {
  Compare compare;
  const void* data = nullptr;  // signs or packed words (uint64_t)
  size_t bytes = 0;
  const float* scale = nullptr;  // kSignsScale: mean |W|; kPacked: weight_scale input, or null
};

Fingerprint fingerprint(const LayerWeights& w) {
  Fingerprint f;
  if (w.packed) {
    f.compare = Compare::kPacked;
    f.data = w.packed;
    f.bytes = static_cast<size_t>(w.count) * sizeof(uint64_t);
    f.scale = w.scale;
    return f;
  }
  thread_local std::vector<uint64_t> signs;
  signs.resize(static_cast<size_t>(bmx::words_for(w.count)));
  if (w.mean_abs_scale) {
    thread_local std::vector<float> scale;
    scale.resize(static_cast<size_t>(w.channels));
    bmx::pack_signs_and_mean_abs(w.latent, w.channels, w.count / w.channels, signs.data(),
                                 scale.data());
    f.compare = Compare::kSignsScale;
    f.scale = scale.data();
  } else {
    bmx::pack_signs(w.latent, w.count, signs.data());
    f.compare = Compare::kSigns;
  }
  f.data = signs.data();
  f.bytes = signs.size() * sizeof(uint64_t);
  return f;
}

// True when e was made from weights equal to f's (memcmp stops at the first difference, so
// entries of other weights cost little to reject).
bool matches(const Entry& e, const Fingerprint& f, int64_t channels) {
  const void* mine = nullptr;
  size_t bytes = 0;
  if (e.compare == Compare::kPacked) {
    mine = e.packed.data();
    bytes = e.packed.size() * sizeof(uint64_t);
  } else {
    mine = e.signs.data();
    bytes = e.signs.size() * sizeof(uint64_t);
  }
  if ((f.scale != nullptr) == e.scale.empty()) return false;
  if (f.scale &&
      std::memcmp(e.scale.data(), f.scale, static_cast<size_t>(channels) * sizeof(float)) != 0) {
    return false;
  }
  return bytes == f.bytes && std::memcmp(mine, f.data, bytes) == 0;
}

class LayerCache {
 public:
  // The entry for these weights: a matching one, or a new one made by make(entry) (which fills
  // packed, and may throw OpError: nothing is then cached).
  template <typename Make>
  std::shared_ptr<Entry> get(LayerKind kind, const LayerWeights& w,
                             const std::vector<int64_t>& geometry, Make&& make) {
    const Fingerprint f = fingerprint(w);
    if (std::shared_ptr<Entry> found = find(kind, f, geometry, w)) return found;
    auto e = std::make_shared<Entry>();
    e->kind = kind;
    e->compare = f.compare;
    e->geometry = geometry;
    e->array = w.array;
    if (f.compare != Compare::kPacked) {
      const auto* words = static_cast<const uint64_t*>(f.data);
      e->signs.assign(words, words + f.bytes / sizeof(uint64_t));
    }
    if (f.scale) e->scale.assign(f.scale, f.scale + w.channels);
    make(e.get());
    insert(e);
    return e;
  }

  void count_plan() {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.plans;
  }

  LayerCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    LayerCacheStats s = stats_;
    s.entries = static_cast<int64_t>(lru_.size());
    s.bytes = static_cast<int64_t>(bytes_);
    return s;
  }

 private:
  // The entry of this layer kind and geometry whose weights equal f's (made most recently used),
  // or null; the entry made at the same address is tried first. What is compared never changes
  // once an entry is made, so the comparisons run outside the lock.
  std::shared_ptr<Entry> find(LayerKind kind, const Fingerprint& f,
                              const std::vector<int64_t>& geometry, const LayerWeights& w) {
    std::vector<std::shared_ptr<Entry>> candidates;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& e : lru_) {
        if (!e->same_layer(kind, f.compare, geometry)) continue;
        candidates.push_back(e);
        if (e->array == w.array) std::swap(candidates.front(), candidates.back());
      }
    }
    for (const auto& e : candidates) {
      if (!matches(*e, f, w.channels)) continue;
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.hits;
      for (auto it = lru_.begin(); it != lru_.end(); ++it) {
        if (*it == e) {
          lru_.splice(lru_.begin(), lru_, it);  // most recently used first
          break;
        }
      }
      return e;
    }
    return nullptr;
  }

  // Adds e as the most recently used entry. An entry made at the same address for the same
  // layer holds weights that are no longer there (training steps would otherwise fill the
  // cache with one entry per step): it goes. Then least recently used entries go while the
  // cache is over its bounds.
  void insert(const std::shared_ptr<Entry>& e) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.packs;
    for (auto it = lru_.begin(); it != lru_.end();) {
      if ((*it)->array == e->array && (*it)->same_layer(e->kind, e->compare, e->geometry)) {
        bytes_ -= (*it)->bytes();
        it = lru_.erase(it);
      } else {
        ++it;
      }
    }
    lru_.push_front(e);
    bytes_ += e->bytes();
    // Runs still holding an evicted entry keep it alive through their shared_ptr.
    while (lru_.size() > 1 && (bytes_ > kMaxCacheBytes || lru_.size() > kMaxCacheEntries)) {
      bytes_ -= lru_.back()->bytes();
      lru_.pop_back();
    }
  }

  std::mutex mu_;
  std::list<std::shared_ptr<Entry>> lru_;
  size_t bytes_ = 0;
  LayerCacheStats stats_;
};

// Never destroyed: an operator may still run while the process exits.
LayerCache& layer_cache() {
  static LayerCache* cache = new LayerCache;
  return *cache;
}

// A workspace of at least `bytes` bytes for runs on the calling thread.
void* thread_workspace(int64_t bytes) {
  thread_local std::unique_ptr<unsigned char[]> buf;
  thread_local int64_t size = 0;
  if (bytes > size) {
    buf.reset(new unsigned char[static_cast<size_t>(bytes)]);
    size = bytes;
  }
  return buf.get();
}

bool same_conv_shape(const bmx::BConv2DShape& a, const bmx::BConv2DShape& b) {
  return a.batch == b.batch && a.in_channels == b.in_channels && a.in_h == b.in_h &&
         a.in_w == b.in_w && a.out_channels == b.out_channels && a.kernel_h == b.kernel_h &&
         a.kernel_w == b.kernel_w && a.stride_h == b.stride_h && a.stride_w == b.stride_w &&
         a.pad_h == b.pad_h && a.pad_w == b.pad_w && a.dilate_h == b.dilate_h &&
         a.dilate_w == b.dilate_w && a.groups == b.groups && a.pad_value == b.pad_value;
}

const float* scale_of(const Entry& e) { return e.scale.empty() ? nullptr : e.scale.data(); }

// The plan of e's slot that fits(slot), or a new one from prepare(&plan) (which returns an error
// message, empty on success) kept as slot make(plan); at most kMaxPlansPerEntry slots per entry.
template <typename Slot, typename Plan, typename Fits, typename Prepare, typename Make>
Plan find_or_prepare(LayerCache& cache, Entry& e, std::vector<Slot>& slots, Fits fits,
                     Prepare prepare, Make make) {
  std::lock_guard<std::mutex> lock(e.mu);
  for (const Slot& slot : slots) {
    if (fits(slot)) return slot.plan;
  }
  Plan plan;
  const std::string err = prepare(&plan);
  if (!err.empty()) throw OpError(err);
  if (slots.size() == kMaxPlansPerEntry) slots.erase(slots.begin());
  slots.push_back(make(plan));
  cache.count_plan();
  return plan;
}

}  // namespace

LayerWeights one_bit_weights(const QuantParams& q, MXTensor& w, int64_t channels,
                             const float* weight_scale) {
  LayerWeights lw;
  lw.array = w.data_ptr;
  lw.channels = channels;
  lw.count = w.size();
  if (q.binarized_weights_only) {
    lw.packed = reinterpret_cast<const uint64_t*>(w.data<int64_t>());
    lw.scale = weight_scale;
  } else {
    lw.latent = w.data<float>();
    lw.mean_abs_scale = q.scaling;
  }
  return lw;
}

void cached_bconv2d(const bmx::BConv2DShape& s, const LayerWeights& w, const float* x,
                    const float* bias, float* y) {
  LayerCache& cache = layer_cache();
  const std::vector<int64_t> geometry = {s.out_channels, s.group_in(), s.kernel_h, s.kernel_w,
                                         s.groups};
  const std::shared_ptr<Entry> e = cache.get(LayerKind::kConv, w, geometry, [&](Entry* n) {
    if (w.latent) {
      n->packed.assign(static_cast<size_t>(bmx::bconv2d_packed_weight_words(s)), 0);
      bmx::pack_conv_weights(s, w.latent, n->packed.data());
    } else {
      check_packed_tail(w.packed, s.out_channels * s.kernel_h * s.kernel_w,
                        bmx::words_for(s.group_in()), s.group_in(), "input channels per group");
      n->packed.assign(w.packed, w.packed + w.count);
    }
  });
  const int threads = max_threads();
  const bmx::Path path = bmx::active_path();
  const bmx::BConv2DPlan plan = find_or_prepare<ConvSlot, bmx::BConv2DPlan>(
      cache, *e, e->conv,
      [&](const ConvSlot& slot) {
        return same_conv_shape(slot.shape, s) && slot.bias == bias && slot.threads == threads &&
               slot.path == path;
      },
      [&](bmx::BConv2DPlan* out) {
        bmx::BConv2DOptions o;
        o.max_threads = threads;
        o.path = path;
        return bmx::bconv2d_prepare(s, e->packed.data(), scale_of(*e), bias, o, out);
      },
      [&](const bmx::BConv2DPlan& p) { return ConvSlot{s, bias, threads, path, p}; });
  const char* err = bmx::bconv2d_run(plan, x, y, thread_workspace(plan.workspace_bytes()));
  if (err != nullptr) throw OpError(err);
}

void cached_bdense(int64_t rows, int64_t cols, int64_t num_hidden, const LayerWeights& w,
                   const float* x, const float* bias, float* y) {
  LayerCache& cache = layer_cache();
  const std::vector<int64_t> geometry = {num_hidden, cols};
  const std::shared_ptr<Entry> e = cache.get(LayerKind::kDense, w, geometry, [&](Entry* n) {
    if (w.latent) {
      n->packed.assign(static_cast<size_t>(num_hidden * bmx::words_for(cols)), 0);
      bmx::pack_dense_weights(num_hidden, cols, w.latent, n->packed.data());
    } else {
      check_packed_tail(w.packed, num_hidden, bmx::words_for(cols), cols, "in_units");
      n->packed.assign(w.packed, w.packed + w.count);
    }
  });
  const int threads = max_threads();
  const bmx::Path path = bmx::active_path();
  const bmx::BDensePlan plan = find_or_prepare<DenseSlot, bmx::BDensePlan>(
      cache, *e, e->dense,
      [&](const DenseSlot& slot) {
        return slot.rows == rows && slot.bias == bias && slot.threads == threads &&
               slot.path == path;
      },
      [&](bmx::BDensePlan* out) {
        bmx::BDenseOptions o;
        o.max_threads = threads;
        o.path = path;
        return bmx::bdense_prepare(rows, cols, num_hidden, e->packed.data(), scale_of(*e), bias,
                                   o, out);
      },
      [&](const bmx::BDensePlan& p) { return DenseSlot{rows, bias, threads, path, p}; });
  const char* err = bmx::bdense_run(plan, x, y, thread_workspace(plan.workspace_bytes()));
  if (err != nullptr) throw OpError(err);
}

LayerCacheStats layer_cache_stats() { return layer_cache().stats(); }

Scratch::Scratch(const OpResource& res, const std::vector<int64_t>& sizes) {
  constexpr int64_t kAlign = 16;  // floats: 64-byte aligned parts
  // alloc_cpu takes the byte count as an int; the bound leaves room for the rounding of each
  // part and the alignment of the start, so the sum below never passes it (nor overflows).
  constexpr int64_t kMaxFloats = 0x7fffffff / static_cast<int64_t>(sizeof(float)) - 2 * kAlign;
  int64_t total = 0;
  for (int64_t n : sizes) {
    if (n < 0 || n > kMaxFloats - total) {
      double want = 0;
      for (int64_t m : sizes) want += static_cast<double>(m) * sizeof(float);
      throw OpError("needs " + std::to_string(static_cast<int64_t>(want / (1 << 20))) +
                    " MiB of scratch memory, more than MXNet's allocator gives one operator "
                    "(2 GiB); use a smaller batch or smaller layers");
    }
    total += (n + kAlign - 1) / kAlign * kAlign;
  }
  const int64_t bytes = (total + kAlign) * static_cast<int64_t>(sizeof(float));
  void* raw = res.alloc_cpu(static_cast<int>(bytes));
  if (!raw) throw OpError("out of memory for " + std::to_string(bytes >> 20) + " MiB of scratch");
  const uintptr_t base = (reinterpret_cast<uintptr_t>(raw) + 63) & ~uintptr_t{63};
  float* p = reinterpret_cast<float*>(base);
  for (int64_t n : sizes) {
    parts_.push_back(p);
    p += (n + kAlign - 1) / kAlign * kAlign;
  }
}

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void ste_mask(const float* x, const float* dy, float* g, int64_t n, float cancel) {
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) g[i] = std::fabs(x[i]) <= cancel ? dy[i] : 0.f;
}

void act_grad(const QuantParams& q, const float* x, const float* dy, float* g, int64_t n) {
  if (q.act_bit >= 32) {
    if (g != dy) std::copy(dy, dy + n, g);
    return;
  }
  switch (q.act_grad) {
    case ActGrad::kSte:
      ste_mask(x, dy, g, n, q.grad_cancel);
      return;
    case ActGrad::kApproxSign:
#pragma omp parallel for if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) {
        const float a = std::fabs(x[i]);
        g[i] = a <= 1.f ? dy[i] * (2.f - 2.f * a) : 0.f;
      }
      return;
    case ActGrad::kSwishSign: {
      const float b = q.swish_beta;
#pragma omp parallel for if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) {
        const float bx = b * x[i];
        g[i] = dy[i] * b * (2.f - bx * std::tanh(bx / 2.f)) / (1.f + std::cosh(bx));
      }
      return;
    }
  }
}

}  // namespace bmx_mx
